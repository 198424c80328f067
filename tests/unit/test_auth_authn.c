/*
 * auth/authn: the API server's authenticators (src/auth/authn.c) - request header (front
 * proxy), x509 client certificates, service-account tokens (bound and legacy), bootstrap tokens
 * and their union with anonymous access - with the outcome, method, user, groups, extra and
 * reason of every case pinned.
 *
 * Fixtures are built with kpki's own crypto: three CAs (cluster, front-proxy, etcd), an
 * intermediate, client certificates for every rejection, a CRL; RSA and P-256 service-account
 * keys. Hand-built tokens (alg none, HS256 keyed with the public key PEM, a tampered payload)
 * are assembled here with OpenSSL's base64 and HMAC, independently of src/jwt. Objects the
 * authenticators look up (service accounts, pods, secrets, nodes, bootstrap-token Secrets) come
 * from an in-memory table each test starts from afresh. Every refusal also checks that the
 * reason, which the API server logs, never contains the token or a piece of it.
 */
#include "testutil.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authn.h"
#include "core/duration.h"
#include "crypto/crypto.h"
#include "jwt/jwt.h"

#define NOW 1800000000LL
#define DAY 86400LL
#define ISSUER "https://kubernetes.default.svc.cluster.local"
#define OLD_ISSUER "https://old-issuer.example"
#define CREDENTIAL_ID "authentication.kubernetes.io/credential-id"
#define BOOTSTRAP_TOKEN "abcdef.0123456789abcdef"

/* ---- fixtures ---- */

static struct {
    EVP_PKEY *ca_key, *fp_ca_key, *etcd_ca_key, *inter_key, *leaf_key;
    X509 *ca, *fp_ca, *etcd_ca, *inter;
    X509 *alice;       /* CN alice, O dev + ops, clientAuth, cluster CA */
    X509 *server_only; /* serverAuth EKU only */
    X509 *no_eku;      /* no EKU extension at all (passes, as in Go) */
    X509 *expired, *not_yet_valid, *wrong_ca, *no_cn, *via_inter, *revoked;
    X509 *self_grouped; /* O system:authenticated + dev */
    X509 *fp_client;    /* CN front-proxy-client, front-proxy CA */
    X509 *fp_other;     /* CN someone-else, front-proxy CA */
    X509_CRL *crl;      /* the cluster CA's, listing `revoked` */
    X509_CRL *fp_crl;   /* the front-proxy CA's, listing `fp_client` */
    EVP_PKEY *sa_rsa, *sa_ec, *stranger;
    char kid_rsa[64], kid_ec[64], kid_stranger[64];
    json_t *table; /* "resource/ns/name" -> object */
    size_t lookups;
} fx;

static X509 *issue(const char *cn, const char *const *orgs, size_t org_count, bool ca, unsigned eku,
                   int64_t not_before, int64_t not_after, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    struct kp_cert_template tmpl = {
        .common_name = cn,
        .organizations = orgs,
        .organization_count = org_count,
        .is_ca = ca,
        .key_usage = ca ? KP_KU_CERT_SIGN | KP_KU_CRL_SIGN | KP_KU_DIGITAL_SIGNATURE
                        : KP_KU_DIGITAL_SIGNATURE,
        .ext_key_usage = eku,
        .not_before = not_before,
        .not_after = not_after,
    };
    X509 *cert = NULL;
    struct kp_error err;
    if (kp_cert_issue(&tmpl, key, issuer, issuer_key, &cert, &err) != KP_OK) {
        fail_msg("issue %s: %s", cn, err.message);
    }
    /* As the server gets it: parsed from DER (see kp_cert_issue on ECDSA public keys). */
    assert_int_equal(kp_cert_reload(&cert, &err), KP_OK);
    return cert;
}

static EVP_PKEY *new_key(enum kp_key_type type)
{
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(type, &key, &err), KP_OK);
    return key;
}

static int group_setup(void **state)
{
    (void)state;
    struct kp_error err;
    fx.ca_key = new_key(KP_KEY_ECDSA_P256);
    fx.fp_ca_key = new_key(KP_KEY_ECDSA_P256);
    fx.etcd_ca_key = new_key(KP_KEY_ECDSA_P256);
    fx.inter_key = new_key(KP_KEY_ECDSA_P256);
    fx.leaf_key = new_key(KP_KEY_ECDSA_P256);
    int64_t ca_from = NOW - 30 * DAY, ca_to = NOW + 3650 * DAY;
    fx.ca = issue("kubernetes", NULL, 0, true, 0, ca_from, ca_to, fx.ca_key, NULL, NULL);
    fx.fp_ca = issue("front-proxy-ca", NULL, 0, true, 0, ca_from, ca_to, fx.fp_ca_key, NULL, NULL);
    fx.etcd_ca = issue("etcd-ca", NULL, 0, true, 0, ca_from, ca_to, fx.etcd_ca_key, NULL, NULL);
    fx.inter = issue("kubernetes-intermediate", NULL, 0, true, 0, ca_from, ca_to, fx.inter_key,
                     fx.ca, fx.ca_key);
    static const char *const dev_ops[] = {"dev", "ops"};
    static const char *const self_group[] = {"system:authenticated", "dev"};
    static const char *const masters[] = {"system:masters"};
    int64_t from = NOW - DAY, to = NOW + 365 * DAY;
    EVP_PKEY *k = fx.leaf_key;
    fx.alice = issue("alice", dev_ops, 2, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.ca, fx.ca_key);
    fx.server_only =
        issue("server-only", NULL, 0, false, KP_EKU_SERVER_AUTH, from, to, k, fx.ca, fx.ca_key);
    fx.no_eku = issue("no-eku", NULL, 0, false, 0, from, to, k, fx.ca, fx.ca_key);
    fx.expired = issue("expired", NULL, 0, false, KP_EKU_CLIENT_AUTH, NOW - 60 * DAY, NOW - DAY, k,
                       fx.ca, fx.ca_key);
    fx.not_yet_valid = issue("not-yet-valid", NULL, 0, false, KP_EKU_CLIENT_AUTH, NOW + DAY,
                             NOW + 60 * DAY, k, fx.ca, fx.ca_key);
    fx.wrong_ca = issue("mallory", masters, 1, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.etcd_ca,
                        fx.etcd_ca_key);
    fx.no_cn = issue("", dev_ops, 2, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.ca, fx.ca_key);
    fx.via_inter =
        issue("bob", dev_ops, 1, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.inter, fx.inter_key);
    fx.revoked =
        issue("revoked", NULL, 0, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.ca, fx.ca_key);
    fx.self_grouped =
        issue("carol", self_group, 2, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.ca, fx.ca_key);
    fx.fp_client = issue("front-proxy-client", NULL, 0, false, KP_EKU_CLIENT_AUTH, from, to, k,
                         fx.fp_ca, fx.fp_ca_key);
    fx.fp_other = issue("someone-else", NULL, 0, false, KP_EKU_CLIENT_AUTH, from, to, k, fx.fp_ca,
                        fx.fp_ca_key);
    struct kp_crl_entry entry = {.revoked_at = NOW - 3600, .reason = KP_CRL_KEY_COMPROMISE};
    kp_cert_serial_hex(fx.revoked, entry.serial_hex, sizeof(entry.serial_hex));
    assert_int_equal(
        kp_crl_build(fx.ca, fx.ca_key, &entry, 1, 1, NOW - 3600, NOW + 7 * DAY, &fx.crl, &err),
        KP_OK);
    kp_cert_serial_hex(fx.fp_client, entry.serial_hex, sizeof(entry.serial_hex));
    assert_int_equal(kp_crl_build(fx.fp_ca, fx.fp_ca_key, &entry, 1, 1, NOW - 3600,
                                  NOW + 7 * DAY, &fx.fp_crl, &err),
                     KP_OK);

    fx.sa_rsa = new_key(KP_KEY_RSA_2048);
    fx.sa_ec = new_key(KP_KEY_ECDSA_P256);
    fx.stranger = new_key(KP_KEY_ECDSA_P256);
    assert_int_equal(kp_jwt_key_id(fx.sa_rsa, fx.kid_rsa, sizeof(fx.kid_rsa), &err), KP_OK);
    assert_int_equal(kp_jwt_key_id(fx.sa_ec, fx.kid_ec, sizeof(fx.kid_ec), &err), KP_OK);
    assert_int_equal(kp_jwt_key_id(fx.stranger, fx.kid_stranger, sizeof(fx.kid_stranger), &err),
                     KP_OK);
    fx.table = json_object();
    assert_non_null(fx.table);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509 *certs[] = {fx.ca,          fx.fp_ca,     fx.etcd_ca, fx.inter,         fx.alice,
                     fx.server_only, fx.no_eku,    fx.expired, fx.not_yet_valid, fx.wrong_ca,
                     fx.no_cn,       fx.via_inter, fx.revoked, fx.self_grouped,  fx.fp_client,
                     fx.fp_other};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        X509_free(certs[i]);
    }
    EVP_PKEY *keys[] = {fx.ca_key,   fx.fp_ca_key, fx.etcd_ca_key, fx.inter_key,
                        fx.leaf_key, fx.sa_rsa,    fx.sa_ec,       fx.stranger};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        EVP_PKEY_free(keys[i]);
    }
    X509_CRL_free(fx.crl);
    X509_CRL_free(fx.fp_crl);
    json_decref(fx.table);
    return 0;
}

/* ---- the object table the lookup callback serves ---- */

static json_t *lookup(void *context, const char *resource, const char *ns, const char *name)
{
    assert_ptr_equal(context, fx.table);
    char key[512];
    snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
    fx.lookups++;
    return json_incref(json_object_get(fx.table, key));
}

static void put(const char *resource, const char *ns, const char *name, json_t *object)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
    assert_non_null(object);
    assert_int_equal(json_object_set_new(fx.table, key, object), 0);
}

static void drop(const char *resource, const char *ns, const char *name)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
    assert_int_equal(json_object_del(fx.table, key), 0);
}

/* {"metadata":{name, namespace, uid, deletionTimestamp when deleted_at != 0}}. */
static json_t *object(const char *ns, const char *name, const char *uid, int64_t deleted_at)
{
    json_t *meta = json_pack("{s:s, s:s}", "name", name, "uid", uid);
    assert_non_null(meta);
    if (ns[0] != '\0') {
        json_object_set_new(meta, "namespace", json_string(ns));
    }
    if (deleted_at != 0) {
        char when[40];
        kp_time_format_rfc3339(deleted_at, when, sizeof(when));
        json_object_set_new(meta, "deletionTimestamp", json_string(when));
    }
    return json_pack("{s:o}", "metadata", meta);
}

static int reset_table(void **state)
{
    (void)state;
    json_object_clear(fx.table);
    fx.lookups = 0;
    put("serviceaccounts", "default", "builder", object("default", "builder", "sa-uid", 0));
    put("serviceaccounts", "default", "doomed",
        object("default", "doomed", "doomed-uid", NOW - 3600));
    json_t *pod = object("default", "web-0", "pod-uid", 0);
    json_object_set_new(pod, "spec",
                        json_pack("{s:s, s:s}", "nodeName", "n1", "serviceAccountName", "builder"));
    put("pods", "default", "web-0", pod);
    put("secrets", "default", "bound", object("default", "bound", "secret-uid", 0));
    put("nodes", "", "n1", object("", "n1", "node-uid", 0));
    return 0;
}

/* ---- independent encoders ---- */

/* Standard base64 by OpenSSL's block encoder. Free with free(). */
static char *b64(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    assert_non_null(out);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* base64url without padding. Free with free(). */
static char *b64url(const void *data, size_t len)
{
    char *out = b64(data, len);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '=') {
        out[--n] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }
    return out;
}

static char *b64url_json(const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    assert_non_null(text);
    char *out = b64url(text, strlen(text));
    free(text);
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t size = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(size);
    assert_non_null(out);
    snprintf(out, size, "%s.%s.%s", a, b, c);
    return out;
}

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    if (value == NULL) {
        fail_msg("bad test JSON (%s): %s", error.text, text);
    }
    return value;
}

static struct kp_strlist list_of(const char *csv)
{
    struct kp_strlist list = {0};
    struct kp_error err;
    assert_int_equal(kp_strlist_add_split(&list, csv, &err), KP_OK);
    return list;
}

/* ---- the authenticator under test ---- */

struct options {
    bool client_ca;
    bool requestheader;
    bool crl;
    bool fp_crl;
    bool bootstrap;
    bool anonymous;
    const char *allowed_names;    /* csv; NULL: front-proxy-client */
    const char *api_audiences;    /* csv; NULL: the issuers */
    const char *username_headers; /* csv; NULL: the default */
    const char *group_headers;
    const char *extra_prefixes;
    size_t token_cache;           /* entries; 0: no cache */
    size_t chain_cache;           /* entries; 0: no cache */
};

#define FULL .client_ca = true, .requestheader = true, .bootstrap = true

static struct kp_authn *make_authn(const struct options *o)
{
    STACK_OF(X509) *client_ca = sk_X509_new_null(), *fp_ca = sk_X509_new_null();
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null(), *fp_crls = sk_X509_CRL_new_null();
    assert_non_null(client_ca);
    assert_non_null(fp_ca);
    assert_non_null(crls);
    assert_non_null(fp_crls);
    sk_X509_push(client_ca, fx.ca);
    sk_X509_push(fp_ca, fx.fp_ca);
    sk_X509_CRL_push(crls, fx.crl);
    sk_X509_CRL_push(fp_crls, fx.fp_crl);
    struct kp_strlist allowed = list_of(o->allowed_names ? o->allowed_names : "front-proxy-client");
    struct kp_strlist issuers = list_of(ISSUER "," OLD_ISSUER);
    struct kp_strlist audiences = list_of(o->api_audiences ? o->api_audiences : "");
    struct kp_strlist user_h = list_of(o->username_headers ? o->username_headers : "");
    struct kp_strlist group_h = list_of(o->group_headers ? o->group_headers : "");
    struct kp_strlist extra_p = list_of(o->extra_prefixes ? o->extra_prefixes : "");
    EVP_PKEY *keys[] = {fx.sa_rsa, fx.sa_ec};
    struct kp_authn_config config = {
        .client_ca = o->client_ca ? client_ca : NULL,
        .client_crls = o->crl ? crls : NULL,
        .requestheader_ca = o->requestheader ? fp_ca : NULL,
        .requestheader_crls = o->fp_crl ? fp_crls : NULL,
        .requestheader_allowed_names = &allowed,
        .requestheader_username_headers = o->username_headers ? &user_h : NULL,
        .requestheader_group_headers = o->group_headers ? &group_h : NULL,
        .requestheader_extra_prefixes = o->extra_prefixes ? &extra_p : NULL,
        .sa_keys = keys,
        .sa_key_count = 2,
        .issuers = &issuers,
        .api_audiences = o->api_audiences ? &audiences : NULL,
        .bootstrap_tokens = o->bootstrap,
        .anonymous = o->anonymous,
        .lookup = lookup,
        .lookup_context = fx.table,
        .token_cache_entries = o->token_cache,
        .chain_cache_entries = o->chain_cache,
    };
    struct kp_authn *authn = NULL;
    struct kp_error err;
    if (kp_authn_new(&config, &authn, &err) != KP_OK) {
        fail_msg("kp_authn_new: %s", err.message);
    }
    /* kp_authn_new copies: nothing given to it needs to outlive the call. */
    sk_X509_free(client_ca);
    sk_X509_free(fp_ca);
    sk_X509_CRL_free(crls);
    sk_X509_CRL_free(fp_crls);
    struct kp_strlist *lists[] = {&allowed, &issuers, &audiences, &user_h, &group_h, &extra_p};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        kp_strlist_wipe(lists[i]);
    }
    return authn;
}

/* A request's outcome: what kp_authn_request (or kp_authn_token) left. */
struct outcome {
    struct kp_user user;
    struct kp_authn_result result;
};

static void outcome_wipe(struct outcome *out)
{
    kp_user_wipe(&out->user);
    kp_authn_result_wipe(&out->result);
}

static STACK_OF(X509) * chain_of(X509 *leaf, X509 *intermediate)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    sk_X509_push(chain, leaf);
    if (intermediate != NULL) {
        sk_X509_push(chain, intermediate);
    }
    return chain;
}

/* The connection memo run() passes (test_x509_memo sets it; NULL: none). */
static struct kp_authn_memo *run_memo;

static void run(const struct kp_authn *authn, X509 *leaf, X509 *intermediate,
                const char *authorization, const struct kp_header *headers, size_t header_count,
                int64_t now, struct outcome *out)
{
    STACK_OF(X509) *chain = leaf != NULL ? chain_of(leaf, intermediate) : NULL;
    struct kp_authn_input input = {
        .peer_chain = chain,
        .authorization = authorization,
        .headers = headers,
        .header_count = header_count,
        .memo = run_memo,
    };
    struct kp_error err = {0};
    enum kp_result rc = kp_authn_request(authn, &input, now, &out->user, &out->result, &err);
    if (rc != KP_OK) {
        fail_msg("kp_authn_request: %s", err.message);
    }
    sk_X509_free(chain);
}

static void run_bearer(const struct kp_authn *authn, const char *token, int64_t now,
                       struct outcome *out)
{
    size_t size = strlen(token) + 8;
    char *authorization = malloc(size);
    assert_non_null(authorization);
    snprintf(authorization, size, "Bearer %s", token);
    run(authn, NULL, NULL, authorization, NULL, 0, now, out);
    free(authorization);
}

static void run_token(const struct kp_authn *authn, const char *token, const char *audiences,
                      int64_t now, struct outcome *out)
{
    struct kp_strlist list = list_of(audiences ? audiences : "");
    struct kp_error err = {0};
    enum kp_result rc =
        kp_authn_token(authn, token, audiences ? &list : NULL, now, &out->user, &out->result, &err);
    if (rc != KP_OK) {
        fail_msg("kp_authn_token: %s", err.message);
    }
    kp_strlist_wipe(&list);
}

/* ---- assertions ---- */

static void join(const struct kp_strlist *list, char *out, size_t size)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < list->count && used < size; i++) {
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "", list->items[i]);
    }
}

/* groups: the exact list, comma-separated, in order. */
static void expect_list(const struct kp_strlist *got, const char *want, const char *what)
{
    char text[2048];
    join(got, text, sizeof(text));
    if (strcmp(text, want) != 0) {
        fail_msg("%s: got [%s], want [%s]", what, text, want);
    }
}

/* The reason is logged: it must not carry the token or any sizeable piece of it. */
static void expect_no_token(const char *reason, const char *token)
{
    if (token == NULL || token[0] == '\0') {
        return;
    }
    if (strstr(reason, token) != NULL) {
        fail_msg("the reason quotes the token: %s", reason);
    }
    char *copy = strdup(token);
    assert_non_null(copy);
    for (char *part = copy, *next; part != NULL; part = next) {
        next = strpbrk(part, ".");
        if (next != NULL) {
            *next++ = '\0';
        }
        if (strlen(part) >= 8 && strstr(reason, part) != NULL) {
            fail_msg("the reason quotes part of the token (%s): %s", part, reason);
        }
    }
    free(copy);
}

static void expect_user(const struct outcome *out, const char *method, const char *name,
                        const char *uid, const char *groups, const char *extra_json)
{
    if (out->result.outcome != KP_AUTHN_AUTHENTICATED) {
        fail_msg("want %s authenticated by %s, got outcome %d: %s", name, method,
                 (int)out->result.outcome, out->result.reason);
    }
    assert_non_null(out->result.method);
    assert_string_equal(out->result.method, method);
    assert_non_null(out->user.name);
    assert_string_equal(out->user.name, name);
    if (uid == NULL) {
        assert_null(out->user.uid);
    } else {
        assert_non_null(out->user.uid);
        assert_string_equal(out->user.uid, uid);
    }
    expect_list(&out->user.groups, groups, "groups");
    if (extra_json == NULL) {
        assert_true(out->user.extra == NULL || json_object_size(out->user.extra) == 0);
    } else {
        json_t *want = parse(extra_json);
        if (!json_equal(out->user.extra, want)) {
            char *got = out->user.extra ? json_dumps(out->user.extra, JSON_SORT_KEYS) : NULL;
            fail_msg("extra: got %s, want %s", got ? got : "null", extra_json);
        }
        json_decref(want);
    }
    /* A success carries no stale failure text. */
    assert_string_equal(out->result.reason, "");
}

static void expect_refused(const struct outcome *out, const char *reason_part, const char *token)
{
    if (out->result.outcome != KP_AUTHN_REFUSED) {
        fail_msg("want refused (%s), got outcome %d as %s", reason_part, (int)out->result.outcome,
                 out->user.name ? out->user.name : "(none)");
    }
    assert_null(out->result.method);
    assert_null(out->user.name);
    assert_null(out->user.uid);
    assert_int_equal(out->user.groups.count, 0);
    assert_null(out->user.extra);
    assert_int_equal(out->result.audiences.count, 0);
    if (strstr(out->result.reason, reason_part) == NULL) {
        fail_msg("reason \"%s\" lacks \"%s\"", out->result.reason, reason_part);
    }
    expect_no_token(out->result.reason, token);
}

static void expect_anonymous(const struct outcome *out)
{
    assert_int_equal(out->result.outcome, KP_AUTHN_ANONYMOUS);
    assert_string_equal(out->result.method, "anonymous");
    assert_string_equal(out->user.name, "system:anonymous");
    assert_null(out->user.uid);
    expect_list(&out->user.groups, "system:unauthenticated", "anonymous groups");
    assert_null(out->user.extra);
}

/* "X509SHA256=" + lower-case hex SHA-256 of the DER, computed here without kpki. */
static void credential_of(X509 *cert, char *out, size_t size)
{
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    assert_true(der_len > 0);
    unsigned char md[32];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    size_t used = (size_t)snprintf(out, size, "X509SHA256=");
    for (unsigned i = 0; i < md_len; i++) {
        used += (size_t)snprintf(out + used, size - used, "%02x", md[i]);
    }
}

/* ---- x509 ---- */

static void test_x509_identity(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct outcome out = {0};
    /* With the front proxy configured, alice's certificate first fails the front-proxy check
     * (another CA) and then passes x509, as upstream's union does. */
    run(authn, fx.alice, NULL, NULL, NULL, 0, NOW, &out);
    char credential[128], extra[256];
    credential_of(fx.alice, credential, sizeof(credential));
    assert_int_equal(strlen(credential), strlen("X509SHA256=") + 64);
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"%s\"]}", credential);
    expect_user(&out, "x509", "alice", NULL, "dev,ops,system:authenticated", extra);
    assert_int_equal(out.result.audiences.count, 0);
    outcome_wipe(&out);

    /* A certificate without the EKU extension passes (Go semantics). */
    run(authn, fx.no_eku, NULL, NULL, NULL, 0, NOW, &out);
    credential_of(fx.no_eku, credential, sizeof(credential));
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"%s\"]}", credential);
    expect_user(&out, "x509", "no-eku", NULL, "system:authenticated", extra);
    outcome_wipe(&out);

    /* x509 needs no lookups. */
    assert_int_equal(fx.lookups, 0);
    kp_authn_free(authn);
}

static void test_x509_authenticated_group_once(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct outcome out = {0};
    run(authn, fx.self_grouped, NULL, NULL, NULL, 0, NOW, &out);
    char credential[128], extra[256];
    credential_of(fx.self_grouped, credential, sizeof(credential));
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"%s\"]}", credential);
    /* Groups in the subject's (DER) order; system:authenticated once. */
    expect_user(&out, "x509", "carol", NULL, "dev,system:authenticated", extra);
    outcome_wipe(&out);
    /* A user already in system:unauthenticated gets neither group added
     * (group.AuthenticatedGroupAdder); a front proxy can assert either. */
    const struct kp_header headers[] = {{"X-Remote-User", "eve"},
                                        {"X-Remote-Group", "system:unauthenticated"}};
    run(authn, fx.fp_client, NULL, NULL, headers, 2, NOW, &out);
    expect_user(&out, "requestheader", "eve", NULL, "system:unauthenticated", NULL);
    outcome_wipe(&out);
    const struct kp_header twice[] = {{"X-Remote-User", "eve"},
                                      {"X-Remote-Group", "system:authenticated"},
                                      {"X-Remote-Group", "ops"}};
    run(authn, fx.fp_client, NULL, NULL, twice, 3, NOW, &out);
    expect_user(&out, "requestheader", "eve", NULL, "system:authenticated,ops", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_x509_intermediate(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct outcome out = {0};
    run(authn, fx.via_inter, fx.inter, NULL, NULL, 0, NOW, &out);
    char credential[128], extra[256];
    credential_of(fx.via_inter, credential, sizeof(credential));
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"%s\"]}", credential);
    expect_user(&out, "x509", "bob", NULL, "dev,system:authenticated", extra);
    outcome_wipe(&out);
    /* Without the intermediate the path cannot be built. */
    run(authn, fx.via_inter, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out, "x509: client certificate rejected: unable to get local issuer", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_x509_rejections(void **state)
{
    (void)state;
    const struct {
        const char *row;
        X509 *leaf;
        const char *reason;
    } rows[] = {
        {"another CA (etcd)", fx.wrong_ca, "x509: client certificate rejected: unable to get"},
        {"expired", fx.expired, "x509: client certificate rejected: certificate has expired"},
        {"not yet valid", fx.not_yet_valid,
         "x509: client certificate rejected: certificate is not yet valid"},
        {"serverAuth only", fx.server_only,
         "x509: client certificate rejected: unsuitable certificate purpose"},
    };
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        for (int front_proxy = 0; front_proxy <= 1; front_proxy++) {
            struct kp_authn *authn = make_authn(&(struct options){
                .client_ca = true, .requestheader = front_proxy, .anonymous = anonymous});
            for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct outcome out = {0};
                run(authn, rows[i].leaf, NULL, NULL, NULL, 0, NOW, &out);
                if (out.result.outcome != KP_AUTHN_REFUSED) {
                    fail_msg("%s (anonymous %d, front proxy %d): not refused", rows[i].row,
                             anonymous, front_proxy);
                }
                expect_refused(&out, rows[i].reason, NULL);
                if (front_proxy) {
                    /* Both failures are reported, as upstream's aggregate error is. */
                    expect_refused(&out, "requestheader: client certificate rejected: ", NULL);
                }
                outcome_wipe(&out);
            }
            kp_authn_free(authn);
        }
    }
}

static void test_x509_revoked(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){.client_ca = true, .crl = true});
    struct outcome out = {0};
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out, "x509: client certificate rejected: certificate revoked", NULL);
    outcome_wipe(&out);
    /* An unrevoked certificate of the same CA passes. */
    run(authn, fx.alice, NULL, NULL, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "alice");
    outcome_wipe(&out);
    /* A CA of the path without a CRL is not checked (KP_CRL_PUBLISHED_ISSUERS): the
     * intermediate has none, so its certificates pass; the intermediate itself is checked
     * against the cluster CA's CRL. */
    run(authn, fx.via_inter, fx.inter, NULL, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "bob");
    outcome_wipe(&out);
    /* Past the CRL's nextUpdate nothing of that CA is accepted. */
    run(authn, fx.alice, NULL, NULL, NULL, 0, NOW + 8 * DAY, &out);
    expect_refused(&out, "x509: client certificate rejected: CRL has expired", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
    /* Without the CRL the revoked certificate is just a certificate. */
    authn = make_authn(&(struct options){.client_ca = true});
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

/* A connection's memo: the chain verified once is taken as verified for a minute by the same
 * authenticator; another authenticator (a reload) or the minute's end verifies again. */
static void test_x509_memo(void **state)
{
    (void)state;
    struct kp_authn *plain = make_authn(&(struct options){.client_ca = true});
    struct kp_authn *with_crl = make_authn(&(struct options){.client_ca = true, .crl = true});
    struct kp_authn_memo memo = {0};
    run_memo = &memo;
    struct outcome out = {0};
    run(plain, fx.revoked, NULL, NULL, NULL, 0, NOW, &out); /* no CRL: just a certificate */
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    assert_int_not_equal(memo.authn_id, 0);
    assert_int_equal(memo.x509_until, NOW + KP_AUTHN_MEMO_SECONDS);
    assert_int_equal(memo.requestheader_until, 0);
    assert_true(memo.leaf_names_known);
    assert_string_equal(memo.leaf_cn, "revoked");
    /* Within the minute the memo stands, whatever chain comes: it is the connection's, which
     * cannot change - here a foreign one shows that nothing was verified, nor read again (the
     * user is still the first leaf's). */
    run(plain, fx.wrong_ca, NULL, NULL, NULL, 0, NOW + KP_AUTHN_MEMO_SECONDS - 1, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "revoked");
    outcome_wipe(&out);
    memo.leaf_names_known = false; /* now the names are read from the foreign leaf */
    run(plain, fx.wrong_ca, NULL, NULL, NULL, 0, NOW + KP_AUTHN_MEMO_SECONDS - 1, &out);
    assert_string_equal(out.user.name, "mallory");
    outcome_wipe(&out);
    /* At the minute's end it is verified again (and refused). */
    run(plain, fx.wrong_ca, NULL, NULL, NULL, 0, NOW + KP_AUTHN_MEMO_SECONDS, &out);
    expect_refused(&out, "x509: client certificate rejected", NULL);
    outcome_wipe(&out);
    /* A new authenticator (a reloaded CRL) verifies again at once: now revoked. */
    run(with_crl, fx.revoked, NULL, NULL, NULL, 0, NOW + 1, &out);
    expect_refused(&out, "x509: client certificate rejected: certificate revoked", NULL);
    outcome_wipe(&out);
    /* Never past the leaf's notAfter. */
    memo = (struct kp_authn_memo){0};
    int64_t not_after = kp_cert_not_after(fx.alice);
    run(plain, fx.alice, NULL, NULL, NULL, 0, not_after - 10, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    assert_int_equal(memo.x509_until, not_after);
    /* The names from the memo: the same user, groups in the certificate's order. */
    for (int round = 0; round < 2; round++) {
        run(plain, fx.alice, NULL, NULL, NULL, 0, not_after - 10, &out);
        assert_string_equal(out.user.name, "alice");
        assert_true(out.user.groups.count >= 2);
        assert_string_equal(out.user.groups.items[0], "dev");
        assert_string_equal(out.user.groups.items[1], "ops");
        outcome_wipe(&out);
        assert_true(memo.leaf_names_known);
    }
    /* Organizations too long for the memo are read every time, and still all there. */
    char long_names[6][120];
    const char *many[6];
    for (int i = 0; i < 6; i++) {
        memset(long_names[i], 'a' + i, sizeof(long_names[i]) - 1);
        long_names[i][sizeof(long_names[i]) - 1] = '\0';
        many[i] = long_names[i];
    }
    X509 *crowded = issue("crowded", many, 6, false, KP_EKU_CLIENT_AUTH, NOW - DAY, NOW + DAY,
                          fx.leaf_key, fx.ca, fx.ca_key);
    memo = (struct kp_authn_memo){0};
    for (int round = 0; round < 2; round++) {
        run(plain, crowded, NULL, NULL, NULL, 0, NOW, &out);
        assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
        assert_string_equal(out.user.name, "crowded");
        assert_true(out.user.groups.count >= 6);
        assert_string_equal(out.user.groups.items[5], many[5]);
        outcome_wipe(&out);
        assert_false(memo.leaf_names_known);
    }
    X509_free(crowded);
    run_memo = NULL;
    /* With the front proxy configured (kubeadm's setup: both CAs), an ordinary client that
     * names no proxied user is not checked against the front-proxy CA at all when x509
     * authenticates it; one that sends X-Remote-User is, and the front-proxy CA's refusal is
     * remembered too. Either way the request succeeds as x509. */
    struct kp_authn *both = make_authn(&(struct options){FULL});
    const struct kp_header proxied[] = {{"X-Remote-User", "mallory"}};
    for (size_t headers = 0; headers <= 1; headers++) {
        memo = (struct kp_authn_memo){0};
        run_memo = &memo;
        for (int round = 0; round < 2; round++) {
            run(both, fx.alice, NULL, NULL, proxied, headers, NOW + round, &out);
            assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
            assert_string_equal(out.user.name, "alice");
            outcome_wipe(&out);
            assert_int_equal(memo.requestheader_refused_until,
                             headers ? NOW + KP_AUTHN_MEMO_SECONDS : 0);
            assert_int_equal(memo.requestheader_why[0] != '\0', headers);
        }
        run_memo = NULL;
    }
    kp_authn_free(both);
    kp_authn_free(plain);
    kp_authn_free(with_crl);
}

static void expect_chain_lookups(const struct kp_authn *authn, uint64_t hits, uint64_t misses)
{
    uint64_t got_hits = 0, got_misses = 0;
    kp_authn_chain_cache_stats(authn, &got_hits, &got_misses);
    if (got_hits != hits || got_misses != misses)
        fail_msg("chain cache: %llu hits and %llu misses, want %llu and %llu",
                 (unsigned long long)got_hits, (unsigned long long)got_misses,
                 (unsigned long long)hits, (unsigned long long)misses);
}

/* The chain cache: a chain one connection verified is taken as verified on the next connection
 * (a fresh memo) by the same authenticator, for the memo's minute at most and never past a
 * certificate's notAfter or a CRL's nextUpdate; the intermediates are part of the key; refusals
 * are never remembered (by either CA); another authenticator (a reload) starts empty. */
static void test_x509_chain_cache(void **state)
{
    (void)state;
    struct kp_authn *authn =
        make_authn(&(struct options){.client_ca = true, .chain_cache = 16});
    struct kp_authn_memo memo = {0};
    run_memo = &memo;
    struct outcome out = {0};
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW, &out); /* no CRL: just a certificate */
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "revoked");
    outcome_wipe(&out);
    expect_chain_lookups(authn, 0, 1);
    /* A new connection, the same chain: a hit, the same user, and its memo ends when the
     * verdict does (not a minute after the hit). */
    memo = (struct kp_authn_memo){0};
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW + 30, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "revoked");
    outcome_wipe(&out);
    expect_chain_lookups(authn, 1, 1);
    assert_int_equal(memo.x509_until, NOW + KP_AUTHN_MEMO_SECONDS);
    /* Without a memo (every request verified) the cache serves too. */
    run_memo = NULL;
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW + 31, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    expect_chain_lookups(authn, 2, 1);
    /* At the minute's end the chain is verified again. */
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW + KP_AUTHN_MEMO_SECONDS, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    expect_chain_lookups(authn, 2, 2);
    /* The same leaf with an intermediate after it is another chain. */
    run(authn, fx.revoked, fx.inter, NULL, NULL, 0, NOW + KP_AUTHN_MEMO_SECONDS, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    expect_chain_lookups(authn, 2, 3);
    /* A refused chain is refused each time and never remembered. */
    for (int round = 0; round < 2; round++) {
        run(authn, fx.wrong_ca, NULL, NULL, NULL, 0, NOW, &out);
        expect_refused(&out, "x509: client certificate rejected", NULL);
        outcome_wipe(&out);
    }
    expect_chain_lookups(authn, 2, 5);
    /* Never past the leaf's notAfter: at it, verified again (and refused as expired). */
    int64_t not_after = kp_cert_not_after(fx.alice);
    run(authn, fx.alice, NULL, NULL, NULL, 0, not_after - 10, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    run(authn, fx.alice, NULL, NULL, NULL, 0, not_after, &out);
    expect_refused(&out, "x509: client certificate rejected", NULL);
    outcome_wipe(&out);
    expect_chain_lookups(authn, 2, 7);
    /* A reloaded CRL is a new authenticator with an empty cache: revoked at once. */
    struct kp_authn *with_crl =
        make_authn(&(struct options){.client_ca = true, .crl = true, .chain_cache = 16});
    run(with_crl, fx.revoked, NULL, NULL, NULL, 0, NOW + 1, &out);
    expect_refused(&out, "x509: client certificate rejected: certificate revoked", NULL);
    outcome_wipe(&out);
    expect_chain_lookups(with_crl, 0, 1);
    /* Never past the CRL's nextUpdate: a verdict reached just before it ends with it, on the
     * connection and in the cache (the next connection, after it, verifies and is refused). */
    int64_t next_update = kp_crl_next_update(fx.crl);
    memo = (struct kp_authn_memo){0};
    run_memo = &memo;
    run(with_crl, fx.alice, NULL, NULL, NULL, 0, next_update - 10, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    assert_int_equal(memo.x509_until, next_update);
    memo = (struct kp_authn_memo){0};
    run(with_crl, fx.alice, NULL, NULL, NULL, 0, next_update, &out);
    expect_refused(&out, "x509: client certificate rejected: CRL has expired", NULL);
    outcome_wipe(&out);
    expect_chain_lookups(with_crl, 0, 3);
    run_memo = NULL;
    kp_authn_free(with_crl);
    kp_authn_free(authn);
    /* With both CAs (kubeadm's setup) an ordinary client that names no proxied user is looked
     * up once per new connection, by x509 (the front-proxy check would only run if x509 did
     * not authenticate it): a miss, then a hit. One that sends X-Remote-User is looked up
     * twice (front proxy, then x509): the front-proxy CA's refusal is remembered by the
     * connection only, so that lookup misses every time. */
    struct kp_authn *both = make_authn(&(struct options){FULL, .chain_cache = 16});
    const struct kp_header proxied[] = {{"X-Remote-User", "mallory"}};
    for (int round = 0; round < 4; round++) {
        size_t headers = round >= 2;
        memo = (struct kp_authn_memo){0};
        run_memo = &memo;
        run(both, fx.alice, NULL, NULL, proxied, headers, NOW + round, &out);
        assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
        assert_string_equal(out.result.method, "x509");
        assert_string_equal(out.user.name, "alice");
        expect_list(&out.user.groups, "dev,ops,system:authenticated", "groups");
        outcome_wipe(&out);
        assert_int_equal(memo.requestheader_refused_until,
                         headers ? NOW + round + KP_AUTHN_MEMO_SECONDS : 0);
        assert_int_equal(memo.requestheader_why[0] != '\0', headers);
    }
    expect_chain_lookups(both, 3, 3);
    run_memo = NULL;
    kp_authn_free(both);
    /* Without a cache nothing is counted. */
    struct kp_authn *none = make_authn(&(struct options){.client_ca = true});
    run(none, fx.alice, NULL, NULL, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    expect_chain_lookups(none, 0, 0);
    kp_authn_free(none);
}

/* The front proxy's certificate is checked against its own CA's CRL (and only that one). */
static void test_requestheader_revoked(void **state)
{
    (void)state;
    const struct kp_header headers[] = {{"X-Remote-User", "eve"}, {"X-Remote-Group", "ops"}};
    struct outcome out = {0};
    struct kp_authn *authn =
        make_authn(&(struct options){.client_ca = true, .requestheader = true, .fp_crl = true});
    run(authn, fx.fp_client, NULL, NULL, headers, 2, NOW, &out);
    expect_refused(&out, "requestheader: client certificate rejected: certificate revoked", NULL);
    outcome_wipe(&out);
    /* Another front-proxy certificate is not revoked (its CN is not allowed, though). */
    run(authn, fx.fp_other, NULL, NULL, headers, 2, NOW, &out);
    expect_refused(&out, "requestheader: x509: subject with cn=someone-else is not in the "
                         "allowed list", NULL);
    outcome_wipe(&out);
    /* Without X-Remote-User the front-proxy check runs after x509 (kp_authn_request), and
     * its failure still comes first among the reasons, as upstream's order puts it. */
    run(authn, fx.fp_other, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out,
                   "requestheader: x509: subject with cn=someone-else is not in the "
                   "allowed list; x509: client certificate rejected: ",
                   NULL);
    outcome_wipe(&out);
    /* The front-proxy CRL says nothing about the cluster CA's certificates. */
    run(authn, fx.revoked, NULL, NULL, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    kp_authn_free(authn);
    /* The cluster CA's CRL says nothing about the front proxy's. */
    authn = make_authn(&(struct options){.client_ca = true, .requestheader = true, .crl = true});
    run(authn, fx.fp_client, NULL, NULL, headers, 2, NOW, &out);
    expect_user(&out, "requestheader", "eve", NULL, "ops,system:authenticated", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_x509_no_cn(void **state)
{
    (void)state;
    struct outcome out = {0};
    /* No CN: not x509's user, so as if no credential had been presented. */
    struct kp_authn *authn = make_authn(&(struct options){.client_ca = true, .anonymous = true});
    run(authn, fx.no_cn, NULL, NULL, NULL, 0, NOW, &out);
    expect_anonymous(&out);
    outcome_wipe(&out);
    kp_authn_free(authn);

    authn = make_authn(&(struct options){.client_ca = true});
    run(authn, fx.no_cn, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out, "x509: client certificate has no common name", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);

    /* With the front proxy configured the certificate also fails its check (another CA), and a
     * failure refuses even with anonymous enabled (upstream's FailOnError union). */
    authn = make_authn(&(struct options){FULL, .anonymous = true});
    run(authn, fx.no_cn, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out, "requestheader: client certificate rejected: unable to get local issuer",
                   NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

/* ---- request header (front proxy) ---- */

static void test_front_proxy_identity(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    const struct kp_header headers[] = {
        {"Accept", "application/json"},       {"x-remote-user", "dave"},
        {"X-Remote-User", "not-the-first"},   {"X-REMOTE-GROUP", "team-a"},
        {"X-Remote-Group", "team-b"},         {"x-remote-group", ""},
        {"X-Remote-Group", "system:masters"}, {"X-Remote-Extra-Scopes", "view"},
        {"x-remote-extra-scopes", "edit"},    {"X-Remote-Extra-Acme.com%2FProject", "p1"},
        {"X-Remote-Extra-", "no key"},        {"X-Remote-Extra-Reason%zz", "kept as sent"},
    };
    struct outcome out = {0};
    run(authn, fx.fp_client, NULL, NULL, headers, sizeof(headers) / sizeof(headers[0]), NOW, &out);
    expect_user(&out, "requestheader", "dave", NULL,
                "team-a,team-b,system:masters,system:authenticated",
                "{\"scopes\": [\"view\", \"edit\"], \"acme.com/project\": [\"p1\"],"
                " \"reason%zz\": [\"kept as sent\"]}");
    outcome_wipe(&out);
    /* A bearer token on the same request is not looked at: the proxy's word is the identity. */
    run(authn, fx.fp_client, NULL, "Bearer not-a-token", headers, 2, NOW, &out);
    expect_user(&out, "requestheader", "dave", NULL, "system:authenticated", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);

    /* An empty allowed-names list allows any CN of the front-proxy CA. */
    authn = make_authn(&(struct options){FULL, .allowed_names = ""});
    run(authn, fx.fp_other, NULL, NULL, headers, 2, NOW, &out);
    expect_user(&out, "requestheader", "dave", NULL, "system:authenticated", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_front_proxy_disallowed_cn(void **state)
{
    (void)state;
    const struct kp_header headers[] = {{"X-Remote-User", "admin"},
                                        {"X-Remote-Group", "system:masters"}};
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = anonymous});
        struct outcome out = {0};
        run(authn, fx.fp_other, NULL, NULL, headers, 2, NOW, &out);
        expect_refused(&out,
                       "requestheader: x509: subject with cn=someone-else is not in the allowed "
                       "list",
                       NULL);
        /* ... and then x509 refuses it too: the front-proxy CA is not a client CA. */
        expect_refused(&out, "x509: client certificate rejected: unable to get local issuer", NULL);
        outcome_wipe(&out);
        kp_authn_free(authn);
    }
}

static void test_front_proxy_cluster_cert_keeps_identity(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    const struct kp_header headers[] = {{"X-Remote-User", "admin"},
                                        {"X-Remote-Group", "system:masters"}};
    struct outcome out = {0};
    run(authn, fx.alice, NULL, NULL, headers, 2, NOW, &out);
    char credential[128], extra[256];
    credential_of(fx.alice, credential, sizeof(credential));
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"%s\"]}", credential);
    expect_user(&out, "x509", "alice", NULL, "dev,ops,system:authenticated", extra);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_front_proxy_without_user_falls_through(void **state)
{
    (void)state;
    const struct kp_header headers[] = {{"X-Remote-Group", "system:masters"},
                                        {"X-Remote-User", ""}};
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = anonymous});
        struct outcome out = {0};
        run(authn, fx.fp_client, NULL, NULL, headers, 2, NOW, &out);
        expect_refused(&out, "x509: client certificate rejected: unable to get local issuer", NULL);
        assert_null(strstr(out.result.reason, "requestheader"));
        outcome_wipe(&out);
        kp_authn_free(authn);
    }
    /* Without a client CA, nothing is left to judge the certificate: no credential at all. */
    struct kp_authn *authn =
        make_authn(&(struct options){.requestheader = true, .anonymous = true});
    struct outcome out = {0};
    run(authn, fx.fp_client, NULL, NULL, headers, 1, NOW, &out);
    expect_anonymous(&out);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_front_proxy_custom_headers(void **state)
{
    (void)state;
    struct kp_authn *authn =
        make_authn(&(struct options){FULL, .username_headers = "X-Proxy-User,X-Remote-User",
                                     .group_headers = "X-Proxy-Group,X-Remote-Group",
                                     .extra_prefixes = "X-Proxy-Extra-,X-Remote-Extra-"});
    const struct kp_header headers[] = {
        {"X-Remote-User", "second-choice"}, {"x-proxy-user", "erin"},  {"X-Remote-Group", "remote"},
        {"X-Proxy-Group", "proxy"},         {"X-Remote-Extra-K", "r"}, {"X-Proxy-Extra-K", "p"},
    };
    struct outcome out = {0};
    run(authn, fx.fp_client, NULL, NULL, headers, sizeof(headers) / sizeof(headers[0]), NOW, &out);
    /* Header lists in order: the first username header with a value; groups and extras by
     * header name first, then by order on the request. */
    expect_user(&out, "requestheader", "erin", NULL, "proxy,remote,system:authenticated",
                "{\"k\": [\"p\", \"r\"]}");
    outcome_wipe(&out);
    kp_authn_free(authn);
}

/* ---- service-account tokens ---- */

struct token_spec {
    const char *ns, *name, *uid; /* default, builder, sa-uid */
    const char *kind, *bound_name, *bound_uid, *node_name, *node_uid;
    const char *audiences; /* csv; NULL: ISSUER */
    const char *issuer;    /* NULL: ISSUER */
    int64_t now;           /* 0: NOW */
    int64_t seconds;       /* 0: 3600 */
    int64_t warn_after;
};

static json_t *claims_for(const struct token_spec *s)
{
    struct kp_strlist audiences = list_of(s->audiences ? s->audiences : ISSUER);
    struct kp_sa_claims_params params = {
        .issuer = s->issuer ? s->issuer : ISSUER,
        .audiences = &audiences,
        .namespace_ = s->ns ? s->ns : "default",
        .sa_name = s->name ? s->name : "builder",
        .sa_uid = s->uid ? s->uid : "sa-uid",
        .binding = {.kind = s->kind ? s->kind : "",
                    .name = s->bound_name,
                    .uid = s->bound_uid,
                    .node_name = s->node_name,
                    .node_uid = s->node_uid},
        .now = s->now ? s->now : NOW,
        .expiration_seconds = s->seconds ? s->seconds : 3600,
        .warn_after = s->warn_after,
    };
    json_t *claims = NULL;
    struct kp_error err;
    assert_int_equal(kp_sa_claims(&params, &claims, &err), KP_OK);
    kp_strlist_wipe(&audiences);
    return claims;
}

/* Signs claims (borrowed) with key under kid. Free with free(). */
static char *sign(EVP_PKEY *key, const char *kid, json_t *claims)
{
    char *token = NULL;
    size_t len = 0;
    struct kp_error err;
    if (kp_jwt_sign(key, kid, claims, &token, &len, &err) != KP_OK) {
        fail_msg("kp_jwt_sign: %s", err.message);
    }
    assert_int_equal(strlen(token), len);
    return token;
}

static char *token_for(const struct token_spec *s, EVP_PKEY *key, const char *kid, char *jti,
                       size_t jti_size)
{
    json_t *claims = claims_for(s);
    if (jti != NULL) {
        snprintf(jti, jti_size, "%s", json_string_value(json_object_get(claims, "jti")));
    }
    char *token = sign(key, kid, claims);
    json_decref(claims);
    return token;
}

static void test_sa_token_unbound(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct {
        EVP_PKEY *key;
        const char *kid;
    } signers[] = {{fx.sa_rsa, fx.kid_rsa}, {fx.sa_ec, fx.kid_ec}, {fx.sa_ec, ""}};
    for (size_t i = 0; i < sizeof(signers) / sizeof(signers[0]); i++) {
        char jti[64], extra[256];
        char *token =
            token_for(&(struct token_spec){0}, signers[i].key, signers[i].kid, jti, sizeof(jti));
        struct outcome out = {0};
        run_bearer(authn, token, NOW, &out);
        snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"JTI=%s\"]}", jti);
        expect_user(&out, "serviceaccount", "system:serviceaccount:default:builder", "sa-uid",
                    "system:serviceaccounts,system:serviceaccounts:default,system:authenticated",
                    extra);
        expect_list(&out.result.audiences, ISSUER, "audiences");
        outcome_wipe(&out);
        /* The scheme is case-insensitive. */
        size_t size = strlen(token) + 8;
        char *header = malloc(size);
        assert_non_null(header);
        snprintf(header, size, "bEaReR %s", token);
        run(authn, NULL, NULL, header, NULL, 0, NOW, &out);
        assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
        outcome_wipe(&out);
        free(header);
        free(token);
    }
    /* The second accepted issuer, in a namespace of its own. */
    put("serviceaccounts", "kube-system", "old", object("kube-system", "old", "old-uid", 0));
    char *token = token_for(&(struct token_spec){.issuer = OLD_ISSUER,
                                                 .ns = "kube-system",
                                                 .name = "old",
                                                 .uid = "old-uid",
                                                 .audiences = OLD_ISSUER},
                            fx.sa_rsa, fx.kid_rsa, NULL, 0);
    struct outcome out = {0};
    run_bearer(authn, token, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "system:serviceaccount:kube-system:old");
    expect_list(&out.user.groups,
                "system:serviceaccounts,system:serviceaccounts:kube-system,system:authenticated",
                "groups");
    expect_list(&out.result.audiences, OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    free(token);
    kp_authn_free(authn);
}

static void test_sa_token_bound(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    const struct {
        const char *row;
        struct token_spec spec;
        EVP_PKEY *key;
        const char *kid;
        const char *extra; /* without the credential id */
    } rows[] = {
        {"pod-bound with node info (EC)",
         {.kind = "Pod",
          .bound_name = "web-0",
          .bound_uid = "pod-uid",
          .node_name = "n1",
          .node_uid = "node-uid"},
         fx.sa_ec,
         fx.kid_ec,
         "{\"authentication.kubernetes.io/pod-name\": [\"web-0\"],"
         " \"authentication.kubernetes.io/pod-uid\": [\"pod-uid\"],"
         " \"authentication.kubernetes.io/node-name\": [\"n1\"],"
         " \"authentication.kubernetes.io/node-uid\": [\"node-uid\"]}"},
        {"pod-bound without node info (RSA)",
         {.kind = "Pod", .bound_name = "web-0", .bound_uid = "pod-uid"},
         fx.sa_rsa,
         fx.kid_rsa,
         "{\"authentication.kubernetes.io/pod-name\": [\"web-0\"],"
         " \"authentication.kubernetes.io/pod-uid\": [\"pod-uid\"]}"},
        {"secret-bound",
         {.kind = "Secret", .bound_name = "bound", .bound_uid = "secret-uid"},
         fx.sa_rsa,
         fx.kid_rsa,
         "{}"},
        {"node-bound",
         {.kind = "Node", .bound_name = "n1", .bound_uid = "node-uid"},
         fx.sa_ec,
         fx.kid_ec,
         "{\"authentication.kubernetes.io/node-name\": [\"n1\"],"
         " \"authentication.kubernetes.io/node-uid\": [\"node-uid\"]}"},
        {"kubelet's year-long token with warnafter",
         {.kind = "Pod",
          .bound_name = "web-0",
          .bound_uid = "pod-uid",
          .seconds = 365 * DAY,
          .warn_after = NOW + 3607},
         fx.sa_rsa,
         fx.kid_rsa,
         "{\"authentication.kubernetes.io/pod-name\": [\"web-0\"],"
         " \"authentication.kubernetes.io/pod-uid\": [\"pod-uid\"]}"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char jti[64], credential[80];
        char *token = token_for(&rows[i].spec, rows[i].key, rows[i].kid, jti, sizeof(jti));
        snprintf(credential, sizeof(credential), "JTI=%s", jti);
        json_t *want = parse(rows[i].extra);
        json_object_set_new(want, CREDENTIAL_ID, json_pack("[s]", credential));
        char *extra = json_dumps(want, 0);
        json_decref(want);
        struct outcome out = {0};
        /* The year-long token is still good long after its warnafter. */
        run_bearer(authn, token, i == 4 ? NOW + 30 * DAY : NOW, &out);
        if (out.result.outcome != KP_AUTHN_AUTHENTICATED) {
            fail_msg("%s: refused: %s", rows[i].row, out.result.reason);
        }
        expect_user(&out, "serviceaccount", "system:serviceaccount:default:builder", "sa-uid",
                    "system:serviceaccounts,system:serviceaccounts:default,system:authenticated",
                    extra);
        outcome_wipe(&out);
        free(extra);
        free(token);
    }
    kp_authn_free(authn);
}

static void test_sa_token_times(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    /* Issued an hour ago for an hour: exp = NOW. */
    char *token =
        token_for(&(struct token_spec){.now = NOW - 3600}, fx.sa_rsa, fx.kid_rsa, NULL, 0);
    const struct {
        int64_t now;
        bool valid;
    } rows[] = {
        {NOW - 1, true},   {NOW, true},        {NOW + 30, true},
        {NOW + 59, true},  {NOW + 60, false}, /* exp + leeway: expired (RFC 7519 §4.1.4) */
        {NOW + 61, false}, {NOW + DAY, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct outcome out = {0};
        run_bearer(authn, token, rows[i].now, &out);
        if (rows[i].valid) {
            if (out.result.outcome != KP_AUTHN_AUTHENTICATED) {
                fail_msg("now = exp + %lld: refused: %s", (long long)(rows[i].now - NOW),
                         out.result.reason);
            }
        } else {
            expect_refused(&out, "serviceaccount: token refused: expired", token);
        }
        outcome_wipe(&out);
    }
    free(token);
    /* Not yet valid: iat = nbf beyond now + leeway. */
    const struct {
        int64_t issued;
        bool valid;
    } future[] = {{NOW + 60, true}, {NOW + 61, false}, {NOW + 3600, false}};
    for (size_t i = 0; i < sizeof(future) / sizeof(future[0]); i++) {
        token =
            token_for(&(struct token_spec){.now = future[i].issued}, fx.sa_ec, fx.kid_ec, NULL, 0);
        struct outcome out = {0};
        run_bearer(authn, token, NOW, &out);
        if (future[i].valid) {
            assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
        } else {
            expect_refused(&out, "serviceaccount: token refused: not-yet-valid", token);
        }
        outcome_wipe(&out);
        free(token);
    }
    /* nbf alone in the future (iat now). */
    json_t *claims = claims_for(&(struct token_spec){0});
    json_object_set_new(claims, "nbf", json_integer(NOW + 120));
    token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    json_decref(claims);
    struct outcome out = {0};
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: not-yet-valid", token);
    outcome_wipe(&out);
    free(token);
    kp_authn_free(authn);
}

static void test_sa_token_audiences(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    struct outcome out = {0};
    /* No audience of the API's. */
    char *token = token_for(&(struct token_spec){.audiences = "https://vault.example"}, fx.sa_rsa,
                            fx.kid_rsa, NULL, 0);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token audiences do not match the API audiences", token);
    outcome_wipe(&out);
    free(token);
    /* One of several matches; only the matching ones are reported. */
    token = token_for(&(struct token_spec){.audiences = "https://vault.example," OLD_ISSUER},
                      fx.sa_rsa, fx.kid_rsa, NULL, 0);
    run_bearer(authn, token, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    free(token);
    /* aud as a single string (RFC 7519 §4.1.3 allows it). */
    json_t *claims = claims_for(&(struct token_spec){0});
    json_object_set_new(claims, "aud", json_string(ISSUER));
    token = sign(fx.sa_ec, fx.kid_ec, claims);
    run_bearer(authn, token, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, ISSUER, "audiences");
    outcome_wipe(&out);
    free(token);
    /* No aud at all, an empty array, or a non-string member: refused. */
    json_t *bad_auds[] = {NULL, json_array(), json_pack("[s, i]", ISSUER, 7), json_integer(1)};
    for (size_t i = 0; i < sizeof(bad_auds) / sizeof(bad_auds[0]); i++) {
        if (bad_auds[i] == NULL) {
            json_object_del(claims, "aud");
        } else {
            json_object_set_new(claims, "aud", bad_auds[i]);
        }
        token = sign(fx.sa_ec, fx.kid_ec, claims);
        run_bearer(authn, token, NOW, &out);
        expect_refused(&out, "serviceaccount: token audiences do not match", token);
        outcome_wipe(&out);
        free(token);
    }
    json_decref(claims);
    kp_authn_free(authn);

    /* --api-audiences replaces the issuers as the accepted audiences. */
    authn = make_authn(&(struct options){FULL, .api_audiences = "api,https://vault.example"});
    token = token_for(&(struct token_spec){0}, fx.sa_rsa, fx.kid_rsa, NULL, 0);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token audiences do not match", token);
    outcome_wipe(&out);
    free(token);
    token = token_for(&(struct token_spec){.audiences = "https://vault.example,api"}, fx.sa_rsa,
                      fx.kid_rsa, NULL, 0);
    run_bearer(authn, token, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    /* Upstream's Intersect: in the order of the audiences asked for. */
    expect_list(&out.result.audiences, "api,https://vault.example", "audiences");
    outcome_wipe(&out);
    free(token);
    kp_authn_free(authn);
}

static void test_sa_token_other_issuer(void **state)
{
    (void)state;
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = anonymous});
        char *token = token_for(&(struct token_spec){.issuer = "https://idp.example"}, fx.sa_rsa,
                                fx.kid_rsa, NULL, 0);
        struct outcome out = {0};
        run_bearer(authn, token, NOW, &out);
        assert_string_equal(out.result.reason, "invalid bearer token");
        expect_refused(&out, "invalid bearer token", token);
        outcome_wipe(&out);
        free(token);
        /* No iss at all, and a JWT-shaped string that is not a JWT. */
        json_t *claims = claims_for(&(struct token_spec){0});
        json_object_del(claims, "iss");
        token = sign(fx.sa_rsa, fx.kid_rsa, claims);
        json_decref(claims);
        run_bearer(authn, token, NOW, &out);
        expect_refused(&out, "invalid bearer token", token);
        outcome_wipe(&out);
        free(token);
        run_bearer(authn, "aaaa.bbbb.cccc", NOW, &out);
        expect_refused(&out, "invalid bearer token", "aaaa.bbbb.cccc");
        outcome_wipe(&out);
        kp_authn_free(authn);
    }
}

static char *hand_token(const json_t *header, const json_t *claims, const char *signature)
{
    char *h = b64url_json(header), *p = b64url_json(claims);
    char *token = join3(h, p, signature);
    free(h);
    free(p);
    return token;
}

static void test_sa_token_forged(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    json_t *claims = claims_for(&(struct token_spec){0});
    struct outcome out = {0};

    /* alg none, with and without a kid. */
    json_t *header = json_pack("{s:s}", "alg", "none");
    char *token = hand_token(header, claims, "");
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-alg", token);
    outcome_wipe(&out);
    free(token);
    json_object_set_new(header, "kid", json_string(fx.kid_rsa));
    token = hand_token(header, claims, "");
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-alg", token);
    outcome_wipe(&out);
    free(token);
    json_decref(header);

    /* HS256 keyed with the RSA public key's PEM (the algorithm-confusion attack). */
    header = json_pack("{s:s, s:s}", "alg", "HS256", "kid", fx.kid_rsa);
    char *h = b64url_json(header), *p = b64url_json(claims);
    size_t input_len = strlen(h) + 1 + strlen(p);
    char *input = malloc(input_len + 1);
    assert_non_null(input);
    snprintf(input, input_len + 1, "%s.%s", h, p);
    char *pem = NULL;
    size_t pem_len = 0;
    struct kp_error err;
    assert_int_equal(kp_pubkey_to_pem(fx.sa_rsa, &pem, &pem_len, &err), KP_OK);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, pem_len,
                              (const unsigned char *)input, input_len, mac, sizeof(mac), &mac_len));
    char *mac_text = b64url(mac, mac_len);
    token = join3(h, p, mac_text);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-alg", token);
    outcome_wipe(&out);
    free(token);
    free(mac_text);
    free(pem);
    free(input);
    free(h);
    free(p);
    json_decref(header);

    /* RS256 claimed for the EC key's kid: the key decides the algorithm. */
    token = sign(fx.sa_rsa, fx.kid_ec, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-alg", token);
    outcome_wipe(&out);
    free(token);

    /* A kid naming no key of ours. */
    token = sign(fx.sa_rsa, "no-such-kid", claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: unknown-key", token);
    outcome_wipe(&out);
    free(token);

    /* Signed by a key we do not hold: under its own kid, under ours, and with none. */
    token = sign(fx.stranger, fx.kid_stranger, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: unknown-key", token);
    outcome_wipe(&out);
    free(token);
    token = sign(fx.stranger, fx.kid_ec, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-signature", token);
    outcome_wipe(&out);
    free(token);
    token = sign(fx.stranger, "", claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: unknown-key", token);
    outcome_wipe(&out);
    free(token);

    /* A valid token whose payload is swapped for one naming another service account. */
    char *good = sign(fx.sa_ec, fx.kid_ec, claims);
    json_t *evil = json_deep_copy(claims);
    json_object_set_new(evil, "sub", json_string("system:serviceaccount:kube-system:admin"));
    json_object_set_new(json_object_get(evil, "kubernetes.io"), "namespace",
                        json_string("kube-system"));
    json_object_set_new(json_object_get(json_object_get(evil, "kubernetes.io"), "serviceaccount"),
                        "name", json_string("admin"));
    char *payload = b64url_json(evil);
    const char *first = strchr(good, '.'), *second = strrchr(good, '.');
    size_t header_len = (size_t)(first - good);
    size_t size = header_len + strlen(payload) + strlen(second) + 2;
    token = malloc(size);
    assert_non_null(token);
    snprintf(token, size, "%.*s.%s%s", (int)header_len, good, payload, second);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-signature", token);
    outcome_wipe(&out);
    free(token);
    free(payload);
    json_decref(evil);
    /* ... and one flipped signature character. */
    token = strdup(good);
    assert_non_null(token);
    char *last = token + strlen(token) - 3;
    *last = *last == 'A' ? 'B' : 'A';
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: bad-signature", token);
    outcome_wipe(&out);
    free(token);
    /* The untouched token does authenticate. */
    run_bearer(authn, good, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    free(good);
    json_decref(claims);
    /* Nothing was looked up for a token that did not verify. */
    assert_int_equal(fx.lookups, 1);
    kp_authn_free(authn);
}

static void test_sa_token_service_account_state(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    const struct {
        const char *row;
        struct token_spec spec;
        const char *reason;
    } rows[] = {
        {"missing",
         {.name = "ghost", .uid = "ghost-uid"},
         "serviceaccount: service account default/ghost does not exist"},
        {"UID mismatch (recreated)",
         {.uid = "old-sa-uid"},
         "serviceaccount: service account default/builder UID does not match the token's"},
        {"being deleted",
         {.name = "doomed", .uid = "doomed-uid"},
         "serviceaccount: service account default/doomed is being deleted"},
        {"another namespace",
         {.ns = "other"},
         "serviceaccount: service account other/builder does not exist"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *token = token_for(&rows[i].spec, fx.sa_rsa, fx.kid_rsa, NULL, 0);
        struct outcome out = {0};
        run_bearer(authn, token, NOW, &out);
        expect_refused(&out, rows[i].reason, token);
        outcome_wipe(&out);
        free(token);
    }
    kp_authn_free(authn);
}

/* The verified-token cache: a token presented again is not verified again (a hit), yet the
 * service account's existence and the token's expiry are judged as without the cache. */
static void test_sa_token_cache(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .token_cache = 64});
    uint64_t hits = 0, misses = 0;
    /* Issued an hour ago for an hour: exp = NOW, good until NOW + 60 (the leeway). */
    char *token =
        token_for(&(struct token_spec){.now = NOW - 3600}, fx.sa_rsa, fx.kid_rsa, NULL, 0);
    const int64_t times[] = {NOW - 10, NOW, NOW + 59};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        struct outcome out = {0};
        run_bearer(authn, token, times[i], &out);
        assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
        assert_string_equal(out.user.name, "system:serviceaccount:default:builder");
        outcome_wipe(&out);
    }
    kp_authn_token_cache_stats(authn, &hits, &misses);
    assert_int_equal(misses, 1);
    assert_int_equal(hits, 2);
    struct outcome out = {0};
    run_bearer(authn, token, NOW + 60, &out); /* the entry has expired with the token */
    expect_refused(&out, "serviceaccount: token refused: expired", token);
    outcome_wipe(&out);
    free(token);
    /* A valid signature for a service account that does not exist: cached, still refused. */
    token = token_for(&(struct token_spec){.name = "ghost", .uid = "ghost-uid"}, fx.sa_ec,
                      fx.kid_ec, NULL, 0);
    for (int round = 0; round < 2; round++) {
        run_bearer(authn, token, NOW, &out);
        expect_refused(&out, "serviceaccount: service account default/ghost does not exist",
                       token);
        outcome_wipe(&out);
    }
    kp_authn_token_cache_stats(authn, &hits, &misses);
    assert_int_equal(hits, 3);
    /* A forged token is never cached: refused each time by the signature check. */
    size_t at = strlen(token) - 3;
    token[at] = token[at] == 'A' ? 'B' : 'A';
    for (int round = 0; round < 2; round++) {
        run_bearer(authn, token, NOW, &out);
        expect_refused(&out, "serviceaccount: token refused: bad-signature", token);
        outcome_wipe(&out);
    }
    kp_authn_token_cache_stats(authn, &hits, &misses);
    assert_int_equal(hits, 3);
    free(token);
    /* A fractional exp (a NumericDate may have one): the verifier rounds it down, and the cache
     * keeps the token until that plus the leeway, never longer. */
    json_t *claims = claims_for(&(struct token_spec){0});
    json_object_set_new(claims, "exp", json_real((double)NOW + 10.5));
    token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    json_decref(claims);
    const int64_t fraction_times[] = {NOW, NOW + 68, NOW + 69};
    for (size_t i = 0; i < sizeof(fraction_times) / sizeof(fraction_times[0]); i++) {
        run_bearer(authn, token, fraction_times[i], &out);
        if (out.result.outcome != KP_AUTHN_AUTHENTICATED)
            fail_msg("fraction, now = NOW + %lld: %s", (long long)(fraction_times[i] - NOW), out.result.reason);
        outcome_wipe(&out);
    }
    run_bearer(authn, token, NOW + 70, &out);
    expect_refused(&out, "serviceaccount: token refused: expired", token);
    outcome_wipe(&out);
    free(token);
    kp_authn_free(authn);
    /* Without a cache: nothing is counted. */
    authn = make_authn(&(struct options){FULL});
    kp_authn_token_cache_stats(authn, &hits, &misses);
    assert_int_equal(hits + misses, 0);
    kp_authn_free(authn);
}

static void test_sa_token_bound_object_state(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    json_t *pod_old = object("default", "gone-0", "gone-uid", NOW - 3600);
    put("pods", "default", "gone-0", pod_old);
    put("pods", "default", "going-0", object("default", "going-0", "going-uid", NOW - 30));
    put("secrets", "default", "going", object("default", "going", "going-uid", NOW - 30));
    put("secrets", "default", "gone", object("default", "gone", "gone-uid", NOW - 600));
    put("nodes", "", "n-gone", object("", "n-gone", "n-gone-uid", NOW - 600));
    const struct {
        const char *row;
        struct token_spec spec;
        const char *reason; /* NULL: authenticated */
    } rows[] = {
        {"pod missing",
         {.kind = "Pod", .bound_name = "web-1", .bound_uid = "pod-uid"},
         "serviceaccount: pods \"web-1\" the token is bound to does not exist"},
        {"pod recreated",
         {.kind = "Pod", .bound_name = "web-0", .bound_uid = "older-pod-uid"},
         "serviceaccount: pods \"web-0\" UID (pod-uid) does not match the token's "
         "(older-pod-uid)"},
        {"pod deleted an hour ago",
         {.kind = "Pod", .bound_name = "gone-0", .bound_uid = "gone-uid"},
         "serviceaccount: pods \"gone-0\" the token is bound to is being deleted"},
        {"pod deleted 30 s ago (within the leeway)",
         {.kind = "Pod", .bound_name = "going-0", .bound_uid = "going-uid"},
         NULL},
        {"secret missing",
         {.kind = "Secret", .bound_name = "nope", .bound_uid = "secret-uid"},
         "serviceaccount: secrets \"nope\" the token is bound to does not exist"},
        {"secret recreated",
         {.kind = "Secret", .bound_name = "bound", .bound_uid = "x"},
         "serviceaccount: secrets \"bound\" UID (secret-uid) does not match the token's (x)"},
        {"secret deleted 10 min ago",
         {.kind = "Secret", .bound_name = "gone", .bound_uid = "gone-uid"},
         "serviceaccount: secrets \"gone\" the token is bound to is being deleted"},
        {"secret deleted 30 s ago",
         {.kind = "Secret", .bound_name = "going", .bound_uid = "going-uid"},
         NULL},
        {"node missing",
         {.kind = "Node", .bound_name = "n2", .bound_uid = "node-uid"},
         "serviceaccount: nodes \"n2\" the token is bound to does not exist"},
        {"node recreated",
         {.kind = "Node", .bound_name = "n1", .bound_uid = "n1-old"},
         "serviceaccount: nodes \"n1\" UID (node-uid) does not match the token's (n1-old)"},
        {"node deleted",
         {.kind = "Node", .bound_name = "n-gone", .bound_uid = "n-gone-uid"},
         "serviceaccount: nodes \"n-gone\" the token is bound to is being deleted"},
        /* A pod-bound token's node is information only (upstream validates the node for
         * Node-bound tokens alone). */
        {"pod-bound, its node gone",
         {.kind = "Pod",
          .bound_name = "web-0",
          .bound_uid = "pod-uid",
          .node_name = "n9",
          .node_uid = "n9-uid"},
         NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *token = token_for(&rows[i].spec, fx.sa_ec, fx.kid_ec, NULL, 0);
        struct outcome out = {0};
        run_bearer(authn, token, NOW, &out);
        if (rows[i].reason == NULL) {
            if (out.result.outcome != KP_AUTHN_AUTHENTICATED) {
                fail_msg("%s: refused: %s", rows[i].row, out.result.reason);
            }
            assert_string_equal(out.user.name, "system:serviceaccount:default:builder");
        } else {
            expect_refused(&out, rows[i].reason, token);
        }
        outcome_wipe(&out);
        free(token);
    }
    kp_authn_free(authn);
}

static void test_sa_token_inconsistent_claims(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    struct outcome out = {0};
    json_t *claims = claims_for(&(struct token_spec){0});
    json_object_set_new(claims, "sub", json_string("system:serviceaccount:kube-system:admin"));
    char *token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token's sub does not match its kubernetes.io claims",
                   token);
    outcome_wipe(&out);
    free(token);
    json_decref(claims);

    claims = claims_for(&(struct token_spec){0});
    json_object_del(claims, "kubernetes.io");
    token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token lacks the kubernetes.io claims", token);
    outcome_wipe(&out);
    free(token);
    json_decref(claims);

    claims = claims_for(
        &(struct token_spec){.kind = "Pod", .bound_name = "web-0", .bound_uid = "pod-uid"});
    json_object_del(json_object_get(json_object_get(claims, "kubernetes.io"), "pod"), "uid");
    token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token's bound pods reference is incomplete", token);
    outcome_wipe(&out);
    free(token);
    json_decref(claims);

    /* exp that is not a NumericDate. */
    claims = claims_for(&(struct token_spec){0});
    json_object_set_new(claims, "exp", json_string("tomorrow"));
    token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "serviceaccount: token refused: malformed", token);
    outcome_wipe(&out);
    free(token);
    json_decref(claims);
    kp_authn_free(authn);
}

static json_t *legacy_claims(const char *secret_name, const char *sa_uid)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "iss", KP_SA_LEGACY_ISSUER,
                     "kubernetes.io/serviceaccount/namespace", "default",
                     "kubernetes.io/serviceaccount/secret.name", secret_name,
                     "kubernetes.io/serviceaccount/service-account.name", "builder",
                     "kubernetes.io/serviceaccount/service-account.uid", sa_uid, "sub",
                     "system:serviceaccount:default:builder");
}

static void put_token_secret(const char *name, const char *token, int64_t deleted_at)
{
    json_t *secret = object("default", name, "token-secret-uid", deleted_at);
    json_object_set_new(secret, "type", json_string("kubernetes.io/service-account-token"));
    json_t *data = json_object();
    if (token != NULL) {
        char *encoded = b64(token, strlen(token));
        json_object_set_new(data, "token", json_string(encoded));
        free(encoded);
    }
    json_object_set_new(secret, "data", data);
    put("secrets", "default", name, secret);
}

static void test_sa_token_legacy(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    json_t *claims = legacy_claims("builder-token-x1", "sa-uid");
    char *token = sign(fx.sa_rsa, fx.kid_rsa, claims);
    char *other = sign(fx.sa_ec, fx.kid_ec, claims);
    json_decref(claims);
    struct outcome out = {0};

    put_token_secret("builder-token-x1", token, 0);
    run_bearer(authn, token, NOW, &out);
    expect_user(&out, "serviceaccount", "system:serviceaccount:default:builder", "sa-uid",
                "system:serviceaccounts,system:serviceaccounts:default,system:authenticated", NULL);
    /* No aud: the API audiences, implicitly. */
    expect_list(&out.result.audiences, ISSUER "," OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    /* No exp: still good years later. */
    run_bearer(authn, token, NOW + 3650 * DAY, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);

    /* The same claims, validly signed, but not the token the Secret holds. */
    run_bearer(authn, other, NOW, &out);
    expect_refused(&out,
                   "serviceaccount: the secret default/builder-token-x1 of a legacy token no "
                   "longer holds it",
                   other);
    outcome_wipe(&out);
    /* The Secret's token replaced, emptied, being deleted, deleted. */
    put_token_secret("builder-token-x1", other, 0);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "legacy token no longer holds it", token);
    outcome_wipe(&out);
    put_token_secret("builder-token-x1", NULL, 0);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "legacy token no longer holds it", token);
    outcome_wipe(&out);
    put_token_secret("builder-token-x1", token, NOW - 1);
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "legacy token no longer holds it", token);
    outcome_wipe(&out);
    drop("secrets", "default", "builder-token-x1");
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "legacy token no longer holds it", token);
    outcome_wipe(&out);

    /* The service account recreated under a new UID. */
    put_token_secret("builder-token-x1", token, 0);
    put("serviceaccounts", "default", "builder", object("default", "builder", "new-uid", 0));
    run_bearer(authn, token, NOW, &out);
    expect_refused(&out, "service account default/builder UID does not match", token);
    outcome_wipe(&out);
    put("serviceaccounts", "default", "builder", object("default", "builder", "sa-uid", 0));
    free(other);

    /* Claims missing or contradicting each other. */
    claims = legacy_claims("builder-token-x1", "sa-uid");
    json_object_set_new(claims, "sub", json_string("system:serviceaccount:default:admin"));
    other = sign(fx.sa_rsa, fx.kid_rsa, claims);
    put_token_secret("builder-token-x1", other, 0);
    run_bearer(authn, other, NOW, &out);
    expect_refused(&out, "serviceaccount: legacy token's sub does not match its claims", other);
    outcome_wipe(&out);
    free(other);
    json_object_del(claims, "kubernetes.io/serviceaccount/namespace");
    other = sign(fx.sa_rsa, fx.kid_rsa, claims);
    run_bearer(authn, other, NOW, &out);
    expect_refused(&out, "serviceaccount: legacy token lacks its service-account claims", other);
    outcome_wipe(&out);
    free(other);
    json_decref(claims);

    /* Audiences (TokenReview): only the API audiences, as upstream's implicit ones. */
    put_token_secret("builder-token-x1", token, 0);
    run_token(authn, token, OLD_ISSUER, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    run_token(authn, token, "https://vault.example", NOW, &out);
    expect_refused(
        &out, "serviceaccount: a legacy token (no aud) is valid only for the API audiences", token);
    outcome_wipe(&out);
    run_token(authn, token, "https://vault.example," ISSUER, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, ISSUER, "audiences");
    outcome_wipe(&out);
    free(token);
    kp_authn_free(authn);
}

/* ---- bootstrap tokens ---- */

struct bootstrap_spec {
    const char *id;         /* abcdef */
    const char *token_id;   /* data token-id; NULL: id */
    const char *secret;     /* 0123456789abcdef */
    const char *type;       /* NULL: bootstrap.kubernetes.io/token */
    const char *expiration; /* NULL: NOW + 1 h; "-": absent */
    const char *usage;      /* NULL: "true"; "-": absent */
    const char *groups;     /* NULL: absent */
    int64_t deleted_at;
};

static void put_data(json_t *data, const char *key, const char *value)
{
    char *encoded = b64(value, strlen(value));
    json_object_set_new(data, key, json_string(encoded));
    free(encoded);
}

static void put_bootstrap(const struct bootstrap_spec *s)
{
    const char *id = s->id ? s->id : "abcdef";
    char name[64], expires[40];
    snprintf(name, sizeof(name), "bootstrap-token-%s", id);
    json_t *secret = object("kube-system", name, "bootstrap-uid", s->deleted_at);
    json_object_set_new(secret, "type",
                        json_string(s->type ? s->type : "bootstrap.kubernetes.io/token"));
    json_t *data = json_object();
    put_data(data, "token-id", s->token_id ? s->token_id : id);
    put_data(data, "token-secret", s->secret ? s->secret : "0123456789abcdef");
    put_data(data, "description", "test token");
    put_data(data, "usage-bootstrap-signing", "true");
    kp_time_format_rfc3339(NOW + 3600, expires, sizeof(expires));
    if (s->expiration == NULL || strcmp(s->expiration, "-") != 0) {
        put_data(data, "expiration", s->expiration ? s->expiration : expires);
    }
    if (s->usage == NULL || strcmp(s->usage, "-") != 0) {
        put_data(data, "usage-bootstrap-authentication", s->usage ? s->usage : "true");
    }
    if (s->groups != NULL) {
        put_data(data, "auth-extra-groups", s->groups);
    }
    json_object_set_new(secret, "data", data);
    put("secrets", "kube-system", name, secret);
}

static void test_bootstrap_valid(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct outcome out = {0};
    put_bootstrap(
        &(struct bootstrap_spec){.groups = "system:bootstrappers:kubeadm:default-node-token"});
    run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
    expect_user(&out, "bootstrap-token", "system:bootstrap:abcdef", NULL,
                "system:bootstrappers,system:bootstrappers:kubeadm:default-node-token,"
                "system:authenticated",
                NULL);
    /* Audience-agnostic: good for the API audiences of the request. */
    expect_list(&out.result.audiences, ISSUER "," OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    /* No extra groups; no expiration at all. */
    put_bootstrap(&(struct bootstrap_spec){.expiration = "-"});
    run_bearer(authn, BOOTSTRAP_TOKEN, NOW + 3650 * DAY, &out);
    expect_user(&out, "bootstrap-token", "system:bootstrap:abcdef", NULL,
                "system:bootstrappers,system:authenticated", NULL);
    outcome_wipe(&out);
    /* Several extra groups: sorted and deduplicated with the default one (GetGroups). */
    put_bootstrap(
        &(struct bootstrap_spec){.groups = "system:bootstrappers:zeta,system:bootstrappers:alpha,"
                                           "system:bootstrappers:zeta"});
    run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
    expect_user(&out, "bootstrap-token", "system:bootstrap:abcdef", NULL,
                "system:bootstrappers,system:bootstrappers:alpha,system:bootstrappers:zeta,"
                "system:authenticated",
                NULL);
    outcome_wipe(&out);
    /* An expiration with an offset, a second before it. */
    put_bootstrap(&(struct bootstrap_spec){.expiration = "2027-01-15T10:00:00+02:00"});
    int64_t expires = 0;
    struct kp_error err;
    assert_int_equal(kp_time_parse_rfc3339("2027-01-15T08:00:00Z", &expires, &err), KP_OK);
    run_bearer(authn, BOOTSTRAP_TOKEN, expires - 1, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_bootstrap_refusals(void **state)
{
    (void)state;
    char expired[40], past_fraction[128];
    kp_time_format_rfc3339(NOW, expired, sizeof(expired));
    /* A valid RFC 3339 time in the past, too long for a short buffer. */
    snprintf(past_fraction, sizeof(past_fraction), "2020-01-01T00:00:00.%060dZ", 0);
    const struct {
        const char *row;
        struct bootstrap_spec spec;
        const char *reason;
    } rows[] = {
        {"wrong secret",
         {.secret = "fedcba9876543210"},
         "bootstrap-token: token abcdef does not match its secret"},
        {"token-id differs",
         {.token_id = "zzzzzz"},
         "bootstrap-token: token abcdef does not match its secret"},
        {"expired at now", {.expiration = expired}, "bootstrap-token: token abcdef has expired"},
        {"expiration unparseable",
         {.expiration = "next tuesday"},
         "bootstrap-token: token abcdef has expired"},
        {"expiration long ago, long",
         {.expiration = past_fraction},
         "bootstrap-token: token abcdef has expired"},
        {"usage missing",
         {.usage = "-"},
         "bootstrap-token: token abcdef is not marked for authentication"},
        {"usage false",
         {.usage = "false"},
         "bootstrap-token: token abcdef is not marked for authentication"},
        {"usage TRUE",
         {.usage = "TRUE"},
         "bootstrap-token: token abcdef is not marked for authentication"},
        {"wrong type",
         {.type = "Opaque"},
         "bootstrap-token: secret kube-system/bootstrap-token-abcdef has the wrong type"},
        {"being deleted",
         {.deleted_at = NOW - 1},
         "bootstrap-token: secret kube-system/bootstrap-token-abcdef is being deleted"},
        {"extra group outside system:bootstrappers:",
         {.groups = "system:masters"},
         "bootstrap-token: token abcdef has an invalid extra group"},
        {"extra group with a trailing ':'",
         {.groups = "system:bootstrappers:ok,system:bootstrappers:bad:"},
         "bootstrap-token: token abcdef has an invalid extra group"},
    };
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = anonymous});
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            reset_table(NULL);
            put_bootstrap(&rows[i].spec);
            struct outcome out = {0};
            run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
            if (out.result.outcome != KP_AUTHN_REFUSED) {
                fail_msg("%s: not refused", rows[i].row);
            }
            expect_refused(&out, rows[i].reason, BOOTSTRAP_TOKEN);
            expect_no_token(out.result.reason, "0123456789abcdef");
            expect_no_token(out.result.reason, "fedcba9876543210");
            outcome_wipe(&out);
        }
        /* No Secret at all. */
        reset_table(NULL);
        struct outcome out = {0};
        run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
        expect_refused(&out, "bootstrap-token: no secret kube-system/bootstrap-token-abcdef",
                       BOOTSTRAP_TOKEN);
        outcome_wipe(&out);
        kp_authn_free(authn);
    }
    /* Bootstrap tokens disabled: the token is nobody's. */
    struct kp_authn *authn = make_authn(&(struct options){.client_ca = true});
    put_bootstrap(&(struct bootstrap_spec){0});
    fx.lookups = 0;
    struct outcome out = {0};
    run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
    assert_string_equal(out.result.reason, "invalid bearer token");
    expect_refused(&out, "invalid bearer token", BOOTSTRAP_TOKEN);
    assert_int_equal(fx.lookups, 0);
    outcome_wipe(&out);
    kp_authn_free(authn);
}

static void test_bootstrap_malformed_shapes(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    put_bootstrap(&(struct bootstrap_spec){0});
    put_bootstrap(&(struct bootstrap_spec){.id = "ABCDEF"});
    static const char *const shapes[] = {
        "abcdef.0123456789abcde",   "abcdef.0123456789abcdef0",      "abcde.0123456789abcdef",
        "ABCDEF.0123456789abcdef",  "abcdef.0123456789ABCDEF",       "abcdef:0123456789abcdef",
        "abcdef.0123456789abcde_",  "abcdef..0123456789abcdef",      ".abcdef0123456789abcdef",
        "abcdef.0123456789abcdef.", "abcdef.0123456789abcd\xc3\xa9",
    };
    fx.lookups = 0;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        struct outcome out = {0};
        run_bearer(authn, shapes[i], NOW, &out);
        if (out.result.outcome != KP_AUTHN_REFUSED) {
            fail_msg("%s: not refused", shapes[i]);
        }
        expect_refused(&out, "invalid bearer token", shapes[i]);
        outcome_wipe(&out);
    }
    /* Nothing of that shape reached the Secret lookup. */
    assert_int_equal(fx.lookups, 0);
    kp_authn_free(authn);
}

/* ---- the union ---- */

static void test_union_anonymous(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    struct outcome out = {0};
    run(authn, NULL, NULL, NULL, NULL, 0, NOW, &out);
    expect_anonymous(&out);
    assert_string_equal(out.result.reason, "");
    outcome_wipe(&out);
    /* Front-proxy headers without a certificate are nobody's word. */
    const struct kp_header headers[] = {{"X-Remote-User", "admin"},
                                        {"X-Remote-Group", "system:masters"}};
    run(authn, NULL, NULL, NULL, headers, 2, NOW, &out);
    expect_anonymous(&out);
    outcome_wipe(&out);
    kp_authn_free(authn);

    authn = make_authn(&(struct options){FULL});
    run(authn, NULL, NULL, NULL, headers, 2, NOW, &out);
    expect_refused(&out, "no credentials: no client certificate and no bearer token", NULL);
    outcome_wipe(&out);
    kp_authn_free(authn);

    /* Nothing configured at all: everyone is anonymous. */
    struct kp_authn_config none = {.anonymous = true};
    struct kp_error err;
    assert_int_equal(kp_authn_new(&none, &authn, &err), KP_OK);
    run(authn, fx.alice, NULL, NULL, headers, 2, NOW, &out);
    expect_anonymous(&out);
    outcome_wipe(&out);
    run(authn, NULL, NULL, "Bearer " BOOTSTRAP_TOKEN, NULL, 0, NOW, &out);
    expect_refused(&out, "invalid bearer token", BOOTSTRAP_TOKEN);
    outcome_wipe(&out);
    kp_authn_free(authn);
    kp_authn_free(NULL);
}

static void test_union_failing_credential_refuses(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    struct outcome out = {0};
    run(authn, fx.expired, NULL, NULL, NULL, 0, NOW, &out);
    expect_refused(&out, "certificate has expired", NULL);
    outcome_wipe(&out);
    run_bearer(authn, "garbage", NOW, &out);
    expect_refused(&out, "invalid bearer token", "garbage");
    outcome_wipe(&out);
    put_bootstrap(&(struct bootstrap_spec){.secret = "fedcba9876543210"});
    run_bearer(authn, BOOTSTRAP_TOKEN, NOW, &out);
    expect_refused(&out, "does not match its secret", BOOTSTRAP_TOKEN);
    outcome_wipe(&out);
    /* A certificate that fails and a token that fails: both reasons, in order. */
    char *token = token_for(&(struct token_spec){.name = "ghost", .uid = "g"}, fx.sa_rsa,
                            fx.kid_rsa, NULL, 0);
    size_t size = strlen(token) + 8;
    char *header = malloc(size);
    assert_non_null(header);
    snprintf(header, size, "Bearer %s", token);
    run(authn, fx.expired, NULL, header, NULL, 0, NOW, &out);
    expect_refused(&out,
                   "requestheader: client certificate rejected: unable to get local issuer "
                   "certificate (depth 0: CN=expired); x509: client certificate rejected: "
                   "certificate has expired (depth 0: CN=expired); serviceaccount: service "
                   "account default/ghost does not exist",
                   token);
    outcome_wipe(&out);
    free(header);
    free(token);
    kp_authn_free(authn);
}

static void test_union_order(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL});
    struct outcome out = {0};
    char *token = token_for(&(struct token_spec){0}, fx.sa_rsa, fx.kid_rsa, NULL, 0);
    size_t size = strlen(token) + 8;
    char *header = malloc(size);
    assert_non_null(header);
    snprintf(header, size, "Bearer %s", token);
    /* A good certificate wins; the token is not even looked at. */
    fx.lookups = 0;
    run(authn, fx.alice, NULL, "Bearer garbage", NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.result.method, "x509");
    assert_string_equal(out.user.name, "alice");
    outcome_wipe(&out);
    assert_int_equal(fx.lookups, 0);
    /* A certificate that fails does not stop a good token (upstream's union). */
    run(authn, fx.expired, NULL, header, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.result.method, "serviceaccount");
    assert_string_equal(out.result.reason, "");
    outcome_wipe(&out);
    /* A front-proxy certificate without X-Remote-User, and a token: the token. */
    run(authn, fx.fp_client, NULL, header, NULL, 0, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    assert_string_equal(out.user.name, "system:serviceaccount:default:builder");
    outcome_wipe(&out);
    free(header);
    free(token);
    kp_authn_free(authn);
}

static void test_union_authorization_schemes(void **state)
{
    (void)state;
    for (int anonymous = 0; anonymous <= 1; anonymous++) {
        struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = anonymous});
        static const char *const headers[] = {
            "Basic YWRtaW46YWRtaW4=",        "Bearer", "Bearer ", "Bearer    ", "Negotiate abc", "",
            "Bearerabcdef.0123456789abcdef",
        };
        for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
            struct outcome out = {0};
            run(authn, NULL, NULL, headers[i], NULL, 0, NOW, &out);
            if (out.result.outcome != KP_AUTHN_REFUSED) {
                fail_msg("\"%s\" (anonymous %d): not refused", headers[i], anonymous);
            }
            expect_refused(&out, "unsupported Authorization header (only Bearer tokens)", NULL);
            assert_null(strstr(out.result.reason, "YWRtaW46YWRtaW4="));
            assert_null(strstr(out.result.reason, "abcdef"));
            outcome_wipe(&out);
        }
        kp_authn_free(authn);
    }
}

static void test_token_review(void **state)
{
    (void)state;
    struct kp_authn *authn = make_authn(&(struct options){FULL, .anonymous = true});
    struct outcome out = {0};
    char jti[64], extra[256];
    char *api = token_for(&(struct token_spec){0}, fx.sa_rsa, fx.kid_rsa, jti, sizeof(jti));
    snprintf(extra, sizeof(extra), "{\"" CREDENTIAL_ID "\": [\"JTI=%s\"]}", jti);
    char *vault = token_for(&(struct token_spec){.audiences = "https://vault.example"}, fx.sa_ec,
                            fx.kid_ec, NULL, 0);
    char *both = token_for(&(struct token_spec){.audiences = ISSUER ",https://vault.example"},
                           fx.sa_ec, fx.kid_ec, NULL, 0);
    /* No audiences asked: the API's. */
    run_token(authn, api, NULL, NOW, &out);
    expect_user(&out, "serviceaccount", "system:serviceaccount:default:builder", "sa-uid",
                "system:serviceaccounts,system:serviceaccounts:default,system:authenticated",
                extra);
    expect_list(&out.result.audiences, ISSUER, "audiences");
    outcome_wipe(&out);
    run_token(authn, api, "", NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, ISSUER, "audiences");
    outcome_wipe(&out);
    run_token(authn, vault, NULL, NOW, &out);
    expect_refused(&out, "token audiences do not match", vault);
    outcome_wipe(&out);
    /* An audience the API itself does not accept, asked for by another service. */
    run_token(authn, vault, "https://vault.example", NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, "https://vault.example", "audiences");
    outcome_wipe(&out);
    run_token(authn, api, "https://vault.example", NOW, &out);
    expect_refused(&out, "token audiences do not match", api);
    outcome_wipe(&out);
    run_token(authn, both, "https://vault.example,https://other.example," ISSUER, NOW, &out);
    assert_int_equal(out.result.outcome, KP_AUTHN_AUTHENTICATED);
    expect_list(&out.result.audiences, "https://vault.example," ISSUER, "audiences");
    outcome_wipe(&out);
    /* Bootstrap tokens carry no audience: like upstream's audience-agnostic authenticators
     * they are good only where an API audience is asked for, and then for those. */
    put_bootstrap(&(struct bootstrap_spec){0});
    run_token(authn, BOOTSTRAP_TOKEN, "https://vault.example", NOW, &out);
    expect_refused(&out, "invalid bearer token", BOOTSTRAP_TOKEN);
    outcome_wipe(&out);
    run_token(authn, BOOTSTRAP_TOKEN, "https://vault.example," OLD_ISSUER, NOW, &out);
    expect_user(&out, "bootstrap-token", "system:bootstrap:abcdef", NULL,
                "system:bootstrappers,system:authenticated", NULL);
    expect_list(&out.result.audiences, OLD_ISSUER, "audiences");
    outcome_wipe(&out);
    /* Never anonymous, and empty is refused. */
    run_token(authn, "", NULL, NOW, &out);
    expect_refused(&out, "empty token", NULL);
    outcome_wipe(&out);
    struct kp_error err;
    assert_int_equal(kp_authn_token(authn, NULL, NULL, NOW, &out.user, &out.result, &err), KP_OK);
    expect_refused(&out, "empty token", NULL);
    outcome_wipe(&out);
    run_token(authn, "Bearer garbage", NULL, NOW, &out);
    expect_refused(&out, "invalid bearer token", "Bearer garbage");
    outcome_wipe(&out);
    free(api);
    free(vault);
    free(both);
    kp_authn_free(authn);
}

/* ---- bootstrap-token helpers ---- */

static void test_bootstrap_token_parse(void **state)
{
    (void)state;
    char id[KP_BOOTSTRAP_TOKEN_ID_LEN + 1], secret[KP_BOOTSTRAP_TOKEN_SECRET_LEN + 1];
    assert_true(kp_bootstrap_token_parse("abcdef.0123456789abcdef", id, secret));
    assert_string_equal(id, "abcdef");
    assert_string_equal(secret, "0123456789abcdef");
    assert_true(kp_bootstrap_token_parse("a0b1c2.zzzzzzzzzzzzzzzz", id, secret));
    assert_string_equal(id, "a0b1c2");
    assert_true(kp_bootstrap_token_parse("abcdef.0123456789abcdef", NULL, NULL));
    static const char *const bad[] = {
        "",
        "abcdef",
        "abcdef.",
        ".0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdef0",
        "abcdefg.0123456789abcde",
        "ABCDEF.0123456789abcdef",
        "abcdef.0123456789abcdeF",
        "abcdef-0123456789abcdef",
        "abc.ef.0123456789abcdef",
        "abcdef.0123456789abc.ef",
        " abcdef.0123456789abcde",
        "abcdef.0123456789abcde ",
        "abcdef.0123456789abcde\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_bootstrap_token_parse(bad[i], id, secret)) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
    }
    assert_false(kp_bootstrap_token_parse(NULL, id, secret));
}

static void test_bootstrap_token_generate(void **state)
{
    (void)state;
    enum { COUNT = 400 };
    static char tokens[COUNT][KP_BOOTSTRAP_TOKEN_ID_LEN + KP_BOOTSTRAP_TOKEN_SECRET_LEN + 2];
    bool seen[36] = {false};
    struct kp_error err;
    for (size_t i = 0; i < COUNT; i++) {
        assert_int_equal(kp_bootstrap_token_generate(tokens[i], sizeof(tokens[i]), &err), KP_OK);
        assert_int_equal(strlen(tokens[i]), 23);
        assert_int_equal(tokens[i][6], '.');
        for (size_t c = 0; c < 23; c++) {
            char ch = tokens[i][c];
            if (c == 6) {
                continue;
            }
            bool digit = ch >= '0' && ch <= '9', lower = ch >= 'a' && ch <= 'z';
            if (!digit && !lower) {
                fail_msg("'%c' outside [a-z0-9] in %s", ch, tokens[i]);
            }
            seen[digit ? 26 + (ch - '0') : ch - 'a'] = true;
        }
        assert_true(kp_bootstrap_token_parse(tokens[i], NULL, NULL));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(tokens[i], tokens[j]) == 0) {
                fail_msg("token %zu repeats token %zu", i, j);
            }
        }
    }
    /* 400 x 22 characters: every one of the 36 shows up. */
    for (size_t i = 0; i < 36; i++) {
        assert_true(seen[i]);
    }
    char small[23];
    assert_int_equal(kp_bootstrap_token_generate(small, sizeof(small), &err), KP_ERR_INTERNAL);
}

static void test_bootstrap_group_valid(void **state)
{
    (void)state;
    char longest[300], too_long[300];
    snprintf(longest, sizeof(longest), "system:bootstrappers:%0256d", 0);
    snprintf(too_long, sizeof(too_long), "system:bootstrappers:%0257d", 0);
    assert_int_equal(strlen(longest), strlen("system:bootstrappers:") + 256);
    const char *const good[] = {
        "system:bootstrappers:kubeadm:default-node-token",
        "system:bootstrappers:a",
        "system:bootstrappers:0",
        "system:bootstrappers:a-b:c-d",
        "system:bootstrappers::a",
        "system:bootstrappers:--a",
        longest,
    };
    const char *const bad[] = {
        "system:bootstrappers",
        "system:bootstrappers:",
        "system:bootstrappers:a:",
        "system:bootstrappers:a-",
        "system:bootstrappers:-",
        "system:bootstrappers:A",
        "system:bootstrappers:a_b",
        "system:bootstrappers:a b",
        "system:bootstrappers:a.b",
        "system:bootstrappers:a/b",
        "system:masters",
        "System:bootstrappers:a",
        "xsystem:bootstrappers:a",
        "",
        too_long,
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!kp_bootstrap_group_valid(good[i])) {
            fail_msg("\"%s\" refused", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_bootstrap_group_valid(bad[i])) {
            fail_msg("\"%.60s\" accepted", bad[i]);
        }
    }
}

/* ---- the claims kpki issues ---- */

static bool is_uuid_v4(const char *text)
{
    if (text == NULL || strlen(text) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-'
                 : !(isdigit((unsigned char)text[i]) || (text[i] >= 'a' && text[i] <= 'f'))) {
            return false;
        }
    }
    return text[14] == '4' && strchr("89ab", text[19]) != NULL;
}

static void test_sa_claims_shape(void **state)
{
    (void)state;
    json_t *claims = claims_for(&(struct token_spec){.audiences = ISSUER ",https://vault.example",
                                                     .kind = "Pod",
                                                     .bound_name = "web-0",
                                                     .bound_uid = "pod-uid",
                                                     .node_name = "n1",
                                                     .node_uid = "node-uid",
                                                     .seconds = 365 * DAY,
                                                     .warn_after = NOW + 3607});
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    if (!is_uuid_v4(jti)) {
        fail_msg("jti %s is not a UUIDv4", jti ? jti : "(none)");
    }
    json_t *copy = json_deep_copy(claims);
    json_object_del(copy, "jti");
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"iss\": \"" ISSUER "\", \"sub\": \"system:serviceaccount:default:builder\","
             " \"aud\": [\"" ISSUER "\", \"https://vault.example\"],"
             " \"iat\": %lld, \"nbf\": %lld, \"exp\": %lld,"
             " \"kubernetes.io\": {\"namespace\": \"default\","
             " \"serviceaccount\": {\"name\": \"builder\", \"uid\": \"sa-uid\"},"
             " \"pod\": {\"name\": \"web-0\", \"uid\": \"pod-uid\"},"
             " \"node\": {\"name\": \"n1\", \"uid\": \"node-uid\"},"
             " \"warnafter\": %lld}}",
             NOW, NOW, NOW + 365 * DAY, NOW + 3607);
    json_t *expected = parse(want);
    if (!json_equal(copy, expected)) {
        char *got = json_dumps(copy, JSON_SORT_KEYS);
        fail_msg("claims: got %s", got);
    }
    json_decref(expected);
    json_decref(copy);
    json_decref(claims);

    /* Unbound: no binding, no warnafter; a single audience is still an array. */
    claims = claims_for(&(struct token_spec){0});
    snprintf(want, sizeof(want),
             "{\"iss\": \"" ISSUER "\", \"sub\": \"system:serviceaccount:default:builder\","
             " \"aud\": [\"" ISSUER "\"], \"iat\": %lld, \"nbf\": %lld, \"exp\": %lld,"
             " \"kubernetes.io\": {\"namespace\": \"default\","
             " \"serviceaccount\": {\"name\": \"builder\", \"uid\": \"sa-uid\"}}}",
             NOW, NOW, NOW + 3600);
    expected = parse(want);
    copy = json_deep_copy(claims);
    json_object_del(copy, "jti");
    assert_true(json_equal(copy, expected));
    json_decref(expected);
    json_decref(copy);
    /* Fresh jti every time. */
    json_t *again = claims_for(&(struct token_spec){0});
    assert_true(is_uuid_v4(json_string_value(json_object_get(again, "jti"))));
    assert_string_not_equal(json_string_value(json_object_get(claims, "jti")),
                            json_string_value(json_object_get(again, "jti")));
    json_decref(again);
    json_decref(claims);

    /* Secret and Node bindings; a Secret binding carries no node even when given one. */
    claims = claims_for(&(struct token_spec){.kind = "Secret",
                                             .bound_name = "bound",
                                             .bound_uid = "secret-uid",
                                             .node_name = "n1",
                                             .node_uid = "node-uid"});
    json_t *k8s = json_object_get(claims, "kubernetes.io");
    expected = json_pack("{s:s, s:s}", "name", "bound", "uid", "secret-uid");
    assert_true(json_equal(json_object_get(k8s, "secret"), expected));
    json_decref(expected);
    assert_null(json_object_get(k8s, "node"));
    assert_null(json_object_get(k8s, "pod"));
    json_decref(claims);
    claims = claims_for(
        &(struct token_spec){.kind = "Node", .bound_name = "n1", .bound_uid = "node-uid"});
    k8s = json_object_get(claims, "kubernetes.io");
    assert_string_equal(json_string_value(json_object_get(json_object_get(k8s, "node"), "uid")),
                        "node-uid");
    assert_int_equal(json_object_size(k8s), 3);
    json_decref(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_x509_identity, reset_table),
        cmocka_unit_test_setup(test_x509_authenticated_group_once, reset_table),
        cmocka_unit_test_setup(test_x509_intermediate, reset_table),
        cmocka_unit_test_setup(test_x509_rejections, reset_table),
        cmocka_unit_test_setup(test_x509_revoked, reset_table),
        cmocka_unit_test_setup(test_x509_memo, reset_table),
        cmocka_unit_test_setup(test_x509_chain_cache, reset_table),
        cmocka_unit_test_setup(test_requestheader_revoked, reset_table),
        cmocka_unit_test_setup(test_x509_no_cn, reset_table),
        cmocka_unit_test_setup(test_front_proxy_identity, reset_table),
        cmocka_unit_test_setup(test_front_proxy_disallowed_cn, reset_table),
        cmocka_unit_test_setup(test_front_proxy_cluster_cert_keeps_identity, reset_table),
        cmocka_unit_test_setup(test_front_proxy_without_user_falls_through, reset_table),
        cmocka_unit_test_setup(test_front_proxy_custom_headers, reset_table),
        cmocka_unit_test_setup(test_sa_token_unbound, reset_table),
        cmocka_unit_test_setup(test_sa_token_bound, reset_table),
        cmocka_unit_test_setup(test_sa_token_times, reset_table),
        cmocka_unit_test_setup(test_sa_token_audiences, reset_table),
        cmocka_unit_test_setup(test_sa_token_other_issuer, reset_table),
        cmocka_unit_test_setup(test_sa_token_forged, reset_table),
        cmocka_unit_test_setup(test_sa_token_service_account_state, reset_table),
        cmocka_unit_test_setup(test_sa_token_cache, reset_table),
        cmocka_unit_test_setup(test_sa_token_bound_object_state, reset_table),
        cmocka_unit_test_setup(test_sa_token_inconsistent_claims, reset_table),
        cmocka_unit_test_setup(test_sa_token_legacy, reset_table),
        cmocka_unit_test_setup(test_bootstrap_valid, reset_table),
        cmocka_unit_test_setup(test_bootstrap_refusals, reset_table),
        cmocka_unit_test_setup(test_bootstrap_malformed_shapes, reset_table),
        cmocka_unit_test_setup(test_union_anonymous, reset_table),
        cmocka_unit_test_setup(test_union_failing_credential_refuses, reset_table),
        cmocka_unit_test_setup(test_union_order, reset_table),
        cmocka_unit_test_setup(test_union_authorization_schemes, reset_table),
        cmocka_unit_test_setup(test_token_review, reset_table),
        cmocka_unit_test(test_bootstrap_token_parse),
        cmocka_unit_test(test_bootstrap_token_generate),
        cmocka_unit_test(test_bootstrap_group_valid),
        cmocka_unit_test(test_sa_claims_shape),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
