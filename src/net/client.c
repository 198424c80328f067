/*
 * The API client over libcurl (see client.h). Credentials stay in memory: libcurl's *_BLOB
 * options take the PEM buffers, so no key ever touches a temporary file.
 */
#include "net/client.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define RESPONSE_MAX (64u * 1024 * 1024)

struct kp_client {
    CURL *curl;
    char *server;
    unsigned char *ca, *cert, *key;
    size_t ca_len, cert_len, key_len;
    char *auth_header; /* "Authorization: Bearer ..." (cleansed on free) */
    long timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static unsigned char *copy(const unsigned char *data, size_t len)
{
    unsigned char *out = malloc(len ? len : 1);
    if (out && len)
        memcpy(out, data, len);
    return out;
}

enum kp_result kp_client_new(const struct kp_client_config *config, struct kp_client **out,
                             struct kp_error *err)
{
    *out = NULL;
    if (!config->server || strncmp(config->server, "https://", 8) != 0)
        return kp_error_set(err, KP_ERR_INVALID, "server '%s' is not an https:// URL",
                            config->server ? config->server : "");
    if (!config->ca_pem || !config->ca_len)
        return kp_error_set(err, KP_ERR_INVALID, "no CA to verify the server %s with",
                            config->server);
    pthread_once(&curl_once, curl_init_once);
    struct kp_client *c = calloc(1, sizeof(*c));
    if (!c)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    c->server = strdup(config->server);
    size_t slen = c->server ? strlen(c->server) : 0;
    while (slen && c->server[slen - 1] == '/')
        c->server[--slen] = '\0';
    c->ca = copy(config->ca_pem, config->ca_len);
    c->ca_len = config->ca_len;
    if (config->cert_pem) {
        c->cert = copy(config->cert_pem, config->cert_len);
        c->cert_len = config->cert_len;
    }
    if (config->key_pem) {
        c->key = copy(config->key_pem, config->key_len);
        c->key_len = config->key_len;
    }
    if (config->token) {
        size_t n = strlen(config->token) + 32;
        c->auth_header = malloc(n);
        if (c->auth_header)
            snprintf(c->auth_header, n, "Authorization: Bearer %s", config->token);
    }
    c->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 30000;
    c->curl = curl_easy_init();
    if (!c->server || !c->ca || (config->cert_pem && !c->cert) || (config->key_pem && !c->key) ||
        (config->token && !c->auth_header) || !c->curl) {
        kp_client_free(c);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    *out = c;
    return KP_OK;
}

void kp_client_free(struct kp_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->server);
    free(c->ca);
    free(c->cert);
    if (c->key)
        kp_secret_free(c->key, c->key_len);
    if (c->auth_header)
        kp_secret_free(c->auth_header, strlen(c->auth_header));
    free(c);
}

void kp_client_response_wipe(struct kp_client_response *response)
{
    /* Responses can carry tokens (TokenRequest) and Secrets. */
    if (response->body)
        OPENSSL_cleanse(response->body, response->len);
    free(response->body);
    memset(response, 0, sizeof(*response));
}

struct sink {
    char *data;
    size_t len, cap;
    bool too_large;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n + 1 > RESPONSE_MAX) {
        s->too_large = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16384;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *grown = realloc(s->data, cap);
        if (!grown)
            return 0;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

enum kp_result kp_client_request(struct kp_client *c, const char *method, const char *path,
                                 const char *content_type, const char *body, size_t body_len,
                                 struct kp_client_response *response, struct kp_error *err)
{
    memset(response, 0, sizeof(*response));
    size_t url_len = strlen(c->server) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    snprintf(url, url_len, "%s%s", c->server, path);
    CURL *curl = c->curl;
    curl_easy_reset(curl);
    struct sink sink = {0};
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    char type_header[200];
    if (content_type) {
        snprintf(type_header, sizeof(type_header), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, type_header);
    }
    if (c->auth_header)
        headers = curl_slist_append(headers, c->auth_header);
    struct curl_blob ca = {c->ca, c->ca_len, CURL_BLOB_NOCOPY};
    struct curl_blob cert = {c->cert, c->cert_len, CURL_BLOB_NOCOPY};
    struct curl_blob key = {c->key, c->key_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->cert) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (c->key) {
        curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    CURLcode code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    enum kp_result rc = KP_OK;
    if (sink.too_large) {
        rc = kp_error_set(err, KP_ERR_TOO_LARGE, "the response of %s %s is over %u bytes", method,
                          c->server, RESPONSE_MAX);
    } else if (code != CURLE_OK) {
        rc = kp_error_set(err, KP_ERR_IO, "%s %s%s: %s", method, c->server, path,
                          curl_error[0] ? curl_error : curl_easy_strerror(code));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
        response->body = sink.data ? sink.data : strdup("");
        response->len = sink.len;
        sink.data = NULL;
        if (!response->body)
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    free(sink.data);
    free(url);
    return rc;
}
