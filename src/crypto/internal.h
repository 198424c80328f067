/*
 * crypto/internal.h - helpers shared by the files of the crypto area only (certificates, CSRs
 * and CRLs are built from the same pieces). Not for other areas: use crypto/crypto.h.
 */
#ifndef KP_CRYPTO_INTERNAL_H
#define KP_CRYPTO_INTERNAL_H

#include <openssl/x509v3.h>

#include "crypto/crypto.h"

/* Subject from tmpl: O values (one multi-valued RDN, as Go) then CN; PrintableString when a
 * value fits, else UTF8String. NULL on failure. Free with X509_NAME_free. */
X509_NAME *kp_crypto_subject(const struct kp_cert_template *tmpl);
/* tmpl's DNS names then IPs. NULL on failure. Free with GENERAL_NAMES_free. */
GENERAL_NAMES *kp_crypto_general_names(const struct kp_cert_template *tmpl);
/* SHA-384 for a P-384 signing key, else SHA-256 (Go's choice for the key). */
const EVP_MD *kp_crypto_digest_for(EVP_PKEY *signing_key);

#endif
