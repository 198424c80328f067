#!/usr/bin/env bash
# Revocation: kpki revoke writes a CRL per CA that openssl accepts and lists the serial in;
# openssl verify -crl_check and kpki verify --crl refuse the revoked certificate; kpki check
# reports it; kpki crl lists and re-signs.
. "$(dirname "$0")/lib.sh"

root=$WORK/tree
init_tree "$root"
P=$root/etc/kubernetes/pki

expect_exit 0 "$KPKI" revoke apiserver-etcd-client --root "$root" --reason keyCompromise --output json
serial=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$WORK/stdout")
[ -f "$P/etcd/ca.crl" ] || fail "no etc/kubernetes/pki/etcd/ca.crl"
openssl crl -in "$P/etcd/ca.crl" -CAfile "$P/etcd/ca.crt" -noout 2>&1 | grep -q 'verify OK' ||
    fail "openssl crl -verify does not accept the CRL against its CA"
openssl crl -in "$P/etcd/ca.crl" -noout -text | grep -q "Serial Number: $serial" ||
    fail "the CRL does not list $serial"
openssl crl -in "$P/etcd/ca.crl" -noout -text | grep -q 'Key Compromise' || fail "no reason code"
if openssl crl -in "$P/etcd/ca.crl" -CAfile "$P/ca.crt" -noout 2>&1 | grep -q 'verify OK'; then
    fail "the etcd CRL verifies against the cluster CA"
fi
pass "the CRL is signed by the etcd CA, lists the serial with its reason"

if openssl verify -crl_check -CAfile "$P/etcd/ca.crt" -CRLfile "$P/etcd/ca.crl" \
    "$P/apiserver-etcd-client.crt" >"$WORK/openssl.out" 2>&1; then
    fail "openssl verify -crl_check accepts the revoked certificate"
fi
grep -q 'certificate revoked' "$WORK/openssl.out" || fail "openssl gives another reason: $(cat "$WORK/openssl.out")"
openssl verify -crl_check -CAfile "$P/etcd/ca.crt" -CRLfile "$P/etcd/ca.crl" \
    "$P/etcd/healthcheck-client.crt" >/dev/null || fail "openssl refuses an unrevoked certificate"
expect_exit 1 "$KPKI" verify "$P/apiserver-etcd-client.crt" --ca "$P/etcd/ca.crt" \
    --crl "$P/etcd/ca.crl" --purpose client
grep -q '^rejected: revoked' "$WORK/stdout" || fail "kpki verify: $(cat "$WORK/stdout")"
expect_exit 0 "$KPKI" verify "$P/etcd/healthcheck-client.crt" --ca "$P/etcd/ca.crt" \
    --crl "$P/etcd/ca.crl" --purpose client
pass "openssl verify -crl_check and kpki verify --crl refuse the revoked certificate only"

expect_exit 2 "$KPKI" check --root "$root"
grep -q "PROBLEM apiserver-etcd-client: .*is revoked" "$WORK/stdout" || fail "check does not report it"
pass "kpki check reports the revoked certificate still in place"

# Renewing it gives a new serial: check is healthy again; the CRL keeps the old serial.
expect_exit 0 "$KPKI" renew apiserver-etcd-client --root "$root"
expect_exit 0 "$KPKI" check --root "$root"
expect_exit 0 "$KPKI" revoke --serial "0x$serial" --ca etcd-ca --root "$root"
grep -q 'already revoked' "$WORK/stdout" || fail "revoking twice"
expect_exit 0 "$KPKI" crl list --root "$root" --output json
"$PYTHON" - "$WORK/stdout" "$serial" <<'PY' || fail "crl list"
import json, sys
crls = {c["ca"]: c for c in json.load(open(sys.argv[1]))}
assert crls["etcd-ca"]["number"] == 2, crls["etcd-ca"]
assert [e["serial"] for e in crls["etcd-ca"]["revoked"]] == [sys.argv[2]]
assert crls["ca"]["present"] is False
PY
expect_exit 0 "$KPKI" crl sign --root "$root"
openssl crl -in "$P/ca.crl" -CAfile "$P/ca.crt" -noout 2>&1 | grep -q 'verify OK' ||
    fail "crl sign did not create a valid empty CRL for the cluster CA"
pass "renewing clears the finding; revoke is idempotent; crl list and crl sign"

# Bad input.
expect_exit 1 "$KPKI" revoke --serial xyz --ca ca --root "$root"
stderr_has "is not a hex serial"
expect_exit 1 "$KPKI" revoke --serial 01 --root "$root"
stderr_has "--serial needs --ca"
expect_exit 1 "$KPKI" revoke admin.conf --reason because --root "$root"
stderr_has "unknown reason 'because'"
expect_exit 1 "$KPKI" revoke sa --root "$root"
stderr_has "not a certificate of the tree"
rm "$P/front-proxy-ca.key"
expect_exit 3 "$KPKI" revoke front-proxy-client --root "$root"
stderr_has "the CA key"
pass "bad input and an external CA are refused with the flag or file named"
