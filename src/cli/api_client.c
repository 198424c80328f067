/*
 * Talking to the API server from the CLI: a client from a kubeconfig's credentials, and JSON
 * calls whose failures become kp_results with the server's own Status message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

enum kp_result kp_cli_api_open(const char *kubeconfig, struct kp_client **client,
                               struct kp_error *err)
{
    struct kp_kubeconfig_credentials creds;
    enum kp_result rc = kp_kubeconfig_credentials_load(kubeconfig, &creds, err);
    if (rc != KP_OK) {
        return rc;
    }
    if (creds.ca_pem == NULL) {
        kp_kubeconfig_credentials_wipe(&creds);
        return kp_error_set(err, KP_ERR_INVALID, "kubeconfig '%s' has no certificate authority: "
                            "kpki never talks to an API server it cannot verify", kubeconfig);
    }
    struct kp_client_config config = {
        .server = creds.server,
        .ca_pem = (const unsigned char *)creds.ca_pem,
        .ca_len = creds.ca_len,
        .cert_pem = (const unsigned char *)creds.cert_pem,
        .cert_len = creds.cert_len,
        .key_pem = (const unsigned char *)creds.key_pem,
        .key_len = creds.key_len,
        .token = creds.token,
    };
    rc = kp_client_new(&config, client, err);
    kp_kubeconfig_credentials_wipe(&creds);
    return rc;
}

static enum kp_result status_to_result(long status)
{
    switch (status) {
    case 400:
    case 422:
        return KP_ERR_INVALID;
    case 401:
        return KP_ERR_UNAUTHENTICATED;
    case 403:
        return KP_ERR_FORBIDDEN;
    case 404:
        return KP_ERR_NOT_FOUND;
    case 409:
        return KP_ERR_CONFLICT;
    case 410:
        return KP_ERR_EXPIRED;
    case 413:
        return KP_ERR_TOO_LARGE;
    default:
        return status >= 500 ? KP_ERR_IO : KP_ERR_INTERNAL;
    }
}

enum kp_result kp_cli_api_call(struct kp_client *client, const char *method, const char *path,
                               const json_t *body, json_t **response, struct kp_error *err)
{
    if (response != NULL) {
        *response = NULL;
    }
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    struct kp_client_response answer;
    enum kp_result rc = kp_client_request(client, method, path,
                                          text != NULL ? "application/json" : NULL, text,
                                          text != NULL ? strlen(text) : 0, &answer, err);
    if (text != NULL) {
        kp_secret_free(text, strlen(text)); /* bodies may hold secrets (tokens) */
    }
    if (rc != KP_OK) {
        return rc;
    }
    json_t *doc = json_loadb(answer.body, answer.len, 0, NULL);
    if (answer.status >= 200 && answer.status < 300) {
        if (response != NULL) {
            *response = doc;
            doc = NULL;
        }
    } else {
        const char *message = json_string_value(json_object_get(doc, "message"));
        rc = kp_error_set(err, status_to_result(answer.status), "%s %s: %ld %s", method, path,
                          answer.status, message != NULL ? message : "(no Status message)");
    }
    json_decref(doc);
    kp_client_response_wipe(&answer);
    return rc;
}
