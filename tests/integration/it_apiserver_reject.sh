#!/usr/bin/env bash
# What `kpki apiserver` refuses, over real TLS, one case at a time: client certificates from the
# wrong CA, expired, not yet valid or without clientAuth; service-account JWTs that are expired,
# for another audience or issuer, signed by another key, unsigned ("alg":"none"), HMAC-signed
# with the public key, tampered with, or for a deleted service account; malformed bootstrap
# tokens; oversized headers and bodies; garbage instead of a ClientHello; a client that stops
# mid-request. Each gets its status (or TLS failure), and the server keeps serving. Positive
# controls show that the tokens and certificates built here are accepted when they are right.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
command -v curl >/dev/null || skip "no curl"

root=$WORK/tree
init_tree "$root" --key-type rsa-2048
pki=$root/etc/kubernetes/pki
start_apiserver "$root"
url=$APISERVER_URL
ca=$pki/ca.crt

# status CURL-ARGS...: the HTTP status of GET /apis/authentication.k8s.io/v1/selfsubjectreviews
# style requests (000 when the connection failed).
status() {
    curl -s -o "$WORK/body" -w '%{http_code}' --cacert "$ca" "$@" || true
}
whoami_status() {
    status -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
        "$@" "$url/apis/authentication.k8s.io/v1/selfsubjectreviews"
}
still_serving() { # (its own output file: $WORK/body stays the case's)
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" --cert "$WORK/admin.crt" \
        --key "$WORK/admin.key" "$url/api/v1/namespaces/default") || true
    [ "$code" = 200 ] || fail "the server stopped serving after: $1 (HTTP $code)"
}
curl_admin /healthz >/dev/null # extracts admin.crt/key
still_serving "start"

expect_status() { # WANT WHAT STATUS
    [ "$3" = "$1" ] || { cat "$WORK/body" 2>/dev/null; fail "$2: HTTP $3, want $1"; }
    still_serving "$2"
    pass "$2: $1"
}

# ---- client certificates ----
expect_status 401 "client certificate from the etcd CA" \
    "$(whoami_status --cert "$pki/etcd/healthcheck-client.crt" --key "$pki/etcd/healthcheck-client.key")"
expect_status 401 "client certificate from the front-proxy CA, no identity headers" \
    "$(whoami_status --cert "$pki/front-proxy-client.crt" --key "$pki/front-proxy-client.key")"
expect_status 401 "a serving certificate (no clientAuth EKU) as a client certificate" \
    "$(whoami_status --cert "$pki/apiserver.crt" --key "$pki/apiserver.key")"

# Certificates from the cluster CA with validity in the past and in the future (openssl ca, the
# only openssl command that takes explicit dates).
mkdir -p "$WORK/ca/new"
: >"$WORK/ca/index.txt"
cat >"$WORK/ca/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
dir = $WORK/ca
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[p]
commonName = supplied
organizationName = optional
[client]
extendedKeyUsage = clientAuth
keyUsage = digitalSignature
EOF
echo 1000 >"$WORK/ca/serial"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/u.key" \
    -subj "/O=system:masters/CN=mallory" -out "$WORK/u.csr" 2>/dev/null
sign() { # OUT STARTDATE ENDDATE
    openssl ca -batch -config "$WORK/ca/ca.cnf" -cert "$ca" -keyfile "$pki/ca.key" \
        -extensions client -in "$WORK/u.csr" -out "$1" -startdate "$2" -enddate "$3" \
        -notext >/dev/null 2>&1 || fail "openssl ca failed"
}
sign "$WORK/valid.crt" 20200101000000Z 20991231000000Z
sign "$WORK/expired.crt" 20200101000000Z 20200201000000Z
sign "$WORK/future.crt" 20980101000000Z 20991231000000Z
expect_status 201 "control: the same key and subject, currently valid" \
    "$(whoami_status --cert "$WORK/valid.crt" --key "$WORK/u.key")"
expect_status 401 "an expired client certificate" \
    "$(whoami_status --cert "$WORK/expired.crt" --key "$WORK/u.key")"
expect_status 401 "a client certificate not yet valid" \
    "$(whoami_status --cert "$WORK/future.crt" --key "$WORK/u.key")"

# Front proxy: headers count only with the front-proxy client certificate.
code=$(whoami_status --cert "$pki/front-proxy-client.crt" --key "$pki/front-proxy-client.key" \
    -H 'X-Remote-User: alice' -H 'X-Remote-Group: devs')
[ "$code" = 201 ] && grep -q '"username":"alice"' "$WORK/body" && grep -q '"devs"' "$WORK/body" ||
    { cat "$WORK/body"; fail "front proxy identity ($code)"; }
whoami_status --cert "$WORK/admin.crt" --key "$WORK/admin.key" -H 'X-Remote-User: alice' >/dev/null
grep -q '"username":"kubernetes-admin"' "$WORK/body" || fail "identity headers honoured without the front-proxy certificate"
pass "front proxy: X-Remote-User with its certificate, ignored with any other"

# ---- service-account tokens ----
curl_admin /api/v1/namespaces/default/serviceaccounts -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"robot"}}' >"$WORK/sa.json"
sa_uid=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["uid"])' "$WORK/sa.json")
kid=$(jwt_kid "$pki/sa.pub")
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/other.key" 2>/dev/null

bearer() { whoami_status -H "Authorization: Bearer $1"; }

good=$(jwt rs256 "$pki/sa.key" "$kid" "$sa_uid")
expect_status 201 "control: a token built here with the right claims and key" "$(bearer "$good")"
grep -q '"username":"system:serviceaccount:default:robot"' "$WORK/body" || fail "control token identity"
now=$(date +%s)
expect_status 401 "an expired token (past the 60 s leeway)" \
    "$(bearer "$(jwt rs256 "$pki/sa.key" "$kid" "$sa_uid" "{\"exp\": $((now - 120)), \"iat\": $((now - 900)), \"nbf\": $((now - 900))}")")"
expect_status 201 "control: expired 30 s ago, within the leeway" \
    "$(bearer "$(jwt rs256 "$pki/sa.key" "$kid" "$sa_uid" "{\"exp\": $((now - 30)), \"iat\": $((now - 900)), \"nbf\": $((now - 900))}")")"
expect_status 401 "a token for another audience" \
    "$(bearer "$(jwt rs256 "$pki/sa.key" "$kid" "$sa_uid" '{"aud": ["https://vault.example.com"]}')")"
expect_status 401 "a token from another issuer" \
    "$(bearer "$(jwt rs256 "$pki/sa.key" "$kid" "$sa_uid" '{"iss": "https://issuer.example.com"}')")"
expect_status 401 "a token signed by another key (with the real kid)" \
    "$(bearer "$(jwt rs256 "$WORK/other.key" "$kid" "$sa_uid")")"
expect_status 401 'a token with "alg":"none"' "$(bearer "$(jwt none - "$kid" "$sa_uid")")"
expect_status 401 "a token HMAC-signed (HS256) with the public key" \
    "$(bearer "$(jwt hs256 "$pki/sa.pub" "$kid" "$sa_uid")")"
tampered=$("$PYTHON" - "$good" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["sub"] = "system:serviceaccount:kube-system:admin"
claims["kubernetes.io"]["namespace"] = "kube-system"
p = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
print(h + "." + p + "." + s)
PY
)
expect_status 401 "a tampered token (claims changed, signature kept)" "$(bearer "$tampered")"
expect_status 401 "a token for the service account's old UID" \
    "$(bearer "$(jwt rs256 "$pki/sa.key" "$kid" "00000000-0000-4000-8000-000000000000")")"
curl_admin /api/v1/namespaces/default/serviceaccounts/robot -X DELETE >/dev/null
expect_status 401 "a token for a deleted service account" "$(bearer "$good")"

# ---- bootstrap tokens ----
expect_status 401 "a malformed bootstrap token (short secret)" "$(bearer abcdef.0123456789)"
expect_status 401 "a malformed bootstrap token (upper case)" "$(bearer ABCDEF.0123456789ABCDEF)"
expect_status 401 "a well-formed bootstrap token that does not exist" "$(bearer abcdef.0123456789abcdef)"
expect_status 401 "a malformed Authorization header" "$(whoami_status -H 'Authorization: Basic Zm9vOmJhcg==')"
expect_status 401 "no credentials at all (anonymous off)" "$(whoami_status)"

# ---- limits ----
big=$("$PYTHON" -c 'print("x" * 70000)')
code=$(status -H "X-Big: $big" --cert "$WORK/admin.crt" --key "$WORK/admin.key" "$url/healthz")
case "$code" in 431|400|000) ;; *) fail "oversized headers: HTTP $code" ;; esac
still_serving "oversized headers"
pass "oversized headers: refused ($code)"
"$PYTHON" -c 'import sys; sys.stdout.write("{\"a\":\"" + "x" * (4 << 20) + "\"}")' >"$WORK/big.json"
code=$(status -X POST -H 'Content-Type: application/json' --data-binary @"$WORK/big.json" \
    --cert "$WORK/admin.crt" --key "$WORK/admin.key" "$url/api/v1/namespaces/default/configmaps")
expect_status 413 "a 4 MiB body" "$code"

# ---- transport ----
"$PYTHON" - 127.0.0.1 "$APISERVER_PORT" <<'PY' || fail "garbage instead of a ClientHello"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
data = s.recv(4096)
# Nothing but (at most) a TLS alert record (type 21) comes back, then the connection closes.
assert data == b"" or data[0] == 21, data[:40]
while s.recv(4096):
    pass
PY
still_serving "garbage instead of a ClientHello"
pass "garbage instead of a ClientHello: the connection is closed"
code=$(status --tls-max 1.1 --cert "$WORK/admin.crt" --key "$WORK/admin.key" "$url/healthz" 2>/dev/null)
[ "$code" = 000 ] || fail "TLS 1.1 accepted"
pass "TLS 1.1 refused"

# A client that sends half a request and stops: others are served meanwhile, and it is dropped.
"$PYTHON" - 127.0.0.1 "$APISERVER_PORT" "$ca" "$WORK/admin.crt" "$WORK/admin.key" "$WORK/stalled" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))))
s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\"")
open(sys.argv[6], "w").write("sent\n")
time.sleep(3)
s.close()
PY
stalled=$!
wait_for 30 test -s "$WORK/stalled" || fail "the stalled client did not start"
still_serving "a client stalled mid-request"
wait "$stalled" || fail "the stalled client failed"
still_serving "a client that went away mid-request"
pass "a client that stops mid-request does not stop the others"

stop_apiserver
pass "the server stops cleanly after all of it"
