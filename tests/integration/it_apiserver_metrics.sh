#!/usr/bin/env bash
# /metrics of `kpki apiserver`: the text parses as the Prometheus exposition format (every
# sample line, HELP and TYPE, histogram buckets cumulative and ending in +Inf), and the counters
# move with what the test does: requests by verb, resource and code, authentication results by
# method, TLS handshake failures by reason; the certificate expiry gauges equal what openssl
# reads from the files; and /metrics itself is refused to a user RBAC does not allow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apiserver_lib.sh"
command -v openssl >/dev/null || skip "no openssl"

root=$WORK/tree
init_tree "$root"
start_apiserver "$root"

scrape() { curl_admin /metrics -f -o "$1" || fail "GET /metrics failed"; }

# check_format FILE: the exposition format, strictly enough to catch a broken line.
check_format() {
    "$PYTHON" - "$1" <<'PY' || fail "/metrics is not valid Prometheus text"
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
sample = re.compile(rf'^({name})(\{{(?:{label}(?:,{label})*)?\}})? (-?[0-9.e+]+|\+Inf|NaN)$')
types, seen, buckets = {}, set(), {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    if line.startswith('# HELP ') or line.startswith('# TYPE '):
        parts = line.split(' ', 3)
        assert len(parts) == 4 and re.fullmatch(name, parts[2]), f'line {n}: {line}'
        if parts[1] == 'TYPE':
            assert parts[3] in ('counter', 'gauge', 'histogram', 'summary', 'untyped'), line
            assert parts[2] not in types, f'line {n}: second TYPE for {parts[2]}'
            types[parts[2]] = parts[3]
        continue
    m = sample.match(line)
    assert m, f'line {n} is not a sample: {line!r}'
    metric = m.group(1)
    base = re.sub(r'_(bucket|sum|count)$', '', metric)
    assert metric in types or base in types, f'line {n}: {metric} has no TYPE'
    assert line not in seen, f'line {n}: duplicate sample'
    seen.add(line)
    if metric.endswith('_bucket'):
        labels = re.sub(r',?le="[^"]*"', '', m.group(2))
        le = re.search(r'le="([^"]*)"', m.group(2)).group(1)
        prev = buckets.get(labels, (None, -1))
        assert float(m.group(3)) >= prev[1], f'line {n}: buckets not cumulative'
        buckets[labels] = (le, float(m.group(3)))
assert all(le == '+Inf' for le, _ in buckets.values()), 'a histogram does not end in +Inf'
assert len(seen) > 20
PY
}

# value FILE 'exact series text' -> the number, or 0 when absent
value() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
series = sys.argv[2]
for line in open(sys.argv[1]):
    if line.startswith(series + ' '):
        print(line.split()[-1]); break
else:
    print(0)
PY
}

scrape "$WORK/m1.txt"
check_format "$WORK/m1.txt"
pass "/metrics parses as Prometheus text"

list_ns='apiserver_request_total{verb="LIST",group="",version="v1",resource="namespaces",subresource="",code="200"}'
get_404='apiserver_request_total{verb="GET",group="",version="v1",resource="secrets",subresource="",code="404"}'
create_ns='apiserver_request_total{verb="POST",group="",version="v1",resource="namespaces",subresource="",code="201"}'
token_fail='kpki_authentication_attempts_total{method="token",result="failure"}'
x509_ok='kpki_authentication_attempts_total{method="x509",result="success"}'
count_list='apiserver_request_duration_seconds_count{verb="LIST",group="",version="v1",resource="namespaces",subresource=""}'

for i in 1 2 3; do curl_admin /api/v1/namespaces -f -o /dev/null; done
curl_admin /api/v1/namespaces/default/secrets/nothing -o /dev/null
curl_admin /api/v1/namespaces -X POST -H 'Content-Type: application/json' \
    --data '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"m1"}}' -f -o /dev/null
curl -sS --cacert "$root/etc/kubernetes/pki/ca.crt" -H 'Authorization: Bearer not.a.token' \
    "$APISERVER_URL/api" -o /dev/null
# A client certificate from the etcd CA: the handshake succeeds (certificates are requested,
# not required, and verified by the authenticator), the request is 401.
curl -sS --cacert "$root/etc/kubernetes/pki/ca.crt" \
    --cert "$root/etc/kubernetes/pki/etcd/healthcheck-client.crt" \
    --key "$root/etc/kubernetes/pki/etcd/healthcheck-client.key" "$APISERVER_URL/api" -o /dev/null
# TLS 1.1 and garbage: handshake failures with their reasons.
echo | openssl s_client -connect "127.0.0.1:$APISERVER_PORT" -tls1_1 >/dev/null 2>&1 || true
printf 'GET / HTTP/1.1\r\n\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$APISERVER_PORT" \
    -tls1_2 -cipher NULL-SHA256 >/dev/null 2>&1 || true
"$PYTHON" -c "import socket; s=socket.create_connection(('127.0.0.1', $APISERVER_PORT)); s.sendall(b'GET / HTTP/1.1\r\n\r\n'); s.recv(100); s.close()" 2>/dev/null || true

scrape "$WORK/m2.txt"
check_format "$WORK/m2.txt"
delta() { echo $(( $(value "$WORK/m2.txt" "$1") - $(value "$WORK/m1.txt" "$1") )); }
[ "$(delta "$list_ns")" = 3 ] || fail "LIST namespaces 200 moved by $(delta "$list_ns"), not 3"
[ "$(delta "$count_list")" = 3 ] || fail "the LIST namespaces latency count moved by $(delta "$count_list"), not 3"
[ "$(delta "$get_404")" = 1 ] || fail "GET secrets 404 moved by $(delta "$get_404"), not 1"
[ "$(delta "$create_ns")" = 1 ] || fail "POST namespaces 201 moved by $(delta "$create_ns"), not 1"
pass "apiserver_request_total and the latency histogram count the requests by verb, resource and code"

[ "$(delta "$token_fail")" = 1 ] || fail "token failures moved by $(delta "$token_fail"), not 1"
[ "$(delta 'kpki_authentication_attempts_total{method="x509",result="failure"}')" = 1 ] ||
    fail "an etcd-CA client certificate was not counted as an x509 failure"
[ "$(delta "$x509_ok")" -ge 5 ] || fail "x509 successes moved by $(delta "$x509_ok"), want >= 5"
pass "kpki_authentication_attempts_total counts by method and result"

grep -q '^kpki_tls_handshake_failures_total{reason="alert protocol version"} [1-9]' "$WORK/m2.txt" ||
    { grep handshake "$WORK/m2.txt"; fail "no TLS failure with reason 'alert protocol version' (TLS 1.1)"; }
grep -Eq '^kpki_tls_handshake_failures_total\{reason="(wrong version number|http request)"\} [1-9]' "$WORK/m2.txt" ||
    { grep handshake "$WORK/m2.txt"; fail "no TLS failure for plain HTTP on the TLS port"; }
[ "$(value "$WORK/m2.txt" kpki_tls_handshakes_total)" -gt "$(value "$WORK/m1.txt" kpki_tls_handshakes_total)" ] ||
    fail "kpki_tls_handshakes_total did not move"
pass "kpki_tls_handshake_failures_total counts failed handshakes by reason"

expiry() { date -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }
want=$(expiry "$root/etc/kubernetes/pki/apiserver.crt")
grep -q "^kpki_certificate_expiration_timestamp_seconds{certificate=\"serving\",subject=\"/CN=kube-apiserver\"} $want\$" "$WORK/m2.txt" ||
    { grep certificate_expiration "$WORK/m2.txt"; fail "serving certificate expiry is not $want"; }
want=$(expiry "$root/etc/kubernetes/pki/ca.crt")
grep -q "^kpki_certificate_expiration_timestamp_seconds{certificate=\"client-ca\",subject=\"/CN=kubernetes\"} $want\$" "$WORK/m2.txt" ||
    fail "client CA expiry is not $want"
[ "$(value "$WORK/m2.txt" process_resident_memory_bytes)" -gt 1000000 ] || fail "process_resident_memory_bytes"
pass "certificate expiry gauges equal openssl's notAfter; process metrics present"

# RBAC: system:monitoring may read /metrics; a user with no role may not.
for who in nobody:nogroup watcher:system:monitoring; do
    "$KPKI" kubeconfig user --root "$root" --name "${who%%:*}" --org "${who#*:}" \
        --server "$APISERVER_URL" --output-file "$WORK/${who%%:*}.conf" >/dev/null
done
curl_as() { # CONF PATH: curl with the client certificate of a kubeconfig
    sed -n 's/^ *client-certificate-data: //p' "$1" | base64 -d >"$WORK/as.crt"
    sed -n 's/^ *client-key-data: //p' "$1" | base64 -d >"$WORK/as.key"
    curl -sS --cacert "$root/etc/kubernetes/pki/ca.crt" --cert "$WORK/as.crt" --key "$WORK/as.key" \
        -o "$WORK/as.out" -w '%{http_code}' "$APISERVER_URL$2"
}
[ "$(curl_as "$WORK/nobody.conf" /metrics)" = 403 ] || fail "/metrics for a user without a role: want 403"
grep -q 'cannot get path \\"/metrics\\"' "$WORK/as.out" || { cat "$WORK/as.out"; fail "403 message"; }
[ "$(curl_as "$WORK/watcher.conf" /metrics)" = 200 ] || fail "/metrics for system:monitoring: want 200"
pass "/metrics: 403 for a user RBAC does not allow, 200 for group system:monitoring"

# The two caches behind service-account tokens: three requests with one token are one miss
# and two hits of the verified-token cache, and three lookups of the service account in the
# object cache of which at least the last two are hits (nothing is written in between).
curl_admin /api/v1/namespaces/default/serviceaccounts -X POST -H 'Content-Type: application/json' \
    --data '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"cached"}}' -f -o /dev/null
token=$(curl_admin /api/v1/namespaces/default/serviceaccounts/cached/token -X POST \
    -H 'Content-Type: application/json' \
    --data '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}' -f |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])')
scrape "$WORK/m3.txt"
for i in 1 2 3; do
    curl -sS -f --cacert "$root/etc/kubernetes/pki/ca.crt" -H "Authorization: Bearer $token" \
        "$APISERVER_URL/version" -o /dev/null || fail "a request with the service-account token"
done
scrape "$WORK/m4.txt"
# moved METRIC [BEFORE AFTER]: how far METRIC moved between two scrapes (default m3, m4).
moved() { echo $(( $(value "$WORK/${3:-m4}.txt" "$1") - $(value "$WORK/${2:-m3}.txt" "$1") )); }
token_hit='kpki_token_cache_requests_total{result="hit"}'
token_miss='kpki_token_cache_requests_total{result="miss"}'
object_hit='kpki_object_cache_requests_total{result="hit"}'
object_miss='kpki_object_cache_requests_total{result="miss"}'
[ "$(moved "$token_miss")" = 1 ] && [ "$(moved "$token_hit")" = 2 ] ||
    fail "token cache: misses moved by $(moved "$token_miss"), hits by $(moved "$token_hit"); want 1 and 2"
[ $(( $(moved "$object_hit") + $(moved "$object_miss") )) = 3 ] && [ "$(moved "$object_hit")" -ge 2 ] ||
    fail "object cache: hits moved by $(moved "$object_hit"), misses by $(moved "$object_miss"); want 3 lookups, >= 2 hits"
pass "kpki_token_cache_requests_total and kpki_object_cache_requests_total count a token's requests"

# The client-chain cache: three new connections with a certificate never seen before. Each
# looks the chain up once, against the cluster CA: kubeadm configures the front-proxy CA too,
# but a request that names no proxied user (no X-Remote-User) is only checked against it when
# no other authenticator accepts it. The first connection misses, the others hit: 2 hits, 1
# miss. The scrape after them adds the admin's own lookup (a hit or a miss as the admin's last
# minute went).
"$KPKI" kubeconfig user --root "$root" --name chained --org nogroup \
    --server "$APISERVER_URL" --output-file "$WORK/chained.conf" >/dev/null
scrape "$WORK/m5.txt"
for i in 1 2 3; do
    [ "$(curl_as "$WORK/chained.conf" /version)" = 200 ] || fail "GET /version as chained"
done
scrape "$WORK/m6.txt"
chain_hit='kpki_client_cert_cache_requests_total{result="hit"}'
chain_miss='kpki_client_cert_cache_requests_total{result="miss"}'
hits=$(moved "$chain_hit" m5 m6) misses=$(moved "$chain_miss" m5 m6)
[ $((hits + misses)) = 4 ] && [ "$hits" -ge 2 ] && [ "$hits" -le 3 ] ||
    fail "client-chain cache: hits moved by $hits, misses by $misses; want 4 lookups, 2-3 hits"
pass "kpki_client_cert_cache_requests_total: a client reconnecting with its certificate is a hit"

stop_apiserver
