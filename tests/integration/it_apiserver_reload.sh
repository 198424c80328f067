#!/usr/bin/env bash
# Live reload and revocation in `kpki apiserver`, with files changed the way operators change
# them while the server runs: (1) `kpki renew apiserver` - the next connection gets the new
# certificate, a keep-alive connection opened before keeps working; (2) a user revoked with
# `kpki revoke` is refused on the next request, others are not; (3) a second CA appended to the
# client CA bundle is trusted (while the first CA's CRL is in force); (4) a service-account key
# added to the key bundle verifies tokens, and stops when removed; (5) bad files - a garbage or
# mismatched serving certificate, a garbage CA bundle, CRL or key bundle, a CRL signed by another
# key - are refused, logged, and the server keeps what it had.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
command -v curl >/dev/null || skip "no curl"

root=$WORK/tree
init_tree "$root"
pki=$root/etc/kubernetes/pki
# Bundles the test rewrites; the tree's own files stay the tree's.
cp "$pki/ca.crt" "$WORK/client-ca.crt"
cp "$pki/sa.pub" "$WORK/sa-keys.pub"
start_apiserver "$root" --client-ca-file "$WORK/client-ca.crt" \
    --service-account-key-file "$WORK/sa-keys.pub"
curl_admin /healthz >/dev/null # extracts admin.crt/key

# replace FILE: moves FILE.new over FILE, as every careful writer does (a new inode).
replace() { mv "$1.new" "$1"; }
# status CERT KEY [curl args...]: HTTP status of a SelfSubjectReview (000: no connection).
status() {
    local cert=$1 key=$2; shift 2
    curl -s -o "$WORK/body" -w '%{http_code}' --cacert "$pki/ca.crt" \
        ${cert:+--cert "$cert" --key "$key"} -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' "$@" \
        "$APISERVER_URL/apis/authentication.k8s.io/v1/selfsubjectreviews" || true
}
status_is() { [ "$(status "$@")" = "$WANT" ]; }
# wait_status WANT WHAT CERT KEY [curl args...]: the status becomes WANT within 30 s.
wait_status() {
    local want=$1 what=$2; shift 2
    WANT=$want wait_for 30 status_is "$@" ||
        { cat "$WORK/body"; tail -5 "$APISERVER_LOG"; fail "$what: HTTP $(status "$@"), want $want"; }
}
admin_ok() { [ "$(status "$WORK/admin.crt" "$WORK/admin.key")" = 201 ] || fail "admin refused after: $1"; }
served_serial() {
    openssl s_client -connect "127.0.0.1:$APISERVER_PORT" </dev/null 2>/dev/null |
        openssl x509 -noout -serial | cut -d= -f2
}
file_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
serves() { [ "$(served_serial)" = "$1" ]; }
# The waits are long for a loaded machine; a reload normally shows within 2 s (two polls).
log_has() {
    wait_for 30 grep -qF -- "$1" "$APISERVER_LOG" || { tail -5 "$APISERVER_LOG"; fail "no log line '$1'"; }
}
# log_count TEXT: how many log lines have TEXT. log_more TEXT N: waits for more than N.
log_count() { grep -cF -- "$1" "$APISERVER_LOG" || true; }
log_grew() { [ "$(log_count "$1")" -gt "$2" ]; }
log_more() {
    wait_for 30 log_grew "$1" "$2" ||
        { tail -5 "$APISERVER_LOG"; fail "no new log line '$1'"; }
}

# ---- (1) a renewed serving certificate ----
old_serial=$(file_serial "$pki/apiserver.crt")
[ "$(served_serial)" = "$old_serial" ] || fail "serves $(served_serial), not apiserver.crt's $old_serial"
# A keep-alive connection made now, asked again after the renewal on the same socket.
"$PYTHON" - 127.0.0.1 "$APISERVER_PORT" "$pki/ca.crt" "$WORK/admin.crt" "$WORK/admin.key" \
    "$WORK/go" >"$WORK/keepalive.out" 2>&1 <<'PY' &
import http.client, os, ssl, sys, time
host, port, ca, cert, key, go = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(host, int(port), context=ctx)
def ask():
    conn.request("GET", "/api/v1/namespaces/default")
    response = conn.getresponse()
    response.read()
    return response.status, conn.sock.getpeercert()["serialNumber"], conn.sock.getsockname()[1]
print(*ask(), flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.1)
print(*ask(), flush=True)
PY
keepalive=$!
CHILD_PIDS+=("$keepalive")
wait_for 30 grep -q . "$WORK/keepalive.out" || fail "the keep-alive client did not connect"
expect_exit 0 "$KPKI" renew apiserver --root "$root" --confirm "$APISERVER_URL" \
    --confirm-wait 30s --output json
new_serial=$(file_serial "$pki/apiserver.crt")
[ "$new_serial" != "$old_serial" ] || fail "renew kept the serial"
"$PYTHON" - "$WORK/stdout" "$new_serial" <<'PY' || { cat "$WORK/stdout"; fail "renew --confirm"; }
import json, sys
confirmed = json.load(open(sys.argv[1]))["confirm"]
assert [c["verdict"] for c in confirmed] == ["renewed"], confirmed
assert confirmed[0]["serial"].upper() == sys.argv[2].upper(), confirmed
PY
wait_for 30 serves "$new_serial" || fail "a new connection is served $(served_serial), not $new_serial"
log_has "reload: --tls-cert-file/--tls-private-key-file '$pki/apiserver.crt', '$pki/apiserver.key': serial $new_serial"
pass "kpki renew apiserver: the next connection gets serial $new_serial (renew --confirm agrees)"
touch "$WORK/go"
wait "$keepalive" || { cat "$WORK/keepalive.out"; fail "the keep-alive client failed"; }
"$PYTHON" - "$WORK/keepalive.out" "$old_serial" <<'PY' || { cat "$WORK/keepalive.out"; fail "keep-alive connection"; }
import sys
(s1, serial1, port1), (s2, serial2, port2) = [l.split() for l in open(sys.argv[1]).read().split("\n")[:2]]
assert s1 == s2 == "200", (s1, s2)
assert port1 == port2, "the client reconnected"
assert serial1 == serial2 and serial1.upper() == sys.argv[2].upper(), (serial1, serial2)
PY
pass "a keep-alive connection opened before the renewal still works, on the old certificate"

# ---- (2) revocation with kpki revoke ----
"$KPKI" kubeconfig user --name alice --org devs --root "$root" --output-file "$WORK/alice.conf"
"$KPKI" kubeconfig user --name bob --org devs --root "$root" --output-file "$WORK/bob.conf"
for u in alice bob; do
    sed -n 's/^ *client-certificate-data: //p' "$WORK/$u.conf" | base64 -d >"$WORK/$u.crt"
    sed -n 's/^ *client-key-data: //p' "$WORK/$u.conf" | base64 -d >"$WORK/$u.key"
    [ "$(status "$WORK/$u.crt" "$WORK/$u.key")" = 201 ] || fail "$u refused before any revocation"
done
grep -q '"username":"bob"' "$WORK/body" || fail "bob's identity"
[ ! -e "$pki/ca.crl" ] || fail "the tree has a CRL already"
expect_exit 0 "$KPKI" revoke "$WORK/alice.crt" --root "$root" --reason keyCompromise
wait_status 401 "alice, revoked" "$WORK/alice.crt" "$WORK/alice.key"
log_has "reload: --client-crl-file '$pki/ca.crl': 1 CRL (CN=kubernetes: 1 revoked"
grep -q "401 POST .*certificate revoked (depth 0: CN=alice" "$APISERVER_LOG" || fail "no 401 log line for alice"
[ "$(status "$WORK/bob.crt" "$WORK/bob.key")" = 201 ] || fail "bob refused after alice's revocation"
admin_ok "alice's revocation"
pass "a user revoked with kpki revoke gets 401 on the next request, without a restart; bob and admin still work"
# A second revocation re-signs the list: picked up as well.
expect_exit 0 "$KPKI" revoke "$WORK/bob.crt" --root "$root"
wait_status 401 "bob, revoked second" "$WORK/bob.crt" "$WORK/bob.key"
[ "$(status "$WORK/alice.crt" "$WORK/alice.key")" = 401 ] || fail "alice accepted again"
admin_ok "bob's revocation"
pass "a re-signed CRL (second revocation) is picked up too"

# ---- (3) a second CA appended to the client CA bundle ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca2.key" \
    -out "$WORK/ca2.crt" -subj "/CN=second-ca" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/carol.key" \
    -subj "/O=ops/CN=carol" -out "$WORK/carol.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$WORK/client.ext"
openssl x509 -req -in "$WORK/carol.csr" -CA "$WORK/ca2.crt" -CAkey "$WORK/ca2.key" \
    -CAcreateserial -days 30 -extfile "$WORK/client.ext" -out "$WORK/carol.crt" 2>/dev/null
[ "$(status "$WORK/carol.crt" "$WORK/carol.key")" = 401 ] || fail "carol accepted before her CA is trusted"
cat "$WORK/client-ca.crt" "$WORK/ca2.crt" >"$WORK/client-ca.crt.new"
replace "$WORK/client-ca.crt"
wait_status 201 "carol, after her CA was appended" "$WORK/carol.crt" "$WORK/carol.key"
grep -q '"username":"carol"' "$WORK/body" || fail "carol's identity"
log_has "reload: --client-ca-file '$WORK/client-ca.crt': 2 certificates (CN=kubernetes; CN=second-ca)"
[ "$(status "$WORK/alice.crt" "$WORK/alice.key")" = 401 ] || fail "alice accepted with the new bundle"
admin_ok "the CA bundle change"
pass "a CA appended to --client-ca-file is trusted on the next request (it has no CRL: not revocation-checked; the first CA's CRL stays in force)"
curl_admin /api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication >"$WORK/cm.json"
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; assert d["client-ca-file"].count("BEGIN CERTIFICATE") == 2, d' \
    "$WORK/cm.json" || fail "extension-apiserver-authentication does not carry the new bundle"
pass "kube-system/extension-apiserver-authentication carries the new client CA bundle"

# ---- (4) a service-account key added to, then removed from, the key bundle ----
curl_admin /api/v1/namespaces/default/serviceaccounts -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"robot"}}' >"$WORK/sa.json"
sa_uid=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["uid"])' "$WORK/sa.json")
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/sa2.key" 2>/dev/null
openssl pkey -in "$WORK/sa2.key" -pubout -out "$WORK/sa2.pub"
kid2=$(jwt_kid "$WORK/sa2.pub")
token2=$(jwt rs256 "$WORK/sa2.key" "$kid2" "$sa_uid")
bearer2=(-H "Authorization: Bearer $token2")
[ "$(status "" "" "${bearer2[@]}")" = 401 ] || fail "a token of a key not yet trusted was accepted"
cat "$WORK/sa-keys.pub" "$WORK/sa2.pub" >"$WORK/sa-keys.pub.new"
replace "$WORK/sa-keys.pub"
wait_status 201 "a token signed by the key added to the bundle" "" "" "${bearer2[@]}"
grep -q '"username":"system:serviceaccount:default:robot"' "$WORK/body" || fail "the token's identity"
log_has "reload: --service-account-key-file '$WORK/sa-keys.pub': 2 keys (kid $(jwt_kid "$pki/sa.pub") $kid2)"
curl_admin /openid/v1/jwks | grep -q "\"kid\":\"$kid2\"" || fail "/openid/v1/jwks lacks the new key"
token1=$(curl_admin /api/v1/namespaces/default/serviceaccounts/robot/token -X POST \
    -H 'Content-Type: application/json' -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}' |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["status"]["token"])')
[ "$(status "" "" -H "Authorization: Bearer $token1")" = 201 ] || fail "a TokenRequest token (sa.key) refused"
pass "a service-account key appended to the key bundle verifies tokens after the reload (JWKS too); sa.key's tokens still work"
cp "$pki/sa.pub" "$WORK/sa-keys.pub.new"
replace "$WORK/sa-keys.pub"
wait_status 401 "a token of the key removed from the bundle" "" "" "${bearer2[@]}"
[ "$(status "" "" -H "Authorization: Bearer $token1")" = 201 ] || fail "sa.key's token refused after the removal"
pass "the key removed from the bundle no longer verifies tokens"

# ---- (5) bad files: refused, logged, the previous content kept ----
cp "$pki/apiserver.crt" "$WORK/apiserver.crt.good"
echo "garbage" >"$pki/apiserver.crt.new"
replace "$pki/apiserver.crt"
log_has "reload: --tls-cert-file/--tls-private-key-file '$pki/apiserver.crt', '$pki/apiserver.key' not loaded"
serves "$new_serial" || fail "after a garbage certificate the server serves $(served_serial)"
admin_ok "a garbage serving certificate"
pass "a garbage serving certificate: logged, the previous one still served"
lines=$(grep -c "not loaded" "$APISERVER_LOG")
cp "$pki/front-proxy-client.crt" "$pki/apiserver.crt.new" # a good certificate, for another key
replace "$pki/apiserver.crt"
wait_for 30 grep -q "does not match the certificate in '$pki/apiserver.crt'" "$APISERVER_LOG" ||
    fail "no log line for the mismatched key"
serves "$new_serial" || fail "after a mismatched pair the server serves $(served_serial)"
admin_ok "a mismatched serving pair"
sleep 2.5
[ "$(grep -c "not loaded" "$APISERVER_LOG")" = $((lines + 1)) ] || fail "a bad file is reported more than once"
pass "a certificate that does not match the key: logged once, never swapped in"
loaded="reload: --tls-cert-file/--tls-private-key-file '$pki/apiserver.crt', '$pki/apiserver.key': serial $new_serial (CN=kube-apiserver), valid until"
loads=$(log_count "$loaded")
cp "$WORK/apiserver.crt.good" "$pki/apiserver.crt.new"
replace "$pki/apiserver.crt"
log_more "$loaded" "$loads"

# garbage FILE: replaces FILE with garbage (keeping FILE.good) and waits for the refusal.
garbage() {
    cp "$1" "$1.good"
    echo "garbage" >"$1.new"
    replace "$1"
    log_has "'$1' not loaded, the previous content stays in use"
}
garbage "$WORK/client-ca.crt"
[ "$(status "$WORK/carol.crt" "$WORK/carol.key")" = 201 ] || fail "carol refused after a garbage CA bundle"
admin_ok "a garbage CA bundle"
mv "$WORK/client-ca.crt.good" "$WORK/client-ca.crt"
pass "a garbage client CA bundle: logged, the last good bundle (with the second CA) stays in force"

garbage "$pki/ca.crl"
[ "$(status "$WORK/alice.crt" "$WORK/alice.key")" = 401 ] || fail "alice accepted after a garbage CRL"
admin_ok "a garbage CRL"
mv "$pki/ca.crl.good" "$pki/ca.crl"
pass "a garbage CRL: logged, the last good CRL stays in force (alice still revoked)"

cat "$pki/sa.pub" "$WORK/sa2.pub" >"$WORK/sa-keys.pub.new"
replace "$WORK/sa-keys.pub"
wait_status 201 "a token of the key added back" "" "" "${bearer2[@]}"
garbage "$WORK/sa-keys.pub"
[ "$(status "" "" "${bearer2[@]}")" = 201 ] || fail "a token refused after a garbage key bundle"
admin_ok "a garbage key bundle"
pass "a garbage service-account key bundle: logged, the last good keys still verify tokens"

# A CRL of CN=kubernetes signed by another key (an impostor CA of the same name).
mkdir -p "$WORK/impostor"
: >"$WORK/impostor/index.txt"
echo 01 >"$WORK/impostor/crlnumber"
cat >"$WORK/impostor/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $WORK/impostor/index.txt
crlnumber = $WORK/impostor/crlnumber
default_md = sha256
default_crl_days = 30
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/impostor/ca.key" \
    -out "$WORK/impostor/ca.crt" -subj "/CN=kubernetes" -days 30 2>/dev/null
openssl ca -gencrl -batch -config "$WORK/impostor/ca.cnf" -cert "$WORK/impostor/ca.crt" \
    -keyfile "$WORK/impostor/ca.key" -out "$pki/ca.crl.new" 2>/dev/null || fail "openssl ca -gencrl"
cp "$pki/ca.crl" "$WORK/ca.crl.good"
replace "$pki/ca.crl"
log_has "reload: --client-crl-file '$pki/ca.crl' not loaded, the previous content stays in use (tried again when the file changes): CRL 1 (issuer CN=kubernetes) is not signed by that CA's key"
[ "$(status "$WORK/alice.crt" "$WORK/alice.key")" = 401 ] || fail "alice accepted after a foreign CRL"
admin_ok "a CRL signed by another key"
pass "a CRL signed by another key is refused: the last good CRL stays in force (alice still revoked, admin fine)"

# A CRL file that disappears keeps its revocations.
rm "$pki/ca.crl"
log_has "reload: --client-crl-file '$pki/ca.crl' was removed: the CRLs loaded last stay in force"
[ "$(status "$WORK/alice.crt" "$WORK/alice.key")" = 401 ] || fail "alice accepted after the CRL was removed"
pass "a removed CRL: logged, its revocations stay in force"

stop_apiserver
pass "the server stops cleanly after all of it"
