#!/usr/bin/env bash
# The preinstalled kubectl (every versioned binary present) reads every kubeconfig kpki writes,
# and the embedded data decodes to certificates that chain to the cluster CA with the right CN
# and O.
. "$(dirname "$0")/lib.sh"

kubectl_bin >/dev/null || skip "no kubectl found"
root=$WORK/tree
init_tree "$root" --control-plane-endpoint cp.example.com:8443 --cluster-name prod
ca=$root/etc/kubernetes/pki/ca.crt
real_root=$(cd "$root" && pwd -P)

# file | user (CN) | O | server
ROWS="
admin.conf|kubernetes-admin|kubeadm:cluster-admins|https://cp.example.com:8443
super-admin.conf|kubernetes-super-admin|system:masters|https://cp.example.com:8443
controller-manager.conf|system:kube-controller-manager||https://127.0.0.1:6443
scheduler.conf|system:kube-scheduler||https://127.0.0.1:6443
kubelet.conf|system:node:n1|system:nodes|https://cp.example.com:8443
"

versions=()
for v in 27 28 29 30 31 32 33; do
    kubectl_bin "1.$v" >/dev/null && versions+=("1.$v")
done
[ ${#versions[@]} -gt 0 ] || versions=("")

while IFS='|' read -r file user org server; do
    [ -n "$file" ] || continue
    config=$root/etc/kubernetes/$file
    for v in "${versions[@]}"; do
        kubectl=$(kubectl_bin $v)
        "$kubectl" config view --raw --kubeconfig "$config" -o json >"$WORK/view.json" ||
            fail "kubectl $v cannot parse $file"
        "$PYTHON" - "$WORK/view.json" "$user" "$server" <<'PY' || fail "kubectl $v: $file has the wrong shape"
import json, sys
view = json.load(open(sys.argv[1]))
user, server = sys.argv[2], sys.argv[3]
assert view["current-context"] == f"{user}@prod", view["current-context"]
assert view["clusters"][0]["name"] == "prod"
assert view["clusters"][0]["cluster"]["server"] == server, view["clusters"][0]["cluster"]["server"]
assert view["users"][0]["name"] == user
assert view["contexts"][0]["context"] == {"cluster": "prod", "user": user}
PY
        # What kubectl itself will use: its minified, flattened view.
        "$kubectl" config view --raw --minify --flatten --kubeconfig "$config" \
            -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$WORK/ca.pem"
        cmp -s "$WORK/ca.pem" "$ca" || fail "kubectl $v: $file embeds another CA"
        "$kubectl" config view --raw --minify --flatten --kubeconfig "$config" \
            -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d >"$WORK/client.pem"
    done
    if [ "$file" = kubelet.conf ]; then
        # The kubelet's kubeconfig points at its rotating certificate (flatten inlines it).
        grep -q "client-certificate: $real_root/var/lib/kubelet/pki/kubelet-client-current.pem" \
            "$config" || fail "kubelet.conf does not reference kubelet-client-current.pem"
    fi
    openssl verify -CAfile "$ca" -purpose sslclient "$WORK/client.pem" >/dev/null ||
        fail "$file: client certificate does not chain to the cluster CA"
    subject=$(openssl x509 -in "$WORK/client.pem" -noout -subject -nameopt RFC2253)
    expected="subject=CN=$user"
    [ -n "$org" ] && expected="$expected,O=$org"
    [ "$subject" = "$expected" ] || fail "$file: subject '$subject', want '$expected'"
    pass "$file: parsed by kubectl ${versions[*]}; CN=$user O=${org:-none}; chains to the CA"
done <<<"$ROWS"

# A kubectl client really uses the credentials: it gets as far as the TLS connection.
kubectl=$(kubectl_bin)
# Port 1 (tcpmux): nothing listens there, and no other test's port-0 bind can take it.
sed "s#https://cp.example.com:8443#https://127.0.0.1:1#" "$root/etc/kubernetes/admin.conf" \
    >"$WORK/admin-local.conf"
out=$("$kubectl" --kubeconfig "$WORK/admin-local.conf" get --raw /version --request-timeout=5s 2>&1 || true)
case $out in
    *"connection refused"* | *"was refused"*) pass "kubectl loads admin.conf's key and certificate and dials the server" ;;
    *) fail "kubectl with admin.conf: unexpected output: $out" ;;
esac

# kpki kubeconfig user: kubectl reads it; the certificate says who the user is.
expect_exit 0 "$KPKI" kubeconfig user --root "$root" --name jane --org devs --org ops \
    --validity 24h --output-file "$WORK/jane.conf"
[ "$(stat -c %a "$WORK/jane.conf")" = 600 ] || fail "jane.conf is not 0600"
"$kubectl" config view --raw --kubeconfig "$WORK/jane.conf" -o jsonpath='{.users[0].user.client-certificate-data}' |
    base64 -d >"$WORK/jane.pem"
openssl verify -CAfile "$ca" -purpose sslclient "$WORK/jane.pem" >/dev/null || fail "jane's certificate"
[ "$(openssl x509 -in "$WORK/jane.pem" -noout -subject -nameopt RFC2253)" = "subject=CN=jane,O=devs+O=ops" ] ||
    fail "jane's subject: $(openssl x509 -in "$WORK/jane.pem" -noout -subject -nameopt RFC2253)"
end=$(date -d "$(openssl x509 -in "$WORK/jane.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $((end - $(date +%s))) -le 86400 ] || fail "--validity 24h not applied"
"$kubectl" config view --kubeconfig "$WORK/jane.conf" -o jsonpath='{.contexts[0].name} {.clusters[0].cluster.server}' |
    grep -q '^jane@prod https://cp.example.com:8443$' || fail "jane.conf context or server"
expect_exit 5 "$KPKI" kubeconfig user --root "$root" --name jane --output-file "$WORK/jane.conf"
stderr_has "exists; kpki does not replace it"
expect_exit 1 "$KPKI" kubeconfig user --root "$root"
stderr_has "--name is required"
pass "kpki kubeconfig user: a kubeconfig kubectl reads, CN=jane O=devs+ops, 24h, never overwritten"
