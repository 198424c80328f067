/*
 * auth/token_cache.h - verified service-account tokens, so that a token presented again skips
 * the base64 and JSON decoding and the signature check (the costly part of a JWT-authenticated
 * request). Keyed by SHA-256 of the token (the token itself is never kept); an entry lives until
 * the token's exp plus the leeway (a token without exp - a legacy Secret token - for at most
 * KP_TOKEN_CACHE_MAX_TTL). What the cache returns is only "this token's signature and times were
 * verified, and these are its claims": the authenticator still checks audiences and that the
 * service account and any bound object exist with the same UID on every request.
 *
 * A fixed number of entries in 4-way sets; a full set replaces the entry that expires first.
 * Thread-safe (a lock per set).
 */
#ifndef KP_AUTH_TOKEN_CACHE_H
#define KP_AUTH_TOKEN_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kpki/error.h"

#define KP_TOKEN_CACHE_MAX_TTL 600

struct kp_token_cache;

/* entries: rounded up to a multiple of 4 (at least 4). NULL when out of memory. */
struct kp_token_cache *kp_token_cache_new(size_t entries);
void kp_token_cache_free(struct kp_token_cache *cache); /* NULL is a no-op */

/* The claims of a cached token still valid at now (a new reference, or NULL on a miss);
 * *legacy: whether it was judged as a legacy token. cache may be NULL (always a miss). */
json_t *kp_token_cache_get(struct kp_token_cache *cache, const char *token, size_t len,
                           int64_t now, bool *legacy);

/* Remembers a verified token's claims (a reference is taken) until expires_at (unix seconds;
 * capped at now + KP_TOKEN_CACHE_MAX_TTL). Nothing happens when cache is NULL or expires_at is
 * not after now. */
void kp_token_cache_put(struct kp_token_cache *cache, const char *token, size_t len,
                        json_t *claims, bool legacy, int64_t expires_at, int64_t now);

/* Counters since creation (for tests and metrics). */
void kp_token_cache_stats(struct kp_token_cache *cache, uint64_t *hits, uint64_t *misses);

#endif
