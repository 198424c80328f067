/*
 * net/net.h - network pieces: for now, fetching the certificate a TLS server presents (what
 * `kpki renew --confirm` compares with the renewed files). The HTTPS server and client of the
 * daemons will live here too.
 */
#ifndef KP_NET_NET_H
#define KP_NET_NET_H

#include <openssl/x509.h>

#include "crypto/crypto.h"

/* Connects to host:port (a DNS name or an IP address), starts a TLS handshake (TLS 1.2 or
 * later, SNI = host when it is a name) and returns the leaf certificate the server presents -
 * also when the handshake then fails because the server wants a client certificate. Nothing is
 * verified: the caller compares what it got. timeout_ms bounds the whole exchange.
 * *leaf: free with X509_free. Errors: KP_ERR_IO (connect, timeout, no certificate),
 * KP_ERR_INVALID (host). */
KP_MUST_CHECK enum kp_result kp_net_peer_certificate(const char *host, int port, int timeout_ms,
                                                     X509 **leaf, struct kp_error *err);

/* Splits "https://HOST:PORT" (port 443 when absent; IPv6 in brackets). */
KP_MUST_CHECK enum kp_result kp_net_parse_https_url(const char *url, char *host,
                                                    size_t host_size, int *port,
                                                    struct kp_error *err);

#endif
