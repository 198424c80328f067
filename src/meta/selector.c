/*
 * Label and field selectors (see selector.h), after k8s.io/apimachinery:
 * pkg/labels/selector.go (Lexer, Parser, NewRequirement, Requirement.Matches/String),
 * pkg/util/validation/validation.go (IsQualifiedName, IsValidLabelValue),
 * pkg/fields/selector.go (splitTerms, splitTerm, UnescapeValue, EscapeValue). A
 * metav1.LabelSelector object is turned into a selector in label_selector.c.
 *
 * Implementation notes.
 * - Before any parsing, the text is checked as a whole: at most KP_SELECTOR_TEXT_MAX bytes,
 *   well-formed UTF-8, no control characters (labels allow the lexer's whitespace: space, tab,
 *   CR, LF). Upstream refuses such bytes in labels anyway (they fail key or value validation);
 *   for fields it is kpki's own rule, and it means every quoted fragment of an error message is
 *   printable.
 * - Labels: the lexer and the recursive-descent parser mirror upstream token for token, with a
 *   one-token lookahead instead of a pre-scanned token array. "in" and "notin" are keywords only
 *   where an operator may stand (upstream's KeyAndOperator context); elsewhere they are ordinary
 *   identifiers, so "in in (in)" is a valid selector. A requirement's values form a set (upstream
 *   collects them in sets.String), so they are stored sorted and without duplicates.
 * - Fields: terms split at unescaped commas; each term at the first "!=", "==" or "=" (checked in
 *   that order at each position); the key is taken raw, the value unescaped.
 * - Invariant of a parsed selector: every requirement has a non-NULL key and the number of values
 *   its operator needs (see struct kp_selector_requirement); the matchers and the writer rely on
 *   it and never re-validate.
 */
#include "meta/selector.h"
#include "meta/selector_internal.h"

#include "core/addr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A label key's name part, and a label value, are at most 63 characters
 * (validation.go: qualifiedNameMaxLength, LabelValueMaxLength). */
#define NAME_MAX_LEN 63
/* A key's prefix is a DNS-1123 subdomain (validation.go: DNS1123SubdomainMaxLength). */
#define PREFIX_MAX_LEN 253

/* Writes the first len bytes of text into out for an error message: printable ASCII as is, any
 * other byte as \xNN, at most QUOTE_MAX input bytes with "..." when cut. Returns out. */
const char *kp_selector_quote(char out[QUOTED_SIZE], const char *text, size_t len)
{
    size_t used = 0;
    size_t shown = len > QUOTE_MAX ? QUOTE_MAX : len;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f) {
            out[used++] = (char)c;
        } else {
            used += (size_t)snprintf(out + used, QUOTED_SIZE - used, "\\x%02x", c);
        }
    }
    if (shown < len) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used] = '\0';
    return out;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], the regex of both a qualified name's name part and
 * a non-empty label value. */
static bool name_chars_valid(const char *text, size_t len)
{
    if (len == 0 || !is_alnum((unsigned char)text[0]) || !is_alnum((unsigned char)text[len - 1])) {
        return false;
    }
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') {
            return false;
        }
    }
    return true;
}

/* validation.IsQualifiedName, the rule for label keys: NULL if valid, else why not. */
static const char *label_key_problem(const char *key)
{
    const char *name = key;
    const char *slash = strchr(key, '/');
    if (slash != NULL) {
        if (strchr(slash + 1, '/') != NULL) {
            return "a key is an optional DNS subdomain prefix and '/', then a name: "
                   "at most one '/'";
        }
        size_t prefix_len = (size_t)(slash - key);
        if (prefix_len == 0) {
            return "prefix part must not be empty";
        }
        if (prefix_len > PREFIX_MAX_LEN) {
            return "prefix part must be no more than 253 characters";
        }
        char prefix[PREFIX_MAX_LEN + 1];
        memcpy(prefix, key, prefix_len);
        prefix[prefix_len] = '\0';
        if (!kp_dns1123_subdomain_valid(prefix)) {
            return "prefix part must be a lowercase RFC 1123 subdomain: lowercase alphanumeric "
                   "characters, '-' or '.', starting and ending with an alphanumeric character";
        }
        name = slash + 1;
    }
    size_t name_len = strlen(name);
    if (name_len == 0) {
        return "name part must not be empty";
    }
    if (name_len > NAME_MAX_LEN) {
        return "name part must be no more than 63 characters";
    }
    if (!name_chars_valid(name, name_len)) {
        return "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
               "start and end with an alphanumeric character";
    }
    return NULL;
}

/* validation.IsValidLabelValue: NULL if valid (the empty value is), else why not. */
static const char *label_value_problem(const char *value)
{
    size_t len = strlen(value);
    if (len == 0) {
        return NULL;
    }
    if (len > NAME_MAX_LEN) {
        return "must be no more than 63 characters";
    }
    if (!name_chars_valid(value, len)) {
        return "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
               "end with an alphanumeric character";
    }
    return NULL;
}

/* strconv.ParseInt(text, 10, 64): an optional sign, then one or more decimal digits, in range. */
static bool parse_int64(const char *text, size_t len, int64_t *out)
{
    size_t i = 0;
    bool negative = false;
    if (i < len && (text[i] == '+' || text[i] == '-')) {
        negative = text[i] == '-';
        i++;
    }
    if (i == len) {
        return false;
    }
    /* Accumulate the magnitude as unsigned so that INT64_MIN fits. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (magnitude > (limit - digit) / 10) {
            return false;
        }
        magnitude = magnitude * 10 + digit;
    }
    if (negative) {
        *out = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
    } else {
        *out = (int64_t)magnitude;
    }
    return true;
}

/* Length, UTF-8 and control-character checks on the whole text (see the notes above). kind is
 * "label" or "field". */
static enum kp_result check_text(const char *text, const char *kind, bool allow_whitespace,
                                 struct kp_error *err)
{
    size_t len = strnlen(text, KP_SELECTOR_TEXT_MAX + 1);
    if (len > KP_SELECTOR_TEXT_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s selector too long: more than %d bytes", kind,
                            KP_SELECTOR_TEXT_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        bool whitespace = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        if ((c < 0x20 || c == 0x7f) && !(allow_whitespace && whitespace)) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "%s selector: control character 0x%02x at byte %zu", kind, c, i);
        }
    }
    if (!kp_utf8_valid(text)) {
        return kp_error_set(err, KP_ERR_INVALID, "%s selector: not valid UTF-8", kind);
    }
    return KP_OK;
}

/* Appends a requirement, taking ownership of key and values (which are left empty) whether it
 * succeeds or not. */
enum kp_result kp_selector_add_requirement(struct kp_selector *selector, size_t *capacity,
                                           char *key, enum kp_selector_op op,
                                           struct kp_strlist *values, struct kp_error *err)
{
    if (selector->count == *capacity) {
        size_t grown = *capacity == 0 ? 4 : *capacity * 2;
        struct kp_selector_requirement *bigger =
            realloc(selector->requirements, grown * sizeof(*bigger));
        if (bigger == NULL) {
            free(key);
            kp_strlist_wipe(values);
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        selector->requirements = bigger;
        *capacity = grown;
    }
    struct kp_selector_requirement *requirement = &selector->requirements[selector->count++];
    requirement->key = key;
    requirement->op = op;
    requirement->values = *values;
    kp_strlist_init(values);
    return KP_OK;
}

/* ---- label selectors: the lexer (selector.go: Lexer) ---- */

enum token_kind {
    TOKEN_END,
    TOKEN_IDENTIFIER,
    TOKEN_IN,
    TOKEN_NOT_IN,
    TOKEN_OPEN,
    TOKEN_CLOSE,
    TOKEN_COMMA,
    TOKEN_NOT,           /* "!" before a key: does not exist */
    TOKEN_EQUALS,        /* "=" */
    TOKEN_DOUBLE_EQUALS, /* "==" */
    TOKEN_NOT_EQUALS,    /* "!=" */
    TOKEN_GREATER,
    TOKEN_LESS,
};

struct token {
    enum token_kind kind;
    const char *text; /* borrowed from the selector text */
    size_t len;
};

/* Where a token is read: "in" and "notin" are operators only after a key (upstream's
 * KeyAndOperator context); as keys and values (its Values context) they are identifiers. */
enum lex_context {
    CONTEXT_OPERATOR,
    CONTEXT_VALUES,
};

struct label_parser {
    const char *cursor; /* the first byte not yet lexed */
    struct token next;  /* the lookahead */
    struct kp_selector *selector;
    size_t capacity;
    struct kp_error *err;
};

static bool is_whitespace(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static struct token lex(const char **cursor)
{
    const char *start = *cursor;
    while (is_whitespace(*start)) {
        start++;
    }
    struct token token = {TOKEN_END, start, 0};
    if (*start == '\0') {
        *cursor = start;
        return token;
    }
    if (is_special(*start)) {
        /* scanSpecialSymbol takes the longest run of symbols that is a token; the only
         * two-symbol tokens are "==" and "!=". */
        token.len = 1;
        switch (*start) {
        case '=':
            token.kind = TOKEN_EQUALS;
            if (start[1] == '=') {
                token.kind = TOKEN_DOUBLE_EQUALS;
                token.len = 2;
            }
            break;
        case '!':
            token.kind = TOKEN_NOT;
            if (start[1] == '=') {
                token.kind = TOKEN_NOT_EQUALS;
                token.len = 2;
            }
            break;
        case '(':
            token.kind = TOKEN_OPEN;
            break;
        case ')':
            token.kind = TOKEN_CLOSE;
            break;
        case ',':
            token.kind = TOKEN_COMMA;
            break;
        case '>':
            token.kind = TOKEN_GREATER;
            break;
        default:
            token.kind = TOKEN_LESS;
            break;
        }
        *cursor = start + token.len;
        return token;
    }
    const char *end = start;
    while (*end != '\0' && !is_special(*end) && !is_whitespace(*end)) {
        end++;
    }
    token.len = (size_t)(end - start);
    if (token.len == 2 && memcmp(start, "in", 2) == 0) {
        token.kind = TOKEN_IN;
    } else if (token.len == 5 && memcmp(start, "notin", 5) == 0) {
        token.kind = TOKEN_NOT_IN;
    } else {
        token.kind = TOKEN_IDENTIFIER;
    }
    *cursor = end;
    return token;
}

static enum token_kind in_context(enum token_kind kind, enum lex_context context)
{
    if (context == CONTEXT_VALUES && (kind == TOKEN_IN || kind == TOKEN_NOT_IN)) {
        return TOKEN_IDENTIFIER;
    }
    return kind;
}

static enum token_kind peek(const struct label_parser *parser, enum lex_context context)
{
    return in_context(parser->next.kind, context);
}

static struct token consume(struct label_parser *parser, enum lex_context context)
{
    struct token token = parser->next;
    token.kind = in_context(token.kind, context);
    parser->next = lex(&parser->cursor);
    return token;
}

/* The token as an error message shows it: quoted text, or "end of selector". */
static const char *describe(char out[QUOTED_SIZE + 2], const struct token *token)
{
    if (token->kind == TOKEN_END) {
        return "end of selector";
    }
    char quoted[QUOTED_SIZE];
    snprintf(out, QUOTED_SIZE + 2, "'%s'", kp_selector_quote(quoted, token->text, token->len));
    return out;
}

static enum kp_result unexpected(struct label_parser *parser, const struct token *found,
                                 const char *expected)
{
    char found_text[QUOTED_SIZE + 2];
    return kp_error_set(parser->err, KP_ERR_INVALID, "label selector: found %s, expected %s",
                        describe(found_text, found), expected);
}

/* ---- label selectors: the parser (selector.go: Parser) ---- */

/* parseExactValue: the single value after =, ==, !=, > or <; a missing one (end or ',') is the
 * empty value. */
static enum kp_result parse_exact_value(struct label_parser *parser, struct kp_strlist *values)
{
    enum token_kind kind = peek(parser, CONTEXT_VALUES);
    if (kind == TOKEN_END || kind == TOKEN_COMMA) {
        return kp_strlist_add(values, "", parser->err);
    }
    struct token token = consume(parser, CONTEXT_VALUES);
    if (token.kind != TOKEN_IDENTIFIER) {
        return unexpected(parser, &token, "a value");
    }
    return kp_strlist_addn(values, token.text, token.len, parser->err);
}

/* parseValues and parseIdentifiersList: "(" [values] ")". As upstream, empty elements are the
 * empty value: "()", "(,a)", "(a,)" and "(a,,b)" all hold "". */
static enum kp_result parse_value_set(struct label_parser *parser, struct kp_strlist *values)
{
    struct kp_error *err = parser->err;
    struct token token = consume(parser, CONTEXT_VALUES);
    if (token.kind != TOKEN_OPEN) {
        return unexpected(parser, &token, "'(' after in or notin");
    }
    enum token_kind kind = peek(parser, CONTEXT_VALUES);
    if (kind == TOKEN_CLOSE) {
        consume(parser, CONTEXT_VALUES);
        return kp_strlist_add(values, "", err);
    }
    if (kind != TOKEN_IDENTIFIER && kind != TOKEN_COMMA) {
        token = consume(parser, CONTEXT_VALUES);
        return unexpected(parser, &token, "',', ')' or a value");
    }
    for (;;) {
        enum kp_result rc;
        token = consume(parser, CONTEXT_VALUES);
        if (token.kind == TOKEN_IDENTIFIER) {
            rc = kp_strlist_addn(values, token.text, token.len, err);
            if (rc != KP_OK) {
                return rc;
            }
            kind = peek(parser, CONTEXT_VALUES);
            if (kind == TOKEN_CLOSE) {
                break;
            }
            if (kind != TOKEN_COMMA) {
                token = consume(parser, CONTEXT_VALUES);
                return unexpected(parser, &token, "',' or ')' (unterminated value list?)");
            }
        } else if (token.kind == TOKEN_COMMA) {
            kind = peek(parser, CONTEXT_VALUES);
            /* An empty element before or after this comma. */
            if (values->count == 0 || kind == TOKEN_CLOSE || kind == TOKEN_COMMA) {
                rc = kp_strlist_add(values, "", err);
                if (rc != KP_OK) {
                    return rc;
                }
            }
            if (kind == TOKEN_CLOSE) {
                break;
            }
            if (kind == TOKEN_COMMA) {
                consume(parser, CONTEXT_VALUES);
            }
        } else {
            return unexpected(parser, &token, "',' or a value (unterminated value list?)");
        }
    }
    consume(parser, CONTEXT_VALUES); /* the ')' seen above */
    return KP_OK;
}

/* NewRequirement's checks on values: each a valid label value; > and < take an integer. */
enum kp_result kp_selector_check_values(const char *key, enum kp_selector_op op,
                                        const struct kp_strlist *values, const char *context,
                                        struct kp_error *err)
{
    char key_text[QUOTED_SIZE];
    char value_text[QUOTED_SIZE];
    for (size_t i = 0; i < values->count; i++) {
        const char *value = values->items[i];
        const char *problem = label_value_problem(value);
        if (problem != NULL) {
            return kp_error_set(err, KP_ERR_INVALID, "%s: invalid value '%s' for key '%s': %s",
                                context, kp_selector_quote(value_text, value, strlen(value)),
                                kp_selector_quote(key_text, key, strlen(key)), problem);
        }
        int64_t number;
        if ((op == KP_SEL_GREATER_THAN || op == KP_SEL_LESS_THAN) &&
            !parse_int64(value, strlen(value), &number)) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "%s: value '%s' for key '%s' must be an integer for '%s'", context,
                                kp_selector_quote(value_text, value, strlen(value)),
                                kp_selector_quote(key_text, key, strlen(key)),
                                op == KP_SEL_GREATER_THAN ? ">" : "<");
        }
    }
    return KP_OK;
}

enum kp_result kp_selector_check_key(const char *key, const char *context, struct kp_error *err)
{
    const char *problem = label_key_problem(key);
    if (problem != NULL) {
        char key_text[QUOTED_SIZE];
        return kp_error_set(err, KP_ERR_INVALID, "%s: invalid key '%s': %s", context,
                            kp_selector_quote(key_text, key, strlen(key)), problem);
    }
    return KP_OK;
}

/* parseRequirement with parseKeyAndInferOperator and parseOperator. */
static enum kp_result parse_requirement(struct label_parser *parser)
{
    struct kp_error *err = parser->err;
    char *key = NULL;
    struct kp_strlist values;
    kp_strlist_init(&values);
    enum kp_result rc;

    struct token token = consume(parser, CONTEXT_VALUES);
    bool negated = token.kind == TOKEN_NOT;
    if (negated) {
        token = consume(parser, CONTEXT_VALUES);
    }
    if (token.kind != TOKEN_IDENTIFIER) {
        rc = unexpected(parser, &token, negated ? "a key after '!'" : "a key");
        goto cleanup;
    }
    key = strndup(token.text, token.len);
    if (key == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto cleanup;
    }
    rc = kp_selector_check_key(key, "label selector", err);
    if (rc != KP_OK) {
        goto cleanup;
    }

    enum kp_selector_op op;
    enum token_kind next = peek(parser, CONTEXT_VALUES);
    if (negated) {
        /* Upstream's loop would report the same token as "expected ',' or end"; saying that
         * '!' takes nothing after the key is the useful part. */
        if (next != TOKEN_END && next != TOKEN_COMMA) {
            char found_text[QUOTED_SIZE + 2];
            char key_text[QUOTED_SIZE];
            token = consume(parser, CONTEXT_VALUES);
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "label selector: found %s after '!%s', expected ',' or end of "
                              "selector ('!' takes a key only)",
                              describe(found_text, &token),
                              kp_selector_quote(key_text, key, strlen(key)));
            goto cleanup;
        }
        op = KP_SEL_DOES_NOT_EXIST;
    } else if (next == TOKEN_END || next == TOKEN_COMMA) {
        op = KP_SEL_EXISTS;
    } else {
        token = consume(parser, CONTEXT_OPERATOR);
        switch (token.kind) {
        case TOKEN_IN:
            op = KP_SEL_IN;
            break;
        case TOKEN_NOT_IN:
            op = KP_SEL_NOT_IN;
            break;
        case TOKEN_EQUALS:
        case TOKEN_DOUBLE_EQUALS:
            op = KP_SEL_EQUALS;
            break;
        case TOKEN_NOT_EQUALS:
            op = KP_SEL_NOT_EQUALS;
            break;
        case TOKEN_GREATER:
            op = KP_SEL_GREATER_THAN;
            break;
        case TOKEN_LESS:
            op = KP_SEL_LESS_THAN;
            break;
        default:
            rc = unexpected(parser, &token,
                            "an operator (in, notin, =, ==, !=, >, <), ',' or end of selector");
            goto cleanup;
        }
        rc = op == KP_SEL_IN || op == KP_SEL_NOT_IN ? parse_value_set(parser, &values)
                                                    : parse_exact_value(parser, &values);
        if (rc != KP_OK) {
            goto cleanup;
        }
        rc = kp_selector_check_values(key, op, &values, "label selector", err);
        if (rc != KP_OK) {
            goto cleanup;
        }
        kp_strlist_sort_unique(&values);
    }
    rc = kp_selector_add_requirement(parser->selector, &parser->capacity, key, op, &values, err);
    key = NULL;

cleanup:
    free(key);
    kp_strlist_wipe(&values);
    return rc;
}

/* Parser.parse: requirement {"," requirement}, or nothing at all. */
static enum kp_result parse_label_selector(struct label_parser *parser)
{
    if (peek(parser, CONTEXT_VALUES) == TOKEN_END) {
        return KP_OK;
    }
    for (;;) {
        enum token_kind kind = peek(parser, CONTEXT_VALUES);
        if (kind != TOKEN_IDENTIFIER && kind != TOKEN_NOT) {
            struct token token = consume(parser, CONTEXT_VALUES);
            return unexpected(parser, &token, "'!' or a key");
        }
        enum kp_result rc = parse_requirement(parser);
        if (rc != KP_OK) {
            return rc;
        }
        struct token token = consume(parser, CONTEXT_VALUES);
        if (token.kind == TOKEN_END) {
            return KP_OK;
        }
        if (token.kind != TOKEN_COMMA) {
            return unexpected(parser, &token, "',' or end of selector");
        }
        /* After a comma another requirement must follow: "a," is an error (the loop says
         * "found end of selector, expected '!' or a key"). */
    }
}

enum kp_result kp_label_selector_parse(const char *text, struct kp_selector *selector,
                                       struct kp_error *err)
{
    memset(selector, 0, sizeof(*selector));
    enum kp_result rc = check_text(text, "label", true, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct label_parser parser = {
        .cursor = text,
        .selector = selector,
        .err = err,
    };
    parser.next = lex(&parser.cursor);
    rc = parse_label_selector(&parser);
    if (rc != KP_OK) {
        kp_selector_wipe(selector);
    }
    return rc;
}

/* ---- field selectors (fields/selector.go) ---- */

/* UnescapeValue: '\' may escape only '\', ',' and '='; an unescaped ',' or '=' is an error. */
static enum kp_result unescape_field_value(const char *raw, size_t len, const char *term,
                                           size_t term_len, char **out, struct kp_error *err)
{
    char term_text[QUOTED_SIZE];
    *out = malloc(len + 1);
    if (*out == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char c = raw[i];
        if (c == '\\') {
            if (i + 1 == len) {
                free(*out);
                *out = NULL;
                return kp_error_set(err, KP_ERR_INVALID,
                                    "field selector: term '%s' ends in a lone '\\'",
                                    kp_selector_quote(term_text, term, term_len));
            }
            c = raw[++i];
            if (c != '\\' && c != ',' && c != '=') {
                char escape_text[QUOTED_SIZE];
                free(*out);
                *out = NULL;
                return kp_error_set(err, KP_ERR_INVALID,
                                    "field selector: invalid escape sequence '\\%s' in term '%s' "
                                    "(only \\\\, \\, and \\= are allowed)",
                                    kp_selector_quote(escape_text, &raw[i], 1),
                                    kp_selector_quote(term_text, term, term_len));
            }
        } else if (c == ',' || c == '=') {
            free(*out);
            *out = NULL;
            return kp_error_set(err, KP_ERR_INVALID,
                                "field selector: unescaped '%c' in the value of term '%s' "
                                "(write \\%c)",
                                c, kp_selector_quote(term_text, term, term_len), c);
        }
        (*out)[used++] = c;
    }
    (*out)[used] = '\0';
    return KP_OK;
}

/* splitTerm and UnescapeValue on one non-empty term. */
static enum kp_result parse_field_term(struct kp_selector *selector, size_t *capacity,
                                       const char *term, size_t term_len, struct kp_error *err)
{
    char term_text[QUOTED_SIZE];
    size_t op_at = 0;
    size_t op_len = 0;
    enum kp_selector_op op = KP_SEL_EQUALS;
    for (size_t i = 0; i < term_len && op_len == 0; i++) {
        if (term[i] == '!' && i + 1 < term_len && term[i + 1] == '=') {
            op = KP_SEL_NOT_EQUALS;
            op_len = 2;
        } else if (term[i] == '=') {
            op_len = i + 1 < term_len && term[i + 1] == '=' ? 2 : 1;
        }
        op_at = i;
    }
    if (op_len == 0) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "field selector: cannot understand '%s': expected key=value, "
                            "key==value or key!=value",
                            kp_selector_quote(term_text, term, term_len));
    }
    char *key = strndup(term, op_at);
    if (key == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    char *value = NULL;
    struct kp_strlist values;
    kp_strlist_init(&values);
    enum kp_result rc = unescape_field_value(term + op_at + op_len, term_len - op_at - op_len, term,
                                             term_len, &value, err);
    if (rc == KP_OK) {
        rc = kp_strlist_add(&values, value, err);
    }
    if (rc == KP_OK) {
        rc = kp_selector_add_requirement(selector, capacity, key, op, &values, err);
        key = NULL;
    }
    free(key);
    free(value);
    kp_strlist_wipe(&values);
    return rc;
}

enum kp_result kp_field_selector_parse(const char *text, struct kp_selector *selector,
                                       struct kp_error *err)
{
    memset(selector, 0, sizeof(*selector));
    enum kp_result rc = check_text(text, "field", false, err);
    if (rc != KP_OK) {
        return rc;
    }
    size_t capacity = 0;
    /* splitTerms: a comma ends a term unless a backslash escapes it; empty terms are skipped,
     * so "a=b," is valid (unlike a label selector). */
    const char *term = text;
    bool escaped = false;
    for (const char *c = text;; c++) {
        if (*c != '\0' && (escaped || *c != ',')) {
            escaped = !escaped && *c == '\\';
            continue;
        }
        if (c > term) {
            rc = parse_field_term(selector, &capacity, term, (size_t)(c - term), err);
            if (rc != KP_OK) {
                kp_selector_wipe(selector);
                return rc;
            }
        }
        if (*c == '\0') {
            return KP_OK;
        }
        term = c + 1;
    }
}

/* ---- the parsed selector ---- */

void kp_selector_wipe(struct kp_selector *selector)
{
    if (selector == NULL) {
        return;
    }
    for (size_t i = 0; i < selector->count; i++) {
        free(selector->requirements[i].key);
        kp_strlist_wipe(&selector->requirements[i].values);
    }
    free(selector->requirements);
    memset(selector, 0, sizeof(*selector));
}

bool kp_selector_is_empty(const struct kp_selector *selector)
{
    return selector == NULL || selector->count == 0;
}

static bool has_value(const struct kp_selector_requirement *requirement, const char *value,
                      size_t value_len)
{
    for (size_t i = 0; i < requirement->values.count; i++) {
        const char *candidate = requirement->values.items[i];
        if (strlen(candidate) == value_len && memcmp(candidate, value, value_len) == 0) {
            return true;
        }
    }
    return false;
}

/* Requirement.Matches. value is NULL when the key is absent; present_unusable when the key is
 * there but has no string value (a JSON label that is not a string): it exists, but equals no
 * value and is no integer. */
static bool requirement_matches(const struct kp_selector_requirement *requirement, bool present,
                                const char *value, size_t value_len)
{
    switch (requirement->op) {
    case KP_SEL_EQUALS:
    case KP_SEL_IN:
        return value != NULL && has_value(requirement, value, value_len);
    case KP_SEL_NOT_EQUALS:
    case KP_SEL_NOT_IN:
        /* Upstream: true when the key is absent. */
        return value == NULL || !has_value(requirement, value, value_len);
    case KP_SEL_EXISTS:
        return present;
    case KP_SEL_DOES_NOT_EXIST:
        return !present;
    case KP_SEL_GREATER_THAN:
    case KP_SEL_LESS_THAN: {
        /* Upstream: false when absent or when either side is not an integer. */
        int64_t have;
        int64_t want;
        if (value == NULL || requirement->values.count != 1 ||
            !parse_int64(value, value_len, &have) ||
            !parse_int64(requirement->values.items[0], strlen(requirement->values.items[0]),
                         &want)) {
            return false;
        }
        return requirement->op == KP_SEL_GREATER_THAN ? have > want : have < want;
    }
    }
    return false;
}

bool kp_selector_matches_labels(const struct kp_selector *selector, const json_t *labels)
{
    if (selector == NULL) {
        return true;
    }
    for (size_t i = 0; i < selector->count; i++) {
        const struct kp_selector_requirement *requirement = &selector->requirements[i];
        json_t *label = json_is_object(labels) ? json_object_get(labels, requirement->key) : NULL;
        const char *value = json_is_string(label) ? json_string_value(label) : NULL;
        size_t value_len = value != NULL ? json_string_length(label) : 0;
        /* A label that is not a string exists but has no value: = and in fail, != and notin
         * hold (as for a value outside their set), > and < fail. */
        if (!requirement_matches(requirement, label != NULL, value, value_len)) {
            return false;
        }
    }
    return true;
}

bool kp_selector_matches_fields(const struct kp_selector *selector, kp_field_value_fn value_of,
                                void *context)
{
    if (selector == NULL) {
        return true;
    }
    for (size_t i = 0; i < selector->count; i++) {
        const struct kp_selector_requirement *requirement = &selector->requirements[i];
        const char *value = value_of(context, requirement->key);
        bool present = value != NULL;
        /* fields.Set.Get returns "" for a field the object lacks, so "f=" selects objects
         * without f and "f!=x" selects them too. */
        if (value == NULL) {
            value = "";
        }
        if (!requirement_matches(requirement, present, value, strlen(value))) {
            return false;
        }
    }
    return true;
}

const char *kp_selector_required_value(const struct kp_selector *selector, const char *key)
{
    if (selector == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < selector->count; i++) {
        const struct kp_selector_requirement *requirement = &selector->requirements[i];
        bool single = requirement->op == KP_SEL_EQUALS ||
                      (requirement->op == KP_SEL_IN && requirement->values.count == 1);
        if (single && requirement->values.count == 1 && strcmp(requirement->key, key) == 0) {
            return requirement->values.items[0];
        }
    }
    return NULL;
}

/* ---- writing the canonical text ---- */

struct text_buffer {
    char *data;
    size_t len;
    size_t capacity;
    bool failed; /* out of memory: later appends do nothing */
};

static void append(struct text_buffer *buffer, const char *text, size_t len)
{
    if (buffer->failed) {
        return;
    }
    if (buffer->len + len + 1 > buffer->capacity) {
        size_t grown = buffer->capacity == 0 ? 64 : buffer->capacity;
        while (buffer->len + len + 1 > grown) {
            grown *= 2;
        }
        char *bigger = realloc(buffer->data, grown);
        if (bigger == NULL) {
            buffer->failed = true;
            return;
        }
        buffer->data = bigger;
        buffer->capacity = grown;
    }
    memcpy(buffer->data + buffer->len, text, len);
    buffer->len += len;
    buffer->data[buffer->len] = '\0';
}

static void append_string(struct text_buffer *buffer, const char *text)
{
    append(buffer, text, strlen(text));
}

/* fields.EscapeValue. Label values never hold these characters, so escaping every "=" and "!="
 * value keeps label selectors unchanged and makes field selectors round-trip. */
static void append_escaped(struct text_buffer *buffer, const char *value)
{
    for (const char *c = value; *c != '\0'; c++) {
        if (*c == '\\' || *c == ',' || *c == '=') {
            append(buffer, "\\", 1);
        }
        append(buffer, c, 1);
    }
}

static int compare_requirements(const void *a, const void *b)
{
    const struct kp_selector_requirement *left = *(const struct kp_selector_requirement *const *)a;
    const struct kp_selector_requirement *right = *(const struct kp_selector_requirement *const *)b;
    int order = strcmp(left->key, right->key);
    if (order != 0) {
        return order;
    }
    /* Equal keys keep the order written (the pointers are into one array), so the output is
     * the same for every qsort and parsing the output gives the same output again. */
    return left < right ? -1 : left > right;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Requirement.String. */
static enum kp_result append_requirement(struct text_buffer *buffer,
                                         const struct kp_selector_requirement *requirement,
                                         struct kp_error *err)
{
    const struct kp_strlist *values = &requirement->values;
    switch (requirement->op) {
    case KP_SEL_EXISTS:
        append_string(buffer, requirement->key);
        return KP_OK;
    case KP_SEL_DOES_NOT_EXIST:
        append_string(buffer, "!");
        append_string(buffer, requirement->key);
        return KP_OK;
    case KP_SEL_IN:
    case KP_SEL_NOT_IN: {
        if (values->count == 0) {
            break;
        }
        /* safeSort: a sorted copy, the selector itself untouched (it may be shared). */
        const char **sorted = malloc(values->count * sizeof(*sorted));
        if (sorted == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        memcpy(sorted, values->items, values->count * sizeof(*sorted));
        qsort(sorted, values->count, sizeof(*sorted), compare_strings);
        append_string(buffer, requirement->key);
        append_string(buffer, requirement->op == KP_SEL_IN ? " in (" : " notin (");
        for (size_t i = 0; i < values->count; i++) {
            if (i > 0) {
                append(buffer, ",", 1);
            }
            append_string(buffer, sorted[i]);
        }
        append(buffer, ")", 1);
        free(sorted);
        return KP_OK;
    }
    case KP_SEL_EQUALS:
    case KP_SEL_NOT_EQUALS:
    case KP_SEL_GREATER_THAN:
    case KP_SEL_LESS_THAN: {
        if (values->count != 1) {
            break;
        }
        static const char *const symbols[] = {
            [KP_SEL_EQUALS] = "=",
            [KP_SEL_NOT_EQUALS] = "!=",
            [KP_SEL_GREATER_THAN] = ">",
            [KP_SEL_LESS_THAN] = "<",
        };
        append_string(buffer, requirement->key);
        append_string(buffer, symbols[requirement->op]);
        append_escaped(buffer, values->items[0]);
        return KP_OK;
    }
    }
    char key_text[QUOTED_SIZE];
    return kp_error_set(err, KP_ERR_INTERNAL,
                        "selector requirement on key '%s' has operator %d with %zu values",
                        kp_selector_quote(key_text, requirement->key, strlen(requirement->key)),
                        (int)requirement->op, values->count);
}

enum kp_result kp_selector_to_string(const struct kp_selector *selector, char **text,
                                     struct kp_error *err)
{
    *text = NULL;
    enum kp_result rc = KP_OK;
    struct text_buffer buffer = {0};
    const struct kp_selector_requirement **order = NULL;
    size_t count = selector != NULL ? selector->count : 0;

    append(&buffer, "", 0); /* "" for the empty selector, never NULL */
    if (count > 0) {
        order = malloc(count * sizeof(*order));
        if (order == NULL) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < count; i++) {
            order[i] = &selector->requirements[i];
        }
        qsort(order, count, sizeof(*order), compare_requirements);
    }
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            append(&buffer, ",", 1);
        }
        rc = append_requirement(&buffer, order[i], err);
        if (rc != KP_OK) {
            goto cleanup;
        }
    }
    if (buffer.failed) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto cleanup;
    }
    *text = buffer.data;
    buffer.data = NULL;

cleanup:
    free(order);
    free(buffer.data);
    return rc;
}
