#!/usr/bin/env bash
# Integration: the etcd certificates kpki issues work with the real etcd 3.4 (Debian's
# /usr/bin/etcd and /usr/bin/etcdctl), on loopback only, with mutual TLS everywhere:
#   1. one member: the API server's and the health check's client certificates are accepted; a
#      certificate from the cluster CA, no certificate, and the wrong CA on the client are refused;
#   2. three members whose trees come from one etcd CA (kpki init, then --join-from) form a
#      healthy cluster over peer mTLS and replicate a key;
#   3. a member whose peer certificate comes from another etcd CA is refused and no quorum forms.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/etcd_lib.sh"

# ---------------------------------------------------------------------------------------------
# 1. One member.
ports 6
R1=$WORK/n1
new_tree "$R1" n1
P1=$R1/etc/kubernetes/pki
C1=${PORTS[0]} PP1=${PORTS[1]}
EP1=https://127.0.0.1:$C1
start_etcd n1 "$R1" "$C1" "$PP1" "n1=https://127.0.0.1:$PP1" single
PID1=$LAST_PID
LOG1=$(log_of single n1)
single_healthy() {
    local TIMEOUT=("${POLL_TIMEOUT[@]}")
    port_open "$C1" && ctl "$R1" etcd/healthcheck-client "$EP1" endpoint health
}
wait_up "$START_WAIT" single_healthy "$PID1" "$LOG1"
pass "etcd 3.4 starts with kpki's etcd/server and etcd/peer certificates and client/peer mTLS"

ctl "$R1" apiserver-etcd-client "$EP1" put kpki/it value-1 >"$WORK/out" 2>&1 \
    || { cat "$WORK/out"; show_logs "$LOG1"; fail "put with apiserver-etcd-client"; }
ctl "$R1" apiserver-etcd-client "$EP1" get --print-value-only kpki/it >"$WORK/out" 2>&1 \
    || { cat "$WORK/out"; show_logs "$LOG1"; fail "get with apiserver-etcd-client"; }
[ "$(cat "$WORK/out")" = value-1 ] || { cat "$WORK/out"; fail "get returned the wrong value"; }
pass "apiserver-etcd-client.crt (etcd CA, clientAuth) can put and get"

ctl "$R1" etcd/healthcheck-client "$EP1" endpoint health >"$WORK/out" 2>&1 \
    || { cat "$WORK/out"; show_logs "$LOG1"; fail "endpoint health with etcd/healthcheck-client"; }
grep -q "is healthy" "$WORK/out" || { cat "$WORK/out"; fail "endpoint health output"; }
pass "etcd/healthcheck-client.crt passes 'endpoint health'"

# new_log_matches: etcd's log has a line after line REF_FROM that matches the ERE REF_PATTERN.
new_log_matches() { new_lines "$LOG1" "$REF_FROM" | grep -Eq -- "$REF_PATTERN"; }

# refused WHAT SERVER_PATTERN CLIENT_PATTERN etcdctl-args...: an etcdctl call that writes
# kpki/refused must fail, and etcd's new log lines must match SERVER_PATTERN (an ERE; empty:
# no requirement) and etcdctl's --debug output CLIENT_PATTERN (likewise).
refused() {
    local what=$1 server=$2 client=$3; shift 3
    local before rc=0
    before=$(line_count "$LOG1")
    "$ETCDCTL" --debug --endpoints "$EP1" "${BAD_TIMEOUT[@]}" "$@" put kpki/refused "$what" \
        >"$WORK/out" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        cat "$WORK/out"
        fail "$what: etcdctl succeeded"
    fi
    if [ -n "$client" ] && ! grep -Eq -- "$client" "$WORK/out"; then
        grep -v '^ETCDCTL_' "$WORK/out" >&2
        fail "$what: etcdctl's output lacks /$client/"
    fi
    REF_FROM=$before REF_PATTERN=$server
    if [ -n "$server" ] && ! wait_for 30 new_log_matches; then
        new_lines "$LOG1" "$before" >&2
        fail "$what: etcd's log lacks /$server/"
    fi
}

refused "cluster-CA client certificate" \
    'rejected connection.*(unknown authority|bad certificate)' '' \
    --cacert "$P1/etcd/ca.crt" --cert "$P1/apiserver-kubelet-client.crt" \
    --key "$P1/apiserver-kubelet-client.key"
pass "apiserver-kubelet-client.crt (cluster CA, not etcd CA) is refused: unknown authority"

refused "no client certificate" \
    "rejected connection.*(didn't provide a certificate|certificate required|bad certificate)" '' \
    --cacert "$P1/etcd/ca.crt"
pass "a client without a certificate is refused (--client-cert-auth)"

refused "wrong server CA" '' 'unknown authority|certificate is not trusted' \
    --cacert "$P1/ca.crt" --cert "$P1/apiserver-etcd-client.crt" \
    --key "$P1/apiserver-etcd-client.key"
pass "etcdctl trusting the cluster ca.crt refuses etcd's server certificate: unknown authority"

# None of the refused requests reached the store, and the server still serves.
ctl "$R1" apiserver-etcd-client "$EP1" get --prefix --keys-only kpki/ >"$WORK/out" 2>&1 \
    || { cat "$WORK/out"; show_logs "$LOG1"; fail "get after the refused requests"; }
[ "$(grep . "$WORK/out")" = kpki/it ] \
    || { cat "$WORK/out"; fail "keys under kpki/: want only kpki/it"; }
pass "no refused request wrote anything; etcd still serves"

stop_etcd "$PID1"

# ---------------------------------------------------------------------------------------------
# 2. Three members from one etcd CA: n1 from kpki init, n2 and n3 from --join-from n1.
T1=$WORK/cluster/n1 T2=$WORK/cluster/n2 T3=$WORK/cluster/n3
new_tree "$T1" n1
new_tree "$T2" n2 --join-from "$T1"
new_tree "$T3" n3 --join-from "$T1"
for n in 2 3; do
    for f in etcd/ca.crt etcd/ca.key; do
        cmp -s "$T1/etc/kubernetes/pki/$f" "$WORK/cluster/n$n/etc/kubernetes/pki/$f" \
            || fail "n$n's $f differs from n1's"
    done
done
pass "--join-from copies etcd/ca.crt and etcd/ca.key byte for byte to n2 and n3"
for n in 1 2 3; do
    for f in server peer; do
        crt=$WORK/cluster/n$n/etc/kubernetes/pki/etcd/$f.crt
        subject=$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253)
        [ "$subject" = "subject=CN=n$n" ] || fail "n$n's etcd/$f.crt: $subject, want CN=n$n"
        openssl verify -CAfile "$T1/etc/kubernetes/pki/etcd/ca.crt" "$crt" >/dev/null \
            || fail "n$n's etcd/$f.crt does not verify against n1's etcd CA"
    done
done
if cmp -s "$T1/etc/kubernetes/pki/etcd/server.crt" "$T2/etc/kubernetes/pki/etcd/server.crt"; then
    fail "n2 got n1's etcd/server.crt"
fi
pass "each node's etcd/server.crt and etcd/peer.crt have its own CN (n1, n2, n3), all from one CA"

CL=("${PORTS[0]}" "${PORTS[2]}" "${PORTS[4]}")
PL=("${PORTS[1]}" "${PORTS[3]}" "${PORTS[5]}")
INITIAL="n1=https://127.0.0.1:${PL[0]},n2=https://127.0.0.1:${PL[1]},n3=https://127.0.0.1:${PL[2]}"
TRIO_PIDS="" TRIO_LOGS=""
for i in 0 1 2; do
    n=n$((i + 1))
    start_etcd "$n" "$WORK/cluster/$n" "${CL[$i]}" "${PL[$i]}" "$INITIAL" trio
    TRIO_PIDS+=" $LAST_PID"
    TRIO_LOGS+=" $(log_of trio "$n")"
done
three_started() {
    local out TIMEOUT=("${POLL_TIMEOUT[@]}")
    port_open "${CL[0]}" || return 1
    out=$(ctl "$T1" etcd/healthcheck-client "https://127.0.0.1:${CL[0]}" member list) || return 1
    [ "$(grep -c ', started, n[123], ' <<<"$out")" = 3 ]
}
wait_up "$START_WAIT" three_started "$TRIO_PIDS" "$TRIO_LOGS"
ctl "$T1" etcd/healthcheck-client "https://127.0.0.1:${CL[0]}" member list >"$WORK/out" 2>&1
for n in n1 n2 n3; do
    grep -q ", started, $n, https://127.0.0.1:" "$WORK/out" \
        || { cat "$WORK/out"; fail "member list lacks a started $n"; }
done
pass "three members (n1 from init, n2 and n3 from --join-from) start; member list shows 3 started"

cluster_healthy() {
    local TIMEOUT=("${POLL_TIMEOUT[@]}")
    ctl "$T1" etcd/healthcheck-client "https://127.0.0.1:${CL[0]}" endpoint health --cluster
}
wait_up "$START_WAIT" cluster_healthy "$TRIO_PIDS" "$TRIO_LOGS"
ctl "$T1" etcd/healthcheck-client "https://127.0.0.1:${CL[0]}" endpoint health --cluster \
    >"$WORK/out" 2>&1 || { cat "$WORK/out"; show_logs $TRIO_LOGS; fail "health --cluster"; }
[ "$(grep -c 'is healthy' "$WORK/out")" = 3 ] \
    || { cat "$WORK/out"; fail "not 3 healthy endpoints"; }
pass "endpoint health --cluster: 3 healthy endpoints over peer mTLS"

# Each member serves clients with its own tree's certificates: write through n1 with n1's client
# certificate, read through n3 with n3's.
ctl "$T1" apiserver-etcd-client "https://127.0.0.1:${CL[0]}" put kpki/replicated via-n1 \
    >"$WORK/out" 2>&1 || { cat "$WORK/out"; show_logs $TRIO_LOGS; fail "put through n1"; }
ctl "$T3" apiserver-etcd-client "https://127.0.0.1:${CL[2]}" \
    get --print-value-only kpki/replicated >"$WORK/out" 2>&1 \
    || { cat "$WORK/out"; show_logs $TRIO_LOGS; fail "get through n3"; }
[ "$(cat "$WORK/out")" = via-n1 ] || { cat "$WORK/out"; fail "n3 returned the wrong value"; }
pass "a key written through n1 (n1's client cert) reads back through n3 (n3's client cert)"

# No member refused a peer's or a client's certificate at any point.
if grep -E 'unknown authority|bad certificate|certificate required|provide a certificate' \
    $TRIO_LOGS >&2; then
    fail "a member of the 3-member cluster refused a TLS connection"
fi
pass "no TLS rejection in the logs of the 3-member cluster"

stop_etcd $TRIO_PIDS

# ---------------------------------------------------------------------------------------------
# 3. A member whose certificates come from another etcd CA cannot join.
FA=$WORK/foreign/a FB=$WORK/foreign/b
new_tree "$FA" a
new_tree "$FB" b   # its own kpki init: a different etcd CA
if cmp -s "$FA/etc/kubernetes/pki/etcd/ca.crt" "$FB/etc/kubernetes/pki/etcd/ca.crt"; then
    fail "two kpki init runs produced the same etcd CA"
fi
INITIAL="a=https://127.0.0.1:${PORTS[1]},b=https://127.0.0.1:${PORTS[3]}"
start_etcd a "$FA" "${PORTS[0]}" "${PORTS[1]}" "$INITIAL" mixed
PIDA=$LAST_PID
start_etcd b "$FB" "${PORTS[2]}" "${PORTS[3]}" "$INITIAL" mixed
PIDB=$LAST_PID
LOGA=$(log_of mixed a) LOGB=$(log_of mixed b)
T0=$(date +%s)

peer_refused() {
    grep -Eq 'rejected connection.*(unknown authority|bad certificate)' "$LOGA" &&
        grep -Eq 'rejected connection.*(unknown authority|bad certificate)' "$LOGB"
}
wait_up 20 peer_refused "$PIDA $PIDB" "$LOGA $LOGB"
pass "each member refuses the other's peer connection (TLS: unknown authority / bad certificate)"

# Give them 5 s (five election timeouts), then neither side may be healthy (checked on both
# members at once, each with its own tree's CA and health check certificate).
while [ $(( $(date +%s) - T0 )) -lt 5 ]; do sleep 0.2; done
for pid in $PIDA $PIDB; do
    kill -0 "$pid" 2>/dev/null || { show_logs "$LOGA" "$LOGB"; fail "etcd (pid $pid) exited"; }
done
HEALTH_PIDS=()
for m in a:0 b:2; do
    name=${m%%:*} port=${PORTS[${m#*:}]}
    pki=$WORK/foreign/$name/etc/kubernetes/pki
    "$ETCDCTL" --endpoints "https://127.0.0.1:$port" "${BAD_TIMEOUT[@]}" \
        --cacert "$pki/etcd/ca.crt" --cert "$pki/etcd/healthcheck-client.crt" \
        --key "$pki/etcd/healthcheck-client.key" \
        endpoint health >"$WORK/health-$name" 2>&1 &
    HEALTH_PIDS+=($!)
done
for i in 0 1; do
    name=$([ "$i" = 0 ] && echo a || echo b)
    rc=0
    wait "${HEALTH_PIDS[$i]}" || rc=$?
    if [ "$rc" = 0 ]; then
        cat "$WORK/health-$name"; show_logs "$LOGA" "$LOGB"
        fail "member $name is healthy although its peer has a foreign etcd CA"
    fi
    grep -q 'is unhealthy' "$WORK/health-$name" \
        || { cat "$WORK/health-$name"; fail "member $name: unexpected health output"; }
done
if grep -Eq 'elected leader|became leader' "$LOGA" "$LOGB"; then
    show_logs "$LOGA" "$LOGB"
    fail "a leader was elected across two etcd CAs"
fi
pass "2 members across two etcd CAs: no leader, both unhealthy after $(( $(date +%s) - T0 ))s"
stop_etcd "$PIDA" "$PIDB"
