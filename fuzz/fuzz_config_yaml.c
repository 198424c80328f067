/*
 * fuzz_config_yaml - the `kpki init --config` file: kp_pki_config_load_yaml (include/kpki/pki.h),
 * which runs libyaml through core/yaml.c and every setter of the option table.
 *
 * The input is passed as it is, without a terminating NUL, so an over-read past `size` is
 * caught by ASan. kp_pki_config_finalize is not called: it reads the host name and interfaces,
 * which would make the harness non-deterministic.
 *
 * Invariants checked beyond "no crash, no leak, no UB": a rejected file gives an invalid-input
 * error with a message; an accepted one leaves the config with the values the setters promise
 * (a valid node name, positive validities, a known key type, a port in range).
 */
#include "core/addr.h"
#include "fuzz.h"
#include "kpki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_pki_config config;
    struct kp_error err;
    FUZZ_CHECK(kp_pki_config_init(&config, &err) == KP_OK);
    enum kp_result rc =
        kp_pki_config_load_yaml(&config, (const char *)data, size, "fuzz.yaml", &err);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_INVALID);
        FUZZ_CHECK(err.message[0] != '\0');
    } else {
        FUZZ_CHECK(config.root != NULL && config.root[0] != '\0');
        FUZZ_CHECK(config.node_name == NULL || kp_dns1123_subdomain_valid(config.node_name));
        FUZZ_CHECK(config.dns_domain != NULL && kp_dns1123_subdomain_valid(config.dns_domain));
        FUZZ_CHECK(config.service_cidr != NULL && config.cluster_name != NULL);
        FUZZ_CHECK(config.bind_port >= 1 && config.bind_port <= 65535);
        FUZZ_CHECK(config.key_type < KP_KEY_UNKNOWN);
        FUZZ_CHECK(config.key_threads >= 0 && config.key_threads <= 256);
        FUZZ_CHECK(config.cert_validity > 0 && config.cert_validity <= KP_DURATION_MAX_SECONDS);
        FUZZ_CHECK(config.ca_validity > 0 && config.ca_validity <= KP_DURATION_MAX_SECONDS);
    }
    kp_pki_config_wipe(&config);
    return 0;
}
