#!/usr/bin/env bash
# openssl-tree.sh — build, with the openssl command-line tool only, the certificate tree that
# `kpki init` builds (docs/pki-tree.md), the way a careful operator script would: one openssl
# invocation per step, strictly sequential, temporary CSRs and extension files in a private
# scratch directory. It is the baseline of the "same tree with the openssl CLI" benchmark.
#
# Usage:
#   bench/openssl-tree.sh --root DIR --key-type rsa-2048|rsa-3072|rsa-4096|ecdsa-p256|ecdsa-p384
#       [--node-name kpki-node] [--advertise-address 127.0.0.1] [--cluster-name kubernetes]
#       [--dns-domain cluster.local] [--api-vip 10.96.0.1] [--port 6443] [-v]
#
# DIR must not exist yet or be empty. Prints nothing on success unless -v (which echoes every
# command and openssl's own chatter to stderr). Needs: openssl (3.x), bash, coreutils.
#
# Where the openssl CLI (3.0) cannot do what docs/pki-tree.md says, this script does the nearest
# thing:
#   - serials: openssl picks a random 159-bit positive serial (20 bytes); kubeadm/kpki draw one
#     uniformly from [1, 2^63-1) (8 bytes).
#   - validity: `-days N` makes NotBefore = the moment of that openssl call and NotAfter = that
#     moment + N days. kpki backdates NotBefore by 5 minutes and measures both ends from one start
#     instant for the whole tree; `openssl x509`/`req` in OpenSSL 3.0 have no way to set NotBefore
#     (`-not_before` arrived in 3.4; only `openssl ca` has `-startdate`).
#   - IP SANs are de-duplicated by their text, not by their parsed value (e.g. `::1` and
#     `0:0::1` would both be kept; Go compares net.IP values).
set -euo pipefail

prog=${0##*/}

usage() {
    cat >&2 <<EOF
usage: $prog --root DIR --key-type rsa-2048|rsa-3072|rsa-4096|ecdsa-p256|ecdsa-p384
       [--node-name N] [--advertise-address IP] [--cluster-name NAME] [--dns-domain DOMAIN]
       [--api-vip IP] [--port PORT] [-v]
EOF
    exit 2
}

die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Options

root=""
key_type=""
node_name="kpki-node"
advertise="127.0.0.1"
cluster_name="kubernetes"
dns_domain="cluster.local"
api_vip="10.96.0.1"
port="6443"
verbose=0

while (($# > 0)); do
    opt=$1
    case $opt in
    -v | --verbose) verbose=1; shift; continue ;;
    -h | --help) usage ;;
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --*) (($# >= 2)) || die "option $opt needs a value"; val=$2; shift 2 ;;
    *) usage ;;
    esac
    case $opt in
    --root) root=$val ;;
    --key-type) key_type=$val ;;
    --node-name) node_name=$val ;;
    --advertise-address) advertise=$val ;;
    --cluster-name) cluster_name=$val ;;
    --dns-domain) dns_domain=$val ;;
    --api-vip) api_vip=$val ;;
    --port) port=$val ;;
    *) die "unknown option '$opt'" ;;
    esac
done

[[ -n $root ]] || die "--root is required"
[[ -n $key_type ]] || die "--key-type is required"

# genpkey arguments per key type, and the digest Go would pick for a CA key of that type
# (SHA-256 for RSA and P-256, SHA-384 for P-384; every CA here has the chosen key type).
case $key_type in
rsa-2048 | rsa-3072 | rsa-4096)
    genpkey_args=(-algorithm RSA -pkeyopt "rsa_keygen_bits:${key_type#rsa-}")
    digest=-sha256
    is_rsa=1
    ;;
ecdsa-p256)
    genpkey_args=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
    digest=-sha256
    is_rsa=0
    ;;
ecdsa-p384)
    genpkey_args=(-algorithm EC -pkeyopt ec_paramgen_curve:P-384)
    digest=-sha384
    is_rsa=0
    ;;
*) die "unknown --key-type '$key_type' (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384)" ;;
esac

# The node name becomes a DNS SAN and part of CNs: a lower-case RFC 1123 subdomain, as kubeadm
# requires of nodeRegistration.name.
dns1123='^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
[[ $node_name =~ $dns1123 && ${#node_name} -le 253 ]] ||
    die "--node-name '$node_name' is not a lower-case RFC 1123 subdomain"
[[ $dns_domain =~ $dns1123 && ${#dns_domain} -le 253 ]] ||
    die "--dns-domain '$dns_domain' is not a lower-case RFC 1123 subdomain"
# The cluster name is written into YAML unquoted; keep to names that YAML reads back as the
# same plain string (no numbers, booleans or indicator characters), which "kubernetes" is.
if [[ ! $cluster_name =~ ^[a-z]([-a-z0-9.]*[a-z0-9])?$ ||
    $cluster_name =~ ^(y|n|yes|no|on|off|true|false|null)$ ]]; then
    die "--cluster-name '$cluster_name' is not supported by this script (use a plain DNS label)"
fi
if [[ ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
    die "--port '$port' is not a port"
fi
port=$((10#$port))
ip_re='^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$'
[[ $advertise =~ $ip_re ]] || die "--advertise-address '$advertise' is not an IP address"
[[ $api_vip =~ $ip_re ]] || die "--api-vip '$api_vip' is not an IP address"

if [[ -e $root || -L $root ]]; then
    [[ -d $root ]] || die "--root '$root' exists and is not a directory"
    [[ -z $(ls -A -- "$root") ]] || die "--root '$root' is not empty"
else
    # Missing parents get the caller's umask; DIR itself is 0755 like every directory kpki makes.
    mkdir -p -- "$root"
    chmod 0755 -- "$root"
fi

# Everything this script creates from here on starts private; directories and certificates are
# opened up to 0755 / 0644 one by one.
umask 077

work=$(mktemp -d "${TMPDIR:-/tmp}/openssl-tree.XXXXXXXX")
trap 'rm -rf -- "$work"' EXIT

# run CMD ARGS...: run one command; its stderr (openssl's "Certificate request self-signature
# ok", key-generation dots) is shown only with -v or when the command fails.
run() {
    if ((verbose)); then
        printf '+ %s\n' "$*" >&2
        "$@" || die "failed: $*"
        return 0
    fi
    if ! "$@" 2>"$work/stderr"; then
        cat "$work/stderr" >&2
        die "failed: $*"
    fi
}

# ---------------------------------------------------------------------------------------------
# Layout

root_abs=$(cd -- "$root" && pwd -P)
etc="$root_abs/etc/kubernetes"
pki="$etc/pki"
kubelet_pki="$root_abs/var/lib/kubelet/pki"
for d in etc etc/kubernetes etc/kubernetes/pki etc/kubernetes/pki/etcd \
    var var/lib var/lib/kubelet var/lib/kubelet/pki; do
    mkdir -- "$root_abs/$d"
    chmod 0755 -- "$root_abs/$d"
done

# Configuration for every `openssl req`: subject strings become PrintableString when they fit,
# else UTF8String (MASK = B_ASN1_PRINTABLESTRING | B_ASN1_UTF8STRING), as Go encodes them; and
# the RFC 5280 upper bound of 64 characters on commonName that OpenSSL enforces is lifted (the
# "stbl" module), because Go has no such limit and `system:node:<node>` or an etcd CN = <node>
# may be longer.
cat >"$work/req.cnf" <<'EOF'
openssl_conf = openssl_tree_init

[openssl_tree_init]
stbl_section = openssl_tree_stbl

[openssl_tree_stbl]
commonName = max:0

[req]
distinguished_name = req_dn
string_mask = MASK:0x2002
prompt = no

[req_dn]
EOF

# genkey OUT: a new private key of the chosen type, written as kubeadm writes keys: PKCS#1
# "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY" (OpenSSL 3 genpkey writes PKCS#8), mode 0600.
genkey() {
    run openssl genpkey "${genpkey_args[@]}" -out "$work/genpkey.pem"
    run openssl pkey -in "$work/genpkey.pem" -traditional -out "$1"
    chmod 0600 -- "$1"
}

# san_value DNS... -- IP...: a subjectAltName value the way kubeadm's RemoveDuplicateAltNames
# leaves it and Go encodes it: DNS names de-duplicated and sorted (byte order), then IP addresses
# de-duplicated in first-seen order.
san_value() {
    local -a dns=() ips=() sorted=()
    local out="" seen=" " name ip
    while (($# > 0)) && [[ $1 != -- ]]; do dns+=("$1"); shift; done
    (($# > 0)) && shift
    ips=("$@")
    if ((${#dns[@]} > 0)); then
        mapfile -t sorted < <(printf '%s\n' "${dns[@]}" | LC_ALL=C sort -u)
        for name in "${sorted[@]}"; do out+="${out:+,}DNS:$name"; done
    fi
    for ip in "${ips[@]}"; do
        [[ $seen == *" $ip "* ]] && continue
        seen+="$ip "
        out+="${out:+,}IP:$ip"
    done
    printf '%s' "$out"
}

# ca NAME SUBJECT: a self-signed CA NAME.crt/NAME.key (NAME relative to pki/) with kubeadm's CA
# extensions, in Go's extension order: KeyUsage, BasicConstraints, SubjectKeyIdentifier, SAN
# (DNS = CN). No AuthorityKeyIdentifier: Go omits it on self-signed certificates.
# Serial: openssl's random 159-bit serial, not kubeadm's random 63-bit one (see the header).
ca() {
    local name=$1 cn=$2
    local cnf="$work/${name//\//-}.cnf"
    genkey "$pki/$name.key"
    # `openssl req` has no -extfile: the extension section goes into a copy of its config.
    cp -- "$work/req.cnf" "$cnf"
    cat >>"$cnf" <<EOF

[ca_ext]
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
subjectAltName = DNS:$cn
EOF
    run openssl req -x509 -new -config "$cnf" -extensions ca_ext -key "$pki/$name.key" \
        -subj "/CN=$cn" -days 3650 "$digest" -out "$pki/$name.crt"
    chmod 0644 -- "$pki/$name.crt"
}

# leaf KEY CRT CA SUBJECT KEYUSAGE EKU SAN: a new key KEY and a certificate CRT signed by the CA
# whose files are CA.crt/CA.key, valid 365 days (= 8760h). Extensions in Go's order: KeyUsage,
# ExtKeyUsage, BasicConstraints, AuthorityKeyIdentifier, SAN. `openssl x509` adds a
# SubjectKeyIdentifier by default; Go adds none to leaves, so it is turned off. SAN may be "".
# Serial: openssl's random 159-bit serial (no -CAserial/-CAcreateserial: nothing is written).
leaf() {
    local key=$1 crt=$2 ca=$3 subject=$4 key_usage=$5 eku=$6 san=$7
    local tmp="$work/${crt##*/}"
    genkey "$key"
    run openssl req -new -config "$work/req.cnf" -key "$key" -subj "$subject" -out "$tmp.csr"
    {
        printf 'keyUsage = critical,%s\n' "$key_usage"
        printf 'extendedKeyUsage = %s\n' "$eku"
        printf 'basicConstraints = critical,CA:FALSE\n'
        printf 'subjectKeyIdentifier = none\n'
        printf 'authorityKeyIdentifier = keyid\n'
        if [[ -n $san ]]; then printf 'subjectAltName = %s\n' "$san"; fi
    } >"$tmp.ext"
    run openssl x509 -req -in "$tmp.csr" -CA "$ca.crt" -CAkey "$ca.key" -days 365 "$digest" \
        -extfile "$tmp.ext" -out "$crt"
    chmod 0644 -- "$crt"
}

# kubeconfig FILE USER O SERVER [CERT-PATH]: FILE with one cluster, one user and one context, in
# the key order client-go writes. Without CERT-PATH: a new key and client certificate signed by
# ca, embedded. With CERT-PATH: the user refers to that file for both certificate and key.
kubeconfig() {
    local file=$1 user=$2 org=$3 server=$4 cert_path=${5:-}
    local subject="/CN=$user" ca_data
    [[ -n $org ]] && subject="/O=$org/CN=$user"
    ca_data=$(base64 -w0 "$pki/ca.crt")
    {
        printf 'apiVersion: v1\n'
        printf 'clusters:\n'
        printf -- '- cluster:\n'
        printf '    certificate-authority-data: %s\n' "$ca_data"
        printf '    server: %s\n' "$server"
        printf '  name: %s\n' "$cluster_name"
        printf 'contexts:\n'
        printf -- '- context:\n'
        printf '    cluster: %s\n' "$cluster_name"
        printf '    user: %s\n' "$user"
        printf '  name: %s@%s\n' "$user" "$cluster_name"
        printf 'current-context: %s@%s\n' "$user" "$cluster_name"
        printf 'kind: Config\n'
        printf 'preferences: {}\n'
        printf 'users:\n'
        printf -- '- name: %s\n' "$user"
        printf '  user:\n'
    } >"$work/kubeconfig"
    if [[ -n $cert_path ]]; then
        {
            printf '    client-certificate: %s\n' "$cert_path"
            printf '    client-key: %s\n' "$cert_path"
        } >>"$work/kubeconfig"
    else
        leaf "$work/client.key" "$work/client.crt" "$pki/ca" "$subject" \
            digitalSignature,keyEncipherment clientAuth ""
        {
            printf '    client-certificate-data: %s\n' "$(base64 -w0 "$work/client.crt")"
            printf '    client-key-data: %s\n' "$(base64 -w0 "$work/client.key")"
        } >>"$work/kubeconfig"
    fi
    cp -- "$work/kubeconfig" "$file"
    chmod 0600 -- "$file"
}

# ---------------------------------------------------------------------------------------------
# Certificates, in kubeadm's phase order (certlist.go GetDefaultCertList)

ku_leaf=digitalSignature,keyEncipherment

ca ca kubernetes

leaf "$pki/apiserver.key" "$pki/apiserver.crt" "$pki/ca" "/CN=kube-apiserver" "$ku_leaf" \
    serverAuth "$(san_value "$node_name" kubernetes kubernetes.default kubernetes.default.svc \
    "kubernetes.default.svc.$dns_domain" -- "$api_vip" "$advertise")"

# No O: the newest kubeadm (and its backports) authorises this client by user name.
leaf "$pki/apiserver-kubelet-client.key" "$pki/apiserver-kubelet-client.crt" "$pki/ca" \
    "/CN=kube-apiserver-kubelet-client" "$ku_leaf" clientAuth ""

ca front-proxy-ca front-proxy-ca

leaf "$pki/front-proxy-client.key" "$pki/front-proxy-client.crt" "$pki/front-proxy-ca" \
    "/CN=front-proxy-client" "$ku_leaf" clientAuth ""

ca etcd/ca etcd-ca

etcd_san=$(san_value localhost "$node_name" -- "$advertise" 127.0.0.1 ::1)
leaf "$pki/etcd/server.key" "$pki/etcd/server.crt" "$pki/etcd/ca" "/CN=$node_name" "$ku_leaf" \
    serverAuth,clientAuth "$etcd_san"
leaf "$pki/etcd/peer.key" "$pki/etcd/peer.crt" "$pki/etcd/ca" "/CN=$node_name" "$ku_leaf" \
    serverAuth,clientAuth "$etcd_san"
leaf "$pki/etcd/healthcheck-client.key" "$pki/etcd/healthcheck-client.crt" "$pki/etcd/ca" \
    "/CN=kube-etcd-healthcheck-client" "$ku_leaf" clientAuth ""
leaf "$pki/apiserver-etcd-client.key" "$pki/apiserver-etcd-client.crt" "$pki/etcd/ca" \
    "/CN=kube-apiserver-etcd-client" "$ku_leaf" clientAuth ""

# Service-account signing key pair: sa.pub is PKIX "PUBLIC KEY", and kubeadm writes it 0600 too.
genkey "$pki/sa.key"
run openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 0600 -- "$pki/sa.pub"

# ---------------------------------------------------------------------------------------------
# The kubelet's client and serving certificates (kubelet rules: KeyEncipherment for RSA only)

if ((is_rsa)); then ku_kubelet=digitalSignature,keyEncipherment; else ku_kubelet=digitalSignature; fi
node_subject="/O=system:nodes/CN=system:node:$node_name"

# kubelet-client-YYYY-MM-DD-HH-MM-SS.pem (local time): certificate then key, 0600, and the
# kubelet-client-current.pem symlink with a relative target.
leaf "$work/kubelet-client.key" "$work/kubelet-client.crt" "$pki/ca" "$node_subject" \
    "$ku_kubelet" clientAuth ""
kubelet_client="kubelet-client-$(date +%Y-%m-%d-%H-%M-%S).pem"
cat -- "$work/kubelet-client.crt" "$work/kubelet-client.key" >"$kubelet_pki/$kubelet_client"
chmod 0600 -- "$kubelet_pki/$kubelet_client"
ln -s -- "$kubelet_client" "$kubelet_pki/kubelet-client-current.pem"

leaf "$kubelet_pki/kubelet.key" "$kubelet_pki/kubelet.crt" "$pki/ca" "$node_subject" \
    "$ku_kubelet" serverAuth "$(san_value "$node_name" -- "$advertise")"

# ---------------------------------------------------------------------------------------------
# Kubeconfigs, in kubeadm's order (admin, super-admin, kubelet, controller-manager, scheduler).
# No control-plane endpoint option here, so every server is the local endpoint.

if [[ $advertise == *:* ]]; then
    server="https://[$advertise]:$port"
else
    server="https://$advertise:$port"
fi

kubeconfig "$etc/admin.conf" kubernetes-admin kubeadm:cluster-admins "$server"
kubeconfig "$etc/super-admin.conf" kubernetes-super-admin system:masters "$server"
kubeconfig "$etc/kubelet.conf" "system:node:$node_name" "" "$server" \
    "$kubelet_pki/kubelet-client-current.pem"
kubeconfig "$etc/controller-manager.conf" system:kube-controller-manager "" "$server"
kubeconfig "$etc/scheduler.conf" system:kube-scheduler "" "$server"
