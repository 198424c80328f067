/*
 * auth/verdict_cache.h - what an authenticator concluded about a credential it checked, so that
 * the same credential presented again skips the costly part of the check:
 *  - a service-account token: its signature and times were verified, and these are its claims
 *    (the base64 and JSON decoding and the signature check are most of a JWT-authenticated
 *    request). The authenticator still checks audiences, and that the service account and any
 *    bound object exist with the same UID, on every request;
 *  - a client certificate chain: it verified against the client CA or the front-proxy CA, so a
 *    client that opens a new connection with the same certificate is not verified again. The
 *    chain's signatures are what costs.
 * Entries are keyed by a SHA-256 the caller makes of the credential (kp_verdict_key for a
 * token; the credential itself is never kept), and live until a time the caller gives, capped by the
 * cache's maximum lifetime. A cache belongs to one authenticator, that is one set of keys, CAs
 * and CRLs: a reload makes a new, empty one.
 *
 * A fixed number of entries in 4-way sets; a full set replaces the entry that expires first.
 * Thread-safe (a lock per set).
 */
#ifndef KP_AUTH_VERDICT_CACHE_H
#define KP_AUTH_VERDICT_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_VERDICT_KEY_SIZE 32

struct kp_verdict_cache;

/* entries: rounded up to a multiple of 4 (at least 4); max_ttl: seconds an entry lives at most.
 * NULL when out of memory. */
struct kp_verdict_cache *kp_verdict_cache_new(size_t entries, int64_t max_ttl);
void kp_verdict_cache_free(struct kp_verdict_cache *cache); /* NULL is a no-op */

/* The key of a credential given as one run of bytes (a token): its SHA-256. false when
 * OpenSSL could not hash (then nothing may be looked up). */
bool kp_verdict_key(const void *data, size_t len, unsigned char key[KP_VERDICT_KEY_SIZE]);

/* Whether key has an entry still valid at now. On a hit: *value is a new reference to what was
 * put (NULL when NULL was put), *flag the flag put with it, *expires_at (may be NULL) when the
 * entry ends. cache may be NULL (always a miss). */
bool kp_verdict_cache_get(struct kp_verdict_cache *cache,
                          const unsigned char key[KP_VERDICT_KEY_SIZE], int64_t now, json_t **value,
                          bool *flag, int64_t *expires_at);

/* Remembers a verdict (value may be NULL; a reference is taken) until expires_at (unix seconds;
 * capped at now + the cache's max_ttl). Nothing happens when cache is NULL or expires_at is not
 * after now. The same key again replaces its entry. */
void kp_verdict_cache_put(struct kp_verdict_cache *cache,
                          const unsigned char key[KP_VERDICT_KEY_SIZE], json_t *value, bool flag,
                          int64_t expires_at, int64_t now);

/* Lookups since creation (for tests and metrics); zeros for a NULL cache. */
void kp_verdict_cache_stats(struct kp_verdict_cache *cache, uint64_t *hits, uint64_t *misses);

#endif
