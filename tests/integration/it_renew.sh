#!/usr/bin/env bash
# kpki renew: subject, SANs and usages kept byte for byte (openssl x509 -text), serial, key and
# validity changed, backups kept; a real etcd restarted on its renewed certificate accepts the
# renewed apiserver-etcd-client; --confirm tells an endpoint still serving the old certificate
# from one serving the new.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"

root=$WORK/tree
new_tree "$root" n1

# The parts of `openssl x509 -text` a renewal must keep, and the ones it must change.
kept() {
    openssl x509 -in "$1" -noout -text | sed -n '/Subject:/p; /X509v3 Key Usage/,+1p;
        /X509v3 Extended Key Usage/,+1p; /X509v3 Basic Constraints/,+1p;
        /X509v3 Subject Alternative Name/,+1p; /Issuer:/p'
}
changed() {
    openssl x509 -in "$1" -noout -serial -enddate -pubkey
}
P=$root/etc/kubernetes/pki
kept "$P/apiserver.crt" >"$WORK/kept.before"
changed "$P/apiserver.crt" >"$WORK/changed.before"
cp "$P/apiserver.crt" "$WORK/apiserver.old.crt"
sleep 1 # a new NotAfter needs a new second
expect_exit 0 "$KPKI" renew apiserver etcd-server apiserver-etcd-client admin.conf --root "$root"
kept "$P/apiserver.crt" >"$WORK/kept.after"
changed "$P/apiserver.crt" >"$WORK/changed.after"
cmp -s "$WORK/kept.before" "$WORK/kept.after" ||
    { diff "$WORK/kept.before" "$WORK/kept.after"; fail "renew changed subject, SANs or usages"; }
while read -r before_line && read -r after_line <&3; do
    case $before_line in
        serial=* | notAfter=*) [ "$before_line" != "$after_line" ] || fail "unchanged: $before_line" ;;
    esac
done <"$WORK/changed.before" 3<"$WORK/changed.after"
cmp -s <(sed -n '/PUBLIC KEY/,$p' "$WORK/changed.before") <(sed -n '/PUBLIC KEY/,$p' "$WORK/changed.after") &&
    fail "renew kept the key without --reuse-key"
backup=$(find "$root/etc/kubernetes/tmp" -name apiserver.crt)
cmp -s "$backup" "$WORK/apiserver.old.crt" || fail "the backup is not the previous apiserver.crt"
[ "$(stat -c %a "$(dirname "$backup")/apiserver.key")" = 600 ] || fail "backed-up key not 0600"
openssl verify -CAfile "$P/ca.crt" -purpose sslserver "$P/apiserver.crt" >/dev/null || fail "renewed apiserver.crt"
expect_exit 0 "$KPKI" check --root "$root"
pass "renew keeps subject, SANs and usages byte for byte; new serial, key, validity; backups kept"

# --reuse-key keeps the key.
key_before=$(sha256sum <"$P/front-proxy-client.key")
expect_exit 0 "$KPKI" renew front-proxy-client --reuse-key --root "$root"
[ "$key_before" = "$(sha256sum <"$P/front-proxy-client.key")" ] || fail "--reuse-key changed the key"
pass "--reuse-key keeps the private key"

# Names that cannot be renewed are refused before anything is written.
expect_exit 1 "$KPKI" renew ca --root "$root"
stderr_has "kpki never replaces CAs"
expect_exit 1 "$KPKI" renew apiserver nonsense --root "$root"
stderr_has "unknown certificate 'nonsense'"
pass "CAs and unknown names are refused"

# A real etcd on the renewed certificates accepts the renewed apiserver-etcd-client.
ports 2
cport=${PORTS[0]}
pport=${PORTS[1]}
start_etcd n1 "$root" "$cport" "$pport" "n1=https://127.0.0.1:$pport" renew
pid=$LAST_PID
healthy() { ctl "$root" apiserver-etcd-client "https://127.0.0.1:$cport" put kpki/renewed yes; }
wait_up "$START_WAIT" healthy "$pid" "$(log_of renew n1)"
pass "etcd on the renewed etcd/server.crt accepts the renewed apiserver-etcd-client"

# --confirm against etcd: etcd 3.4 reads its certificate files for every new connection, so it
# serves a renewed certificate at once, and kpki says so.
expect_exit 0 "$KPKI" renew etcd-server --root "$root" --confirm "https://127.0.0.1:$cport" --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "--confirm against etcd"
import json, sys
doc = json.load(open(sys.argv[1]))
renewed = doc["certificates"][0]
confirm = doc["confirm"][0]
assert confirm["verdict"] == "renewed", confirm
assert confirm["serial"] == renewed["newSerial"], (confirm, renewed)
PY
healthy >/dev/null || fail "etcd refuses clients after its certificate was renewed under it"
stop_etcd "$pid"
pass "--confirm: etcd serves its renewed certificate at once (it reloads the files)"

# --confirm against a server that loaded its certificate once (openssl s_server): the old one.
port=$(free_port)
openssl s_server -quiet -www -accept "127.0.0.1:$port" -cert "$P/apiserver.crt" \
    -key "$P/apiserver.key" >/dev/null 2>&1 &
CHILD_PIDS+=($!)
wait_for 30 port_open "$port" || fail "openssl s_server did not start"
expect_exit 10 "$KPKI" renew apiserver --root "$root" --confirm "https://127.0.0.1:$port"
grep -q "still serves the old apiserver certificate" "$WORK/stdout" ||
    { cat "$WORK/stdout"; fail "--confirm did not see the old certificate"; }
expect_exit 10 "$KPKI" renew front-proxy-client --root "$root" --confirm "https://127.0.0.1:$port"
grep -q "serves a certificate this renewal did not touch" "$WORK/stdout" || fail "--confirm unknown"
expect_exit 10 "$KPKI" renew front-proxy-client --root "$root" --confirm "https://127.0.0.1:1"
grep -q "could not be checked" "$WORK/stdout" || fail "an unreachable --confirm endpoint"
pass "--confirm reports an old certificate still served (exit 10: restart due), and unreachable endpoints"
