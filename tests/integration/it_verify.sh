#!/usr/bin/env bash
# kpki verify as a command: exit codes 0/1/2, one-line reasons, names against SANs only, time,
# chains through intermediates given in the leaf file or with --untrusted. (The table of chain
# cases lives in tests/unit/test_verify.c.)
. "$(dirname "$0")/lib.sh"

root=$WORK/tree
init_tree "$root" --apiserver-cert-extra-sans api.example.com
P=$root/etc/kubernetes/pki

expect_exit 0 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --name dns:api.example.com
grep -q '^accepted: CN=kube-apiserver <- CN=kubernetes$' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 0 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --name ip:10.96.0.1
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --name dns:evil.example.com
grep -q '^rejected: name-mismatch' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --name dns:kube-apiserver
grep -q '^rejected: name-mismatch' "$WORK/stdout" || fail "the CN counted as a name"
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/etcd/ca.crt" --purpose server
grep -q '^rejected: unknown-authority' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose client
grep -q '^rejected: wrong-usage' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --at 2099-01-01T00:00:00Z
grep -q '^rejected: expired' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 1 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --at 2001-01-01T00:00:00Z
grep -q '^rejected: not-yet-valid' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
pass "accepted and rejected with one-line reasons; the CN is never a name"

# DER input, stdin, the kubelet's cert+key pem, JSON.
openssl x509 -in "$P/front-proxy-client.crt" -outform der -out "$WORK/fp.der"
expect_exit 0 "$KPKI" verify "$WORK/fp.der" --ca "$P/front-proxy-ca.crt" --purpose client
expect_exit 0 "$KPKI" verify - --ca "$P/ca.crt" --purpose client <"$root/var/lib/kubelet/pki/kubelet-client-current.pem"
expect_exit 1 "$KPKI" verify "$P/etcd/server.crt" --ca "$P/etcd/ca.crt" --purpose server --name dns:nope --output json
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["accepted"] is False and d["reason"]=="name-mismatch", d' "$WORK/stdout" ||
    fail "--output json"
pass "DER, standard input, a cert+key pem, JSON"

# An intermediate: a CA signed by the cluster CA (openssl), and a leaf under it.
cat >"$WORK/ext.cnf" <<'CNF'
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/int.key" \
    -subj /CN=intermediate -out "$WORK/int.csr" 2>/dev/null
openssl x509 -req -in "$WORK/int.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
    -CAserial "$WORK/srl" -days 30 -extfile "$WORK/ext.cnf" -extensions ca -out "$WORK/int.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/user.key" \
    -subj /CN=user -out "$WORK/user.csr" 2>/dev/null
openssl x509 -req -in "$WORK/user.csr" -CA "$WORK/int.crt" -CAkey "$WORK/int.key" -CAcreateserial \
    -CAserial "$WORK/srl2" -days 10 -extfile "$WORK/ext.cnf" -extensions leaf -out "$WORK/user.crt" 2>/dev/null
expect_exit 1 "$KPKI" verify "$WORK/user.crt" --ca "$P/ca.crt" --purpose client
grep -q '^rejected: unknown-authority' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 0 "$KPKI" verify "$WORK/user.crt" --ca "$P/ca.crt" --untrusted "$WORK/int.crt" --purpose client
cat "$WORK/user.crt" "$WORK/int.crt" >"$WORK/chain.pem"
expect_exit 0 "$KPKI" verify "$WORK/chain.pem" --ca "$P/ca.crt" --purpose client
grep -q 'CN=user <- CN=intermediate <- CN=kubernetes' "$WORK/stdout" || fail "$(cat "$WORK/stdout")"
expect_exit 0 "$KPKI" verify "$WORK/user.crt" --ca "$WORK/int.crt" --purpose client
expect_exit 1 "$KPKI" verify "$WORK/chain.pem" --ca "$P/ca.crt" --purpose client --max-depth 0
pass "intermediates from --untrusted or the leaf file; a non-root anchor; --max-depth"

# Usage errors: exit 2.
expect_exit 2 "$KPKI" verify "$P/apiserver.crt" --purpose server
stderr_has "--ca is required"
expect_exit 2 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt"
stderr_has "--purpose is required"
expect_exit 2 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --at yesterday
stderr_has "--at"
expect_exit 2 "$KPKI" verify "$P/apiserver.crt" --ca "$P/ca.crt" --purpose server --name dns:Bad_Name
expect_exit 2 "$KPKI" verify "$WORK/nothing.pem" --ca "$P/ca.crt" --purpose server
stderr_has "nothing.pem"
printf 'garbage' >"$WORK/garbage.pem"
expect_exit 2 "$KPKI" verify "$WORK/garbage.pem" --ca "$P/ca.crt" --purpose server
stderr_has "garbage.pem"
pass "usage and input errors exit 2 naming the flag or file"
