#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"
#include "core/file.h"

static const struct {
    const char *name;
    const char *kubeadm_name; /* v1beta4 encryptionAlgorithm */
    int rsa_bits;             /* 0 for ECDSA */
    const char *curve;        /* OpenSSL group name for ECDSA */
} key_types[] = {
    [KP_KEY_RSA_2048] = {"rsa-2048", "RSA-2048", 2048, NULL},
    [KP_KEY_RSA_3072] = {"rsa-3072", "RSA-3072", 3072, NULL},
    [KP_KEY_RSA_4096] = {"rsa-4096", "RSA-4096", 4096, NULL},
    [KP_KEY_ECDSA_P256] = {"ecdsa-p256", "ECDSA-P256", 0, "P-256"},
    [KP_KEY_ECDSA_P384] = {"ecdsa-p384", "ECDSA-P384", 0, "P-384"},
};

const char *kp_key_type_name(enum kp_key_type type)
{
    return type < KP_KEY_UNKNOWN ? key_types[type].name : "unknown";
}

bool kp_key_type_parse(const char *text, enum kp_key_type *type)
{
    for (int i = 0; i < KP_KEY_UNKNOWN; i++) {
        if (strcmp(text, key_types[i].name) == 0 ||
            strcasecmp(text, key_types[i].kubeadm_name) == 0) {
            *type = (enum kp_key_type)i;
            return true;
        }
    }
    return false;
}

bool kp_key_type_is_rsa(enum kp_key_type type)
{
    return type < KP_KEY_UNKNOWN && key_types[type].rsa_bits != 0;
}

enum kp_key_type kp_key_type_of(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        for (int i = 0; i < KP_KEY_UNKNOWN; i++) {
            if (key_types[i].rsa_bits == bits) {
                return (enum kp_key_type)i;
            }
        }
        return KP_KEY_UNKNOWN;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), NULL)) {
            ERR_clear_error();
            return KP_KEY_UNKNOWN;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            return KP_KEY_ECDSA_P256;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            return KP_KEY_ECDSA_P384;
        }
    }
    return KP_KEY_UNKNOWN;
}

struct kp_keygen {
    enum kp_key_type type;
    EVP_PKEY_CTX *ctx; /* ECDSA only */
};

enum kp_result kp_keygen_new(enum kp_key_type type, struct kp_keygen **out, struct kp_error *err)
{
    *out = NULL;
    if (type >= KP_KEY_UNKNOWN) {
        return kp_error_set(err, KP_ERR_INVALID, "unknown key type");
    }
    struct kp_keygen *gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    gen->type = type;
    if (key_types[type].curve != NULL) {
        ERR_clear_error();
        gen->ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (gen->ctx == NULL || EVP_PKEY_keygen_init(gen->ctx) <= 0 ||
            EVP_PKEY_CTX_set_group_name(gen->ctx, key_types[type].curve) <= 0) {
            kp_keygen_free(gen);
            return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot prepare %s key generation",
                                    key_types[type].name);
        }
    }
    *out = gen;
    return KP_OK;
}

enum kp_result kp_keygen_next(struct kp_keygen *gen, EVP_PKEY **out, struct kp_error *err)
{
    *out = NULL;
    if (gen->ctx == NULL) {
        return kp_rsa_generate(key_types[gen->type].rsa_bits, out, err);
    }
    ERR_clear_error();
    if (EVP_PKEY_generate(gen->ctx, out) <= 0) {
        *out = NULL;
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot generate an %s key",
                                key_types[gen->type].name);
    }
    return KP_OK;
}

enum kp_key_type kp_keygen_type(const struct kp_keygen *gen)
{
    return gen->type;
}

void kp_keygen_free(struct kp_keygen *gen)
{
    if (gen != NULL) {
        EVP_PKEY_CTX_free(gen->ctx);
        free(gen);
    }
}

enum kp_result kp_key_generate(enum kp_key_type type, EVP_PKEY **out, struct kp_error *err)
{
    *out = NULL;
    struct kp_keygen *gen = NULL;
    enum kp_result rc = kp_keygen_new(type, &gen, err);
    if (rc == KP_OK) {
        rc = kp_keygen_next(gen, out, err);
    }
    kp_keygen_free(gen);
    return rc;
}

void kp_secret_free(void *secret, size_t len)
{
    if (secret != NULL) {
        OPENSSL_cleanse(secret, len);
        free(secret);
    }
}

/* Copies a memory BIO's contents into a fresh NUL-terminated heap buffer. */
static enum kp_result bio_to_string(BIO *bio, char **out, size_t *len, struct kp_error *err)
{
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    if (size < 0) {
        return kp_error_set(err, KP_ERR_INTERNAL, "cannot read memory BIO");
    }
    *out = malloc((size_t)size + 1);
    if (*out == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    memcpy(*out, data, (size_t)size);
    (*out)[size] = '\0';
    *len = (size_t)size;
    return KP_OK;
}

enum kp_result kp_key_to_pem(EVP_PKEY *key, char **pem, size_t *len, struct kp_error *err)
{
    *pem = NULL;
    *len = 0;
    ERR_clear_error();
    /* BIO_s_secmem keeps the encoded key in OpenSSL's secure heap when one is configured and
     * cleanses it on free either way. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        return kp_error_openssl(err, KP_ERR_IO, "cannot encode private key");
    }
    enum kp_result rc = KP_OK;
    /* "traditional" = PKCS#1 for RSA, SEC1 for EC: what client-go's keyutil writes. */
    if (!PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode private key");
    } else {
        rc = bio_to_string(bio, pem, len, err);
    }
    BIO_free(bio);
    return rc;
}

enum kp_result kp_pubkey_to_pem(EVP_PKEY *key, char **pem, size_t *len, struct kp_error *err)
{
    *pem = NULL;
    *len = 0;
    ERR_clear_error();
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return kp_error_openssl(err, KP_ERR_IO, "cannot encode public key");
    }
    enum kp_result rc = KP_OK;
    if (!PEM_write_bio_PUBKEY(bio, key)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode public key");
    } else {
        rc = bio_to_string(bio, pem, len, err);
    }
    BIO_free(bio);
    return rc;
}

/* Refuses to prompt: an encrypted key is an error, never a terminal question. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* The DER inside the first private-key PEM block, decoded into OpenSSL's secure heap (and
 * cleansed on free): PEM_read_bio_PrivateKey would leave the key's text in ordinary freed
 * memory. *encrypted tells an encrypted first key block from an unreadable one. */
static EVP_PKEY *decode_private_key(BIO *bio, bool *encrypted)
{
    *encrypted = false;
    for (;;) {
        char *name = NULL;
        char *header = NULL;
        unsigned char *der = NULL;
        long der_len = 0;
        if (!PEM_read_bio_ex(bio, &name, &header, &der, &der_len, PEM_FLAG_SECURE |
                                                                      PEM_FLAG_EAY_COMPATIBLE)) {
            return NULL;
        }
        EVP_PKEY *key = NULL;
        int type = strcmp(name, "RSA PRIVATE KEY") == 0  ? EVP_PKEY_RSA
                   : strcmp(name, "EC PRIVATE KEY") == 0 ? EVP_PKEY_EC
                   : strcmp(name, "PRIVATE KEY") == 0    ? EVP_PKEY_NONE
                                                         : -1;
        /* PKCS#8 "ENCRYPTED PRIVATE KEY", or traditional PEM with "Proc-Type: 4,ENCRYPTED". */
        bool is_encrypted = strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 ||
                            (type != -1 && strstr(header, "ENCRYPTED") != NULL);
        const unsigned char *cursor = der;
        if (!is_encrypted && type == EVP_PKEY_NONE) {
            key = d2i_AutoPrivateKey(NULL, &cursor, der_len);
        } else if (!is_encrypted && type > 0) {
            key = d2i_PrivateKey(type, NULL, &cursor, der_len);
        }
        /* PEM_FLAG_SECURE: all three came from the secure heap (or, without one, the
         * ordinary heap; OPENSSL_secure_* frees either). */
        OPENSSL_secure_clear_free(der, (size_t)der_len);
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        if (is_encrypted) {
            *encrypted = true;
            return NULL;
        }
        if (type != -1) {
            return key; /* the first private-key block decides */
        }
    }
}

enum kp_result kp_key_from_pem(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                               struct kp_error *err)
{
    *out = NULL;
    if (strstr(pem, "PRIVATE KEY-----") == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: no PEM private key block found", what);
    }
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return kp_error_openssl(err, KP_ERR_IO, "%s: cannot read key", what);
    }
    bool encrypted = false;
    *out = decode_private_key(bio, &encrypted);
    BIO_free(bio);
    if (encrypted) {
        ERR_clear_error();
        return kp_error_set(err, KP_ERR_INVALID,
                            "%s: the private key is encrypted; kpki needs an unencrypted key",
                            what);
    }
    if (*out == NULL) {
        return kp_error_openssl(err, KP_ERR_INVALID, "%s: cannot parse the private key", what);
    }
    return KP_OK;
}

enum kp_result kp_pubkey_from_pem(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                                  struct kp_error *err)
{
    *out = NULL;
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return kp_error_openssl(err, KP_ERR_IO, "%s: cannot read key", what);
    }
    *out = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (*out == NULL) {
        return kp_error_openssl(err, KP_ERR_INVALID, "%s: cannot parse the public key", what);
    }
    return KP_OK;
}

/* A key with the public half only (a private key's public part, never the private part). */
static EVP_PKEY *public_half(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(key, &der);
    if (der_len <= 0) {
        return NULL;
    }
    const unsigned char *cursor = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &cursor, der_len);
    OPENSSL_free(der);
    return pub;
}

/* The public key of one PEM block; *skipped when the block holds no key (another type). */
static EVP_PKEY *block_public_key(const char *name, const unsigned char *der, long der_len,
                                  bool *skipped)
{
    const unsigned char *cursor = der;
    *skipped = false;
    if (strcmp(name, "PUBLIC KEY") == 0) {
        return d2i_PUBKEY(NULL, &cursor, der_len);
    }
    if (strcmp(name, "RSA PUBLIC KEY") == 0) {
        return d2i_PublicKey(EVP_PKEY_RSA, NULL, &cursor, der_len);
    }
    if (strcmp(name, "CERTIFICATE") == 0) {
        X509 *cert = d2i_X509(NULL, &cursor, der_len);
        EVP_PKEY *key = cert != NULL ? X509_get_pubkey(cert) : NULL;
        X509_free(cert);
        return key;
    }
    EVP_PKEY *private_key = NULL;
    if (strcmp(name, "RSA PRIVATE KEY") == 0) {
        private_key = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &cursor, der_len);
    } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
        private_key = d2i_PrivateKey(EVP_PKEY_EC, NULL, &cursor, der_len);
    } else if (strcmp(name, "PRIVATE KEY") == 0) {
        private_key = d2i_AutoPrivateKey(NULL, &cursor, der_len);
    } else {
        /* "EC PARAMETERS", an encrypted key, anything else: not a public key (Go skips them). */
        *skipped = true;
        return NULL;
    }
    EVP_PKEY *key = private_key != NULL ? public_half(private_key) : NULL;
    EVP_PKEY_free(private_key);
    return key;
}

static enum kp_result push_key(EVP_PKEY ***keys, size_t *count, EVP_PKEY *key,
                               struct kp_error *err)
{
    EVP_PKEY **grown = realloc(*keys, (*count + 1) * sizeof(*grown));
    if (grown == NULL) {
        EVP_PKEY_free(key);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    *keys = grown;
    (*keys)[(*count)++] = key;
    return KP_OK;
}

enum kp_result kp_pubkeys_from_pem(const char *pem, size_t len, const char *what,
                                   EVP_PKEY ***out, size_t *out_count, struct kp_error *err)
{
    *out = NULL;
    *out_count = 0;
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return kp_error_openssl(err, KP_ERR_IO, "%s: cannot read keys", what);
    }
    EVP_PKEY **keys = NULL;
    size_t count = 0;
    enum kp_result rc = KP_OK;
    for (int block = 1; rc == KP_OK; block++) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long der_len = 0;
        /* PEM_FLAG_SECURE: a private key's DER stays in the secure heap and is cleansed. */
        if (!PEM_read_bio_ex(bio, &name, &header, &der, &der_len,
                             PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE)) {
            unsigned long last = ERR_peek_last_error();
            if (!(ERR_GET_LIB(last) == ERR_LIB_PEM &&
                  ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
                rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: corrupt or truncated PEM (block %d)",
                                      what, block);
            }
            break;
        }
        bool skipped = false;
        EVP_PKEY *key = block_public_key(name, der, der_len, &skipped);
        if (key == NULL && !skipped) {
            rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: PEM block %d (%s) does not parse", what,
                                  block, name);
        } else if (key != NULL && count >= KP_PUBKEYS_MAX) {
            EVP_PKEY_free(key);
            rc = kp_error_set(err, KP_ERR_INVALID, "%s: more than %d keys", what, KP_PUBKEYS_MAX);
        } else if (key != NULL) {
            rc = push_key(&keys, &count, key, err);
        }
        OPENSSL_secure_clear_free(der, (size_t)der_len);
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (rc == KP_OK && count == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "%s: no public key, private key or certificate found", what);
    }
    if (rc != KP_OK) {
        for (size_t i = 0; i < count; i++) {
            EVP_PKEY_free(keys[i]);
        }
        free(keys);
        return rc;
    }
    *out = keys;
    *out_count = count;
    return KP_OK;
}

bool kp_key_public_equal(EVP_PKEY *a, EVP_PKEY *b)
{
    int result = EVP_PKEY_eq(a, b);
    ERR_clear_error();
    return result == 1;
}

void kp_key_describe(EVP_PKEY *key, char *out, size_t size)
{
    enum kp_key_type type = kp_key_type_of(key);
    if (EVP_PKEY_is_a(key, "RSA")) {
        snprintf(out, size, "RSA %d", EVP_PKEY_get_bits(key));
    } else if (type == KP_KEY_ECDSA_P256) {
        snprintf(out, size, "ECDSA P-256");
    } else if (type == KP_KEY_ECDSA_P384) {
        snprintf(out, size, "ECDSA P-384");
    } else {
        snprintf(out, size, "%s %d", EVP_PKEY_get0_type_name(key), EVP_PKEY_get_bits(key));
    }
}

enum kp_result kp_key_from_file(const char *path, EVP_PKEY **out, struct kp_error *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    enum kp_result rc = kp_file_read(path, KP_KEY_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_key_from_pem(text, len, path, out, err);
    }
    if (text != NULL) {
        kp_secret_free(text, len);
    }
    return rc;
}
