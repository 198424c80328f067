#!/usr/bin/env bash
# kpki check on a real tree: exit codes 0/1/2/3, each kind of fault reported by name in text and
# JSON, and the Prometheus textfile output parses.
. "$(dirname "$0")/lib.sh"

good=$WORK/good
other=$WORK/other
init_tree "$good"
init_tree "$other"

expect_exit 0 "$KPKI" check --root "$good"
grep -q '^CERTIFICATE  *EXPIRES  *RESIDUAL TIME  *CERTIFICATE AUTHORITY  *EXTERNALLY MANAGED' "$WORK/stdout" ||
    fail "kubeadm's check-expiration header is missing"
for row in admin.conf apiserver apiserver-etcd-client apiserver-kubelet-client controller-manager.conf \
    etcd-healthcheck-client etcd-peer etcd-server front-proxy-client scheduler.conf super-admin.conf \
    kubelet-client kubelet-serving kubelet.conf sa ca etcd-ca front-proxy-ca; do
    grep -q "^$row " "$WORK/stdout" || fail "check lists no row '$row'"
done
pass "a fresh tree checks healthy (exit 0), with kubeadm's rows and the kubelet's"

expect_exit 1 "$KPKI" check --root "$good" --warn-within 400d
grep -q '^EXPIRING' "$WORK/stdout" || fail "no EXPIRING summary"
pass "--warn-within 400d: exit 1, expiring"

expect_exit 3 "$KPKI" check --root "$WORK/absent"
expect_exit 3 "$KPKI" check --root "$good" --warn-within soon
expect_exit 3 "$KPKI" check --root "$good" --output yaml
pass "a check that cannot run exits 3"

# Each fault in a copy of the tree: name | what to do in the copy | row | finding code
FAULTS='
wrong-ca|cp $O/etc/kubernetes/pki/apiserver.crt $O/etc/kubernetes/pki/apiserver.key etc/kubernetes/pki/|apiserver|wrong-ca
wrong-eku|cp etc/kubernetes/pki/apiserver-kubelet-client.crt etc/kubernetes/pki/apiserver.crt && cp etc/kubernetes/pki/apiserver-kubelet-client.key etc/kubernetes/pki/apiserver.key|apiserver|wrong-eku
key-mismatch|cp $O/etc/kubernetes/pki/etcd/peer.key etc/kubernetes/pki/etcd/peer.key|etcd-peer|key-mismatch
key-mode|chmod 0644 etc/kubernetes/pki/front-proxy-client.key|front-proxy-client|key-mode
dangling|rm var/lib/kubelet/pki/kubelet-client-2*.pem|kubelet-client|dangling-symlink
truncated|head -c 300 etc/kubernetes/pki/apiserver-etcd-client.crt >t && mv t etc/kubernetes/pki/apiserver-etcd-client.crt|apiserver-etcd-client|unreadable
foreign-kubeconfig|cp $O/etc/kubernetes/controller-manager.conf etc/kubernetes/|controller-manager.conf|wrong-ca-data
'
while IFS='|' read -r name action row code; do
    [ -n "$name" ] || continue
    copy=$WORK/fault-$name
    cp -a "$good" "$copy"
    (cd "$copy" && O=$other && eval "$action") || fail "$name: could not make the fault"
    expect_exit 2 "$KPKI" check --root "$copy"
    grep -q "PROBLEM $row: " "$WORK/stdout" || { cat "$WORK/stdout"; fail "$name: no problem reported for $row"; }
    expect_exit 2 "$KPKI" check --root "$copy" --output json
    "$PYTHON" - "$WORK/stdout" "$row" "$code" <<'PY' || fail "$name: JSON does not name $row/$code"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "problems", doc["status"]
items = {i["name"]: i for i in doc["items"]}
codes = [f["code"] for f in items[sys.argv[2]]["findings"] if f["severity"] == "problem"]
assert sys.argv[3] in codes, codes
PY
    pass "$name: exit 2, $row reported ($code) in text and JSON"
done <<<"$FAULTS"

# A missing SAN: the tree was made for n1; checked as n2 (as after renaming the node).
expect_exit 2 "$KPKI" check --root "$good" --node-name n2 --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "missing SAN not named"
import json, sys
items = {i["name"]: i for i in json.load(open(sys.argv[1]))["items"]}
messages = [f["message"] for f in items["apiserver"]["findings"] if f["code"] == "missing-san"]
assert any("'n2'" in m for m in messages), messages
PY
pass "missing-san: apiserver.crt does not cover the node's new name"

# An expired certificate is covered by the unit tests with a pinned clock (test_pki_check).

# Prometheus textfile format: HELP/TYPE lines, then samples of known metrics with labels.
expect_exit 0 "$KPKI" check --root "$good" --output prometheus
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "the prometheus output does not parse"
import re, sys
metrics = {}
sample = re.compile(r'^([a-z_]+)(\{([a-z]+="(?:[^"\\]|\\.)*"(,[a-z]+="(?:[^"\\]|\\.)*")*)?\})? (-?[0-9.e+]+)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        continue
    m = sample.match(line)
    assert m, line
    metrics.setdefault(m.group(1), []).append(line)
assert len(metrics["kpki_certificate_expiry_timestamp_seconds"]) >= 17, metrics.keys()
assert all(l.endswith(" 0") for l in metrics["kpki_certificate_problem"])
assert metrics["kpki_check_problems"] == ["kpki_check_problems 0"]
assert 'name="apiserver"' in "".join(metrics["kpki_certificate_expiry_timestamp_seconds"])
PY
pass "--output prometheus parses as textfile metrics"
