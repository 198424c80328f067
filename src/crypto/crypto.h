/*
 * crypto/crypto.h - keys, certificates and PEM: thin, typed wrappers over OpenSSL 3.
 *
 * Objects are OpenSSL's own (EVP_PKEY, X509); this area adds kpki's rules on top: the key
 * types kpki offers, PEM encodings as Kubernetes writes them, certificates built from a template
 * the way Go's crypto/x509 builds them for kubeadm, and questions asked of a certificate.
 * Everything here is thread-safe; nothing reads the clock (times are parameters).
 * OpenSSL's error queue is cleared before each call into it and drained into struct kp_error
 * after a failure (kp_error_openssl).
 */
#ifndef KP_CRYPTO_CRYPTO_H
#define KP_CRYPTO_CRYPTO_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- errors ---- */

/* Sets err like kp_error_set and appends the reason from OpenSSL's error queue (which is then
 * cleared): "<message>: <openssl reason>". Returns code. */
enum kp_result kp_error_openssl(struct kp_error *err, enum kp_result code, const char *fmt, ...)
    KP_PRINTF(3, 4);

/* ---- keys ---- */

enum kp_key_type {
    KP_KEY_RSA_2048,
    KP_KEY_RSA_3072,
    KP_KEY_RSA_4096,
    KP_KEY_ECDSA_P256,
    KP_KEY_ECDSA_P384,
    KP_KEY_UNKNOWN,
};

/* "rsa-2048" ... "ecdsa-p384". */
const char *kp_key_type_name(enum kp_key_type type);
/* Parses a --key-type value; also accepts kubeadm's encryptionAlgorithm spellings
 * ("RSA-2048", "ECDSA-P256"). Returns false if unknown. */
bool kp_key_type_parse(const char *text, enum kp_key_type *type);
/* The type of an existing key, or KP_KEY_UNKNOWN (e.g. RSA-1024, Ed25519). */
enum kp_key_type kp_key_type_of(EVP_PKEY *key);
bool kp_key_type_is_rsa(enum kp_key_type type);

/* Generates a new key. RSA keys come from kp_rsa_generate (see rsa_keygen.c for why).
 * On success *out is a new reference: free with EVP_PKEY_free. */
KP_MUST_CHECK enum kp_result kp_key_generate(enum kp_key_type type, EVP_PKEY **out,
                                             struct kp_error *err);

/* A generator for many keys of one type: for ECDSA it keeps one prepared EVP_PKEY_CTX, where
 * EVP_PKEY_Q_keygen would look the algorithm up again for every key (most of an ECDSA key's
 * cost in OpenSSL 3.0). Not thread-safe: one generator per thread. */
struct kp_keygen;
KP_MUST_CHECK enum kp_result kp_keygen_new(enum kp_key_type type, struct kp_keygen **out,
                                           struct kp_error *err);
/* A new key (new reference: free with EVP_PKEY_free). */
KP_MUST_CHECK enum kp_result kp_keygen_next(struct kp_keygen *gen, EVP_PKEY **out,
                                            struct kp_error *err);
enum kp_key_type kp_keygen_type(const struct kp_keygen *gen);
void kp_keygen_free(struct kp_keygen *gen);

/* RSA key of `bits` (2048, 3072 or 4096) with e = 65537, primes from OpenSSL's prime
 * generator, assembled and checked per FIPS 186-5 A.1.3 rules. */
KP_MUST_CHECK enum kp_result kp_rsa_generate(int bits, EVP_PKEY **out, struct kp_error *err);

/* Private key as Kubernetes writes it: RSA as PKCS#1 "RSA PRIVATE KEY", ECDSA as SEC1
 * "EC PRIVATE KEY". *pem is heap memory (free with kp_secret_free(pem, len)). */
KP_MUST_CHECK enum kp_result kp_key_to_pem(EVP_PKEY *key, char **pem, size_t *len,
                                           struct kp_error *err);
/* Public key as PKIX "PUBLIC KEY". *pem: free with free(). */
KP_MUST_CHECK enum kp_result kp_pubkey_to_pem(EVP_PKEY *key, char **pem, size_t *len,
                                              struct kp_error *err);
/* Reads the first private key in NUL-terminated PEM text: PKCS#1, SEC1 or unencrypted PKCS#8. An encrypted key
 * is KP_ERR_INVALID. `what` names the source in messages. *out: free with EVP_PKEY_free. */
KP_MUST_CHECK enum kp_result kp_key_from_pem(const char *pem, size_t len, const char *what,
                                             EVP_PKEY **out, struct kp_error *err);
/* kp_key_from_pem on the file at path (at most KP_KEY_FILE_MAX bytes; the text is wiped after
 * reading). Messages name path. *out: free with EVP_PKEY_free. */
#define KP_KEY_FILE_MAX (1024 * 1024)
KP_MUST_CHECK enum kp_result kp_key_from_file(const char *path, EVP_PKEY **out,
                                              struct kp_error *err);
/* Reads a PKIX public key ("PUBLIC KEY") or PKCS#1 "RSA PUBLIC KEY". */
KP_MUST_CHECK enum kp_result kp_pubkey_from_pem(const char *pem, size_t len, const char *what,
                                                EVP_PKEY **out, struct kp_error *err);
/* Every public key of PEM text, in order, as upstream's keyutil.ParsePublicKeysPEM reads a
 * --service-account-key-file: "PUBLIC KEY" and "RSA PUBLIC KEY" blocks, certificates' keys, and
 * the public half of private keys (PKCS#1, SEC1, PKCS#8; the private part is not kept). Blocks of
 * other types ("EC PARAMETERS", encrypted keys) are skipped; a key or certificate block that does
 * not parse is KP_ERR_INVALID naming the block (Go skips it: kpki does not drop a key silently);
 * no key at all, or more than KP_PUBKEYS_MAX, is KP_ERR_INVALID. *keys: an array of *count new
 * references (ownership transferred: EVP_PKEY_free each, then free the array). */
#define KP_PUBKEYS_MAX 64
KP_MUST_CHECK enum kp_result kp_pubkeys_from_pem(const char *pem, size_t len, const char *what,
                                                 EVP_PKEY ***keys, size_t *count,
                                                 struct kp_error *err);
/* True if both hold the same public key. */
bool kp_key_public_equal(EVP_PKEY *a, EVP_PKEY *b);
/* "RSA 2048", "ECDSA P-256". */
void kp_key_describe(EVP_PKEY *key, char *out, size_t size);

/* Cleanses and frees secret memory. NULL is a no-op. */
void kp_secret_free(void *secret, size_t len);

/* ---- certificates ---- */

enum {
    KP_KU_DIGITAL_SIGNATURE = 1u << 0,
    KP_KU_KEY_ENCIPHERMENT = 1u << 1,
    KP_KU_CERT_SIGN = 1u << 2,
    KP_KU_CRL_SIGN = 1u << 3,
};

enum {
    KP_EKU_SERVER_AUTH = 1u << 0,
    KP_EKU_CLIENT_AUTH = 1u << 1,
};

/* What to put in a certificate. All pointers are borrowed for the duration of kp_cert_issue. */
struct kp_cert_template {
    const char *common_name;
    const char *const *organizations; /* may be NULL when organization_count is 0 */
    size_t organization_count;
    const char *const *dns_names;
    size_t dns_count;
    const struct kp_ip *ips;
    size_t ip_count;
    bool is_ca;
    unsigned key_usage;     /* KP_KU_* */
    unsigned ext_key_usage; /* KP_EKU_*; 0 = no extension */
    int64_t not_before;     /* unix seconds */
    int64_t not_after;
    /* 0: a random serial in [1, 2^63-1) as kubeadm draws it; otherwise this value. */
    uint64_t serial;
};

/* Builds and signs a certificate for subject_key. issuer_cert NULL means self-signed (signed with
 * subject_key; issuer_key ignored). Extensions in Go's order: KeyUsage (critical), ExtKeyUsage,
 * BasicConstraints (critical), SubjectKeyIdentifier (CAs), AuthorityKeyIdentifier (when an
 * issuer has an SKID), SubjectAltName. Subject: O then CN. Digest by the signing key: SHA-256,
 * or SHA-384 for a P-384 key. *out: free with X509_free.
 * The result is complete for encoding, for signing other certificates with issuer_key, and for
 * every kp_cert_* question except one: for an ECDSA subject key its public key is written
 * straight into the SubjectPublicKeyInfo (see set_public_key in cert.c for why), so OpenSSL's
 * cached EVP_PKEY is absent - X509_get0_pubkey() returns NULL, and kp_cert_matches_key and
 * chain verification with it as the anchor fail. Pass it through kp_cert_reload() first when
 * it must be verified against (an issuer re-issued while checking what it signed). */
KP_MUST_CHECK enum kp_result kp_cert_issue(const struct kp_cert_template *tmpl,
                                           EVP_PKEY *subject_key, X509 *issuer_cert,
                                           EVP_PKEY *issuer_key, X509 **out,
                                           struct kp_error *err);

/* Replaces *cert by a copy parsed from its own DER encoding, so that every OpenSSL accessor
 * works on it (see kp_cert_issue). On failure *cert is left as it was. */
KP_MUST_CHECK enum kp_result kp_cert_reload(X509 **cert, struct kp_error *err);

/* PEM "CERTIFICATE" block. *pem: free with free(). */
KP_MUST_CHECK enum kp_result kp_cert_to_pem(X509 *cert, char **pem, size_t *len,
                                            struct kp_error *err);
/* Reads every CERTIFICATE block of PEM text in order (leaf first). At least one is required.
 * *out: free with OSSL_STACK_OF_X509_free / sk_X509_pop_free(out, X509_free). */
KP_MUST_CHECK enum kp_result kp_certs_from_pem(const char *pem, size_t len, const char *what,
                                               STACK_OF(X509) **out, struct kp_error *err);
/* Like kp_certs_from_pem, but also accepts one DER certificate (input starting with a SEQUENCE
 * tag, 0x30; nothing may follow it). */
KP_MUST_CHECK enum kp_result kp_certs_parse(const char *data, size_t len, const char *what,
                                            STACK_OF(X509) **out, struct kp_error *err);
/* Every CRL of PEM text, or one DER CRL. At least one is required. *out: free with
 * sk_X509_CRL_pop_free(out, X509_CRL_free). */
KP_MUST_CHECK enum kp_result kp_crls_parse(const char *data, size_t len, const char *what,
                                           STACK_OF(X509_CRL) **out, struct kp_error *err);

/* Convenience: the first certificate of PEM text. *out: free with X509_free. */
KP_MUST_CHECK enum kp_result kp_cert_from_pem(const char *pem, size_t len, const char *what,
                                              X509 **out, struct kp_error *err);

/* Subject CN into out ("" if none). */
void kp_cert_common_name(X509 *cert, char *out, size_t size);
/* Appends every subject O value to list. */
KP_MUST_CHECK enum kp_result kp_cert_organizations(X509 *cert, struct kp_strlist *list,
                                                   struct kp_error *err);
/* Appends SAN DNS names to dns and SAN IPs (as text) to ips; either may be NULL. */
KP_MUST_CHECK enum kp_result kp_cert_sans(X509 *cert, struct kp_strlist *dns,
                                          struct kp_strlist *ips, struct kp_error *err);
int64_t kp_cert_not_before(X509 *cert);
int64_t kp_cert_not_after(X509 *cert);
bool kp_cert_is_ca(X509 *cert);
/* KP_EKU_* bits present; *has_extension tells an absent extension from an empty one. */
unsigned kp_cert_ext_key_usage(X509 *cert, bool *has_extension);
unsigned kp_cert_key_usage(X509 *cert);
/* True if cert's SANs cover the DNS name (wildcards honoured, never the CN), or the IP. */
bool kp_cert_covers_dns(X509 *cert, const char *name);
bool kp_cert_covers_ip(X509 *cert, const struct kp_ip *ip);
/* True if the certificate's public key is key's. */
bool kp_cert_matches_key(X509 *cert, EVP_PKEY *key);

/* For kp_cert_verify_chain: check signatures and chain structure only, not validity periods. */
#define KP_VERIFY_ANY_TIME INT64_MIN

/* Verifies that leaf chains to exactly the trust anchor ca (through untrusted intermediates,
 * which may be NULL) at time at (or KP_VERIFY_ANY_TIME). Sets *ok and, when rejected, a one-line reason in reason.
 * Returns KP_OK when the check ran, whatever its verdict; an error only if it could not run. */
KP_MUST_CHECK enum kp_result kp_cert_verify_chain(X509 *leaf, X509 *ca,
                                                  STACK_OF(X509) *untrusted, int64_t at, bool *ok,
                                                  char *reason, size_t reason_size,
                                                  struct kp_error *err);

/* Re-issues a certificate from an existing one, as kubeadm's renewal does but keeping more: the
 * subject (its exact encoding), and the SubjectAltName, KeyUsage, ExtendedKeyUsage and
 * BasicConstraints extensions are copied byte for byte from `existing`; serial (random), key
 * (subject_key), validity and the AuthorityKeyIdentifier are new. *out: free with X509_free;
 * the kp_cert_issue note on ECDSA public keys applies. */
KP_MUST_CHECK enum kp_result kp_cert_reissue(X509 *existing, EVP_PKEY *subject_key,
                                             X509 *issuer_cert, EVP_PKEY *issuer_key,
                                             int64_t not_before, int64_t not_after, X509 **out,
                                             struct kp_error *err);

/* RFC 2253 text, most specific first: "CN=system:node:n1,O=system:nodes". */
void kp_name_to_string(const X509_NAME *name, char *out, size_t size);
/* Serial as upper-case hex without separators ("0C17683FB1549F40"). */
void kp_cert_serial_hex(X509 *cert, char *out, size_t size);
/* Hex digest (lower case, colon-free) of the DER certificate, with "sha256" or "sha1". */
void kp_cert_fingerprint(X509 *cert, const char *digest, char *out, size_t size);
/* SHA-256 hex of a public key's SubjectPublicKeyInfo DER (kubeadm's discovery pin format
 * without the "sha256:" prefix). */
KP_MUST_CHECK enum kp_result kp_key_spki_sha256(EVP_PKEY *key, char *out, size_t size,
                                                struct kp_error *err);

/* ---- certificate signing requests (PKCS#10) ---- */

/* A CSR with CN, O values and DNS/IP SANs only, no usages (what kubeadm certs generate-csr
 * writes; the signer applies the usages). tmpl's key usage, validity and CA fields are ignored.
 * *out: free with X509_REQ_free. */
KP_MUST_CHECK enum kp_result kp_csr_create(const struct kp_cert_template *tmpl, EVP_PKEY *key,
                                           X509_REQ **out, struct kp_error *err);
/* PEM "CERTIFICATE REQUEST". *pem: free with free(). */
KP_MUST_CHECK enum kp_result kp_csr_to_pem(X509_REQ *csr, char **pem, size_t *len,
                                           struct kp_error *err);
/* The first CERTIFICATE REQUEST block of PEM text, or a DER request when the input starts with
 * a SEQUENCE tag (0x30; nothing may follow it). *out: free with X509_REQ_free. */
KP_MUST_CHECK enum kp_result kp_csr_from_pem(const char *pem, size_t len, const char *what,
                                             X509_REQ **out, struct kp_error *err);
/* SANs requested in the CSR's extensionRequest attribute; either list may be NULL. */
KP_MUST_CHECK enum kp_result kp_csr_sans(X509_REQ *csr, struct kp_strlist *dns,
                                         struct kp_strlist *ips, struct kp_error *err);

/* ---- certificate revocation lists ---- */

/* RFC 5280 §5.3.1 reason codes kpki accepts by name. */
enum kp_crl_reason {
    KP_CRL_UNSPECIFIED = 0,
    KP_CRL_KEY_COMPROMISE = 1,
    KP_CRL_CA_COMPROMISE = 2,
    KP_CRL_AFFILIATION_CHANGED = 3,
    KP_CRL_SUPERSEDED = 4,
    KP_CRL_CESSATION_OF_OPERATION = 5,
    KP_CRL_CERTIFICATE_HOLD = 6,
    KP_CRL_PRIVILEGE_WITHDRAWN = 9,
};

/* "keyCompromise" ...; false if unknown (removeFromCRL and aACompromise are not offered). */
bool kp_crl_reason_parse(const char *text, enum kp_crl_reason *reason);
/* The name of any reason code found in a CRL ("removeFromCRL", "aACompromise" too), or
 * "unknown". */
const char *kp_crl_reason_name(enum kp_crl_reason reason);

struct kp_crl_entry {
    char serial_hex[80]; /* upper-case hex */
    int64_t revoked_at;
    enum kp_crl_reason reason;
};

/* Builds and signs a v2 CRL: issuer = ca's subject, AuthorityKeyIdentifier, CRLNumber = number,
 * one entry per revoked serial with its date and (unless unspecified) a reasonCode extension.
 * Digest by the CA key as for certificates. *out: free with X509_CRL_free. */
KP_MUST_CHECK enum kp_result kp_crl_build(X509 *ca, EVP_PKEY *ca_key,
                                          const struct kp_crl_entry *entries, size_t count,
                                          uint64_t number, int64_t this_update,
                                          int64_t next_update, X509_CRL **out,
                                          struct kp_error *err);
/* PEM "X509 CRL". *pem: free with free(). */
KP_MUST_CHECK enum kp_result kp_crl_to_pem(X509_CRL *crl, char **pem, size_t *len,
                                           struct kp_error *err);
/* A CRL from PEM, or from DER when the input starts with a SEQUENCE tag (0x30; nothing may
 * follow the DER object). *out: X509_CRL_free. */
KP_MUST_CHECK enum kp_result kp_crl_from_pem(const char *pem, size_t len, const char *what,
                                             X509_CRL **out, struct kp_error *err);
/* The CRL's entries (allocated array, free with free()), its number (0 if absent) and times. */
KP_MUST_CHECK enum kp_result kp_crl_entries(X509_CRL *crl, struct kp_crl_entry **entries,
                                            size_t *count, struct kp_error *err);
uint64_t kp_crl_number(X509_CRL *crl);
int64_t kp_crl_this_update(X509_CRL *crl);
int64_t kp_crl_next_update(X509_CRL *crl);
/* True if crl was signed by ca's key (and names ca's subject as issuer). */
bool kp_crl_signed_by(X509_CRL *crl, X509 *ca);
/* True if cert's serial is listed (the caller checks the CRL belongs to cert's issuer). */
bool kp_crl_lists(X509_CRL *crl, X509 *cert);

/* ---- base64 ---- */

/* Standard base64 without line breaks. *out: free with free(). */
KP_MUST_CHECK enum kp_result kp_base64_encode(const void *data, size_t len, char **out,
                                              size_t *out_len, struct kp_error *err);
/* Decodes standard base64 (whitespace ignored, padding required). *out is NUL-terminated (not
 * counted in *out_len); free with free(). */
KP_MUST_CHECK enum kp_result kp_base64_decode(const char *text, size_t len, unsigned char **out,
                                              size_t *out_len, struct kp_error *err);

#endif
