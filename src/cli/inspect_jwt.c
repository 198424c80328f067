/*
 * kpki inspect: a compact JWT, described into the document (header, claims, times and the
 * service account it names; the signature is never verified) and rendered as text. Private to
 * the inspect command (cli/inspect.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect.h"
#include "core/core.h"
#include "jwt/jwt.h"

/* The years 0001 to 9999: what RFC 3339 can write (and what gmtime_r certainly handles). */
#define TIME_MIN (-62135596800LL)
#define TIME_MAX 253402300799LL

/* A NumericDate claim (RFC 7519 §2) as unix seconds, when it is one and RFC 3339 can write it. */
static bool numeric_date(json_t *claims, const char *name, int64_t *when)
{
    json_t *value = json_object_get(claims, name);
    if (!json_is_number(value)) {
        return false;
    }
    double seconds = json_number_value(value);
    if (!(seconds >= (double)TIME_MIN && seconds <= (double)TIME_MAX)) {
        return false;
    }
    *when = (int64_t)seconds;
    return true;
}

static const char *claim_text(json_t *object, const char *name)
{
    const char *value = json_string_value(json_object_get(object, name));
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* {"name": ..., "uid": ...} from a bound token's reference claim, when it has a name. */
static json_t *reference_json(struct inspect *in, json_t *reference)
{
    const char *name = claim_text(reference, "name");
    if (name == NULL) {
        return NULL;
    }
    json_t *object = json_object();
    inspect_put_text(in, object, "name", name);
    const char *uid = claim_text(reference, "uid");
    if (uid != NULL) {
        inspect_put_text(in, object, "uid", uid);
    }
    return object;
}

/* The identity kube-apiserver gives a service-account token that verifies
 * (k8s.io/kubernetes/pkg/serviceaccount/claims.go for bound tokens, the "kubernetes.io" claim;
 * legacy.go for secret-based ones, the kubernetes.io/serviceaccount/... claims): user
 * system:serviceaccount:NS:NAME, groups system:serviceaccounts, system:serviceaccounts:NS and
 * system:authenticated. NULL when the claims are not a service account's. */
static json_t *service_account_json(struct inspect *in, json_t *claims)
{
    json_t *bound = json_object_get(claims, "kubernetes.io");
    const char *namespace_name;
    const char *name;
    const char *uid;
    if (json_is_object(bound)) {
        json_t *account = json_object_get(bound, "serviceaccount");
        namespace_name = claim_text(bound, "namespace");
        name = claim_text(account, "name");
        uid = claim_text(account, "uid");
    } else {
        namespace_name = claim_text(claims, "kubernetes.io/serviceaccount/namespace");
        name = claim_text(claims, "kubernetes.io/serviceaccount/service-account.name");
        uid = claim_text(claims, "kubernetes.io/serviceaccount/service-account.uid");
    }
    if (namespace_name == NULL || name == NULL) {
        return NULL;
    }
    json_t *object = json_object();
    inspect_put_text(in, object, "type", json_is_object(bound) ? "bound" : "legacy (secret-based)");
    inspect_put_text(in, object, "namespace", namespace_name);
    inspect_put_text(in, object, "name", name);
    if (uid != NULL) {
        inspect_put_text(in, object, "uid", uid);
    }
    inspect_put(in, object, "user",
                json_sprintf("system:serviceaccount:%s:%s", namespace_name, name));
    json_t *groups = json_array();
    inspect_push(in, groups, json_string("system:serviceaccounts"));
    inspect_push(in, groups, json_sprintf("system:serviceaccounts:%s", namespace_name));
    inspect_push(in, groups, json_string("system:authenticated"));
    inspect_put(in, object, "groups", groups);
    static const char *const references[] = {"pod", "node", "secret"};
    for (size_t i = 0; json_is_object(bound) && i < 3; i++) {
        json_t *reference = reference_json(in, json_object_get(bound, references[i]));
        if (reference != NULL) {
            inspect_put(in, object, references[i], reference);
        }
    }
    const char *secret = claim_text(claims, "kubernetes.io/serviceaccount/secret.name");
    if (!json_is_object(bound) && secret != NULL) {
        json_t *reference = json_object();
        inspect_put_text(in, reference, "name", secret);
        inspect_put(in, object, "secret", reference);
    }
    return object;
}

enum kp_result inspect_describe_jwt(struct inspect *in, const char *token, size_t len, json_t *doc,
                                    struct kp_error *err)
{
    struct kp_jwt jwt;
    if (kp_jwt_decode(token, len, &jwt, err) != KP_OK) {
        return kp_error_prefix(err, "%s: not a valid JWT", in->what);
    }
    json_t *object = json_object();
    inspect_put_text(in, object, "kind", "jwt");
    inspect_put(in, object, "header", json_incref(jwt.header));
    inspect_put(in, object, "claims", json_incref(jwt.claims));
    json_t *times = json_object();
    static const char *const time_claims[] = {"iat", "nbf", "exp"};
    for (size_t i = 0; i < 3; i++) {
        int64_t when;
        if (numeric_date(jwt.claims, time_claims[i], &when)) {
            inspect_put_time(in, times, time_claims[i], when);
        }
    }
    inspect_put(in, object, "times", times);
    int64_t expiry;
    if (numeric_date(jwt.claims, "exp", &expiry)) {
        char span[32];
        bool expired = in->now >= expiry;
        inspect_put(in, object, "expired", json_boolean(expired));
        if (expired) {
            inspect_put_text(in, object, "residual", "expired");
            kp_duration_short_human(in->now - expiry, span, sizeof(span));
            inspect_put_text(in, object, "expiredAgo", span);
        } else {
            kp_duration_short_human(expiry - in->now, span, sizeof(span));
            inspect_put_text(in, object, "residual", span);
        }
    }
    json_t *account = service_account_json(in, jwt.claims);
    if (account != NULL) {
        inspect_put(in, object, "serviceAccount", account);
    }
    inspect_put(in, object, "signatureBytes", json_integer((json_int_t)jwt.signature_len));
    inspect_put(in, object, "signatureVerified", json_false());
    inspect_put_text(in, object, "note", "signature not verified");
    kp_jwt_wipe(&jwt);
    json_t *objects = json_array();
    inspect_push(in, objects, object);
    inspect_put_text(in, doc, "format", "jwt");
    inspect_put(in, doc, "objects", objects);
    return KP_OK;
}

/* ---- text output, rendered from the document ---- */

/* A JSON value pretty-printed, each line indented. */
static void print_json_block(int indent, json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2));
    if (text == NULL) {
        return;
    }
    for (char *line = text; *line != '\0';) {
        size_t line_len = strcspn(line, "\n");
        printf("%*s", indent, "");
        inspect_print_escaped(line, line_len);
        printf("\n");
        line += line_len + (line[line_len] == '\n');
    }
    free(text);
}

void inspect_print_jwt(int indent, json_t *jwt)
{
    printf("%*sheader:\n", indent, "");
    print_json_block(indent + 2, json_object_get(jwt, "header"));
    printf("%*sclaims:\n", indent, "");
    print_json_block(indent + 2, json_object_get(jwt, "claims"));
    json_t *times = json_object_get(jwt, "times");
    inspect_print_field(indent, "issued at (iat)", times, "iat");
    inspect_print_field(indent, "not before (nbf)", times, "nbf");
    if (json_object_get(times, "exp") != NULL) {
        inspect_print_label(indent, "expires (exp)");
        inspect_print_value(json_object_get(times, "exp"));
        if (json_is_true(json_object_get(jwt, "expired"))) {
            printf(" (expired %s ago)\n", inspect_field_text(jwt, "expiredAgo"));
        } else {
            printf(" (%s left)\n", inspect_field_text(jwt, "residual"));
        }
    }
    json_t *account = json_object_get(jwt, "serviceAccount");
    if (account != NULL) {
        printf("%*sservice account (%s token):\n", indent, "", inspect_field_text(account, "type"));
        inspect_print_field(indent + 2, "kubernetes user", account, "user");
        inspect_print_field(indent + 2, "kubernetes groups", account, "groups");
        inspect_print_field(indent + 2, "uid", account, "uid");
        static const char *const references[] = {"pod", "node", "secret"};
        for (size_t i = 0; i < 3; i++) {
            json_t *reference = json_object_get(account, references[i]);
            if (reference != NULL) {
                inspect_print_label(indent + 2, references[i]);
                inspect_print_value(json_object_get(reference, "name"));
                if (json_object_get(reference, "uid") != NULL) {
                    printf(" (uid ");
                    inspect_print_value(json_object_get(reference, "uid"));
                    printf(")");
                }
                printf("\n");
            }
        }
    }
    inspect_print_label(indent, "signature");
    printf("%lld bytes, NOT verified\n",
           (long long)json_integer_value(json_object_get(jwt, "signatureBytes")));
}
