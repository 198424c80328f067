/*
 * kpki inspect: PEM and DER input. Each PEM block (or the one DER object) is recognised and
 * described: certificates, CSRs and CRLs (by inspect_cert.c), private keys, encrypted keys and
 * public keys (here); then the checks across the objects of one file (a chain's signatures, a
 * key against the certificates). Also the text rendering of keys. Private to the inspect
 * command (cli/inspect.h).
 */
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "cli/inspect.h"
#include "core/core.h"
#include "crypto/crypto.h"

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
            *out = inspect_cert_json(in, cert);
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
            *out = inspect_crl_json(in, crl, err);
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
            *out = inspect_csr_json(in, csr);
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
            inspect_put_text(in, *out, "kind", "privateKey");
            inspect_put_text(in, *out, "format", private_key_format(der, der_len, key));
            inspect_put_key(in, *out, key);
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
            inspect_put_text(in, *out, "kind", "encryptedPrivateKey");
            inspect_put_text(in, *out, "format", "PKCS#8");
            inspect_put(in, *out, "encryption", inspect_oid_json(oid));
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
            inspect_put_text(in, *out, "kind", "publicKey");
            inspect_put_text(in, *out, "format",
                             type == DER_PUBLIC_KEY ? "SubjectPublicKeyInfo" : "PKCS#1");
            inspect_put_key(in, *out, key);
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
    json_t *objects;        /* array of descriptions */
    STACK_OF(X509) * certs; /* every certificate, in file order */
    json_t *cert_objects;   /* their descriptions (references), same order */
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
            inspect_push(in, items->cert_objects, json_incref(object));
        }
        parsed->cert = NULL;
    }
    inspect_push(in, items->objects, object);
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
        inspect_put(in, json_array_get(items->cert_objects, (size_t)i), "signedByNext",
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
                inspect_push(in, matches, json_incref(block));
            }
        }
        inspect_put(in, object, "matchesCertificateBlocks", matches);
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
            inspect_put_text(in, object, "kind", "encryptedPrivateKey");
            inspect_put_text(in, object, "format",
                             type == DER_PRIVATE_KEY_RSA  ? "PKCS#1"
                             : type == DER_PRIVATE_KEY_EC ? "SEC1"
                                                          : name);
            char encryption[128];
            snprintf(encryption, sizeof(encryption), "%s (legacy PEM encryption)", cipher);
            inspect_put_text(in, object, "encryption", encryption); /* header bytes: any encoding */
        } else if (type >= 0) {
            rc = der_json(in, (enum der_type)type, der, der_len, &object, &parsed, err);
            if (rc == KP_OK && object == NULL) {
                rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: PEM block %d (%s) does not parse",
                                      in->what, block, name);
            }
        } else {
            object = json_object();
            inspect_put_text(in, object, "kind", "unsupported");
            if (first_unsupported[0] == '\0') {
                snprintf(first_unsupported, sizeof(first_unsupported), "%s", name);
            }
        }
        if (object != NULL) {
            supported += type >= 0;
            inspect_put(in, object, "pemBlock", json_integer(block));
            inspect_put_text(in, object, "pemType", name);
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
enum kp_result inspect_describe_objects(struct inspect *in, const char *data, size_t len, bool pem,
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
        inspect_put_text(in, doc, "format", pem ? "pem" : "der");
        inspect_put(in, doc, "objects", json_incref(items.objects));
    }
    collection_wipe(&items);
    return rc;
}

/* ---- text output, rendered from the document ---- */

void inspect_print_key(int indent, json_t *key)
{
    inspect_print_field(indent, "format", key, "format");
    inspect_print_field(indent, "encryption", key, "encryption");
    inspect_print_field(indent, "key", key, "key");
    inspect_print_field(indent, "public key SHA-256", key, "publicKeySha256");
    json_t *matches = json_object_get(key, "matchesCertificateBlocks");
    if (matches != NULL) {
        inspect_print_label(indent, "matches certificate");
        if (json_array_size(matches) == 0) {
            printf("none in this file\n");
        } else {
            printf("block ");
            inspect_print_value(matches);
            printf("\n");
        }
    }
    const char *kind = inspect_field_text(key, "kind");
    if (strcmp(kind, "privateKey") == 0) {
        inspect_print_label(indent, "private key");
        printf("not shown\n");
    } else if (strcmp(kind, "encryptedPrivateKey") == 0) {
        inspect_print_label(indent, "private key");
        printf("encrypted (not decrypted, not shown)\n");
    }
}
