#!/usr/bin/env bash
# The preinstalled kubectl (1.27, 1.31, and 1.32 and 1.33, which send typed writes as
# protobuf) against `kpki apiserver` on a kpki tree: the everyday commands with admin.conf, a
# service account's token, RBAC, watch, the Node authorizer with kubelet.conf, super-admin.conf,
# bootstrap tokens, protobuf answers, and a restart that keeps the data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"

versions=()
for v in 1.27 1.31 1.32 1.33; do
    kubectl_bin "$v" >/dev/null && versions+=("$v")
done
[ ${#versions[@]} -gt 0 ] || skip "no kubectl 1.27, 1.31, 1.32 or 1.33 found"

root=$WORK/tree
init_tree "$root"
start_apiserver "$root"

# A kubeconfig with only the server and the CA: credentials come from --token.
bare=$WORK/bare.conf
cat >"$bare" <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: $root/etc/kubernetes/pki/ca.crt
    server: $APISERVER_URL
  name: c
contexts:
- context: {cluster: c, user: u}
  name: c
current-context: c
users:
- name: u
  user: {}
EOF

for v in "${versions[@]}"; do
    ns=t${v/./-}
    kc "$v" admin.conf get --raw /version >"$WORK/version.json"
    "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["major"]=="1" and d["minor"].isdigit(), d' \
        "$WORK/version.json" || fail "kubectl $v: /version"
    pass "kubectl $v get --raw /version"

    kc "$v" admin.conf get ns >"$WORK/ns.txt"
    head -1 "$WORK/ns.txt" | grep -Eq '^NAME +STATUS +AGE$' ||
        { cat "$WORK/ns.txt"; fail "kubectl $v get ns: headers are not upstream's NAME STATUS AGE"; }
    for want in default kube-system kube-public kube-node-lease; do
        grep -q "^$want " "$WORK/ns.txt" || { cat "$WORK/ns.txt"; fail "kubectl $v get ns lacks $want"; }
    done
    kc "$v" admin.conf create ns "$ns" >/dev/null
    kc "$v" admin.conf get ns "$ns" -o name | grep -qx "namespace/$ns" || fail "kubectl $v: created namespace not found"
    pass "kubectl $v get ns, create ns"

    kc "$v" admin.conf create secret generic s1 -n "$ns" --from-literal=user=alice >/dev/null
    kc "$v" admin.conf get secret s1 -n "$ns" -o yaml >"$WORK/s1.yaml"
    grep -q 'user: YWxpY2U=' "$WORK/s1.yaml" || { cat "$WORK/s1.yaml"; fail "kubectl $v: secret data"; }
    grep -q 'type: Opaque' "$WORK/s1.yaml" || fail "kubectl $v: secret type"
    grep -q 'resourceVersion: "[0-9]*"' "$WORK/s1.yaml" || fail "kubectl $v: resourceVersion"
    pass "kubectl $v create secret generic, get secret -o yaml"

    [ "$(kc "$v" admin.conf auth can-i create pods -n "$ns")" = yes ] || fail "kubectl $v auth can-i (admin)"
    pass "kubectl $v auth can-i"

    # whoami: kubectl 1.27 speaks authentication.k8s.io/v1beta1, 1.28+ v1.
    kc "$v" admin.conf auth whoami -o json >"$WORK/whoami.json"
    "$PYTHON" - "$WORK/whoami.json" <<'PY' || fail "kubectl $v auth whoami (admin)"
import json, sys
info = json.load(open(sys.argv[1]))["status"]["userInfo"]
assert info["username"] == "kubernetes-admin", info
assert info["groups"] == ["kubeadm:cluster-admins", "system:authenticated"], info
assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("X509SHA256="), info
PY
    pass "kubectl $v auth whoami: user and groups of the certificate"

    kc "$v" admin.conf create serviceaccount robot -n "$ns" >/dev/null
    token=$(kc "$v" admin.conf create token robot -n "$ns")
    kc "$v" "$bare" --token "$token" auth whoami -o json >"$WORK/whoami.json"
    "$PYTHON" - "$WORK/whoami.json" "$ns" <<'PY' || fail "kubectl $v auth whoami (token)"
import json, sys
info = json.load(open(sys.argv[1]))["status"]["userInfo"]
ns = sys.argv[2]
assert info["username"] == f"system:serviceaccount:{ns}:robot", info
assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                          "system:authenticated"], info
assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI="), info
PY
    pass "kubectl $v create token, then --token auth whoami is the service account"

    expect_exit 1 kc "$v" "$bare" --token "$token" get configmaps -n "$ns"
    stderr_has "User \"system:serviceaccount:$ns:robot\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"$ns\""
    kc "$v" admin.conf create clusterrolebinding "robot-view-$ns" --clusterrole=view \
        --serviceaccount="$ns:robot" >/dev/null
    kc "$v" "$bare" --token "$token" get configmaps -n "$ns" >/dev/null 2>&1 ||
        fail "kubectl $v: view does not allow listing configmaps"
    expect_exit 1 kc "$v" "$bare" --token "$token" get secrets -n "$ns"
    stderr_has "secrets is forbidden"
    [ "$(kc "$v" "$bare" --token "$token" auth can-i list configmaps -n "$ns")" = yes ] ||
        fail "kubectl $v auth can-i with the token"
    pass "kubectl $v create clusterrolebinding grants view, and only view"

    kc "$v" admin.conf get secrets -n "$ns" --watch -o name >"$WORK/watch.txt" 2>&1 &
    watcher=$!
    CHILD_PIDS+=("$watcher")
    wait_for 60 grep -q secret/s1 "$WORK/watch.txt" || fail "kubectl $v get --watch: no initial list"
    kc "$v" admin.conf create secret generic s2 -n "$ns" --from-literal=k=v >/dev/null
    wait_for 60 grep -q secret/s2 "$WORK/watch.txt" || { cat "$WORK/watch.txt"; fail "kubectl $v get --watch missed a create"; }
    kill "$watcher"
    pass "kubectl $v get --watch sees a change made by another command"

    kc "$v" admin.conf delete secret s1 -n "$ns" >/dev/null
    expect_exit 1 kc "$v" admin.conf get secret s1 -n "$ns"
    stderr_has "secrets \"s1\" not found"
    pass "kubectl $v delete"
done

# Protobuf by hand: the answer's media type follows Accept, and bodies in an unknown format or
# that do not decode are refused with kube-apiserver's statuses.
curl_admin /api/v1/namespaces/default -H 'Accept: application/vnd.kubernetes.protobuf' \
    -D "$WORK/headers.txt" -o "$WORK/ns.pb"
grep -qi '^content-type: application/vnd.kubernetes.protobuf' "$WORK/headers.txt" ||
    { cat "$WORK/headers.txt"; fail "Accept protobuf: the answer is not protobuf"; }
[ "$(head -c 4 "$WORK/ns.pb" | od -An -tx1 | tr -d ' \n')" = 6b387300 ] ||
    fail "Accept protobuf: the body does not start with k8s\\0"
grep -q Namespace "$WORK/ns.pb" || fail "Accept protobuf: no Namespace kind in the envelope"
curl_admin /api/v1/namespaces/default -H 'Accept: application/json;q=0.5, application/vnd.kubernetes.protobuf;q=0.9' \
    -D "$WORK/headers.txt" -o /dev/null
grep -qi '^content-type: application/vnd.kubernetes.protobuf' "$WORK/headers.txt" ||
    fail "Accept with q values: protobuf (q=0.9) should win over JSON (q=0.5)"
curl_admin /api/v1/namespaces/default -H 'Accept: application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io' \
    -o "$WORK/406.json" -w '%{http_code}' >"$WORK/code.txt"
[ "$(cat "$WORK/code.txt")" = 406 ] || fail "a protobuf Table is not served: want 406, got $(cat "$WORK/code.txt")"
curl_admin /api/v1/namespaces -X POST -H 'Content-Type: application/yaml' --data-binary 'x: y' \
    -o "$WORK/415.json" -w '%{http_code}' >"$WORK/code.txt"
[ "$(cat "$WORK/code.txt")" = 415 ] && grep -q UnsupportedMediaType "$WORK/415.json" ||
    fail "a YAML body: want 415 UnsupportedMediaType, got $(cat "$WORK/code.txt")"
printf 'k8s\0\x0a\xff' | curl_admin /api/v1/namespaces -X POST \
    -H 'Content-Type: application/vnd.kubernetes.protobuf' --data-binary @- \
    -o "$WORK/400.json" -w '%{http_code}' >"$WORK/code.txt"
[ "$(cat "$WORK/code.txt")" = 400 ] && grep -q 'protobuf body could not be decoded' "$WORK/400.json" ||
    { cat "$WORK/400.json"; fail "a truncated protobuf body: want 400, got $(cat "$WORK/code.txt")"; }
took=$(curl_admin '/api/v1/namespaces?watch=1&timeoutSeconds=1' \
    -H 'Accept: application/vnd.kubernetes.protobuf' -D "$WORK/headers.txt" -o "$WORK/watch.pb" \
    -w '%{time_total}' --max-time 30) || fail "a watch with timeoutSeconds=1 did not end in 30 s"
# timeoutSeconds=1 is a whole second from the watch's start (the server ends the stream).
"$PYTHON" -c 'import sys; assert 0.9 <= float(sys.argv[1]) < 30' "$took" ||
    fail "a watch with timeoutSeconds=1 took $took s"
grep -qi '^content-type: application/vnd.kubernetes.protobuf;stream=watch' "$WORK/headers.txt" ||
    { cat "$WORK/headers.txt"; fail "a protobuf watch is not application/vnd.kubernetes.protobuf;stream=watch"; }
"$PYTHON" - "$WORK/watch.pb" <<'PY' || fail "protobuf watch frames"
import sys
data = open(sys.argv[1], 'rb').read()
frames, i = [], 0
while i < len(data):
    n = int.from_bytes(data[i:i + 4], 'big')
    frames.append(data[i + 4:i + 4 + n])
    i += 4 + n
assert i == len(data), 'frames do not add up to the body'
assert len(frames) >= 4, f'{len(frames)} frames, want one ADDED per namespace'
for f in frames:
    assert f[:2] == b'\x0a\x05' and f[2:7] == b'ADDED', f[:16]  # WatchEvent.type = "ADDED"
    assert b'k8s\x00' in f and b'Namespace' in f, 'the object is not in its own envelope'
PY
pass "protobuf answers follow Accept (q values, no protobuf Table); watch frames; unknown and broken bodies are 415 and 400"
# A timeoutSeconds past int64 (strtoll saturates): capped, the watch runs until curl gives up
# at 2 s (exit 28), rather than ending at once on a deadline that overflowed into the past.
rc=0
code=$(curl_admin '/api/v1/namespaces?watch=1&timeoutSeconds=99999999999999999999' \
    -o "$WORK/long-watch.json" -w '%{http_code}' --max-time 2) || rc=$?
[ "$code" = 200 ] && [ "$rc" = 28 ] && grep -q '"type":"ADDED"' "$WORK/long-watch.json" ||
    fail "a watch with a huge timeoutSeconds: HTTP $code, curl exit $rc (want 200 and 28)"
[ "$(curl_admin /version -o /dev/null -w '%{http_code}')" = 200 ] ||
    fail "the server did not survive a watch with a huge timeoutSeconds"
pass "a watch with a timeoutSeconds past int64: capped, served"

# The Node authorizer: kubelet.conf is node n1.
v=${versions[-1]}
for node in n1 n2; do
    echo "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$node\"}}" |
        kc "$v" admin.conf create -f - >/dev/null
done
kc "$v" admin.conf create ns work >/dev/null
kc "$v" admin.conf create secret generic mounted -n work --from-literal=a=b >/dev/null
kc "$v" admin.conf create secret generic other -n work --from-literal=a=b >/dev/null
kc "$v" kubelet.conf get node n1 -o name | grep -qx node/n1 || fail "a node cannot read its own Node"
expect_exit 1 kc "$v" kubelet.conf get node n2
stderr_has "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot read 'n2', only its own Node object"
expect_exit 1 kc "$v" kubelet.conf get secret mounted -n work
stderr_has "secrets \"mounted\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"work\": no relationship found between node 'n1' and this object"
kc "$v" admin.conf create -f - >/dev/null <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "work"},
 "spec": {"nodeName": "n1", "serviceAccountName": "default",
          "containers": [{"name": "c", "image": "busybox"}],
          "volumes": [{"name": "v", "secret": {"secretName": "mounted"}}]}}
EOF
kc "$v" kubelet.conf get secret mounted -n work -o name | grep -qx secret/mounted ||
    fail "a node cannot read a secret its pod mounts"
expect_exit 1 kc "$v" kubelet.conf get secret other -n work
stderr_has "no relationship found between node 'n1' and this object"
expect_exit 1 kc "$v" kubelet.conf get secrets -n work
stderr_has "cannot list resource \"secrets\""
pass "kubelet.conf: its own Node, not another's; only the secrets its pods reference (403 upstream messages)"

[ "$(kc "$v" super-admin.conf auth can-i '*' '*' --all-namespaces 2>/dev/null)" = yes ] || fail "super-admin can-i"
kc "$v" super-admin.conf get secrets -A >/dev/null
kc "$v" super-admin.conf auth whoami -o json | grep -q '"system:masters"' || fail "super-admin groups"
pass "super-admin.conf: everything (system:masters)"

# Bootstrap tokens: written through the API with admin.conf, authenticating a joining node.
token=$("$KPKI" token create --root "$root" --description "it test")
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "kpki token create printed '$token'"
"$KPKI" token list --root "$root" | grep -q "^${token%%.*}.<redacted> .*it test" || fail "kpki token list"
"$KPKI" kubeconfig bootstrap --root "$root" --token "$token" --server "$APISERVER_URL" \
    --output-file "$WORK/bootstrap-kubelet.conf"
[ "$(stat -c %a "$WORK/bootstrap-kubelet.conf")" = 600 ] || fail "bootstrap kubeconfig mode"
kc "$v" "$WORK/bootstrap-kubelet.conf" auth whoami -o json >"$WORK/whoami.json"
"$PYTHON" - "$WORK/whoami.json" "${token%%.*}" <<'PY' || fail "bootstrap token identity"
import json, sys
info = json.load(open(sys.argv[1]))["status"]["userInfo"]
assert info["username"] == "system:bootstrap:" + sys.argv[2], info
assert info["groups"] == ["system:bootstrappers",
                          "system:bootstrappers:kubeadm:default-node-token",
                          "system:authenticated"], info
PY
# kubeadm:get-nodes (the CSR API that the token is really for comes with the next issue).
[ "$(kc "$v" "$WORK/bootstrap-kubelet.conf" auth can-i get nodes)" = yes ] ||
    fail "a bootstrap token may not get nodes (kubeadm:get-nodes)"
expect_exit 5 "$KPKI" token create "$token" --root "$root"
stderr_has "already exists"
"$KPKI" token delete "${token%%.*}" --root "$root" >/dev/null
expect_exit 1 kc "$v" "$WORK/bootstrap-kubelet.conf" auth whoami
stderr_has "Unauthorized"
expect_exit 4 "$KPKI" token delete "${token%%.*}" --root "$root"
pass "kpki token create/list/delete and kubeconfig bootstrap: the token authenticates until deleted"

# A restart keeps everything.
stop_apiserver
start_apiserver "$root"
kc "$v" admin.conf get secret other -n work -o name | grep -qx secret/other || fail "data lost across a restart"
# Into a file first: kubectl writes a line at a time, and `| grep -q` leaving at the first match
# could kill it with SIGPIPE (a failure under pipefail) before it wrote the rest.
kc "$v" admin.conf get clusterrolebinding -o name >"$WORK/bindings.txt"
grep -q robot-view "$WORK/bindings.txt" || fail "bindings lost across a restart"
pass "a restart keeps the objects"
stop_apiserver
