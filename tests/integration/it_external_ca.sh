#!/usr/bin/env bash
# External CA round trip: only the CA certificates on the node, `kpki init --csr-only` writes
# keys and requests, an offline CA signs them with `openssl x509 -req`, and a second `kpki init`
# completes and validates the tree - which `kpki check` then finds healthy.
. "$(dirname "$0")/lib.sh"

flags=(--node-name n1 --apiserver-advertise-address 127.0.0.1 --key-type ecdsa-p256)
offline=$WORK/offline   # where the CA keys live
node=$WORK/node
"$KPKI" init --root "$offline" "${flags[@]}" --quiet
mkdir -p "$node/etc/kubernetes/pki/etcd"
for ca in ca front-proxy-ca etcd/ca; do
    cp "$offline/etc/kubernetes/pki/$ca.crt" "$node/etc/kubernetes/pki/$ca.crt"
done

expect_exit 0 "$KPKI" init --root "$node" "${flags[@]}" --csr-only --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "--csr-only report"
import json, sys
items = {i["name"]: i["action"] for i in json.load(open(sys.argv[1]))["items"]}
assert items["ca"] == "external", items
assert items["apiserver"] == "csr" and items["admin.conf"] == "csr", items
assert items["kubelet-client"] == "csr" and items["sa"] == "created", items
PY
[ ! -e "$node/etc/kubernetes/pki/ca.key" ] || fail "--csr-only made a CA key"
[ ! -e "$node/etc/kubernetes/pki/apiserver.crt" ] || fail "--csr-only signed something"
grep -q 'client-key-data' "$node/etc/kubernetes/admin.conf" || fail "admin.conf is not a partial kubeconfig"
grep -q 'client-certificate-data' "$node/etc/kubernetes/admin.conf" && fail "admin.conf already has a certificate"
for csr in $(find "$node" -name '*.csr'); do
    openssl req -in "$csr" -noout -verify 2>/dev/null || fail "$csr does not verify"
    [ "$(stat -c %a "$csr")" = 600 ] || fail "$csr is not 0600"
done
pass "--csr-only: keys, requests and partial kubeconfigs, nothing signed"

# A second --csr-only run keeps the same keys and requests.
sum_before=$(find "$node" -name '*.csr' -o -name '*.key' | sort | xargs cat | sha256sum)
expect_exit 0 "$KPKI" init --root "$node" "${flags[@]}" --csr-only --quiet
sum_after=$(find "$node" -name '*.csr' -o -name '*.key' | sort | xargs cat | sha256sum)
[ "$sum_before" = "$sum_after" ] || fail "a second --csr-only run changed keys or requests"

# Completing before the certificates are signed names what is missing.
expect_exit 5 "$KPKI" init --root "$node" "${flags[@]}"
stderr_has "apiserver.crt' is still awaited: have CA 'ca' sign"

# The offline CA signs each request with the usages of docs/pki-tree.md.
sign() { # csr ca extensions out
    local extfile=$WORK/ext.cnf
    printf 'keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=keyid\n%s\n' "$3" >"$extfile"
    openssl x509 -req -in "$1" -CA "$offline/etc/kubernetes/pki/$2.crt" \
        -CAkey "$offline/etc/kubernetes/pki/$2.key" -CAcreateserial -CAserial "$WORK/serial" \
        -days 365 -sha256 -copy_extensions copy -extfile "$extfile" -out "$4" 2>/dev/null ||
        fail "openssl could not sign $1"
}
P=$node/etc/kubernetes/pki
K=$node/etc/kubernetes
L=$node/var/lib/kubelet/pki
sign "$P/apiserver.csr" ca "extendedKeyUsage=serverAuth" "$P/apiserver.crt"
sign "$P/apiserver-kubelet-client.csr" ca "extendedKeyUsage=clientAuth" "$P/apiserver-kubelet-client.crt"
sign "$P/front-proxy-client.csr" front-proxy-ca "extendedKeyUsage=clientAuth" "$P/front-proxy-client.crt"
sign "$P/etcd/server.csr" etcd/ca "extendedKeyUsage=serverAuth,clientAuth" "$P/etcd/server.crt"
sign "$P/etcd/peer.csr" etcd/ca "extendedKeyUsage=serverAuth,clientAuth" "$P/etcd/peer.crt"
sign "$P/etcd/healthcheck-client.csr" etcd/ca "extendedKeyUsage=clientAuth" "$P/etcd/healthcheck-client.crt"
sign "$P/apiserver-etcd-client.csr" etcd/ca "extendedKeyUsage=clientAuth" "$P/apiserver-etcd-client.crt"
for conf in admin super-admin controller-manager scheduler; do
    sign "$K/$conf.conf.csr" ca "extendedKeyUsage=clientAuth" "$K/$conf.conf.crt"
done
sign "$L/kubelet-client.csr" ca "extendedKeyUsage=clientAuth" "$L/kubelet-client.crt"
sign "$L/kubelet.csr" ca "extendedKeyUsage=serverAuth" "$L/kubelet.crt"

expect_exit 0 "$KPKI" init --root "$node" "${flags[@]}" --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "completing report"
import json, sys
items = {i["name"]: i["action"] for i in json.load(open(sys.argv[1]))["items"]}
assert items["admin.conf"] == "completed", items
assert items["kubelet-client"] == "completed", items
assert items["apiserver"] == "reused", items
PY
grep -q 'client-certificate-data' "$K/admin.conf" || fail "admin.conf did not get its certificate"
[ -L "$L/kubelet-client-current.pem" ] || fail "no kubelet-client-current.pem"
openssl verify -CAfile "$P/ca.crt" "$L/kubelet-client-current.pem" >/dev/null || fail "kubelet pem"
pass "the signed certificates complete the tree"

# The completed tree is healthy (ca.key absent: externally managed) and reruns reuse it.
expect_exit 0 "$KPKI" check --root "$node"
grep -q '^ca .*yes' "$WORK/stdout" || fail "check does not show ca as externally managed"
expect_exit 0 "$KPKI" init --root "$node" "${flags[@]}" --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "third run"
import json, sys
bad = [i for i in json.load(open(sys.argv[1]))["items"] if i["action"] not in ("reused", "external")]
assert not bad, bad
PY
pass "the completed tree checks healthy and is reused"

# A certificate the offline CA signed for the wrong key is refused.
cp "$P/apiserver.crt" "$WORK/good.crt"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
    -subj /CN=kube-apiserver -out "$WORK/other.csr" 2>/dev/null
sign "$WORK/other.csr" ca "extendedKeyUsage=serverAuth" "$P/apiserver.crt"
expect_exit 5 "$KPKI" init --root "$node" "${flags[@]}"
stderr_has "apiserver.crt' does not match its private key"
pass "a certificate for another key is refused"
