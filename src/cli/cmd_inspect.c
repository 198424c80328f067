/*
 * kpki inspect FILE|-: what a certificate, chain, CSR, key, CRL, kubeconfig or JWT holds.
 *
 * Implementation notes
 *  1. Read the input: at most INPUT_MAX bytes, cleansed before it is freed (it may be a key).
 *  2. Recognise it, in this order:
 *     - PEM: any number of blocks of any supported type, in any order (a chain, the kubelet's
 *       cert-then-key pem); text around the blocks is ignored, as OpenSSL and Go ignore it;
 *     - DER (first byte 0x30): certificate, CRL, CSR, private key, encrypted private key,
 *       public key, each required to span the whole input;
 *     - a compact JWT (three base64url parts);
 *     - a kubeconfig (YAML mapping with clusters, users or contexts).
 *  3. Describe it as ONE jansson document. --output json prints that document; the text output
 *     is rendered from it, so the two can never disagree.
 * Invariants:
 *  - No private material enters the document: a private key is described by its type, size and
 *    the SHA-256 of its public half; a kubeconfig's key, token and password by presence (and a
 *    token by its length); a JWT's signature by its length. Key DER lives in OpenSSL's secure
 *    heap (cleansed on free) and the input is cleansed before it is freed.
 *  - Nothing is trusted: the only signatures checked are a chain's consecutive certificates and
 *    a CSR's self-signature; a JWT's signature is never checked (and the output says so).
 *  - Every error names the input. Exit codes (this command's own): 0 shown, 1 the input cannot
 *    be read, is not recognised or is invalid, 2 usage error.
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "jwt/jwt.h"

#define EXIT_SHOWN 0
#define EXIT_INVALID 1
#define EXIT_USAGE 2
#define INPUT_MAX (1024 * 1024)
/* Most entries shown per kubeconfig list: YAML aliases can repeat one big entry many times
 * without making the file any larger. */
#define KUBECONFIG_LIST_MAX 256
/* Column where the text output's values start, whatever the nesting (deepest: 6, a kubeconfig's
 * embedded certificate, whose longest label is 20 characters). */
#define VALUE_COLUMN 28
/* The years 0001 to 9999: what RFC 3339 can write (and what gmtime_r certainly handles). */
#define TIME_MIN (-62135596800LL)
#define TIME_MAX 253402300799LL

static const struct kp_cli_flag inspect_flags[] = {
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(void)
{
    printf("Usage: kpki inspect FILE|- [--output text|json]\n\n"
           "Shows what FILE (or standard input) holds: PEM or DER certificates (a chain: whether\n"
           "each is signed by the next), certificate requests, private keys (type, size and the\n"
           "SHA-256 of the public key; never the key), encrypted keys (not decrypted), public\n"
           "keys, CRLs, kubeconfigs (every cluster, user and context; keys and tokens only as\n"
           "present) and JWTs (header and claims; the signature is NOT verified). For a\n"
           "certificate that allows client authentication, the Kubernetes user and groups\n"
           "kube-apiserver maps it to; for a service-account token, its user and groups.\n\n"
           "Flags:\n");
    kp_cli_print_flags(inspect_flags);
    printf("\nExit codes: 0 shown, 1 the input cannot be read, is not recognised or is invalid,\n"
           "2 usage error.\n");
}

/* One run: the input's name and the time residual validity is measured from. */
struct inspect {
    const char *what;   /* the input in messages: its path, or "standard input" */
    int64_t now;        /* unix seconds */
    bool out_of_memory; /* a jansson allocation failed somewhere; checked once at the end */
};

/* ---- building the document ---- */

/* A JSON string for text taken from the input, which may hold anything: when it is not UTF-8,
 * bytes past ASCII become '?' (jansson refuses invalid UTF-8). NULL only when out of memory. */
static json_t *text_json(const char *text, size_t len)
{
    json_t *value = json_stringn(text, len);
    if (value != NULL) {
        return value;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        copy[i] = c < 0x80 ? (char)c : '?';
    }
    value = json_stringn(copy, len);
    free(copy);
    return value;
}

/* Sets object[key] = value, taking the reference; a failure (value NULL included) is recorded
 * and reported once at the end, so building code reads straight through. */
static void put(struct inspect *in, json_t *object, const char *key, json_t *value)
{
    if (value == NULL || json_object_set_new(object, key, value) != 0) {
        in->out_of_memory = true;
    }
}

static void put_text(struct inspect *in, json_t *object, const char *key, const char *text)
{
    put(in, object, key, text_json(text, strlen(text)));
}

static void push(struct inspect *in, json_t *array, json_t *value)
{
    if (value == NULL || json_array_append_new(array, value) != 0) {
        in->out_of_memory = true;
    }
}

static json_t *hex_json(const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *text = malloc(2 * len + 1);
    if (text == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        text[2 * i] = digits[data[i] >> 4];
        text[2 * i + 1] = digits[data[i] & 0xf];
    }
    text[2 * len] = '\0';
    json_t *value = json_string(text);
    free(text);
    return value;
}

static void put_time(struct inspect *in, json_t *object, const char *key, int64_t when)
{
    char text[40];
    kp_time_format_rfc3339(when, text, sizeof(text));
    put_text(in, object, key, text);
}

/* from/until as RFC 3339, and the residual time measured from in->now: "residual" is
 * Kubernetes' short human duration until `until`, or "expired" (with "expiredAgo"). */
static void put_validity(struct inspect *in, json_t *object, const char *from_key, int64_t from,
                         const char *until_key, int64_t until)
{
    char span[32];
    put_time(in, object, from_key, from);
    put_time(in, object, until_key, until);
    bool expired = in->now >= until;
    put(in, object, "expired", json_boolean(expired));
    if (expired) {
        put_text(in, object, "residual", "expired");
        kp_duration_short_human(in->now - until, span, sizeof(span));
        put_text(in, object, "expiredAgo", span);
    } else {
        kp_duration_short_human(until - in->now, span, sizeof(span));
        put_text(in, object, "residual", span);
    }
    if (in->now < from) {
        put(in, object, "notYetValid", json_true());
        kp_duration_short_human(from - in->now, span, sizeof(span));
        put_text(in, object, "validIn", span);
    }
}

/* An OID as its short name when OpenSSL knows it ("serverAuth"), else in dotted form. */
static json_t *oid_json(const ASN1_OBJECT *oid)
{
    char text[128];
    int nid = OBJ_obj2nid(oid);
    if (nid != NID_undef && OBJ_nid2sn(nid) != NULL) {
        return json_string(OBJ_nid2sn(nid));
    }
    if (OBJ_obj2txt(text, sizeof(text), oid, 1) <= 0) {
        snprintf(text, sizeof(text), "%s", "unknown");
    }
    return json_string(text);
}

/* A signature algorithm by OpenSSL's long name ("ecdsa-with-SHA256"). */
static json_t *signature_json(int nid, const X509_ALGOR *algorithm)
{
    if (nid != NID_undef && OBJ_nid2ln(nid) != NULL) {
        return json_string(OBJ_nid2ln(nid));
    }
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, algorithm);
    return oid_json(oid);
}

/* Subject alternative names by type; NULL when there are none. Takes ownership of names. */
static json_t *sans_json(struct inspect *in, GENERAL_NAMES *names)
{
    if (names == NULL) {
        return NULL;
    }
    json_t *sans = json_object();
    json_t *lists[4] = {json_array(), json_array(), json_array(), json_array()};
    static const char *const keys[4] = {"dns", "ip", "uri", "email"};
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        int type = 0;
        void *value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
        if (type != GEN_DNS && type != GEN_IPADD && type != GEN_URI && type != GEN_EMAIL) {
            continue; /* other name types are not ASN1_STRINGs, and Kubernetes uses none */
        }
        const char *data = (const char *)ASN1_STRING_get0_data(value);
        size_t len = (size_t)ASN1_STRING_length(value);
        if (type == GEN_DNS) {
            push(in, lists[0], text_json(data, len));
        } else if (type == GEN_IPADD) {
            struct kp_ip ip = {0};
            char text[KP_IP_TEXT_MAX + 32];
            if (len == 4 || len == 16) {
                ip.family = len == 4 ? AF_INET : AF_INET6;
                memcpy(ip.bytes, data, len);
                kp_ip_format(&ip, text, sizeof(text));
            } else {
                snprintf(text, sizeof(text), "invalid (%zu bytes)", len);
            }
            push(in, lists[1], json_string(text));
        } else if (type == GEN_URI) {
            push(in, lists[2], text_json(data, len));
        } else if (type == GEN_EMAIL) {
            push(in, lists[3], text_json(data, len));
        }
    }
    GENERAL_NAMES_free(names);
    for (size_t i = 0; i < 4; i++) {
        if (json_array_size(lists[i]) > 0) {
            put(in, sans, keys[i], lists[i]);
        } else {
            json_decref(lists[i]);
        }
    }
    return sans;
}

/* "key" ("ECDSA P-256") and "publicKeySha256" (SHA-256 of the SubjectPublicKeyInfo, kubeadm's
 * pin format). Only public information is taken from key, whatever it holds. */
static void put_key(struct inspect *in, json_t *object, EVP_PKEY *key)
{
    char text[128];
    kp_key_describe(key, text, sizeof(text));
    put_text(in, object, "key", text);
    struct kp_error err;
    char pin[2 * 32 + 1];
    if (kp_key_spki_sha256(key, pin, sizeof(pin), &err) == KP_OK) {
        put_text(in, object, "publicKeySha256", pin);
    }
    ERR_clear_error();
}

static const struct {
    uint32_t bit;
    const char *name;
} key_usage_names[] = {
    /* RFC 5280 §4.2.1.3, in its order. */
    {KU_DIGITAL_SIGNATURE, "digitalSignature"},
    {KU_NON_REPUDIATION, "nonRepudiation"},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
    {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {KU_KEY_AGREEMENT, "keyAgreement"},
    {KU_KEY_CERT_SIGN, "keyCertSign"},
    {KU_CRL_SIGN, "cRLSign"},
    {KU_ENCIPHER_ONLY, "encipherOnly"},
    {KU_DECIPHER_ONLY, "decipherOnly"},
};

/* The identity kube-apiserver's x509 authenticator gives a client certificate
 * (k8s.io/apiserver/pkg/authentication/request/x509: CommonNameUserConversion): user = the
 * subject CN (a certificate without one authenticates nobody), groups = the O values, plus
 * system:authenticated from the authenticated-group adder. Only for a certificate Go's verifier
 * accepts for client auth: no EKU extension, clientAuth or anyExtendedKeyUsage. */
static void put_kubernetes_identity(struct inspect *in, json_t *object, X509 *cert)
{
    uint32_t flags = X509_get_extension_flags(cert);
    bool client_auth = (flags & EXFLAG_XKUSAGE) == 0 ||
                       (X509_get_extended_key_usage(cert) & (XKU_SSL_CLIENT | XKU_ANYEKU)) != 0;
    put(in, object, "clientAuthentication", json_boolean(client_auth));
    char user[1024];
    kp_cert_common_name(cert, user, sizeof(user));
    if (!client_auth || user[0] == '\0') {
        return;
    }
    struct kp_strlist organizations = {0};
    struct kp_error err;
    if (kp_cert_organizations(cert, &organizations, &err) != KP_OK) {
        /* More O values than kpki reads (KP_STRLIST_MAX): not a certificate to guess about. */
        put_text(in, object, "kubernetesIdentityProblem", err.message);
        kp_strlist_wipe(&organizations);
        return;
    }
    json_t *identity = json_object();
    json_t *groups = json_array();
    put_text(in, identity, "user", user);
    bool has_authenticated = false;
    for (size_t i = 0; i < organizations.count; i++) {
        push(in, groups, text_json(organizations.items[i], strlen(organizations.items[i])));
        has_authenticated |= strcmp(organizations.items[i], "system:authenticated") == 0;
    }
    if (!has_authenticated) {
        push(in, groups, json_string("system:authenticated"));
    }
    put(in, identity, "groups", groups);
    put(in, object, "kubernetesIdentity", identity);
    kp_strlist_wipe(&organizations);
}

static json_t *cert_json(struct inspect *in, X509 *cert)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    put_text(in, object, "kind", "certificate");
    kp_name_to_string(X509_get_subject_name(cert), text, sizeof(text));
    put_text(in, object, "subject", text);
    kp_name_to_string(X509_get_issuer_name(cert), text, sizeof(text));
    put_text(in, object, "issuer", text);
    kp_cert_serial_hex(cert, text, sizeof(text));
    put_text(in, object, "serial", text);
    put_validity(in, object, "notBefore", kp_cert_not_before(cert), "notAfter",
                 kp_cert_not_after(cert));
    json_t *sans = sans_json(in, X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL));
    if (sans != NULL) {
        put(in, object, "sans", sans);
    }

    uint32_t flags = X509_get_extension_flags(cert);
    uint32_t key_usage = X509_get_key_usage(cert);
    if (key_usage != UINT32_MAX) { /* UINT32_MAX: no extension */
        json_t *usages = json_array();
        for (size_t i = 0; i < sizeof(key_usage_names) / sizeof(key_usage_names[0]); i++) {
            if (key_usage & key_usage_names[i].bit) {
                push(in, usages, json_string(key_usage_names[i].name));
            }
        }
        put(in, object, "keyUsage", usages);
    }
    EXTENDED_KEY_USAGE *ext_usage = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    if (ext_usage != NULL) {
        json_t *usages = json_array();
        for (int i = 0; i < sk_ASN1_OBJECT_num(ext_usage); i++) {
            push(in, usages, oid_json(sk_ASN1_OBJECT_value(ext_usage, i)));
        }
        put(in, object, "extKeyUsage", usages);
        EXTENDED_KEY_USAGE_free(ext_usage);
    }
    if (flags & EXFLAG_BCONS) {
        json_t *constraints = json_object();
        put(in, constraints, "ca", json_boolean((flags & EXFLAG_CA) != 0));
        long path_len = X509_get_pathlen(cert);
        if (path_len >= 0) {
            put(in, constraints, "pathLen", json_integer(path_len));
        }
        put(in, object, "basicConstraints", constraints);
    }
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cert);
    if (skid != NULL) {
        put(in, object, "subjectKeyId",
            hex_json(ASN1_STRING_get0_data(skid), (size_t)ASN1_STRING_length(skid)));
    }
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert);
    if (akid != NULL) {
        put(in, object, "authorityKeyId",
            hex_json(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid)));
    }

    EVP_PKEY *public_key = X509_get0_pubkey(cert);
    if (public_key != NULL) {
        put_key(in, object, public_key);
    } else {
        ASN1_OBJECT *algorithm = NULL;
        X509_PUBKEY_get0_param(&algorithm, NULL, NULL, NULL, X509_get_X509_PUBKEY(cert));
        json_t *name = algorithm != NULL ? oid_json(algorithm) : NULL;
        put(in, object, "key",
            json_sprintf("unsupported or malformed (%s)",
                         name != NULL ? json_string_value(name) : "unknown"));
        json_decref(name);
    }
    const X509_ALGOR *signature_algorithm = NULL;
    X509_get0_signature(NULL, &signature_algorithm, cert);
    put(in, object, "signatureAlgorithm",
        signature_json(X509_get_signature_nid(cert), signature_algorithm));
    kp_cert_fingerprint(cert, "sha256", text, sizeof(text));
    put_text(in, object, "sha256Fingerprint", text);
    kp_cert_fingerprint(cert, "sha1", text, sizeof(text));
    put_text(in, object, "sha1Fingerprint", text);
    put(in, object, "selfSigned", json_boolean(X509_self_signed(cert, 1) == 1));
    put_kubernetes_identity(in, object, cert);
    if (flags & EXFLAG_INVALID) {
        json_t *warnings = json_array();
        push(in, warnings,
             json_string("malformed or repeated extensions: Go's crypto/x509, and "
                         "so every Kubernetes component, refuses this "
                         "certificate"));
        put(in, object, "warnings", warnings);
    }
    ERR_clear_error();
    return object;
}

static json_t *csr_json(struct inspect *in, X509_REQ *csr)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    put_text(in, object, "kind", "certificateRequest");
    kp_name_to_string(X509_REQ_get_subject_name(csr), text, sizeof(text));
    put_text(in, object, "subject", text);
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    json_t *sans = sans_json(in, X509V3_get_d2i(extensions, NID_subject_alt_name, NULL, NULL));
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    if (sans != NULL) {
        put(in, object, "sans", sans);
    }
    EVP_PKEY *public_key = X509_REQ_get0_pubkey(csr);
    if (public_key != NULL) {
        put_key(in, object, public_key);
    } else {
        put_text(in, object, "key", "unsupported or malformed");
    }
    const X509_ALGOR *signature_algorithm = NULL;
    X509_REQ_get0_signature(csr, NULL, &signature_algorithm);
    put(in, object, "signatureAlgorithm",
        signature_json(X509_REQ_get_signature_nid(csr), signature_algorithm));
    /* Proof of possession: the requester signed it with the key it asks a certificate for. */
    put(in, object, "signatureValid",
        json_boolean(public_key != NULL && X509_REQ_verify(csr, public_key) == 1));
    ERR_clear_error();
    return object;
}

/* Every RFC 5280 §5.3.1 reason code by name, also the two kpki never writes; others by number. */
static const char *reason_name(enum kp_crl_reason reason, char *out, size_t size)
{
    if ((int)reason == 8) {
        return "removeFromCRL";
    }
    if ((int)reason == 10) {
        return "aACompromise";
    }
    if (reason != KP_CRL_UNSPECIFIED && strcmp(kp_crl_reason_name(reason), "unspecified") == 0) {
        snprintf(out, size, "reason code %d", (int)reason);
        return out;
    }
    return kp_crl_reason_name(reason);
}

static json_t *crl_json(struct inspect *in, X509_CRL *crl, struct kp_error *err)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    put_text(in, object, "kind", "crl");
    kp_name_to_string(X509_CRL_get_issuer(crl), text, sizeof(text));
    put_text(in, object, "issuer", text);
    if (X509_CRL_get0_nextUpdate(crl) != NULL) {
        put_validity(in, object, "thisUpdate", kp_crl_this_update(crl), "nextUpdate",
                     kp_crl_next_update(crl));
    } else {
        put_time(in, object, "thisUpdate", kp_crl_this_update(crl));
    }
    /* Up to 20 octets (RFC 5280 §5.2.3): an integer when it fits, else decimal text. */
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    int64_t small_number = 0;
    if (number != NULL && ASN1_INTEGER_get_int64(&small_number, number) == 1) {
        put(in, object, "crlNumber", json_integer((json_int_t)small_number));
    } else if (number != NULL) {
        BIGNUM *big_number = ASN1_INTEGER_to_BN(number, NULL);
        char *decimal = big_number != NULL ? BN_bn2dec(big_number) : NULL;
        put_text(in, object, "crlNumber", decimal != NULL ? decimal : "unreadable");
        OPENSSL_free(decimal);
        BN_free(big_number);
    }
    ASN1_INTEGER_free(number);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    if (akid != NULL && akid->keyid != NULL) {
        put(in, object, "authorityKeyId",
            hex_json(ASN1_STRING_get0_data(akid->keyid), (size_t)ASN1_STRING_length(akid->keyid)));
    }
    AUTHORITY_KEYID_free(akid);
    const X509_ALGOR *signature_algorithm = NULL;
    X509_CRL_get0_signature(crl, NULL, &signature_algorithm);
    put(in, object, "signatureAlgorithm",
        signature_json(X509_CRL_get_signature_nid(crl), signature_algorithm));
    struct kp_crl_entry *entries = NULL;
    size_t count = 0;
    if (kp_crl_entries(crl, &entries, &count, err) != KP_OK) {
        json_decref(object);
        return NULL;
    }
    json_t *list = json_array();
    char reason[32];
    for (size_t i = 0; i < count; i++) {
        json_t *entry = json_object();
        put_text(in, entry, "serial", entries[i].serial_hex);
        put_time(in, entry, "revokedAt", entries[i].revoked_at);
        put_text(in, entry, "reason", reason_name(entries[i].reason, reason, sizeof(reason)));
        push(in, list, entry);
    }
    free(entries);
    put(in, object, "entries", list);
    ERR_clear_error();
    return object;
}

/* ---- recognising DER objects ---- */

enum der_type {
    DER_CERTIFICATE,
    DER_CRL,
    DER_CSR,
    DER_PRIVATE_KEY_RSA, /* PKCS#1 */
    DER_PRIVATE_KEY_EC,  /* SEC1 */
    DER_PRIVATE_KEY_ANY, /* PKCS#8, or whatever d2i_AutoPrivateKey recognises */
    DER_ENCRYPTED_KEY,   /* PKCS#8 EncryptedPrivateKeyInfo */
    DER_PUBLIC_KEY,      /* SubjectPublicKeyInfo */
    DER_RSA_PUBLIC_KEY,  /* PKCS#1 */
};

/* PKCS#8 when der is a PrivateKeyInfo, else the key type's own format: OpenSSL reads either
 * whatever the PEM label or the caller said. */
static const char *private_key_format(const unsigned char *der, long der_len, EVP_PKEY *key)
{
    const unsigned char *cursor = der;
    PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &cursor, der_len);
    bool pkcs8 = info != NULL && cursor == der + der_len;
    PKCS8_PRIV_KEY_INFO_free(info); /* cleanses the key it holds */
    ERR_clear_error();
    if (pkcs8) {
        return "PKCS#8";
    }
    return EVP_PKEY_is_a(key, "RSA") ? "PKCS#1" : EVP_PKEY_is_a(key, "EC") ? "SEC1" : "traditional";
}

/* What was parsed, for the checks across objects (chains, key-certificate pairs). */
struct parsed {
    X509 *cert; /* a certificate, kept for the chain check; owned */
};

/* Parses der as type, requiring it to span all der_len bytes (trailing data is refused, as Go
 * refuses it). On success *out is the object's description; NULL *out means "not this type",
 * an error is only for out of memory. Private key objects are freed before returning. */
static enum kp_result der_json(struct inspect *in, enum der_type type, const unsigned char *der,
                               long der_len, json_t **out, struct parsed *parsed,
                               struct kp_error *err)
{
    *out = NULL;
    const unsigned char *cursor = der;
    const unsigned char *end = der + der_len;
    ERR_clear_error();
    switch (type) {
    case DER_CERTIFICATE: {
        X509 *cert = d2i_X509(NULL, &cursor, der_len);
        if (cert != NULL && cursor == end) {
            *out = cert_json(in, cert);
            parsed->cert = cert;
        } else {
            X509_free(cert);
        }
        break;
    }
    case DER_CRL: {
        X509_CRL *crl = d2i_X509_CRL(NULL, &cursor, der_len);
        enum kp_result rc = KP_OK;
        if (crl != NULL && cursor == end) {
            *out = crl_json(in, crl, err);
            rc = *out != NULL ? KP_OK : err->code;
        }
        X509_CRL_free(crl);
        if (rc != KP_OK) {
            return rc;
        }
        break;
    }
    case DER_CSR: {
        X509_REQ *csr = d2i_X509_REQ(NULL, &cursor, der_len);
        if (csr != NULL && cursor == end) {
            *out = csr_json(in, csr);
        }
        X509_REQ_free(csr);
        break;
    }
    case DER_PRIVATE_KEY_RSA:
    case DER_PRIVATE_KEY_EC:
    case DER_PRIVATE_KEY_ANY: {
        EVP_PKEY *key =
            type == DER_PRIVATE_KEY_ANY
                ? d2i_AutoPrivateKey(NULL, &cursor, der_len)
                : d2i_PrivateKey(type == DER_PRIVATE_KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC, NULL,
                                 &cursor, der_len);
        if (key != NULL && cursor == end) {
            *out = json_object();
            put_text(in, *out, "kind", "privateKey");
            put_text(in, *out, "format", private_key_format(der, der_len, key));
            put_key(in, *out, key);
        }
        EVP_PKEY_free(key); /* OpenSSL clears private key material when it frees it */
        break;
    }
    case DER_ENCRYPTED_KEY: {
        X509_SIG *encrypted = d2i_X509_SIG(NULL, &cursor, der_len);
        if (encrypted != NULL && cursor == end) {
            const X509_ALGOR *algorithm = NULL;
            const ASN1_OBJECT *oid = NULL;
            X509_SIG_get0(encrypted, &algorithm, NULL);
            X509_ALGOR_get0(&oid, NULL, NULL, algorithm);
            *out = json_object();
            put_text(in, *out, "kind", "encryptedPrivateKey");
            put_text(in, *out, "format", "PKCS#8");
            put(in, *out, "encryption", oid_json(oid));
        }
        X509_SIG_free(encrypted);
        break;
    }
    case DER_PUBLIC_KEY:
    case DER_RSA_PUBLIC_KEY: {
        EVP_PKEY *key = type == DER_PUBLIC_KEY
                            ? d2i_PUBKEY(NULL, &cursor, der_len)
                            : d2i_PublicKey(EVP_PKEY_RSA, NULL, &cursor, der_len);
        if (key != NULL && cursor == end) {
            *out = json_object();
            put_text(in, *out, "kind", "publicKey");
            put_text(in, *out, "format",
                     type == DER_PUBLIC_KEY ? "SubjectPublicKeyInfo" : "PKCS#1");
            put_key(in, *out, key);
        }
        EVP_PKEY_free(key);
        break;
    }
    }
    if (*out == NULL) {
        /* OpenSSL's reason stays queued for the caller's message (kp_error_openssl). */
        X509_free(parsed->cert);
        parsed->cert = NULL;
    } else {
        ERR_clear_error();
    }
    return KP_OK;
}

/* The DER type a PEM block name announces, or -1 for names kpki does not show. */
static int pem_type(const char *name)
{
    static const struct {
        const char *name;
        enum der_type type;
    } names[] = {
        {"CERTIFICATE", DER_CERTIFICATE},
        {"X509 CERTIFICATE", DER_CERTIFICATE},
        {"CERTIFICATE REQUEST", DER_CSR},
        {"NEW CERTIFICATE REQUEST", DER_CSR},
        {"X509 CRL", DER_CRL},
        {"RSA PRIVATE KEY", DER_PRIVATE_KEY_RSA},
        {"EC PRIVATE KEY", DER_PRIVATE_KEY_EC},
        {"PRIVATE KEY", DER_PRIVATE_KEY_ANY},
        {"ENCRYPTED PRIVATE KEY", DER_ENCRYPTED_KEY},
        {"PUBLIC KEY", DER_PUBLIC_KEY},
        {"RSA PUBLIC KEY", DER_RSA_PUBLIC_KEY},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i].name, name) == 0) {
            return (int)names[i].type;
        }
    }
    return -1;
}

/* ---- a file of DER or PEM objects ---- */

/* The objects of one file, with what the checks across them need. */
struct collection {
    json_t *objects;       /* array of descriptions */
    STACK_OF(X509) *certs; /* every certificate, in file order */
    json_t *cert_objects;  /* their descriptions (references), same order */
};

static void collection_wipe(struct collection *items)
{
    json_decref(items->objects);
    json_decref(items->cert_objects);
    sk_X509_pop_free(items->certs, X509_free);
    memset(items, 0, sizeof(*items));
}

static void collection_add(struct inspect *in, struct collection *items, json_t *object,
                           struct parsed *parsed)
{
    if (parsed->cert != NULL) {
        if (sk_X509_push(items->certs, parsed->cert) <= 0) {
            X509_free(parsed->cert);
            in->out_of_memory = true;
        } else {
            push(in, items->cert_objects, json_incref(object));
        }
        parsed->cert = NULL;
    }
    push(in, items->objects, object);
}

/* Checks across the objects: each certificate against the next one in the file (is it signed
 * by it? signatures only, no validity or usage), and each private key against the
 * certificates (same public key?). */
static void cross_check(struct inspect *in, struct collection *items)
{
    int cert_count = sk_X509_num(items->certs);
    for (int i = 0; cert_count > 1 && i + 1 < cert_count; i++) {
        EVP_PKEY *next_key = X509_get0_pubkey(sk_X509_value(items->certs, i + 1));
        bool signed_by_next =
            next_key != NULL && X509_verify(sk_X509_value(items->certs, i), next_key) == 1;
        put(in, json_array_get(items->cert_objects, (size_t)i), "signedByNext",
            json_boolean(signed_by_next));
    }
    ERR_clear_error();
    size_t index;
    json_t *object;
    json_array_foreach(items->objects, index, object)
    {
        const char *kind = json_string_value(json_object_get(object, "kind"));
        const char *pin = json_string_value(json_object_get(object, "publicKeySha256"));
        if (kind == NULL || strcmp(kind, "privateKey") != 0 || pin == NULL || cert_count == 0) {
            continue;
        }
        json_t *matches = json_array();
        size_t cert_index;
        json_t *cert;
        json_array_foreach(items->cert_objects, cert_index, cert)
        {
            const char *cert_pin = json_string_value(json_object_get(cert, "publicKeySha256"));
            json_t *block = json_object_get(cert, "pemBlock");
            if (cert_pin != NULL && strcmp(cert_pin, pin) == 0 && block != NULL) {
                push(in, matches, json_incref(block));
            }
        }
        put(in, object, "matchesCertificateBlocks", matches);
    }
}

/* Legacy OpenSSL encryption of a PKCS#1 or SEC1 key: "Proc-Type: 4,ENCRYPTED" and
 * "DEK-Info: AES-256-CBC,<iv>" headers. Returns the cipher name into out, or false. */
static bool legacy_encryption(const char *header, char *out, size_t size)
{
    if (header == NULL || strstr(header, "ENCRYPTED") == NULL) {
        return false;
    }
    const char *dek = strstr(header, "DEK-Info:");
    size_t len = 0;
    if (dek != NULL) {
        dek += strlen("DEK-Info:");
        dek += strspn(dek, " \t");
        len = strcspn(dek, ",\r\n");
    }
    snprintf(out, size, "%.*s", (int)(len > 64 ? 64 : len), dek != NULL ? dek : "");
    if (out[0] == '\0') {
        snprintf(out, size, "%s", "unknown");
    }
    return true;
}

/* Every PEM block of data. A block kpki knows must parse; other block types are listed as
 * unsupported. Clean text between blocks is ignored. */
static enum kp_result pem_collect(struct inspect *in, const char *data, size_t len,
                                  struct collection *items, struct kp_error *err)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    enum kp_result rc = KP_OK;
    int supported = 0;
    char first_unsupported[80] = "";
    for (int block = 1; rc == KP_OK; block++) {
        char *name = NULL;
        char *header = NULL;
        unsigned char *der = NULL;
        long der_len = 0;
        ERR_clear_error();
        /* PEM_FLAG_SECURE: the decoded bytes (perhaps a key) go to OpenSSL's secure heap and
         * are cleansed when freed. */
        if (!PEM_read_bio_ex(bio, &name, &header, &der, &der_len,
                             PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE)) {
            unsigned long last = ERR_peek_last_error();
            bool clean_end =
                ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
            if (!clean_end) {
                rc = kp_error_openssl(err, KP_ERR_INVALID,
                                      "%s: corrupt or truncated PEM (block %d)", in->what, block);
            }
            break;
        }
        int type = pem_type(name);
        char cipher[80];
        json_t *object = NULL;
        struct parsed parsed = {0};
        bool private_key = type == DER_PRIVATE_KEY_RSA || type == DER_PRIVATE_KEY_EC ||
                           type == DER_PRIVATE_KEY_ANY;
        if (private_key && legacy_encryption(header, cipher, sizeof(cipher))) {
            object = json_object();
            put_text(in, object, "kind", "encryptedPrivateKey");
            put_text(in, object, "format",
                     type == DER_PRIVATE_KEY_RSA  ? "PKCS#1"
                     : type == DER_PRIVATE_KEY_EC ? "SEC1"
                                                  : name);
            char encryption[128];
            snprintf(encryption, sizeof(encryption), "%s (legacy PEM encryption)", cipher);
            put_text(in, object, "encryption", encryption); /* header bytes: any encoding */
        } else if (type >= 0) {
            rc = der_json(in, (enum der_type)type, der, der_len, &object, &parsed, err);
            if (rc == KP_OK && object == NULL) {
                rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: PEM block %d (%s) does not parse",
                                      in->what, block, name);
            }
        } else {
            object = json_object();
            put_text(in, object, "kind", "unsupported");
            if (first_unsupported[0] == '\0') {
                snprintf(first_unsupported, sizeof(first_unsupported), "%s", name);
            }
        }
        if (object != NULL) {
            supported += type >= 0;
            put(in, object, "pemBlock", json_integer(block));
            put_text(in, object, "pemType", name);
            collection_add(in, items, object, &parsed);
        }
        OPENSSL_secure_clear_free(der, (size_t)der_len);
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (rc == KP_OK && json_array_size(items->objects) == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "%s: no complete PEM block (a '-----BEGIN' line "
                          "without its block?)",
                          in->what);
    } else if (rc == KP_OK && supported == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "%s: no block kpki can show (found '%s'; expected "
                          "a certificate, CSR, key or CRL)",
                          in->what, first_unsupported);
    }
    return rc;
}

/* One DER object: the types are tried in a fixed order; the first that parses and spans the
 * whole input wins. */
static enum kp_result der_collect(struct inspect *in, const char *data, size_t len,
                                  struct collection *items, struct kp_error *err)
{
    static const enum der_type order[] = {
        DER_CERTIFICATE,     DER_CRL,           DER_CSR,
        DER_PRIVATE_KEY_ANY, DER_ENCRYPTED_KEY, DER_PUBLIC_KEY,
        DER_RSA_PUBLIC_KEY,
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        json_t *object = NULL;
        struct parsed parsed = {0};
        enum kp_result rc =
            der_json(in, order[i], (const unsigned char *)data, (long)len, &object, &parsed, err);
        if (rc != KP_OK) {
            return rc;
        }
        if (object != NULL) {
            collection_add(in, items, object, &parsed);
            return KP_OK;
        }
    }
    ERR_clear_error();
    return kp_error_set(err, KP_ERR_INVALID,
                        "%s: not a DER certificate, CRL, CSR, private key "
                        "or public key (and not PEM, a kubeconfig or a JWT)",
                        in->what);
}

/* PEM or DER input: the objects, checked across. */
static enum kp_result describe_objects(struct inspect *in, const char *data, size_t len, bool pem,
                                       json_t *doc, struct kp_error *err)
{
    struct collection items = {json_array(), sk_X509_new_null(), json_array()};
    if (items.objects == NULL || items.certs == NULL || items.cert_objects == NULL) {
        collection_wipe(&items);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    enum kp_result rc =
        pem ? pem_collect(in, data, len, &items, err) : der_collect(in, data, len, &items, err);
    if (rc == KP_OK) {
        cross_check(in, &items);
        put_text(in, doc, "format", pem ? "pem" : "der");
        put(in, doc, "objects", json_incref(items.objects));
    }
    collection_wipe(&items);
    return rc;
}

/* ---- JWT ---- */

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
    put_text(in, object, "name", name);
    const char *uid = claim_text(reference, "uid");
    if (uid != NULL) {
        put_text(in, object, "uid", uid);
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
    put_text(in, object, "type", json_is_object(bound) ? "bound" : "legacy (secret-based)");
    put_text(in, object, "namespace", namespace_name);
    put_text(in, object, "name", name);
    if (uid != NULL) {
        put_text(in, object, "uid", uid);
    }
    put(in, object, "user", json_sprintf("system:serviceaccount:%s:%s", namespace_name, name));
    json_t *groups = json_array();
    push(in, groups, json_string("system:serviceaccounts"));
    push(in, groups, json_sprintf("system:serviceaccounts:%s", namespace_name));
    push(in, groups, json_string("system:authenticated"));
    put(in, object, "groups", groups);
    static const char *const references[] = {"pod", "node", "secret"};
    for (size_t i = 0; json_is_object(bound) && i < 3; i++) {
        json_t *reference = reference_json(in, json_object_get(bound, references[i]));
        if (reference != NULL) {
            put(in, object, references[i], reference);
        }
    }
    const char *secret = claim_text(claims, "kubernetes.io/serviceaccount/secret.name");
    if (!json_is_object(bound) && secret != NULL) {
        json_t *reference = json_object();
        put_text(in, reference, "name", secret);
        put(in, object, "secret", reference);
    }
    return object;
}

static enum kp_result describe_jwt(struct inspect *in, const char *token, size_t len, json_t *doc,
                                   struct kp_error *err)
{
    struct kp_jwt jwt;
    if (kp_jwt_decode(token, len, &jwt, err) != KP_OK) {
        return kp_error_prefix(err, "%s: not a valid JWT", in->what);
    }
    json_t *object = json_object();
    put_text(in, object, "kind", "jwt");
    put(in, object, "header", json_incref(jwt.header));
    put(in, object, "claims", json_incref(jwt.claims));
    json_t *times = json_object();
    static const char *const time_claims[] = {"iat", "nbf", "exp"};
    for (size_t i = 0; i < 3; i++) {
        int64_t when;
        if (numeric_date(jwt.claims, time_claims[i], &when)) {
            put_time(in, times, time_claims[i], when);
        }
    }
    put(in, object, "times", times);
    int64_t expiry;
    if (numeric_date(jwt.claims, "exp", &expiry)) {
        char span[32];
        bool expired = in->now >= expiry;
        put(in, object, "expired", json_boolean(expired));
        if (expired) {
            put_text(in, object, "residual", "expired");
            kp_duration_short_human(in->now - expiry, span, sizeof(span));
            put_text(in, object, "expiredAgo", span);
        } else {
            kp_duration_short_human(expiry - in->now, span, sizeof(span));
            put_text(in, object, "residual", span);
        }
    }
    json_t *account = service_account_json(in, jwt.claims);
    if (account != NULL) {
        put(in, object, "serviceAccount", account);
    }
    put(in, object, "signatureBytes", json_integer((json_int_t)jwt.signature_len));
    put(in, object, "signatureVerified", json_false());
    put_text(in, object, "note", "signature not verified");
    kp_jwt_wipe(&jwt);
    json_t *objects = json_array();
    push(in, objects, object);
    put_text(in, doc, "format", "jwt");
    put(in, doc, "objects", objects);
    return KP_OK;
}

/* ---- kubeconfig ---- */

static const char *yaml_text(struct kp_yaml_doc *yaml, int mapping, const char *key)
{
    const char *value = kp_yaml_scalar(yaml, kp_yaml_map_get(yaml, mapping, key));
    return value != NULL && value[0] != '\0' ? value : NULL;
}

static void put_yaml_text(struct inspect *in, json_t *object, const char *json_key,
                          struct kp_yaml_doc *yaml, int mapping, const char *yaml_key)
{
    const char *value = yaml_text(yaml, mapping, yaml_key);
    if (value != NULL) {
        put_text(in, object, json_key, value);
    }
}

/* The certificates of a base64 *-data field, each described. `what` names the field. */
static enum kp_result embedded_certs(struct inspect *in, const char *base64, const char *what,
                                     json_t **out, struct kp_error *err)
{
    *out = NULL;
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    STACK_OF(X509) *certs = NULL;
    enum kp_result rc = kp_base64_decode(base64, strlen(base64), &pem, &pem_len, err);
    if (rc != KP_OK) {
        rc = kp_error_prefix(err, "%s", what);
    } else {
        rc = kp_certs_parse((const char *)pem, pem_len, what, &certs, err);
    }
    if (rc == KP_OK) {
        *out = json_array();
        for (int i = 0; i < sk_X509_num(certs); i++) {
            push(in, *out, cert_json(in, sk_X509_value(certs, i)));
        }
    }
    sk_X509_pop_free(certs, X509_free);
    free(pem);
    return rc;
}

static enum kp_result kubeconfig_cluster(struct inspect *in, struct kp_yaml_doc *yaml, int entry,
                                         json_t *object, struct kp_error *err)
{
    int cluster = kp_yaml_map_get(yaml, entry, "cluster");
    put_yaml_text(in, object, "server", yaml, cluster, "server");
    put_yaml_text(in, object, "tlsServerName", yaml, cluster, "tls-server-name");
    put_yaml_text(in, object, "proxyUrl", yaml, cluster, "proxy-url");
    const char *insecure = yaml_text(yaml, cluster, "insecure-skip-tls-verify");
    if (insecure != NULL && strcmp(insecure, "true") == 0) {
        put(in, object, "insecureSkipTlsVerify", json_true());
    }
    put_yaml_text(in, object, "certificateAuthority", yaml, cluster, "certificate-authority");
    const char *ca_data = yaml_text(yaml, cluster, "certificate-authority-data");
    if (ca_data == NULL) {
        return KP_OK;
    }
    char what[512];
    snprintf(what, sizeof(what), "%s: cluster '%s': certificate-authority-data", in->what,
             json_string_value(json_object_get(object, "name")));
    json_t *certs = NULL;
    enum kp_result rc = embedded_certs(in, ca_data, what, &certs, err);
    if (rc == KP_OK) {
        put(in, object, "certificateAuthorityData", certs);
    }
    return rc;
}

/* Whether client-key-data holds the key of the client certificate. The key is decoded only to
 * compare public keys, and cleansed; a key that does not parse is reported, never shown. */
static void client_key_check(struct inspect *in, const char *base64, json_t *certs,
                             json_t *key_object)
{
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    EVP_PKEY *key = NULL;
    struct kp_error err;
    enum kp_result rc = kp_base64_decode(base64, strlen(base64), &pem, &pem_len, &err);
    if (rc == KP_OK) {
        rc = kp_key_from_pem((const char *)pem, pem_len, "client-key-data", &key, &err);
    }
    kp_secret_free(pem, pem_len);
    char pin[2 * 32 + 1];
    if (rc == KP_OK) {
        rc = kp_key_spki_sha256(key, pin, sizeof(pin), &err);
    }
    if (rc == KP_OK) {
        char description[128];
        kp_key_describe(key, description, sizeof(description));
        put_text(in, key_object, "key", description);
        const char *cert_pin =
            json_string_value(json_object_get(json_array_get(certs, 0), "publicKeySha256"));
        if (cert_pin != NULL) {
            put(in, key_object, "matchesCertificate", json_boolean(strcmp(pin, cert_pin) == 0));
        }
    } else {
        /* Messages never carry key material (kpki/error.h). */
        put_text(in, key_object, "problem", err.message);
    }
    EVP_PKEY_free(key);
    ERR_clear_error();
}

static enum kp_result kubeconfig_user(struct inspect *in, struct kp_yaml_doc *yaml, int entry,
                                      json_t *object, struct kp_error *err)
{
    int user = kp_yaml_map_get(yaml, entry, "user");
    put_yaml_text(in, object, "clientCertificate", yaml, user, "client-certificate");
    const char *cert_data = yaml_text(yaml, user, "client-certificate-data");
    json_t *certs = NULL;
    if (cert_data != NULL) {
        char what[512];
        snprintf(what, sizeof(what), "%s: user '%s': client-certificate-data", in->what,
                 json_string_value(json_object_get(object, "name")));
        enum kp_result rc = embedded_certs(in, cert_data, what, &certs, err);
        if (rc != KP_OK) {
            return rc;
        }
        put(in, object, "clientCertificateData", certs);
    }
    put_yaml_text(in, object, "clientKey", yaml, user, "client-key");
    const char *key_data = yaml_text(yaml, user, "client-key-data");
    if (key_data != NULL) {
        json_t *key = json_object();
        put(in, key, "present", json_true());
        client_key_check(in, key_data, certs, key);
        put(in, object, "clientKeyData", key);
    }
    const char *token = yaml_text(yaml, user, "token");
    if (token != NULL) {
        json_t *summary = json_object();
        put(in, summary, "present", json_true());
        put(in, summary, "length", json_integer((json_int_t)strlen(token)));
        put(in, object, "token", summary);
    }
    put_yaml_text(in, object, "tokenFile", yaml, user, "tokenFile");
    put_yaml_text(in, object, "username", yaml, user, "username");
    if (yaml_text(yaml, user, "password") != NULL) {
        json_t *summary = json_object();
        put(in, summary, "present", json_true());
        put(in, object, "password", summary);
    }
    int exec = kp_yaml_map_get(yaml, user, "exec");
    if (exec != 0) {
        json_t *summary = json_object();
        put_yaml_text(in, summary, "command", yaml, exec, "command");
        put_yaml_text(in, summary, "apiVersion", yaml, exec, "apiVersion");
        put(in, object, "exec", summary);
    }
    int provider = kp_yaml_map_get(yaml, user, "auth-provider");
    if (provider != 0) {
        json_t *summary = json_object();
        put_yaml_text(in, summary, "name", yaml, provider, "name");
        put(in, object, "authProvider", summary);
    }
    return KP_OK;
}

/* Every entry of one of the kubeconfig's lists, described by describe_entry (NULL: contexts,
 * described here). */
static enum kp_result
kubeconfig_list(struct inspect *in, struct kp_yaml_doc *yaml, int root, const char *section,
                enum kp_result (*describe_entry)(struct inspect *, struct kp_yaml_doc *, int,
                                                 json_t *, struct kp_error *),
                json_t **out, struct kp_error *err)
{
    int list = kp_yaml_map_get(yaml, root, section);
    size_t count = kp_yaml_seq_len(yaml, list);
    *out = json_array();
    if (count > KUBECONFIG_LIST_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: more than %d %s", in->what,
                            KUBECONFIG_LIST_MAX, section);
    }
    for (size_t i = 0; i < count; i++) {
        int entry = kp_yaml_seq_item(yaml, list, i);
        json_t *object = json_object();
        const char *name = yaml_text(yaml, entry, "name");
        put_text(in, object, "name", name != NULL ? name : "");
        enum kp_result rc = KP_OK;
        if (describe_entry != NULL) {
            rc = describe_entry(in, yaml, entry, object, err);
        } else {
            int context = kp_yaml_map_get(yaml, entry, "context");
            put_yaml_text(in, object, "cluster", yaml, context, "cluster");
            put_yaml_text(in, object, "user", yaml, context, "user");
            put_yaml_text(in, object, "namespace", yaml, context, "namespace");
        }
        push(in, *out, object);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* True if list holds an entry named name. */
static bool has_named(json_t *list, const char *name)
{
    size_t index;
    json_t *entry;
    json_array_foreach(list, index, entry)
    {
        const char *entry_name = json_string_value(json_object_get(entry, "name"));
        if (name != NULL && entry_name != NULL && strcmp(entry_name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* What kubectl would trip over: a current context, or a context's cluster or user, missing. */
static json_t *kubeconfig_warnings(struct inspect *in, json_t *object)
{
    json_t *warnings = json_array();
    json_t *contexts = json_object_get(object, "contexts");
    const char *current = json_string_value(json_object_get(object, "currentContext"));
    if (current == NULL) {
        push(in, warnings, json_string("no current-context"));
    } else if (!has_named(contexts, current)) {
        push(in, warnings, json_sprintf("current-context '%s' is not in contexts", current));
    }
    size_t index;
    json_t *context;
    json_array_foreach(contexts, index, context)
    {
        const char *name = json_string_value(json_object_get(context, "name"));
        const char *cluster = json_string_value(json_object_get(context, "cluster"));
        const char *user = json_string_value(json_object_get(context, "user"));
        if (!has_named(json_object_get(object, "clusters"), cluster)) {
            push(in, warnings,
                 json_sprintf("context '%s' names cluster '%s', which is not in "
                              "clusters",
                              name, cluster != NULL ? cluster : ""));
        }
        if (user != NULL && !has_named(json_object_get(object, "users"), user)) {
            push(in, warnings,
                 json_sprintf("context '%s' names user '%s', which is not in "
                              "users",
                              name, user));
        }
    }
    return warnings;
}

/* yaml is a loaded document whose root is a mapping with clusters, users or contexts. */
static enum kp_result describe_kubeconfig(struct inspect *in, struct kp_yaml_doc *yaml, json_t *doc,
                                          struct kp_error *err)
{
    int root = kp_yaml_root(yaml);
    json_t *object = json_object();
    put_text(in, object, "kind", "kubeconfig");
    put_yaml_text(in, object, "currentContext", yaml, root, "current-context");
    json_t *clusters = NULL;
    json_t *users = NULL;
    json_t *contexts = NULL;
    enum kp_result rc =
        kubeconfig_list(in, yaml, root, "clusters", kubeconfig_cluster, &clusters, err);
    if (rc == KP_OK) {
        rc = kubeconfig_list(in, yaml, root, "users", kubeconfig_user, &users, err);
    }
    if (rc == KP_OK) {
        rc = kubeconfig_list(in, yaml, root, "contexts", NULL, &contexts, err);
    }
    put(in, object, "clusters", clusters);
    put(in, object, "users", users);
    put(in, object, "contexts", contexts);
    if (rc != KP_OK) {
        json_decref(object);
        return rc;
    }
    json_t *warnings = kubeconfig_warnings(in, object);
    if (json_array_size(warnings) > 0) {
        put(in, object, "warnings", warnings);
    } else {
        json_decref(warnings);
    }
    json_t *objects = json_array();
    push(in, objects, object);
    put_text(in, doc, "format", "kubeconfig");
    put(in, doc, "objects", objects);
    return KP_OK;
}

/* ---- recognising the input ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#define EXPECTED "expected PEM or DER certificates, CSRs, keys or CRLs, a kubeconfig or a JWT"

/* True if text has `key:` or `"key"` (a kubeconfig may be written as JSON, which is YAML). */
static bool mentions_key(const char *text, const char *key)
{
    char yaml_form[32];
    char json_form[32];
    snprintf(yaml_form, sizeof(yaml_form), "%s:", key);
    snprintf(json_form, sizeof(json_form), "\"%s\"", key);
    return strstr(text, yaml_form) != NULL || strstr(text, json_form) != NULL;
}

static enum kp_result describe_input(struct inspect *in, const char *data, size_t len, json_t *doc,
                                     struct kp_error *err)
{
    put_text(in, doc, "source", in->what);
    size_t start = 0;
    size_t end = len;
    while (start < end && is_space(data[start])) {
        start++;
    }
    while (end > start && is_space(data[end - 1])) {
        end--;
    }
    if (start == end) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: empty input (%s)", in->what, EXPECTED);
    }
    if (memmem(data, len, "-----BEGIN ", strlen("-----BEGIN ")) != NULL) {
        return describe_objects(in, data, len, true, doc, err);
    }
    if ((unsigned char)data[0] == 0x30) { /* an ASN.1 SEQUENCE */
        return describe_objects(in, data, len, false, doc, err);
    }
    if (kp_jwt_looks_like(data + start, end - start)) {
        return describe_jwt(in, data + start, end - start, doc, err);
    }
    /* A kubeconfig is UTF-8 YAML; the key test avoids reporting YAML errors for text that
     * never meant to be one. */
    bool text = memchr(data, '\0', len) == NULL && kp_utf8_valid(data);
    if (text && (mentions_key(data, "clusters") || mentions_key(data, "users") ||
                 mentions_key(data, "contexts"))) {
        struct kp_yaml_doc yaml;
        enum kp_result rc = kp_yaml_load(&yaml, data, len, in->what, err);
        if (rc != KP_OK) {
            return kp_error_prefix(err, "not a valid kubeconfig"); /* the message names it */
        }
        int root = kp_yaml_root(&yaml);
        yaml_node_t *node = kp_yaml_node(&yaml, root);
        bool kubeconfig = false;
        static const char *const sections[] = {"clusters", "users", "contexts"};
        for (size_t i = 0; node != NULL && node->type == YAML_MAPPING_NODE && i < 3; i++) {
            yaml_node_t *list = kp_yaml_node(&yaml, kp_yaml_map_get(&yaml, root, sections[i]));
            kubeconfig |= list != NULL && list->type == YAML_SEQUENCE_NODE;
        }
        rc = kubeconfig ? describe_kubeconfig(in, &yaml, doc, err)
                        : kp_error_set(err, KP_ERR_INVALID,
                                       "%s: YAML, but not a kubeconfig "
                                       "(no list of clusters, users or contexts at the top "
                                       "level)",
                                       in->what);
        kp_yaml_free(&yaml);
        return rc;
    }
    return kp_error_set(err, KP_ERR_INVALID, "%s: not recognised (%s)", in->what, EXPECTED);
}

/* ---- text output, rendered from the document ---- */

/* Input-controlled text goes to a terminal: control characters are shown escaped. */
static void print_escaped(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
}

static void print_value(json_t *value)
{
    if (json_is_string(value)) {
        print_escaped(json_string_value(value), json_string_length(value));
    } else if (json_is_boolean(value)) {
        printf("%s", json_is_true(value) ? "yes" : "no");
    } else if (json_is_integer(value)) {
        printf("%lld", (long long)json_integer_value(value));
    } else if (json_is_array(value)) {
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item)
        {
            printf("%s", index > 0 ? ", " : "");
            print_value(item);
        }
        if (json_array_size(value) == 0) {
            printf("(none)");
        }
    }
}

static void print_label(int indent, const char *label)
{
    char with_colon[64];
    snprintf(with_colon, sizeof(with_colon), "%s:", label);
    int width = VALUE_COLUMN - 1 - indent;
    printf("%*s%-*s ", indent, "", width > 0 ? width : 0, with_colon);
}

/* "label: value" when object has key. */
static void print_field(int indent, const char *label, json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    if (value != NULL) {
        print_label(indent, label);
        print_value(value);
        printf("\n");
    }
}

static const char *field_text(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static void print_validity(int indent, json_t *object, const char *from_label, const char *from_key,
                           const char *until_label, const char *until_key)
{
    print_field(indent, from_label, object, from_key);
    if (json_is_true(json_object_get(object, "notYetValid"))) {
        print_label(indent, "");
        printf("not valid yet: in %s\n", field_text(object, "validIn"));
    }
    json_t *until = json_object_get(object, until_key);
    if (until == NULL) {
        return;
    }
    print_label(indent, until_label);
    print_value(until);
    if (json_is_true(json_object_get(object, "expired"))) {
        printf(" (expired %s ago)\n", field_text(object, "expiredAgo"));
    } else {
        printf(" (%s left)\n", field_text(object, "residual"));
    }
}

static void print_warnings(int indent, json_t *object)
{
    size_t index;
    json_t *warning;
    json_array_foreach(json_object_get(object, "warnings"), index, warning)
    {
        print_label(indent, "warning");
        print_value(warning);
        printf("\n");
    }
}

static void print_cert(int indent, json_t *cert)
{
    print_field(indent, "subject", cert, "subject");
    print_field(indent, "issuer", cert, "issuer");
    print_field(indent, "serial", cert, "serial");
    print_validity(indent, cert, "not before", "notBefore", "not after", "notAfter");
    json_t *sans = json_object_get(cert, "sans");
    print_field(indent, "DNS names", sans, "dns");
    print_field(indent, "IP addresses", sans, "ip");
    print_field(indent, "URIs", sans, "uri");
    print_field(indent, "email addresses", sans, "email");
    print_field(indent, "key usage", cert, "keyUsage");
    print_field(indent, "extended key usage", cert, "extKeyUsage");
    json_t *constraints = json_object_get(cert, "basicConstraints");
    print_label(indent, "CA");
    if (constraints == NULL) {
        printf("no (no basic constraints)\n");
    } else if (json_is_true(json_object_get(constraints, "ca"))) {
        json_t *path_len = json_object_get(constraints, "pathLen");
        if (path_len != NULL) {
            printf("yes (path length %lld)\n", (long long)json_integer_value(path_len));
        } else {
            printf("yes\n");
        }
    } else {
        printf("no\n");
    }
    print_field(indent, "subject key id", cert, "subjectKeyId");
    print_field(indent, "authority key id", cert, "authorityKeyId");
    print_field(indent, "key", cert, "key");
    print_field(indent, "public key SHA-256", cert, "publicKeySha256");
    print_field(indent, "signature", cert, "signatureAlgorithm");
    print_field(indent, "SHA-256 fingerprint", cert, "sha256Fingerprint");
    print_field(indent, "SHA-1 fingerprint", cert, "sha1Fingerprint");
    print_field(indent, "self-signed", cert, "selfSigned");
    json_t *identity = json_object_get(cert, "kubernetesIdentity");
    if (identity != NULL) {
        print_field(indent, "kubernetes user", identity, "user");
        print_field(indent, "kubernetes groups", identity, "groups");
    } else if (json_object_get(cert, "kubernetesIdentityProblem") != NULL) {
        print_field(indent, "kubernetes identity", cert, "kubernetesIdentityProblem");
    } else {
        print_label(indent, "kubernetes identity");
        printf("none (%s)\n", json_is_false(json_object_get(cert, "clientAuthentication"))
                                  ? "not valid for client authentication"
                                  : "no subject CN");
    }
    print_field(indent, "signed by next", cert, "signedByNext");
    print_warnings(indent, cert);
}

static void print_csr(int indent, json_t *csr)
{
    print_field(indent, "subject", csr, "subject");
    json_t *sans = json_object_get(csr, "sans");
    print_field(indent, "DNS names", sans, "dns");
    print_field(indent, "IP addresses", sans, "ip");
    print_field(indent, "URIs", sans, "uri");
    print_field(indent, "email addresses", sans, "email");
    print_field(indent, "key", csr, "key");
    print_field(indent, "public key SHA-256", csr, "publicKeySha256");
    print_field(indent, "signature", csr, "signatureAlgorithm");
    print_field(indent, "signature valid", csr, "signatureValid");
}

static void print_crl(int indent, json_t *crl)
{
    print_field(indent, "issuer", crl, "issuer");
    print_validity(indent, crl, "this update", "thisUpdate", "next update", "nextUpdate");
    print_field(indent, "CRL number", crl, "crlNumber");
    print_field(indent, "authority key id", crl, "authorityKeyId");
    print_field(indent, "signature", crl, "signatureAlgorithm");
    json_t *entries = json_object_get(crl, "entries");
    print_label(indent, "revoked");
    printf("%zu certificate%s\n", json_array_size(entries),
           json_array_size(entries) == 1 ? "" : "s");
    size_t index;
    json_t *entry;
    json_array_foreach(entries, index, entry)
    {
        printf("%*s", indent + 2, "");
        print_value(json_object_get(entry, "serial"));
        printf("  %s  %s\n", field_text(entry, "revokedAt"), field_text(entry, "reason"));
    }
}

static void print_key(int indent, json_t *key)
{
    print_field(indent, "format", key, "format");
    print_field(indent, "encryption", key, "encryption");
    print_field(indent, "key", key, "key");
    print_field(indent, "public key SHA-256", key, "publicKeySha256");
    json_t *matches = json_object_get(key, "matchesCertificateBlocks");
    if (matches != NULL) {
        print_label(indent, "matches certificate");
        if (json_array_size(matches) == 0) {
            printf("none in this file\n");
        } else {
            printf("block ");
            print_value(matches);
            printf("\n");
        }
    }
    const char *kind = field_text(key, "kind");
    if (strcmp(kind, "privateKey") == 0) {
        print_label(indent, "private key");
        printf("not shown\n");
    } else if (strcmp(kind, "encryptedPrivateKey") == 0) {
        print_label(indent, "private key");
        printf("encrypted (not decrypted, not shown)\n");
    }
}

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
        print_escaped(line, line_len);
        printf("\n");
        line += line_len + (line[line_len] == '\n');
    }
    free(text);
}

static void print_jwt(int indent, json_t *jwt)
{
    printf("%*sheader:\n", indent, "");
    print_json_block(indent + 2, json_object_get(jwt, "header"));
    printf("%*sclaims:\n", indent, "");
    print_json_block(indent + 2, json_object_get(jwt, "claims"));
    json_t *times = json_object_get(jwt, "times");
    print_field(indent, "issued at (iat)", times, "iat");
    print_field(indent, "not before (nbf)", times, "nbf");
    if (json_object_get(times, "exp") != NULL) {
        print_label(indent, "expires (exp)");
        print_value(json_object_get(times, "exp"));
        if (json_is_true(json_object_get(jwt, "expired"))) {
            printf(" (expired %s ago)\n", field_text(jwt, "expiredAgo"));
        } else {
            printf(" (%s left)\n", field_text(jwt, "residual"));
        }
    }
    json_t *account = json_object_get(jwt, "serviceAccount");
    if (account != NULL) {
        printf("%*sservice account (%s token):\n", indent, "", field_text(account, "type"));
        print_field(indent + 2, "kubernetes user", account, "user");
        print_field(indent + 2, "kubernetes groups", account, "groups");
        print_field(indent + 2, "uid", account, "uid");
        static const char *const references[] = {"pod", "node", "secret"};
        for (size_t i = 0; i < 3; i++) {
            json_t *reference = json_object_get(account, references[i]);
            if (reference != NULL) {
                print_label(indent + 2, references[i]);
                print_value(json_object_get(reference, "name"));
                if (json_object_get(reference, "uid") != NULL) {
                    printf(" (uid ");
                    print_value(json_object_get(reference, "uid"));
                    printf(")");
                }
                printf("\n");
            }
        }
    }
    print_label(indent, "signature");
    printf("%lld bytes, NOT verified\n",
           (long long)json_integer_value(json_object_get(jwt, "signatureBytes")));
}

static void print_kubeconfig(int indent, json_t *config)
{
    print_field(indent, "current context", config, "currentContext");
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(config, "clusters"), index, entry)
    {
        printf("%*scluster '", indent, "");
        print_value(json_object_get(entry, "name"));
        printf("'\n");
        print_field(indent + 2, "server", entry, "server");
        print_field(indent + 2, "TLS server name", entry, "tlsServerName");
        print_field(indent + 2, "proxy URL", entry, "proxyUrl");
        if (json_is_true(json_object_get(entry, "insecureSkipTlsVerify"))) {
            print_label(indent + 2, "warning");
            printf("insecure-skip-tls-verify: the server's certificate is not checked\n");
        }
        print_field(indent + 2, "CA file", entry, "certificateAuthority");
        size_t cert_index;
        json_t *cert;
        json_array_foreach(json_object_get(entry, "certificateAuthorityData"), cert_index, cert)
        {
            printf("%*sCA certificate %zu (embedded):\n", indent + 2, "", cert_index + 1);
            print_cert(indent + 4, cert);
        }
    }
    json_array_foreach(json_object_get(config, "users"), index, entry)
    {
        printf("%*suser '", indent, "");
        print_value(json_object_get(entry, "name"));
        printf("'\n");
        print_field(indent + 2, "client cert file", entry, "clientCertificate");
        size_t cert_index;
        json_t *cert;
        json_array_foreach(json_object_get(entry, "clientCertificateData"), cert_index, cert)
        {
            printf("%*sclient certificate%s (embedded):\n", indent + 2, "",
                   cert_index == 0 ? "" : " (chain)");
            print_cert(indent + 4, cert);
        }
        print_field(indent + 2, "client key file", entry, "clientKey");
        json_t *key = json_object_get(entry, "clientKeyData");
        if (key != NULL) {
            print_label(indent + 2, "client key");
            printf("present (not shown)");
            if (json_object_get(key, "key") != NULL) {
                printf(", %s", field_text(key, "key"));
            }
            json_t *matches = json_object_get(key, "matchesCertificate");
            if (matches != NULL) {
                printf(", %s the client certificate",
                       json_is_true(matches) ? "matches" : "DOES NOT match");
            }
            if (json_object_get(key, "problem") != NULL) {
                printf(", unusable: ");
                print_value(json_object_get(key, "problem"));
            }
            printf("\n");
        }
        json_t *token = json_object_get(entry, "token");
        if (token != NULL) {
            print_label(indent + 2, "token");
            printf("present (%lld characters)\n",
                   (long long)json_integer_value(json_object_get(token, "length")));
        }
        print_field(indent + 2, "token file", entry, "tokenFile");
        print_field(indent + 2, "username", entry, "username");
        if (json_object_get(entry, "password") != NULL) {
            print_label(indent + 2, "password");
            printf("present (not shown)\n");
        }
        print_field(indent + 2, "exec command", json_object_get(entry, "exec"), "command");
        print_field(indent + 2, "auth provider", json_object_get(entry, "authProvider"), "name");
    }
    const char *current = field_text(config, "currentContext");
    json_array_foreach(json_object_get(config, "contexts"), index, entry)
    {
        const char *name = field_text(entry, "name");
        printf("%*scontext '", indent, "");
        print_value(json_object_get(entry, "name"));
        printf("'%s\n", current != NULL && strcmp(name, current) == 0 ? " (current)" : "");
        print_field(indent + 2, "cluster", entry, "cluster");
        print_field(indent + 2, "user", entry, "user");
        print_field(indent + 2, "namespace", entry, "namespace");
    }
    print_warnings(indent, config);
}

static const char *kind_title(const char *kind)
{
    static const struct {
        const char *kind;
        const char *title;
    } titles[] = {
        {"certificate", "certificate"}, {"certificateRequest", "certificate request (CSR)"},
        {"privateKey", "private key"},  {"encryptedPrivateKey", "encrypted private key"},
        {"publicKey", "public key"},    {"crl", "certificate revocation list (CRL)"},
        {"kubeconfig", "kubeconfig"},   {"jwt", "JWT (signature not verified)"},
    };
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
        if (strcmp(titles[i].kind, kind) == 0) {
            return titles[i].title;
        }
    }
    return "unsupported";
}

static void print_text(json_t *doc)
{
    json_t *objects = json_object_get(doc, "objects");
    const char *format = field_text(doc, "format");
    bool pem = strcmp(format, "pem") == 0;
    print_escaped(field_text(doc, "source"), strlen(field_text(doc, "source")));
    if (pem) {
        printf(": PEM, %zu block%s\n", json_array_size(objects),
               json_array_size(objects) == 1 ? "" : "s");
    }
    size_t index;
    json_t *object;
    json_array_foreach(objects, index, object)
    {
        const char *kind = field_text(object, "kind");
        if (pem) {
            printf("\n[block %lld] %s",
                   (long long)json_integer_value(json_object_get(object, "pemBlock")),
                   kind_title(kind));
            if (strcmp(kind, "unsupported") == 0) {
                printf(" '");
                print_value(json_object_get(object, "pemType"));
                printf("' (not shown)");
            }
            printf("\n");
        } else {
            printf(": %s%s\n", strcmp(format, "der") == 0 ? "DER " : "", kind_title(kind));
        }
        if (strcmp(kind, "certificate") == 0) {
            print_cert(2, object);
        } else if (strcmp(kind, "certificateRequest") == 0) {
            print_csr(2, object);
        } else if (strcmp(kind, "crl") == 0) {
            print_crl(2, object);
        } else if (strcmp(kind, "privateKey") == 0 || strcmp(kind, "encryptedPrivateKey") == 0 ||
                   strcmp(kind, "publicKey") == 0) {
            print_key(2, object);
        } else if (strcmp(kind, "jwt") == 0) {
            print_jwt(2, object);
        } else if (strcmp(kind, "kubeconfig") == 0) {
            print_kubeconfig(2, object);
        }
    }
}

/* ---- the command ---- */

int kp_cmd_inspect(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {inspect_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_cli_output output = KP_CLI_OUTPUT_TEXT;
    enum kp_result rc = kp_cli_parse(argc, argv, "inspect", tables, 1, &parsed, &err);
    if (rc == KP_OK && kp_cli_has(&parsed, "help")) {
        print_help();
        return EXIT_SHOWN;
    }
    if (rc == KP_OK) {
        rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    }
    if (rc == KP_OK && parsed.positional_count != 1) {
        rc = kp_error_set(&err, KP_ERR_INVALID,
                          "give exactly one FILE, or '-' for standard "
                          "input (see kpki inspect --help)");
    }
    if (rc != KP_OK) {
        kp_cli_fail(&err);
        return EXIT_USAGE;
    }

    const char *path = parsed.positional[0];
    struct inspect in = {
        .what = strcmp(path, "-") == 0 ? "standard input" : path,
        .now = kp_clock_now(kp_clock_system()),
    };
    char *data = NULL;
    size_t len = 0;
    json_t *doc = json_object();
    rc = doc != NULL ? kp_cli_read_input(path, INPUT_MAX, &data, &len, &err)
                     : kp_error_set(&err, KP_ERR_IO, "out of memory");
    if (rc == KP_OK) {
        rc = describe_input(&in, data, len, doc, &err);
    }
    if (rc == KP_OK && in.out_of_memory) {
        rc = kp_error_set(&err, KP_ERR_IO, "%s: out of memory", in.what);
    }
    kp_secret_free(data, len); /* the input may be a private key */
    if (rc != KP_OK) {
        json_decref(doc);
        kp_cli_fail(&err);
        return EXIT_INVALID;
    }
    if (output == KP_CLI_OUTPUT_JSON) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        print_text(doc);
    }
    json_decref(doc);
    return EXIT_SHOWN;
}
