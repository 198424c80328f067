#!/usr/bin/env bash
# kpki inspect on every kind of file a tree holds (and a few it does not: a CSR, a DER
# certificate, a CRL, a JWT), in text and JSON: the key facts are right, the JSON parses, no
# private key material ever appears, and bad input (garbage, truncated PEM, empty, oversized, a
# directory, a missing file) is refused with exit 1 and a message naming it - never a crash.
. "$(dirname "$0")/lib.sh"

root=$WORK/tree
init_tree "$root"
pki=$root/etc/kubernetes/pki
kubelet_pem=$root/var/lib/kubelet/pki/kubelet-client-current.pem
out=$WORK/out

# inspect FILE [flags]: runs kpki inspect, requires exit 0, keeps stdout in $out.
inspect() {
    expect_exit 0 "$KPKI" inspect "$@"
    cp "$WORK/stdout" "$out"
    [ ! -s "$WORK/stderr" ] || { cat "$WORK/stderr"; fail "inspect $* wrote to stderr"; }
}
has() { grep -qE -- "$1" "$out" || { cat "$out"; fail "output of inspect lacks /$1/"; }; }
# json_check PYTHON-EXPR: evaluates EXPR with d = the parsed JSON of $out; must be true.
json_check() {
    "$PYTHON" - "$out" "$1" <<'PY' || { cat "$out"; fail "JSON check failed: $1"; }
import json, sys
d = json.load(open(sys.argv[1]))
o = d["objects"]
if not eval(sys.argv[2]):
    sys.exit(1)
PY
}

# ---- certificates ----
inspect "$pki/apiserver.crt"
has '^\[block 1\] certificate$'
has 'subject: +CN=kube-apiserver$'
has 'issuer: +CN=kubernetes$'
has 'DNS names: +kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local, n1$'
has 'IP addresses: +10.96.0.1, 127.0.0.1$'
has 'extended key usage: +serverAuth$'
has 'key: +ECDSA P-256$'
has 'not after: +[0-9T:Z-]+ \((364d|1y) left\)$'
has 'self-signed: +no$'
has 'kubernetes identity: +none \(not valid for client authentication\)$'
fp=$(openssl x509 -in "$pki/apiserver.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
has "SHA-256 fingerprint: +$fp$"
serial=$(openssl x509 -in "$pki/apiserver.crt" -noout -serial | sed 's/serial=//; s/^0*//')
has "serial: +0*$serial$"
inspect "$pki/apiserver.crt" --output json
json_check 'd["format"] == "pem" and len(o) == 1 and o[0]["kind"] == "certificate"'
json_check 'o[0]["sans"]["ip"] == ["10.96.0.1", "127.0.0.1"] and "kubernetes.default.svc" in o[0]["sans"]["dns"]'
json_check 'o[0]["extKeyUsage"] == ["serverAuth"] and o[0]["expired"] is False and o[0]["selfSigned"] is False'
json_check 'o[0]["clientAuthentication"] is False and "kubernetesIdentity" not in o[0]'
pass "apiserver.crt: subject, SANs, usages, serial, fingerprint, validity"

inspect "$pki/ca.crt" --output json
json_check 'o[0]["basicConstraints"]["ca"] is True and o[0]["selfSigned"] is True'
json_check '"keyCertSign" in o[0]["keyUsage"] and o[0]["subjectKeyId"] and "authorityKeyId" not in o[0]'
pin=$(openssl x509 -in "$pki/ca.crt" -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)
json_check "o[0]['publicKeySha256'] == '$pin'"
pass "ca.crt: CA, self-signed, SKID, the kubeadm discovery pin"

# No O in current kubeadm (an RBAC binding names the user instead): only system:authenticated.
inspect "$pki/apiserver-kubelet-client.crt"
has 'kubernetes user: +kube-apiserver-kubelet-client$'
has 'kubernetes groups: +system:authenticated$'
pass "a client certificate's Kubernetes identity"

# The kubelet's pem: a certificate then its key.
inspect "$kubelet_pem"
has 'PEM, 2 blocks'
has '^\[block 2\] private key$'
has 'kubernetes user: +system:node:n1$'
has 'kubernetes groups: +system:nodes, system:authenticated$'
has 'matches certificate: +block 1$'
inspect "$kubelet_pem" --output json
json_check '[x["kind"] for x in o] == ["certificate", "privateKey"] and o[1]["matchesCertificateBlocks"] == [1]'
json_check 'o[0]["kubernetesIdentity"] == {"user": "system:node:n1", "groups": ["system:nodes", "system:authenticated"]}'
pass "the kubelet's cert+key pem: both blocks, the key matches the certificate"

# A chain: apiserver.crt is signed by ca.crt; ca.crt is not signed by front-proxy-ca.crt.
cat "$pki/apiserver.crt" "$pki/ca.crt" "$pki/front-proxy-ca.crt" >"$WORK/chain.pem"
inspect "$WORK/chain.pem" --output json
json_check '[x.get("signedByNext") for x in o] == [True, False, None]'
inspect "$WORK/chain.pem"
has 'PEM, 3 blocks'
has 'signed by next: +yes'
pass "a chain: each certificate checked against the next"

# DER certificate.
openssl x509 -in "$pki/etcd/server.crt" -outform der -out "$WORK/server.der"
inspect "$WORK/server.der"
has ': DER certificate$'
has 'subject: +CN=n1$'
inspect "$WORK/server.der" --output json
json_check 'd["format"] == "der" and o[0]["kind"] == "certificate" and "serverAuth" in o[0]["extKeyUsage"]'
pass "a DER certificate"

# ---- keys ----
for key in "$pki/ca.key" "$pki/apiserver.key" "$pki/sa.key" "$pki/etcd/peer.key"; do
    inspect "$key"
    has '^\[block 1\] private key$'
    has 'key: +ECDSA P-256$'
    has 'private key: +not shown$'
done
inspect "$pki/apiserver.key" --output json
pin=$(openssl x509 -in "$pki/apiserver.crt" -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)
json_check "o[0]['kind'] == 'privateKey' and o[0]['format'] == 'SEC1' and o[0]['publicKeySha256'] == '$pin'"
pass "private keys: type, size and the public key's SHA-256 (the certificate's)"

inspect "$pki/sa.pub"
has '^\[block 1\] public key$'
inspect "$pki/sa.pub" --output json
sa_pin=$(openssl pkey -pubin -in "$pki/sa.pub" -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)
json_check "o[0]['kind'] == 'publicKey' and o[0]['publicKeySha256'] == '$sa_pin'"
inspect "$pki/sa.key" --output json
json_check "o[0]['publicKeySha256'] == '$sa_pin'"
pass "sa.pub and sa.key: the same public key"

openssl pkcs8 -topk8 -in "$pki/apiserver.key" -passout pass:secret -out "$WORK/encrypted.key"
inspect "$WORK/encrypted.key"
has '^\[block 1\] encrypted private key$'
has 'encrypted \(not decrypted, not shown\)'
openssl pkcs8 -topk8 -nocrypt -in "$pki/apiserver.key" -outform der -out "$WORK/key.der"
inspect "$WORK/key.der" --output json
json_check "d['format'] == 'der' and o[0]['kind'] == 'privateKey' and o[0]['publicKeySha256'] == '$pin'"
pass "an encrypted key (not decrypted) and a DER PKCS#8 key"

# ---- CSR ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/jane.key" \
    -subj "/O=developers/CN=jane" -addext "subjectAltName=DNS:jane.example.com,IP:10.0.0.7" \
    -out "$WORK/jane.csr" 2>/dev/null
inspect "$WORK/jane.csr"
has 'certificate request \(CSR\)'
has 'subject: +CN=jane,O=developers$'
has 'DNS names: +jane.example.com$'
has 'IP addresses: +10.0.0.7$'
has 'signature valid: +yes$'
inspect "$WORK/jane.csr" --output json
json_check 'o[0]["kind"] == "certificateRequest" and o[0]["signatureValid"] is True and o[0]["key"] == "ECDSA P-256"'
pass "a CSR made by openssl req: subject, SANs, key, self-signature"

# ---- CRL ----
expect_exit 0 "$KPKI" revoke admin.conf --root "$root"
admin_serial=$(grep client-certificate-data "$root/etc/kubernetes/admin.conf" | awk '{print $2}' |
    base64 -d | openssl x509 -noout -serial | sed 's/serial=//')
inspect "$pki/ca.crl"
has 'certificate revocation list \(CRL\)'
has 'issuer: +CN=kubernetes$'
has 'CRL number: +1$'
has 'revoked: +1 certificate$'
has "^ +0*${admin_serial#0} "
inspect "$pki/ca.crl" --output json
json_check "o[0]['kind'] == 'crl' and len(o[0]['entries']) == 1 and o[0]['entries'][0]['serial'].lstrip('0') == '${admin_serial}'.lstrip('0')"
json_check 'o[0]["expired"] is False and o[0]["nextUpdate"] > o[0]["thisUpdate"]'
pass "the CRL kpki revoke writes: issuer, number, the revoked serial"

# ---- kubeconfig ----
inspect "$root/etc/kubernetes/admin.conf"
has ': kubeconfig$'
has 'current context: +kubernetes-admin@kubernetes$'
has "cluster 'kubernetes'"
has 'server: +https://127.0.0.1:6443$'
has 'kubernetes user: +kubernetes-admin$'
has 'kubernetes groups: +kubeadm:cluster-admins, system:authenticated$'
has 'client key: +present \(not shown\)'
has 'matches the client certificate'
inspect "$root/etc/kubernetes/admin.conf" --output json
json_check 'o[0]["kind"] == "kubeconfig" and o[0]["currentContext"] == "kubernetes-admin@kubernetes"'
json_check 'o[0]["users"][0]["clientCertificateData"][0]["kubernetesIdentity"] == {"user": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]}'
json_check 'o[0]["users"][0]["clientKeyData"] == {"present": True, "key": "ECDSA P-256", "matchesCertificate": True}'
json_check 'o[0]["clusters"][0]["certificateAuthorityData"][0]["subject"] == "CN=kubernetes"'
inspect "$root/etc/kubernetes/kubelet.conf"
has 'client cert file: +.*kubelet-client-current.pem$'
pass "admin.conf and kubelet.conf: clusters, users, identities, contexts"

token_value=tok-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/token.conf" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: robot
  user:
    token: $token_value
contexts:
- name: robot@c1
  context:
    cluster: c1
    user: robot
    namespace: ci
current-context: robot@c1
EOF
inspect "$WORK/token.conf"
has "token: +present \(${#token_value} characters\)$"
has "context 'robot@c1' \(current\)"
has 'namespace: +ci$'
! grep -q "$token_value" "$out" || fail "the token was printed"
inspect "$WORK/token.conf" --output json
json_check "o[0]['users'][0]['token'] == {'present': True, 'length': ${#token_value}}"
! grep -q "$token_value" "$out" || fail "the token was serialized"
pass "a token user: only its presence and length"

# ---- JWT ----
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
jwt_header=$(printf '{"alg":"RS256","kid":"test-key"}' | b64url)
jwt_claims=$(printf '{"aud":["https://kubernetes.default.svc.cluster.local"],"exp":%d,"iat":%d,"iss":"https://kubernetes.default.svc.cluster.local","kubernetes.io":{"namespace":"ci","pod":{"name":"runner-0","uid":"p-1"},"serviceaccount":{"name":"builder","uid":"sa-1"}},"nbf":%d,"sub":"system:serviceaccount:ci:builder"}' \
    $((now + 3600)) "$now" "$now" | b64url)
jwt_signature=$(head -c 256 /dev/urandom | b64url)
echo "$jwt_header.$jwt_claims.$jwt_signature" >"$WORK/token.jwt"
inspect "$WORK/token.jwt"
has 'JWT \(signature not verified\)'
has '"kid": "test-key"'
has '"sub": "system:serviceaccount:ci:builder"'
has 'expires \(exp\): +[0-9T:Z-]+ \((59m|1h) left\)$'
has 'kubernetes user: +system:serviceaccount:ci:builder$'
has 'kubernetes groups: +system:serviceaccounts, system:serviceaccounts:ci, system:authenticated$'
has 'pod: +runner-0 \(uid p-1\)$'
has 'signature: +256 bytes, NOT verified$'
! grep -qF "$jwt_signature" "$out" || fail "the JWT's signature was printed"
inspect - --output json <"$WORK/token.jwt"
json_check 'd["source"] == "standard input" and o[0]["kind"] == "jwt" and o[0]["signatureVerified"] is False'
json_check 'o[0]["serviceAccount"]["user"] == "system:serviceaccount:ci:builder" and o[0]["claims"]["iss"].startswith("https://")'
json_check 'o[0]["expired"] is False and set(o[0]["times"]) == {"exp", "iat", "nbf"}'
# A legacy (secret-based) token, expired.
legacy_claims=$(printf '{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"kube-system","kubernetes.io/serviceaccount/secret.name":"old-token","kubernetes.io/serviceaccount/service-account.name":"deployer","exp":%d}' \
    $((now - 86400 * 3)) | b64url)
echo "$jwt_header.$legacy_claims.$jwt_signature" >"$WORK/legacy.jwt"
inspect "$WORK/legacy.jwt"
has 'service account \(legacy \(secret-based\) token\)'
has 'kubernetes user: +system:serviceaccount:kube-system:deployer$'
has 'expires \(exp\): .*\(expired 3d ago\)$'
pass "JWTs: header, claims, times, the service account's user and groups, signature never shown"

# ---- no private key material in any output ----
# A distinctive line of each key's base64 body (the second line: the first may be shared
# structure), searched for in every output of every file.
key_lines=()
for key in "$pki"/*.key "$pki"/etcd/*.key "$WORK/jane.key"; do
    key_lines+=("$(sed -n 2p "$key")")
done
key_lines+=("$(grep -A1 'PRIVATE KEY-----' "$kubelet_pem" | sed -n 2p)")
admin_key_data=$(grep client-key-data "$root/etc/kubernetes/admin.conf" | awk '{print $2}')
key_lines+=("${admin_key_data:20:40}")
key_hex=$(openssl pkey -in "$pki/apiserver.key" -text -noout 2>/dev/null | sed -n '/priv:/,/pub:/p' | sed -n 2p | tr -d ' :\n')
for line in "${key_lines[@]}"; do
    [ "${#line}" -ge 40 ] || fail "the key-material probe '$line' is too short to mean anything"
done
[ -n "$key_hex" ] || fail "could not read apiserver.key's private scalar for the probe"
all_files=$(find "$root" \( -type f -o -type l \) | sort)
all_files+=$'\n'"$WORK/chain.pem"$'\n'"$WORK/key.der"$'\n'"$WORK/encrypted.key"$'\n'"$WORK/jane.csr"
checked=0
while read -r file; do
    for format in text json; do
        "$KPKI" inspect "$file" --output "$format" >"$out" 2>&1 ||
            { cat "$out"; fail "inspect $file --output $format failed"; }
        for line in "${key_lines[@]}"; do
            ! grep -qF -- "$line" "$out" || fail "inspect $file --output $format printed key material"
        done
        ! grep -qF -- "$key_hex" "$out" ||
            fail "inspect $file --output $format printed the private scalar"
        if [ "$format" = json ]; then
            "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null ||
                { cat "$out"; fail "inspect $file --output json is not JSON"; }
        fi
        checked=$((checked + 1))
    done
done <<<"$all_files"
pass "no private key material in $checked outputs (every file of the tree, text and JSON); all JSON parses"

# ---- bad input: exit 1, named, never a crash ----
# A sanitizer build reports with exit status 1 (ASan's default), like a refusal: look for its
# report too.
no_sanitizer_report() {
    ! grep -qE 'Sanitizer|runtime error:' "$1" || { cat "$1"; fail "$2: sanitizer report"; }
}
bad() {
    local file=$1 message=$2 got=0
    shift 2
    "$KPKI" inspect "$file" "$@" >"$WORK/stdout" 2>"$WORK/stderr" || got=$?
    [ "$got" -lt 128 ] || fail "inspect $file crashed (exit $got)"
    no_sanitizer_report "$WORK/stderr" "inspect $file"
    [ "$got" = 1 ] || { cat "$WORK/stderr"; fail "inspect $file: expected exit 1, got $got"; }
    stderr_has "$message"
    [ ! -s "$WORK/stdout" ] || fail "inspect $file printed data on failure"
}
# The first byte decides the path: 0x02 (an ASN.1 INTEGER) is neither text nor the SEQUENCE (0x30)
# that every DER object starts with, so random bytes after it are "not recognised"; with 0x30
# first they are tried as each DER type in turn.
{ printf '\x02\x03garbage'; head -c 4096 /dev/urandom; } >"$WORK/garbage"
bad "$WORK/garbage" "$WORK/garbage: not recognised (expected PEM or DER"
{ printf '\x30\x82\x10\x00'; head -c 4096 /dev/urandom; } >"$WORK/garbage.der"
bad "$WORK/garbage.der" "$WORK/garbage.der: not a DER certificate, CRL, CSR, private key or public key"
printf 'hello, world\n' >"$WORK/hello.txt"
bad "$WORK/hello.txt" "$WORK/hello.txt: not recognised (expected PEM or DER"
head -c 400 "$pki/apiserver.crt" >"$WORK/truncated.pem"
bad "$WORK/truncated.pem" "$WORK/truncated.pem: corrupt or truncated PEM (block 1)"
head -n -1 "$pki/ca.crt" >"$WORK/no-end.pem"
bad "$WORK/no-end.pem" "$WORK/no-end.pem: corrupt or truncated PEM"
(cat "$pki/ca.crt"; head -n 5 "$pki/apiserver.crt") >"$WORK/second-truncated.pem"
bad "$WORK/second-truncated.pem" "corrupt or truncated PEM (block 2)"
(head -n 3 "$pki/ca.crt"; tail -n 2 "$pki/ca.crt") >"$WORK/cut-middle.pem"
bad "$WORK/cut-middle.pem" "$WORK/cut-middle.pem: PEM block 1 (CERTIFICATE) does not parse"
head -c 300 "$WORK/server.der" >"$WORK/truncated.der"
bad "$WORK/truncated.der" "$WORK/truncated.der: not a DER certificate"
: >"$WORK/empty"
bad "$WORK/empty" "$WORK/empty: empty input"
printf '\n \n' >"$WORK/blank"
bad "$WORK/blank" "$WORK/blank: empty input"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'A' >"$WORK/oversized"
bad "$WORK/oversized" "'$WORK/oversized' is too large"
mkdir "$WORK/a-directory"
bad "$WORK/a-directory" "'$WORK/a-directory' is a directory"
bad "$WORK/absent.pem" "'$WORK/absent.pem'"
printf 'eyJhbGciOiJub25lIn0.eyJhIjoxfQ\n' >"$WORK/two-parts.jwt"
bad "$WORK/two-parts.jwt" "$WORK/two-parts.jwt: not a valid JWT: a JWT (compact JWS) has 3 parts"
printf 'eyJhbGciOiJub25lIn0=.eyJhIjoxfQ.\n' >"$WORK/padded.jwt"
bad "$WORK/padded.jwt" "padding ('=') is not allowed"
printf 'bm90IGpzb24.eyJhIjoxfQ.\n' >"$WORK/not-json.jwt"
bad "$WORK/not-json.jwt" "JWT header is not JSON"
printf 'clusters: [\n' >"$WORK/broken.conf"
bad "$WORK/broken.conf" "$WORK/broken.conf: line"
printf 'clusters: 3\n' >"$WORK/not-kubeconfig.yaml"
bad "$WORK/not-kubeconfig.yaml" "YAML, but not a kubeconfig"
sed 's/certificate-authority-data: LS0t/certificate-authority-data: LS*t/' \
    "$root/etc/kubernetes/admin.conf" >"$WORK/bad-ca.conf"
bad "$WORK/bad-ca.conf" "$WORK/bad-ca.conf: cluster 'kubernetes': certificate-authority-data: invalid base64"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n' >"$WORK/ssh.key"
bad "$WORK/ssh.key" "no block kpki can show (found 'OPENSSH PRIVATE KEY'"
# Standard input: oversized and garbage.
got=0
head -c $((2 * 1024 * 1024)) /dev/zero | "$KPKI" inspect - >/dev/null 2>"$WORK/stderr" || got=$?
[ "$got" = 1 ] || fail "oversized standard input: exit $got"
stderr_has "standard input is too large"
got=0
"$KPKI" inspect - </dev/null >/dev/null 2>"$WORK/stderr" || got=$?
[ "$got" = 1 ] || fail "empty standard input: exit $got"
stderr_has "standard input: empty input"
pass "garbage, truncated PEM and DER, empty, oversized, a directory, a missing file, bad JWTs and kubeconfigs: exit 1, named"

# Every truncation of a certificate, a key pem and a kubeconfig: never a crash.
for file in "$pki/ca.crt" "$kubelet_pem" "$WORK/server.der" "$root/etc/kubernetes/admin.conf" "$WORK/token.jwt"; do
    size=$(stat -c %s "$file")
    for cut in 1 2 17 64 100 $((size / 3)) $((size / 2)) $((size - 40)) $((size - 2)) $((size - 1)); do
        [ "$cut" -gt 0 ] && [ "$cut" -lt "$size" ] || continue
        head -c "$cut" "$file" >"$WORK/cut"
        got=0
        "$KPKI" inspect "$WORK/cut" --output json >/dev/null 2>"$WORK/stderr" || got=$?
        [ "$got" -lt 128 ] || fail "inspect crashed (exit $got) on $file cut to $cut bytes"
        no_sanitizer_report "$WORK/stderr" "$file cut to $cut bytes"
        [ "$got" -le 1 ] || fail "inspect exited $got on $file cut to $cut bytes"
    done
done
pass "truncations of every kind of input: no crash"

# ---- usage ----
expect_exit 0 "$KPKI" inspect --help
grep -q -- '--output' "$WORK/stdout" || fail "inspect --help lacks --output"
expect_exit 2 "$KPKI" inspect
stderr_has "give exactly one FILE"
expect_exit 2 "$KPKI" inspect "$pki/ca.crt" "$pki/ca.key"
expect_exit 2 "$KPKI" inspect "$pki/ca.crt" --output yaml
stderr_has "--output: unknown format 'yaml'"
expect_exit 2 "$KPKI" inspect --frobnicate "$pki/ca.crt"
expect_exit 0 "$KPKI" --help
grep -q 'inspect' "$WORK/stdout" || fail "kpki --help does not list inspect"
pass "usage errors exit 2; --help"
