/*
 * kpki inspect: certificates, certificate requests and CRLs, described into the document and
 * rendered as text. cert_json is also used for the certificates embedded in a kubeconfig.
 * Private to the inspect command (cli/inspect.h).
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect.h"
#include "core/core.h"
#include "crypto/crypto.h"

/* ---- building the document ---- */

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

/* from/until as RFC 3339, and the residual time measured from in->now: "residual" is
 * Kubernetes' short human duration until `until`, or "expired" (with "expiredAgo"). */
static void put_validity(struct inspect *in, json_t *object, const char *from_key, int64_t from,
                         const char *until_key, int64_t until)
{
    char span[32];
    inspect_put_time(in, object, from_key, from);
    inspect_put_time(in, object, until_key, until);
    bool expired = in->now >= until;
    inspect_put(in, object, "expired", json_boolean(expired));
    if (expired) {
        inspect_put_text(in, object, "residual", "expired");
        kp_duration_short_human(in->now - until, span, sizeof(span));
        inspect_put_text(in, object, "expiredAgo", span);
    } else {
        kp_duration_short_human(until - in->now, span, sizeof(span));
        inspect_put_text(in, object, "residual", span);
    }
    if (in->now < from) {
        inspect_put(in, object, "notYetValid", json_true());
        kp_duration_short_human(from - in->now, span, sizeof(span));
        inspect_put_text(in, object, "validIn", span);
    }
}

/* A signature algorithm by OpenSSL's long name ("ecdsa-with-SHA256"). */
static json_t *signature_json(int nid, const X509_ALGOR *algorithm)
{
    if (nid != NID_undef && OBJ_nid2ln(nid) != NULL) {
        return json_string(OBJ_nid2ln(nid));
    }
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, algorithm);
    return inspect_oid_json(oid);
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
            inspect_push(in, lists[0], inspect_text_json(data, len));
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
            inspect_push(in, lists[1], json_string(text));
        } else if (type == GEN_URI) {
            inspect_push(in, lists[2], inspect_text_json(data, len));
        } else if (type == GEN_EMAIL) {
            inspect_push(in, lists[3], inspect_text_json(data, len));
        }
    }
    GENERAL_NAMES_free(names);
    for (size_t i = 0; i < 4; i++) {
        if (json_array_size(lists[i]) > 0) {
            inspect_put(in, sans, keys[i], lists[i]);
        } else {
            json_decref(lists[i]);
        }
    }
    return sans;
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
    inspect_put(in, object, "clientAuthentication", json_boolean(client_auth));
    char user[1024];
    kp_cert_common_name(cert, user, sizeof(user));
    if (!client_auth || user[0] == '\0') {
        return;
    }
    struct kp_strlist organizations = {0};
    struct kp_error err;
    if (kp_cert_organizations(cert, &organizations, &err) != KP_OK) {
        /* More O values than kpki reads (KP_STRLIST_MAX): not a certificate to guess about. */
        inspect_put_text(in, object, "kubernetesIdentityProblem", err.message);
        kp_strlist_wipe(&organizations);
        return;
    }
    json_t *identity = json_object();
    json_t *groups = json_array();
    inspect_put_text(in, identity, "user", user);
    bool has_authenticated = false;
    for (size_t i = 0; i < organizations.count; i++) {
        inspect_push(in, groups,
                     inspect_text_json(organizations.items[i], strlen(organizations.items[i])));
        has_authenticated |= strcmp(organizations.items[i], "system:authenticated") == 0;
    }
    if (!has_authenticated) {
        inspect_push(in, groups, json_string("system:authenticated"));
    }
    inspect_put(in, identity, "groups", groups);
    inspect_put(in, object, "kubernetesIdentity", identity);
    kp_strlist_wipe(&organizations);
}

json_t *inspect_cert_json(struct inspect *in, X509 *cert)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    inspect_put_text(in, object, "kind", "certificate");
    kp_name_to_string(X509_get_subject_name(cert), text, sizeof(text));
    inspect_put_text(in, object, "subject", text);
    kp_name_to_string(X509_get_issuer_name(cert), text, sizeof(text));
    inspect_put_text(in, object, "issuer", text);
    kp_cert_serial_hex(cert, text, sizeof(text));
    inspect_put_text(in, object, "serial", text);
    put_validity(in, object, "notBefore", kp_cert_not_before(cert), "notAfter",
                 kp_cert_not_after(cert));
    json_t *sans = sans_json(in, X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL));
    if (sans != NULL) {
        inspect_put(in, object, "sans", sans);
    }

    uint32_t flags = X509_get_extension_flags(cert);
    uint32_t key_usage = X509_get_key_usage(cert);
    if (key_usage != UINT32_MAX) { /* UINT32_MAX: no extension */
        json_t *usages = json_array();
        for (size_t i = 0; i < sizeof(key_usage_names) / sizeof(key_usage_names[0]); i++) {
            if (key_usage & key_usage_names[i].bit) {
                inspect_push(in, usages, json_string(key_usage_names[i].name));
            }
        }
        inspect_put(in, object, "keyUsage", usages);
    }
    EXTENDED_KEY_USAGE *ext_usage = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    if (ext_usage != NULL) {
        json_t *usages = json_array();
        for (int i = 0; i < sk_ASN1_OBJECT_num(ext_usage); i++) {
            inspect_push(in, usages, inspect_oid_json(sk_ASN1_OBJECT_value(ext_usage, i)));
        }
        inspect_put(in, object, "extKeyUsage", usages);
        EXTENDED_KEY_USAGE_free(ext_usage);
    }
    if (flags & EXFLAG_BCONS) {
        json_t *constraints = json_object();
        inspect_put(in, constraints, "ca", json_boolean((flags & EXFLAG_CA) != 0));
        long path_len = X509_get_pathlen(cert);
        if (path_len >= 0) {
            inspect_put(in, constraints, "pathLen", json_integer(path_len));
        }
        inspect_put(in, object, "basicConstraints", constraints);
    }
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cert);
    if (skid != NULL) {
        inspect_put(in, object, "subjectKeyId",
                    hex_json(ASN1_STRING_get0_data(skid), (size_t)ASN1_STRING_length(skid)));
    }
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert);
    if (akid != NULL) {
        inspect_put(in, object, "authorityKeyId",
                    hex_json(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid)));
    }

    EVP_PKEY *public_key = X509_get0_pubkey(cert);
    if (public_key != NULL) {
        inspect_put_key(in, object, public_key);
    } else {
        ASN1_OBJECT *algorithm = NULL;
        X509_PUBKEY_get0_param(&algorithm, NULL, NULL, NULL, X509_get_X509_PUBKEY(cert));
        json_t *name = algorithm != NULL ? inspect_oid_json(algorithm) : NULL;
        inspect_put(in, object, "key",
                    json_sprintf("unsupported or malformed (%s)",
                                 name != NULL ? json_string_value(name) : "unknown"));
        json_decref(name);
    }
    const X509_ALGOR *signature_algorithm = NULL;
    X509_get0_signature(NULL, &signature_algorithm, cert);
    inspect_put(in, object, "signatureAlgorithm",
                signature_json(X509_get_signature_nid(cert), signature_algorithm));
    kp_cert_fingerprint(cert, "sha256", text, sizeof(text));
    inspect_put_text(in, object, "sha256Fingerprint", text);
    kp_cert_fingerprint(cert, "sha1", text, sizeof(text));
    inspect_put_text(in, object, "sha1Fingerprint", text);
    inspect_put(in, object, "selfSigned", json_boolean(X509_self_signed(cert, 1) == 1));
    put_kubernetes_identity(in, object, cert);
    if (flags & EXFLAG_INVALID) {
        json_t *warnings = json_array();
        inspect_push(in, warnings,
                     json_string("malformed or repeated extensions: Go's crypto/x509, and "
                                 "so every Kubernetes component, refuses this "
                                 "certificate"));
        inspect_put(in, object, "warnings", warnings);
    }
    ERR_clear_error();
    return object;
}

json_t *inspect_csr_json(struct inspect *in, X509_REQ *csr)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    inspect_put_text(in, object, "kind", "certificateRequest");
    kp_name_to_string(X509_REQ_get_subject_name(csr), text, sizeof(text));
    inspect_put_text(in, object, "subject", text);
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    json_t *sans = sans_json(in, X509V3_get_d2i(extensions, NID_subject_alt_name, NULL, NULL));
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    if (sans != NULL) {
        inspect_put(in, object, "sans", sans);
    }
    EVP_PKEY *public_key = X509_REQ_get0_pubkey(csr);
    if (public_key != NULL) {
        inspect_put_key(in, object, public_key);
    } else {
        inspect_put_text(in, object, "key", "unsupported or malformed");
    }
    const X509_ALGOR *signature_algorithm = NULL;
    X509_REQ_get0_signature(csr, NULL, &signature_algorithm);
    inspect_put(in, object, "signatureAlgorithm",
                signature_json(X509_REQ_get_signature_nid(csr), signature_algorithm));
    /* Proof of possession: the requester signed it with the key it asks a certificate for. */
    inspect_put(in, object, "signatureValid",
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

json_t *inspect_crl_json(struct inspect *in, X509_CRL *crl, struct kp_error *err)
{
    json_t *object = json_object();
    char text[2048];
    ERR_clear_error();
    inspect_put_text(in, object, "kind", "crl");
    kp_name_to_string(X509_CRL_get_issuer(crl), text, sizeof(text));
    inspect_put_text(in, object, "issuer", text);
    if (X509_CRL_get0_nextUpdate(crl) != NULL) {
        put_validity(in, object, "thisUpdate", kp_crl_this_update(crl), "nextUpdate",
                     kp_crl_next_update(crl));
    } else {
        inspect_put_time(in, object, "thisUpdate", kp_crl_this_update(crl));
    }
    /* Up to 20 octets (RFC 5280 §5.2.3): an integer when it fits, else decimal text. */
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    int64_t small_number = 0;
    if (number != NULL && ASN1_INTEGER_get_int64(&small_number, number) == 1) {
        inspect_put(in, object, "crlNumber", json_integer((json_int_t)small_number));
    } else if (number != NULL) {
        BIGNUM *big_number = ASN1_INTEGER_to_BN(number, NULL);
        char *decimal = big_number != NULL ? BN_bn2dec(big_number) : NULL;
        inspect_put_text(in, object, "crlNumber", decimal != NULL ? decimal : "unreadable");
        OPENSSL_free(decimal);
        BN_free(big_number);
    }
    ASN1_INTEGER_free(number);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    if (akid != NULL && akid->keyid != NULL) {
        inspect_put(
            in, object, "authorityKeyId",
            hex_json(ASN1_STRING_get0_data(akid->keyid), (size_t)ASN1_STRING_length(akid->keyid)));
    }
    AUTHORITY_KEYID_free(akid);
    const X509_ALGOR *signature_algorithm = NULL;
    X509_CRL_get0_signature(crl, NULL, &signature_algorithm);
    inspect_put(in, object, "signatureAlgorithm",
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
        inspect_put_text(in, entry, "serial", entries[i].serial_hex);
        inspect_put_time(in, entry, "revokedAt", entries[i].revoked_at);
        inspect_put_text(in, entry, "reason",
                         reason_name(entries[i].reason, reason, sizeof(reason)));
        inspect_push(in, list, entry);
    }
    free(entries);
    inspect_put(in, object, "entries", list);
    ERR_clear_error();
    return object;
}

/* ---- text output, rendered from the document ---- */

static void print_validity(int indent, json_t *object, const char *from_label, const char *from_key,
                           const char *until_label, const char *until_key)
{
    inspect_print_field(indent, from_label, object, from_key);
    if (json_is_true(json_object_get(object, "notYetValid"))) {
        inspect_print_label(indent, "");
        printf("not valid yet: in %s\n", inspect_field_text(object, "validIn"));
    }
    json_t *until = json_object_get(object, until_key);
    if (until == NULL) {
        return;
    }
    inspect_print_label(indent, until_label);
    inspect_print_value(until);
    if (json_is_true(json_object_get(object, "expired"))) {
        printf(" (expired %s ago)\n", inspect_field_text(object, "expiredAgo"));
    } else {
        printf(" (%s left)\n", inspect_field_text(object, "residual"));
    }
}

void inspect_print_cert(int indent, json_t *cert)
{
    inspect_print_field(indent, "subject", cert, "subject");
    inspect_print_field(indent, "issuer", cert, "issuer");
    inspect_print_field(indent, "serial", cert, "serial");
    print_validity(indent, cert, "not before", "notBefore", "not after", "notAfter");
    json_t *sans = json_object_get(cert, "sans");
    inspect_print_field(indent, "DNS names", sans, "dns");
    inspect_print_field(indent, "IP addresses", sans, "ip");
    inspect_print_field(indent, "URIs", sans, "uri");
    inspect_print_field(indent, "email addresses", sans, "email");
    inspect_print_field(indent, "key usage", cert, "keyUsage");
    inspect_print_field(indent, "extended key usage", cert, "extKeyUsage");
    json_t *constraints = json_object_get(cert, "basicConstraints");
    inspect_print_label(indent, "CA");
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
    inspect_print_field(indent, "subject key id", cert, "subjectKeyId");
    inspect_print_field(indent, "authority key id", cert, "authorityKeyId");
    inspect_print_field(indent, "key", cert, "key");
    inspect_print_field(indent, "public key SHA-256", cert, "publicKeySha256");
    inspect_print_field(indent, "signature", cert, "signatureAlgorithm");
    inspect_print_field(indent, "SHA-256 fingerprint", cert, "sha256Fingerprint");
    inspect_print_field(indent, "SHA-1 fingerprint", cert, "sha1Fingerprint");
    inspect_print_field(indent, "self-signed", cert, "selfSigned");
    json_t *identity = json_object_get(cert, "kubernetesIdentity");
    if (identity != NULL) {
        inspect_print_field(indent, "kubernetes user", identity, "user");
        inspect_print_field(indent, "kubernetes groups", identity, "groups");
    } else if (json_object_get(cert, "kubernetesIdentityProblem") != NULL) {
        inspect_print_field(indent, "kubernetes identity", cert, "kubernetesIdentityProblem");
    } else {
        inspect_print_label(indent, "kubernetes identity");
        printf("none (%s)\n", json_is_false(json_object_get(cert, "clientAuthentication"))
                                  ? "not valid for client authentication"
                                  : "no subject CN");
    }
    inspect_print_field(indent, "signed by next", cert, "signedByNext");
    inspect_print_warnings(indent, cert);
}

void inspect_print_csr(int indent, json_t *csr)
{
    inspect_print_field(indent, "subject", csr, "subject");
    json_t *sans = json_object_get(csr, "sans");
    inspect_print_field(indent, "DNS names", sans, "dns");
    inspect_print_field(indent, "IP addresses", sans, "ip");
    inspect_print_field(indent, "URIs", sans, "uri");
    inspect_print_field(indent, "email addresses", sans, "email");
    inspect_print_field(indent, "key", csr, "key");
    inspect_print_field(indent, "public key SHA-256", csr, "publicKeySha256");
    inspect_print_field(indent, "signature", csr, "signatureAlgorithm");
    inspect_print_field(indent, "signature valid", csr, "signatureValid");
}

void inspect_print_crl(int indent, json_t *crl)
{
    inspect_print_field(indent, "issuer", crl, "issuer");
    print_validity(indent, crl, "this update", "thisUpdate", "next update", "nextUpdate");
    inspect_print_field(indent, "CRL number", crl, "crlNumber");
    inspect_print_field(indent, "authority key id", crl, "authorityKeyId");
    inspect_print_field(indent, "signature", crl, "signatureAlgorithm");
    json_t *entries = json_object_get(crl, "entries");
    inspect_print_label(indent, "revoked");
    printf("%zu certificate%s\n", json_array_size(entries),
           json_array_size(entries) == 1 ? "" : "s");
    size_t index;
    json_t *entry;
    json_array_foreach(entries, index, entry)
    {
        printf("%*s", indent + 2, "");
        inspect_print_value(json_object_get(entry, "serial"));
        printf("  %s  %s\n", inspect_field_text(entry, "revokedAt"),
               inspect_field_text(entry, "reason"));
    }
}
