/*
 * net/client.h - an HTTPS client for the API (libcurl): how kpki's own commands (kpki token,
 * and the daemons of later issues) talk to an API server with the credentials of a kubeconfig.
 *
 * The server is verified against the given CA only (never the system store), its name against
 * the URL's host; the client presents a certificate and key (PEM, in memory) and/or a bearer
 * token. TLS 1.2 minimum.
 *
 * Ownership: the configuration's buffers are copied by kp_client_new. A client is used from
 * one thread at a time.
 */
#ifndef KP_NET_CLIENT_H
#define KP_NET_CLIENT_H

#include <stddef.h>

#include "kpki/error.h"

struct kp_client_config {
    const char *server;             /* "https://host:port" */
    const unsigned char *ca_pem;    /* the CA bundle to trust (required) */
    size_t ca_len;
    const unsigned char *cert_pem;  /* client certificate (chain), or NULL */
    size_t cert_len;
    const unsigned char *key_pem;   /* its key, or NULL */
    size_t key_len;
    const char *token;              /* bearer token, or NULL */
    long timeout_ms;                /* whole request; 0: 30 s */
};

struct kp_client;

KP_MUST_CHECK enum kp_result kp_client_new(const struct kp_client_config *config,
                                           struct kp_client **client, struct kp_error *err);
void kp_client_free(struct kp_client *client); /* NULL is a no-op */

struct kp_client_response {
    long status;     /* HTTP status */
    char *body;      /* NUL-terminated; free with kp_client_response_wipe */
    size_t len;
};

void kp_client_response_wipe(struct kp_client_response *response);

/* Sends method path (with query) and an optional JSON body; the response is whatever the
 * server answered (any status). Errors: KP_ERR_IO for connection and TLS failures (the
 * message names the server and libcurl's reason), KP_ERR_TOO_LARGE for a response over 64 MiB. */
KP_MUST_CHECK enum kp_result kp_client_request(struct kp_client *client, const char *method,
                                               const char *path, const char *content_type,
                                               const char *body, size_t body_len,
                                               struct kp_client_response *response,
                                               struct kp_error *err);

#endif
