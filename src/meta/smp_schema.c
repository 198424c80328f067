/*
 * The strategic-merge schemas of the kinds kpki's API server serves, transcribed from the
 * `patchStrategy` / `patchMergeKey` struct tags of k8s.io/api (core/v1/types.go,
 * coordination/v1, rbac/v1, certificates/v1, events/v1) and k8s.io/apimachinery
 * (meta/v1 ObjectMeta). Only fields with a tag are listed: any other list is replaced whole,
 * any other map merged. A `+listType=map` marker without a patchStrategy tag does not count:
 * strategic merge patch reads the tags only (so CSR status.conditions, Node spec.taints and Pod
 * status.containerStatuses are replaced, as upstream).
 *
 * To add a kind: list its tagged fields here (paths from the object's root, '.' between field
 * names, no indices), start the table with KP_SMP_METADATA, add a row to `kinds`, and add a
 * test to tests/unit/test_meta_patch.c.
 */
#include "meta/patch.h"

#include <string.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* ObjectMeta: ownerReferences `patchStrategy:"merge" patchMergeKey:"uid"`, finalizers
 * `patchStrategy:"merge"`. */
/* clang-format off */
#define KP_SMP_METADATA                                                                            \
    {"metadata.ownerReferences", "uid", false},                                                    \
    {"metadata.finalizers", NULL, false}

/* Container and EphemeralContainerCommon: ports by containerPort, env by name, volumeMounts by
 * mountPath, volumeDevices by devicePath. envFrom, resizePolicy, command and args have no tag. */
#define KP_SMP_CONTAINER(list)                                                                     \
    {list, "name", false},                                                                         \
    {list ".ports", "containerPort", false},                                                       \
    {list ".env", "name", false},                                                                  \
    {list ".volumeMounts", "mountPath", false},                                                    \
    {list ".volumeDevices", "devicePath", false}
/* clang-format on */

static const struct kp_smp_field metadata_fields[] = {KP_SMP_METADATA};

static const struct kp_smp_field pod_fields[] = {
    KP_SMP_METADATA,
    /* PodSpec */
    {"spec.volumes", "name", true}, /* patchStrategy:"merge,retainKeys" */
    KP_SMP_CONTAINER("spec.initContainers"),
    KP_SMP_CONTAINER("spec.containers"),
    KP_SMP_CONTAINER("spec.ephemeralContainers"),
    {"spec.imagePullSecrets", "name", false},
    {"spec.hostAliases", "ip", false},
    {"spec.topologySpreadConstraints", "topologyKey", false},
    {"spec.schedulingGates", "name", false},
    {"spec.resourceClaims", "name", true}, /* patchStrategy:"merge,retainKeys" */
    /* tolerations, readinessGates, dnsConfig lists, affinity terms: no tag, replaced */
    /* PodStatus */
    {"status.conditions", "type", false},
    {"status.podIPs", "ip", false},
    {"status.hostIPs", "ip", false},
    {"status.resourceClaimStatuses", "name", true}, /* patchStrategy:"merge,retainKeys" */
    /* containerStatuses, initContainerStatuses, ephemeralContainerStatuses: no tag */
};

static const struct kp_smp_field node_fields[] = {
    KP_SMP_METADATA,
    {"spec.podCIDRs", NULL, false}, /* patchStrategy:"merge", a set */
    /* spec.taints: no tag (+listType=atomic), replaced */
    {"status.conditions", "type", false},
    {"status.addresses", "type", false},
    /* status.images, volumesInUse, volumesAttached: no tag */
};

static const struct kp_smp_field namespace_fields[] = {
    KP_SMP_METADATA,
    /* spec.finalizers: no tag, replaced */
    {"status.conditions", "type", false},
};

static const struct kp_smp_field service_account_fields[] = {
    KP_SMP_METADATA, {"secrets", "name", false},
    /* imagePullSecrets: no tag on ServiceAccount (unlike PodSpec), replaced */
};

static const struct kp_smp_schema metadata_schema = {metadata_fields, COUNT(metadata_fields)};
static const struct kp_smp_schema pod_schema = {pod_fields, COUNT(pod_fields)};
static const struct kp_smp_schema node_schema = {node_fields, COUNT(node_fields)};
static const struct kp_smp_schema namespace_schema = {namespace_fields, COUNT(namespace_fields)};
static const struct kp_smp_schema service_account_schema = {service_account_fields,
                                                            COUNT(service_account_fields)};

static const struct {
    const char *kind;
    const struct kp_smp_schema *schema;
} kinds[] = {
    {"Pod", &pod_schema},
    {"Node", &node_schema},
    {"Namespace", &namespace_schema},
    {"ServiceAccount", &service_account_schema},
    /* No tagged lists beyond metadata: Secret and ConfigMap (maps only), Event (core/v1 and
     * events.k8s.io/v1), Lease, the RBAC kinds (rules and subjects have no tag: replaced), and
     * CertificateSigningRequest (status.conditions is +listType=map without a patch tag). */
    {"Secret", &metadata_schema},
    {"ConfigMap", &metadata_schema},
    {"Event", &metadata_schema},
    {"Lease", &metadata_schema},
    {"Role", &metadata_schema},
    {"ClusterRole", &metadata_schema},
    {"RoleBinding", &metadata_schema},
    {"ClusterRoleBinding", &metadata_schema},
    {"CertificateSigningRequest", &metadata_schema},
};

const struct kp_smp_schema *kp_smp_schema_for_kind(const char *kind)
{
    for (size_t i = 0; kind != NULL && i < COUNT(kinds); i++) {
        if (strcmp(kinds[i].kind, kind) == 0) {
            return kinds[i].schema;
        }
    }
    return &metadata_schema;
}
