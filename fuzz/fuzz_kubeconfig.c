/*
 * fuzz_kubeconfig - kp_kubeconfig_parse and kp_kubeconfig_render (pki/pki.h).
 *
 * The input is passed as it is, without a terminating NUL, so an over-read past `size` is
 * caught by ASan.
 *
 * Invariant checked beyond "no crash, no leak, no UB": whatever kpki accepts it can write back,
 * and what it writes parses to the same selection: the same context, cluster, user, server,
 * file references, token and decoded credential bytes. (An empty decoded blob and an absent
 * one are the same thing: kpki writes "" for the first and reads "" as absent.)
 */
#include <stdbool.h>

#include "fuzz.h"
#include "pki/pki.h"

static bool same_string(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static bool same_bytes(const unsigned char *a, size_t a_len, const unsigned char *b, size_t b_len)
{
    if (a_len != b_len) {
        return false;
    }
    return a_len == 0 || memcmp(a, b, a_len) == 0;
}

static void check_round_trip(const struct kp_kubeconfig *parsed)
{
    struct kp_error err;
    char *rendered = NULL;
    size_t rendered_len = 0;
    if (kp_kubeconfig_render(parsed, &rendered, &rendered_len, &err) != KP_OK) {
        fprintf(stderr, "render failed: %s\n", err.message);
        abort();
    }
    FUZZ_CHECK(rendered != NULL && strlen(rendered) == rendered_len);

    struct kp_kubeconfig again;
    if (kp_kubeconfig_parse(rendered, rendered_len, "rendered", &again, &err) != KP_OK) {
        fprintf(stderr, "rendered kubeconfig does not parse: %s\n---\n%s---\n", err.message,
                rendered);
        abort();
    }
    bool same =
        same_string(parsed->context_name, again.context_name) &&
        same_string(parsed->cluster_name, again.cluster_name) &&
        same_string(parsed->user_name, again.user_name) &&
        same_string(parsed->server, again.server) && same_string(parsed->ca_file, again.ca_file) &&
        same_string(parsed->cert_file, again.cert_file) &&
        same_string(parsed->key_file, again.key_file) && same_string(parsed->token, again.token) &&
        same_bytes(parsed->ca_data, parsed->ca_len, again.ca_data, again.ca_len) &&
        same_bytes(parsed->cert_data, parsed->cert_len, again.cert_data, again.cert_len) &&
        same_bytes(parsed->key_data, parsed->key_len, again.key_data, again.key_len);
    if (!same) {
        fprintf(stderr, "kubeconfig changed in a render/parse round trip\n---\n%s---\n", rendered);
        abort();
    }
    kp_kubeconfig_wipe(&again);
    kp_secret_free(rendered, rendered_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_error err;
    struct kp_kubeconfig parsed;
    enum kp_result rc = kp_kubeconfig_parse((const char *)data, size, "fuzz.conf", &parsed, &err);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_INVALID);
        /* Parse leaves a wiped struct behind on failure; wiping again must be harmless. */
        kp_kubeconfig_wipe(&parsed);
        return 0;
    }
    FUZZ_CHECK(parsed.context_name != NULL && parsed.cluster_name != NULL &&
               parsed.user_name != NULL);
    check_round_trip(&parsed);
    kp_kubeconfig_wipe(&parsed);
    return 0;
}
