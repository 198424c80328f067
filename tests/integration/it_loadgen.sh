#!/usr/bin/env bash
# kpki-loadgen (bench/loadgen) against a real `kpki apiserver`: a run of N requests reports
# exactly N ok and sane figures; handshake mode (TLS 1.3 and 1.2) counts full handshakes; a
# chunked answer (a watch that times out) and a bearer token work; an open-loop rate is kept;
# and every kind of failure is counted, not crashed on: a CA that did not sign the server
# (tls), a port nobody listens on (connect), a client certificate from a foreign CA (http 401).
# Bad usage exits 2 naming the flag, a missing file 3.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
LOADGEN=${KPKI_LOADGEN:?set KPKI_LOADGEN to the kpki-loadgen binary}
command -v curl >/dev/null || skip "no curl"

root=$WORK/tree
init_tree "$root"
pki=$root/etc/kubernetes/pki
start_apiserver "$root"
curl_admin /healthz >/dev/null # extracts admin.crt/key into $WORK
admin=(--cert "$WORK/admin.crt" --key "$WORK/admin.key")

# loadgen NAME args...: runs kpki-loadgen with JSON output into $WORK/NAME.json; exit 0 required.
loadgen() {
    local name=$1; shift
    local status=0
    "$LOADGEN" --output json "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" || status=$?
    if [ "$status" != 0 ]; then
        cat "$WORK/$name.err" "$WORK/$name.json"
        fail "$name: kpki-loadgen exited $status (want 0: a run that happened)"
    fi
}

# check NAME MESSAGE PYTHON-EXPRESSION: the expression over the report `r` must be true.
check() {
    local name=$1 message=$2 expression=$3
    "$PYTHON" - "$WORK/$name.json" "$expression" <<'PY' || { cat "$WORK/$name.json"; fail "$name: $message"; }
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
    pass "$name: $message"
}

url=$APISERVER_URL
# ---- successful runs ----
loadgen keepalive --url "$url/version" --ca "$pki/ca.crt" "${admin[@]}" --requests 200 \
    --connections 4 --threads 2 --server-pid "$APISERVER_PID"
check keepalive "200 requests give exactly 200 ok and no error" \
    'r["ok"] == 200 and r["error_count"] == 0'
check keepalive "latency p50 <= p90 <= p99 <= max, all above 0" \
    '0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]'
check keepalive "a positive rate, connections all opened before the window" \
    'r["rate_per_second"] > 0 and r["connections_open_before"] == 4 and r["reconnects"] == 0'
check keepalive "the server's CPU and RSS were sampled" \
    'r["server"]["pids"] == ['"$APISERVER_PID"'] and r["server"]["cpu_seconds"] >= 0 and r["server"]["rss_kib_after"] > 1000'

for tls in 1.3 1.2; do
    loadgen "handshake-$tls" --url "$url/version" --ca "$pki/ca.crt" "${admin[@]}" \
        --mode handshake --tls "$tls" --requests 30 --connections 3
    check "handshake-$tls" "30 full handshakes (TLS $tls), all ok" \
        'r["ok"] == 30 and r["error_count"] == 0 and r["mode"] == "handshake"'
done
loadgen handshake-request --url "$url/version" --ca "$pki/ca.crt" "${admin[@]}" \
    --mode handshake --handshake-request --requests 20 --connections 2
check handshake-request "20 handshakes each with one request, all ok" \
    'r["ok"] == 20 and r["error_count"] == 0'

# A client identity per connection from a directory (N.crt + N.key), signed with openssl.
mkdir -p "$WORK/ids"
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$WORK/ids/ext"
for i in 0 1 2; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ids/$i.key" \
        -subj "/O=kubeadm:cluster-admins/CN=loadgen-$i" -out "$WORK/ids/$i.csr" 2>/dev/null
    openssl x509 -req -in "$WORK/ids/$i.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 1 -extfile "$WORK/ids/ext" -out "$WORK/ids/$i.crt" 2>/dev/null
done
echo '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' >"$WORK/ssr.json"
loadgen cert-dir --url "$url/apis/authentication.k8s.io/v1/selfsubjectreviews" \
    --ca "$pki/ca.crt" --cert-dir "$WORK/ids" --body-file "$WORK/ssr.json" \
    --header 'Content-Type: application/json' --requests 30 --connections 3
check cert-dir "SelfSubjectReview POSTs with --cert-dir identities: 30 ok (201)" \
    'r["ok"] == 30 and r["error_count"] == 0 and r["method"] == "POST"'

# Chunked framing: a watch that the server ends after one second with the last chunk.
loadgen chunked --url "$url/api/v1/namespaces?watch=true&timeoutSeconds=1" --ca "$pki/ca.crt" \
    "${admin[@]}" --requests 2 --connections 2
check chunked "two chunked watch answers read to their last chunk" \
    'r["ok"] == 2 and r["error_count"] == 0 and r["latency_ms"]["min"] >= 900'

# A service-account token, no client certificate.
curl_admin /api/v1/namespaces/default/serviceaccounts -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"loadgen"}}' >/dev/null
token=$(curl_admin /api/v1/namespaces/default/serviceaccounts/loadgen/token -X POST \
    -H 'Content-Type: application/json' \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}' |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])')
loadgen bearer --url "$url/version" --ca "$pki/ca.crt" --header "Authorization: Bearer $token" \
    --requests 40 --connections 2
check bearer "requests with a bearer token and no client certificate: 40 ok" \
    'r["ok"] == 40 and r["error_count"] == 0'

# Warm-up: each connection, once open, sends one request before the window (not counted); with
# --no-warmup it does not. The server's own request counter tells.
namespace_gets() {
    curl_admin /metrics | "$PYTHON" -c '
import sys
print(sum(int(float(l.split()[-1])) for l in sys.stdin
          if l.startswith("apiserver_request_total{") and "verb=\"GET\"" in l
          and "resource=\"namespaces\"" in l))'
}
# The server counts a request just after sending its answer, so the last count may trail the
# client's exit by a moment: wait until at least N, then read the count.
gets_at_least() { [ "$(namespace_gets)" -ge "$1" ]; }
namespace_gets_after() {
    wait_for 30 gets_at_least "$1" || true
    namespace_gets
}
before=$(namespace_gets)
loadgen warmup --url "$url/api/v1/namespaces/default" --ca "$pki/ca.crt" "${admin[@]}" \
    --requests 20 --connections 4
after=$(namespace_gets_after $((before + 24)))
check warmup "20 counted requests and 4 warm-up answers, one per connection" \
    'r["ok"] == 20 and r["warmup_answers"] == 4 and r["connections_open_before"] == 4'
[ "$((after - before))" = 24 ] || fail "warmup: the server saw $((after - before)) GETs (want 24)"
pass "warmup: the server saw 24 GETs: 20 in the window and 4 before it"
before=$after
loadgen no-warmup --url "$url/api/v1/namespaces/default" --ca "$pki/ca.crt" "${admin[@]}" \
    --requests 20 --connections 4 --no-warmup
after=$(namespace_gets_after $((before + 20)))
check no-warmup "--no-warmup: 20 counted requests, no warm-up answer, 4 connections open" \
    'r["ok"] == 20 and r["warmup_answers"] == 0 and r["connections_open_before"] == 4'
[ "$((after - before))" = 20 ] || fail "no-warmup: the server saw $((after - before)) GETs (want 20)"
pass "no-warmup: the server saw exactly the 20 GETs of the window"

# Open loop: 50 per second for 2 s over 16 connections is about 100 operations (those still in
# flight when the window closes are not counted, so a stall of the loaded machine near the end
# costs some: the lower bound is loose, the upper bound shows the rate is held).
loadgen open-loop --url "$url/version" --ca "$pki/ca.crt" "${admin[@]}" --rate 50 --duration 2 \
    --connections 16
check open-loop "--rate 50 for 2 s: 60 to 101 ok" \
    '60 <= r["ok"] <= 101 and r["error_count"] == 0 and r["target_rate"] == 50'

# --trace: a line per operation of the window, by due time, each latency its end minus its due
# time, no operation started before it was due.
loadgen traced --url "$url/version" --ca "$pki/ca.crt" "${admin[@]}" --rate 100 --duration 1 \
    --connections 4 --trace "$WORK/trace.txt"
"$PYTHON" - "$WORK/traced.json" "$WORK/trace.txt" <<'PY' || fail "traced: the trace does not match the report"
import json, sys
r = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
assert lines[0].startswith("# due_ns sent_ns end_ns latency_ns"), lines[0]
rows = [l.split() for l in lines[1:]]
assert len(rows) == r["ok"] + r["error_count"], (len(rows), r["ok"])
dues = [int(x[0]) for x in rows]
assert dues == sorted(dues)
for due, sent, end, latency, thread, conn, outcome in rows:
    assert int(sent) >= int(due) and int(end) > int(sent) and int(latency) == int(end) - int(due)
    assert outcome == "ok" and 0 <= int(conn) < 4
PY
pass "traced: --trace writes one line per operation, consistent with the report"

# ---- failures, each counted by kind ----
loadgen wrong-ca --url "$url/version" --ca "$pki/front-proxy-ca.crt" "${admin[@]}" --requests 10 \
    --connections 2
check wrong-ca "a CA that did not sign the server: 10 tls errors, the verification named" \
    'r["ok"] == 0 and r["errors"]["tls"]["total"] == 10 and any("certificate verify failed" in d for d in r["errors"]["tls"]["by_detail"])'
loadgen wrong-ca-handshake --url "$url/version" --ca "$pki/front-proxy-ca.crt" "${admin[@]}" \
    --requests 10 --mode handshake
check wrong-ca-handshake "the same in handshake mode: 10 tls errors" \
    'r["ok"] == 0 and r["errors"]["tls"]["total"] == 10'

# Port 1 (tcpmux): nothing here listens on it, and no other test's port-0 bind can take it.
loadgen unreachable --url "https://127.0.0.1:1/version" --ca "$pki/ca.crt" \
    --requests 10 --mode handshake
check unreachable "a port nobody listens on: 10 connect errors (refused)" \
    'r["ok"] == 0 and r["errors"]["connect"]["total"] == 10 and "Connection refused" in r["errors"]["connect"]["by_detail"]'

loadgen foreign-cert --url "$url/version" --ca "$pki/ca.crt" \
    --cert "$pki/etcd/healthcheck-client.crt" --key "$pki/etcd/healthcheck-client.key" \
    --requests 10 --connections 2
check foreign-cert "a client certificate from the etcd CA: 10 answers counted as http 401" \
    'r["ok"] == 0 and r["errors"]["http"]["by_detail"] == {"401": 10} and r["error_count"] == 10'

# ---- usage and set-up errors ----
expect_exit 2 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --threads zero
stderr_has "--threads 'zero'"
expect_exit 2 "$LOADGEN" --url "http://127.0.0.1:1/" --ca "$pki/ca.crt"
stderr_has "--url 'http://127.0.0.1:1/'"
expect_exit 3 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --requests 1 --trace "$WORK/no/such/dir/t"
stderr_has "--trace '$WORK/no/such/dir/t'"
expect_exit 2 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --mode handshake --no-warmup
stderr_has "--no-warmup goes with --mode request"
expect_exit 2 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --cert "$WORK/admin.crt"
stderr_has "--cert and --key"
expect_exit 2 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --header "no colon"
stderr_has "--header 'no colon'"
expect_exit 2 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --mode sideways
stderr_has "--mode 'sideways'"
pass "bad usage exits 2 naming the flag"
expect_exit 3 "$LOADGEN" --url "$url/version" --ca "$WORK/missing.crt" --requests 1
stderr_has "--ca '$WORK/missing.crt'"
expect_exit 3 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --cert "$WORK/admin.crt" \
    --key "$pki/ca.key" --requests 1
stderr_has "does not match"
expect_exit 3 "$LOADGEN" --url "$url/version" --ca "$pki/ca.crt" --server-pid 2147483647 --requests 1
stderr_has "--server-pid"
pass "a missing CA file, a key that does not match, a process that does not exist: exit 3"

# kpki-micro (bench/micro), the loops behind docs/benchmarks.md's single-call figures: each
# mode runs and prints its figures; a certificate it cannot read is exit 2.
if [ -n "${KPKI_MICRO:-}" ]; then
    "$KPKI_MICRO" d2i "$WORK/admin.crt" 2 >"$WORK/micro.txt" || fail "kpki-micro d2i failed"
    [ "$(grep -c 'us CPU per decode' "$WORK/micro.txt")" = 2 ] || fail "kpki-micro d2i: $(cat "$WORK/micro.txt")"
    printf '{"sub":"system:serviceaccount:a:b","aud":["x"],"exp":1}' >"$WORK/claims.json"
    "$KPKI_MICRO" json "$WORK/claims.json" | grep -q 'json_loadb of 55 bytes' || fail "kpki-micro json"
    "$KPKI_MICRO" digest | grep -q 'fetched once' || fail "kpki-micro digest"
    expect_exit 2 "$KPKI_MICRO" d2i "$WORK/missing.crt"
    stderr_has "'$WORK/missing.crt'"
    pass "kpki-micro: d2i, json and digest run; an unreadable certificate exits 2"
fi

stop_apiserver
pass "the server stops cleanly after the load"
