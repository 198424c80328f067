/*
 * The certificate table: every file of the tree kpki builds, one row each.
 * Values: ../shared/docs/k8s-pki-facts.md §0-§2 (kubeadm certlist.go, kubeconfig.go,
 * constants.go) and §4 (the kubelet's certificate store). docs/pki-tree.md renders this table
 * for people; tests/unit/test_pki_spec.c pins every row.
 */
#include <string.h>

#include "pki/pki.h"

#define PKI KP_PKI_DIR "/"
#define KCFG KP_KUBECONFIG_DIR "/"
#define KUBELET KP_KUBELET_PKI_DIR "/"
#define SERVER KP_EKU_SERVER_AUTH
#define CLIENT KP_EKU_CLIENT_AUTH

static const struct kp_cert_spec specs[] = {
    /* name, kind, file, ca, CN, O, SANs, EKU, KU, server, client, flags, description */
    {"ca", KP_ART_CA, PKI "ca", NULL, "kubernetes", NULL, KP_SAN_CA_NAME, 0, KP_KU_RULE_CA,
     KP_SERVER_NONE, NULL, KP_SPEC_SHARED, "cluster CA: signs the API server, its clients, kubelets"},
    {"apiserver", KP_ART_CERT, PKI "apiserver", "ca", "kube-apiserver", NULL, KP_SAN_APISERVER,
     SERVER, KP_KU_RULE_KUBEADM, KP_SERVER_NONE, NULL, 0, "API server serving certificate"},
    /* O: none in the newest kubeadm (PR #138957; was kubeadm:cluster-admins 1.29-1.36.0,
     * system:masters before); RBAC grants it system:kubelet-api-admin by user name. */
    {"apiserver-kubelet-client", KP_ART_CERT, PKI "apiserver-kubelet-client", "ca",
     "kube-apiserver-kubelet-client", NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM,
     KP_SERVER_NONE, NULL, 0, "API server's client certificate for kubelets"},
    {"front-proxy-ca", KP_ART_CA, PKI "front-proxy-ca", NULL, "front-proxy-ca", NULL,
     KP_SAN_CA_NAME, 0, KP_KU_RULE_CA, KP_SERVER_NONE, NULL, KP_SPEC_SHARED,
     "front-proxy CA: signs the aggregation-layer client"},
    {"front-proxy-client", KP_ART_CERT, PKI "front-proxy-client", "front-proxy-ca",
     "front-proxy-client", NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM, KP_SERVER_NONE, NULL,
     0, "API server's client certificate for aggregated API servers"},
    {"etcd-ca", KP_ART_CA, PKI "etcd/ca", NULL, "etcd-ca", NULL, KP_SAN_CA_NAME, 0,
     KP_KU_RULE_CA, KP_SERVER_NONE, NULL, KP_SPEC_SHARED, "etcd CA: signs etcd and its clients"},
    /* etcd >= 3.2 needs clientAuth on its server certificate too (etcd-io/etcd#9785). */
    {"etcd-server", KP_ART_CERT, PKI "etcd/server", "etcd-ca", "%s", NULL, KP_SAN_ETCD_SERVER,
     SERVER | CLIENT, KP_KU_RULE_KUBEADM, KP_SERVER_NONE, NULL, 0,
     "etcd serving certificate (2379)"},
    {"etcd-peer", KP_ART_CERT, PKI "etcd/peer", "etcd-ca", "%s", NULL, KP_SAN_ETCD_PEER,
     SERVER | CLIENT, KP_KU_RULE_KUBEADM, KP_SERVER_NONE, NULL, 0,
     "etcd peer certificate (2380)"},
    {"etcd-healthcheck-client", KP_ART_CERT, PKI "etcd/healthcheck-client", "etcd-ca",
     "kube-etcd-healthcheck-client", NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM,
     KP_SERVER_NONE, NULL, 0, "etcd liveness-probe client"},
    {"apiserver-etcd-client", KP_ART_CERT, PKI "apiserver-etcd-client", "etcd-ca",
     "kube-apiserver-etcd-client", NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM,
     KP_SERVER_NONE, NULL, 0, "API server's client certificate for etcd"},
    {"sa", KP_ART_SA, PKI "sa", NULL, NULL, NULL, KP_SAN_NONE, 0, KP_KU_RULE_KUBEADM,
     KP_SERVER_NONE, NULL, KP_SPEC_SHARED, "service-account token signing key pair"},
    {"admin.conf", KP_ART_KUBECONFIG, KCFG "admin.conf", "ca", "kubernetes-admin",
     "kubeadm:cluster-admins", KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM, KP_SERVER_ENDPOINT, NULL,
     0, "cluster administrator (bound to cluster-admin by RBAC)"},
    {"super-admin.conf", KP_ART_KUBECONFIG, KCFG "super-admin.conf", "ca",
     "kubernetes-super-admin", "system:masters", KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM,
     KP_SERVER_ENDPOINT, NULL, KP_SPEC_NOT_ON_JOIN, "break-glass administrator (bypasses RBAC)"},
    {"controller-manager.conf", KP_ART_KUBECONFIG, KCFG "controller-manager.conf", "ca",
     "system:kube-controller-manager", NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM,
     KP_SERVER_LOCAL, NULL, 0, "controller manager's identity"},
    {"scheduler.conf", KP_ART_KUBECONFIG, KCFG "scheduler.conf", "ca", "system:kube-scheduler",
     NULL, KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBEADM, KP_SERVER_LOCAL, NULL, 0,
     "scheduler's identity"},
    {"kubelet-client", KP_ART_KUBELET_CLIENT, KUBELET "kubelet-client-current.pem", "ca",
     "system:node:%s", "system:nodes", KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBELET, KP_SERVER_NONE,
     NULL, 0, "kubelet's rotating client certificate"},
    {"kubelet.conf", KP_ART_KUBECONFIG, KCFG "kubelet.conf", "ca", "system:node:%s",
     "system:nodes", KP_SAN_NONE, CLIENT, KP_KU_RULE_KUBELET, KP_SERVER_ENDPOINT,
     "kubelet-client", 0, "kubelet's kubeconfig (client cert by reference)"},
    {"kubelet-serving", KP_ART_KUBELET_SERVING, KUBELET "kubelet", "ca", "system:node:%s",
     "system:nodes", KP_SAN_KUBELET_SERVING, SERVER, KP_KU_RULE_KUBELET, KP_SERVER_NONE, NULL, 0,
     "kubelet serving certificate (10250)"},
};

const struct kp_cert_spec *kp_cert_specs(size_t *count)
{
    *count = sizeof(specs) / sizeof(specs[0]);
    return specs;
}

const struct kp_cert_spec *kp_cert_spec_find(const char *name)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strcmp(specs[i].name, name) == 0) {
            return &specs[i];
        }
    }
    return NULL;
}
