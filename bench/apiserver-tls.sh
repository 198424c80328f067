#!/usr/bin/env bash
# bench/apiserver-tls.sh BUILD_DIR [--runs N] [--seconds S] [--connections C] [--hold N] [--churn N]
#
# Server CPU per operation, rate, latency and memory of `kpki apiserver` over mutual TLS, with
# nginx (Debian's, `ssl_verify_client on`) measured in the same run, on the same certificates,
# with as many worker processes as kpki has worker threads. The load comes from kpki-loadgen
# (bench/loadgen), which reads the servers' CPU time and RSS from /proc around each measured
# window. Prints a Markdown report on stdout; progress goes to stderr. See bench/README.md.
#
# What is measured (each a closed-loop window of S seconds, N runs, the servers alternating in
# a rotating order, medians reported):
#   - full mTLS handshakes, P-256 and RSA-2048 chains, TLS 1.3 and 1.2: each operation a new
#     connection, a full handshake (no resumption) with a client certificate of its own, then
#     GET /version with Connection: close. The request is part of the operation because kpki
#     judges the client chain when a request arrives (net.md), nginx during the handshake.
#   - keep-alive GET /version (kpki and nginx), SelfSubjectReview POST and GET of a secret
#     (kpki), on connections opened before the window (with one warm-up request each, not
#     counted), each with its own client certificate;
#   - keep-alive GET /version authenticated by a service-account JWT, no client certificate
#     (ES256 on the P-256 tree, RS256 on the RSA tree);
#   - latency at half the peak rate: open loop at half the keep-alive /version rate measured
#     just before each window;
#   - resident memory, on servers started afresh for it: idle, holding --hold connections, after
#     --churn full TLS 1.3 handshakes that are never resumed (what a server keeps per handshake
#     after the connection is gone: kpki with --tls-session-cache-entries N would keep up to N
#     sessions; by default it keeps none), and kpki holding the connections again after those.
set -euo pipefail
# shellcheck source=bench/identities.sh
. "$(dirname "${BASH_SOURCE[0]}")/identities.sh"

usage() {
    echo "usage: bench/apiserver-tls.sh BUILD_DIR [--runs N] [--seconds S] [--connections C] [--hold N] [--churn N]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
BUILD=$1; shift
RUNS=3
SECONDS_PER_RUN=3
KEEPALIVE_CONNECTIONS=256
HOLD_CONNECTIONS=10000
# Just past OpenSSL's default session cache size (20480): a server that kept every session
# would have a full cache at the end.
CHURN_HANDSHAKES=22000
IDENTITIES=16
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --seconds) SECONDS_PER_RUN=${2:?}; shift 2 ;;
        --connections) KEEPALIVE_CONNECTIONS=${2:?}; shift 2 ;;
        --hold) HOLD_CONNECTIONS=${2:?}; shift 2 ;;
        --churn) CHURN_HANDSHAKES=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
KPKI=$BUILD/kpki
LOADGEN=$BUILD/bench/loadgen/kpki-loadgen
for tool in "$KPKI" "$LOADGEN"; do
    [ -x "$tool" ] || { echo "apiserver-tls.sh: $tool is missing (build first)" >&2; exit 2; }
done
for tool in nginx openssl curl python3; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
    command -v "$tool" >/dev/null ||
        { echo "apiserver-tls.sh: $tool is missing (scripts/deps.sh bench)" >&2; exit 2; }
done
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
# The servers' worker count: kpki's default is one thread per CPU; nginx gets as many processes.
WORKERS=$(nproc)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kpki-bench-tls.XXXXXXXX")
RESULTS=$WORK/results
mkdir -p "$RESULTS"
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

log() { echo "apiserver-tls.sh: $*" >&2; }

# Each held connection is a descriptor in the load generator and one in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)

# ---- the PKIs ----

# make_tree NAME KEY_TYPE: a kpki tree, and IDENTITIES client certificates of the same key type
# from its CA (group kubeadm:cluster-admins, as admin.conf's, so RBAC grants everything), as
# WORK/NAME/ids/N.crt + N.key for kpki-loadgen --cert-dir.
make_tree() {
    local name=$1 key_type=$2
    local root=$WORK/$name pki=$WORK/$name/etc/kubernetes/pki
    "$KPKI" init --root "$root" --node-name bench --apiserver-advertise-address 127.0.0.1 \
        --key-type "$key_type" --quiet
    make_identities "$pki" "$root/ids" "$IDENTITIES" "$key_type"
    cp "$root/ids/0.crt" "$root/admin.crt"
    cp "$root/ids/0.key" "$root/admin.key"
}

# ---- the servers ----

# start_kpki NAME [flags...]: kpki apiserver on the tree, on a free port. Sets KPKI_PID_<NAME>,
# KPKI_PORT_<NAME>. Its port file, log and store are named after NAME, so a second server can
# run on the same tree (a symlink $WORK/<NAME2> -> $WORK/<NAME>) with other flags.
start_kpki() {
    local name=$1 root=$WORK/$1; shift
    rm -f "$root/kpki-$name.port" # a restart must not read the last one's port
    "$KPKI" apiserver --root "$root" --bind-address 127.0.0.1 --secure-port 0 \
        --threads "$WORKERS" --port-file "$root/kpki-$name.port" \
        --storage-file "$root/store-$name.db" --v 0 "$@" >"$root/kpki-$name.log" 2>&1 &
    local pid=$!
    SERVER_PIDS+=("$pid")
    local i
    for i in $(seq 1 100); do
        [ -s "$root/kpki-$name.port" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$root/kpki-$name.log" >&2; exit 1; }
        sleep 0.1
    done
    printf -v "KPKI_PID_$name" %s "$pid"
    printf -v "KPKI_PORT_$name" %s "$(cat "$root/kpki-$name.port")"
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_nginx NAME: nginx with the tree's apiserver certificate, requiring client certificates
# from the tree's CA; TLS 1.2 with kpki's suites (net/tls.c) and 1.3 with kpki's suite order and
# ChaCha20 rule; no session cache or tickets (nginx's defaults are no cache too; tickets are
# turned off as kpki has them off); a deferred accept, as kpki's listeners (net/http.c);
# keep-alive without a request limit (kpki has none); /version answers a small JSON document.
start_nginx() {
    local name=$1 root=$WORK/$1 pki=$WORK/$1/etc/kubernetes/pki
    local port
    port=$(free_port)
    mkdir -p "$root/nginx"
    cat >"$root/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
worker_rlimit_nofile $FD_LIMIT;
pid $root/nginx/nginx.pid;
error_log $root/nginx/error.log warn;
daemon off;
events { worker_connections $((HOLD_CONNECTIONS + 1000)); }
http {
    access_log off;
    client_body_temp_path $root/nginx/body;
    proxy_temp_path $root/nginx/proxy;
    fastcgi_temp_path $root/nginx/fastcgi;
    uwsgi_temp_path $root/nginx/uwsgi;
    scgi_temp_path $root/nginx/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 90s;
    server {
        listen 127.0.0.1:$port ssl deferred; # TCP_DEFER_ACCEPT, as kpki's listeners
        ssl_certificate $pki/apiserver.crt;
        ssl_certificate_key $pki/apiserver.key;
        ssl_client_certificate $pki/ca.crt;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        # kpki's TLS 1.3 order and ChaCha20 rule (docs/net.md), so both pick the same suite.
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        ssl_conf_command Options PrioritizeChaCha;
        ssl_session_cache off;
        ssl_session_tickets off;
        location = /version {
            default_type application/json;
            return 200 '{"major":"1","minor":"31","gitVersion":"v1.31.0","platform":"linux/amd64"}';
        }
    }
}
EOF
    nginx -c "$root/nginx/nginx.conf" -p "$root/nginx" -e "$root/nginx/error.log" &
    local pid=$!
    SERVER_PIDS+=("$pid")
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null --cacert "$pki/ca.crt" --cert "$root/admin.crt" \
            --key "$root/admin.key" "https://127.0.0.1:$port/version" && break
        kill -0 "$pid" 2>/dev/null || { cat "$root/nginx/error.log" >&2; exit 1; }
        sleep 0.1
    done
    printf -v "NGINX_PID_$name" %s "$pid"
    printf -v "NGINX_PORT_$name" %s "$port"
}

# server_pid_args SERVER NAME: the --server-pid flags for kpki's process, or nginx's master and
# workers (the workers do the work; the master is counted too, as it is part of the server).
server_pid_args() {
    local server=$1 name=$2
    if [ "$server" = kpki ]; then
        local var=KPKI_PID_$name
        echo "--server-pid ${!var}"
    else
        local var=NGINX_PID_$name pid
        echo -n "--server-pid ${!var}"
        for pid in $(pgrep -P "${!var}"); do
            echo -n " --server-pid $pid"
        done
        echo
    fi
}

server_url() {
    local server=$1 name=$2 path=$3 var
    if [ "$server" = kpki ]; then var=KPKI_PORT_$name; else var=NGINX_PORT_$name; fi
    echo "https://127.0.0.1:${!var}$path"
}

rss_kib() { # PIDS...: summed VmRSS
    local total=0 pid kib
    for pid in "$@"; do
        kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        total=$((total + kib))
    done
    echo "$total"
}

# ---- measuring ----

# loadgen SCENARIO SERVER NAME RUN PATH [flags...]: one kpki-loadgen run into RESULTS.
loadgen() {
    local scenario=$1 server=$2 name=$3 run=$4 path=$5; shift 5
    local out=$RESULTS/$scenario.$server.$run.json
    # shellcheck disable=SC2046
    "$LOADGEN" --url "$(server_url "$server" "$name" "$path")" \
        --ca "$WORK/$name/etc/kubernetes/pki/ca.crt" --output json \
        $(server_pid_args "$server" "$name") "$@" >"$out" 2>"$out.err" ||
        { cat "$out.err" >&2; log "kpki-loadgen failed: $scenario $server run $run"; exit 1; }
    echo "$scenario $server $name $*" >"$RESULTS/$scenario.command"
}

# measure SCENARIO NAME SERVERS PATH [flags...]: RUNS rounds, the servers (a comma-separated
# list) in a rotating order, so both see the same machine.
measure() {
    local scenario=$1 name=$2 servers=$3 path=$4; shift 4
    local list round i
    IFS=, read -r -a list <<<"$servers"
    log "$scenario ($RUNS runs of ${SECONDS_PER_RUN}s on $servers)"
    for ((round = 0; round < RUNS; round++)); do
        for ((i = 0; i < ${#list[@]}; i++)); do
            local server=${list[$(((round + i) % ${#list[@]}))]}
            loadgen "$scenario" "$server" "$name" "$round" "$path" --duration "$SECONDS_PER_RUN" "$@"
        done
    done
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "work directory $WORK; $WORKERS workers; descriptor limit $FD_LIMIT"

log "PKIs: ecdsa-p256 and rsa-2048 trees, $IDENTITIES client identities each"
make_tree p256 ecdsa-p256
make_tree rsa rsa-2048
for name in p256 rsa; do
    start_kpki "$name"
    start_nginx "$name"
    # The same tree served again without kpki's caches of verdicts (verified tokens, client
    # chains), for the rows that say "without".
    ln -s "$WORK/$name" "$WORK/${name}nc"
    start_kpki "${name}nc" --token-cache-entries 0 --client-cert-cache-entries 0
done
sleep 1

# negotiated NAME SERVER VERSION: the suite the server picks for OpenSSL's default client offer
# (kpki-loadgen's), with one of the tree's client identities.
negotiated() {
    local name=$1 server=$2 version=$3 url
    url=$(server_url "$server" "$name" /)
    url=${url#https://}
    # Empty output when the handshake fails or stalls (10 s): the caller reports it.
    { timeout 10 openssl s_client -connect "${url%/}" "-tls$version" \
        -CAfile "$WORK/$name/etc/kubernetes/pki/ca.crt" -cert "$WORK/$name/ids/0.crt" \
        -key "$WORK/$name/ids/0.key" </dev/null 2>/dev/null || true; } |
        sed -n 's/^New, [^,]*, Cipher is //p'
}
# The comparison is only fair if both servers negotiate the same suites.
SUITES=""
for name in p256 rsa; do
    for version in 1_3 1_2; do
        k=$(negotiated "$name" kpki "$version")
        n=$(negotiated "$name" nginx "$version")
        if [ -z "$k" ] || [ "$k" != "$n" ]; then
            log "the servers negotiate different suites ($name, TLS ${version/_/.}): kpki '$k', nginx '$n'"
            exit 1
        fi
        SUITES="$SUITES${SUITES:+; }$name TLS ${version/_/.} $k"
    done
done
log "suites negotiated by both servers: $SUITES"

# The API objects the keep-alive requests read: a secret, a service account and its token.
admin_curl() { # NAME PATH [curl args...]
    local name=$1 path=$2; shift 2
    curl -sS --fail --cacert "$WORK/$name/etc/kubernetes/pki/ca.crt" --cert "$WORK/$name/admin.crt" \
        --key "$WORK/$name/admin.key" "$@" "$(server_url kpki "$name" "$path")"
}
# (p256nc and rsanc are the same trees served by the servers without the caches: each
# server has its own store, so its own service account, and the token is named after it.)
for name in p256 rsa p256nc rsanc; do
    admin_curl "$name" /api/v1/namespaces/default/secrets -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bench"},"stringData":{"password":"not-a-real-one","user":"bench"}}' >/dev/null
    admin_curl "$name" /api/v1/namespaces/default/serviceaccounts -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"bench"}}' >/dev/null
    admin_curl "$name" /api/v1/namespaces/default/serviceaccounts/bench/token -X POST \
        -H 'Content-Type: application/json' \
        -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}' |
        "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])' >"$WORK/$name/token-$name"
done
echo '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' >"$WORK/ssr.json"

# One untimed warm-up per server: page in code, fill allocator pools.
log "warm-up"
for name in p256 rsa; do
    for server in kpki nginx; do
        loadgen warmup "$server" "$name" "$name" /version --duration 1 --mode handshake \
            --handshake-request --connections 4 --cert-dir "$WORK/$name/ids"
    done
done

ids() { echo "--cert-dir $WORK/$1/ids"; }
# shellcheck disable=SC2046
{
for name in p256 rsa; do
    for tls in 1.3 1.2; do
        measure "handshake-$name-tls$tls" "$name" kpki,nginx /version --mode handshake \
            --handshake-request --tls "$tls" --connections 8 $(ids "$name")
    done
    # The same clients reconnect (16 identities in turn), so kpki's chain cache answers for
    # all but the first of each; nginx verifies every chain. Without the cache, for the record.
    measure "handshake-${name}nc-tls1.3" "${name}nc" kpki /version --mode handshake \
        --handshake-request --tls 1.3 --connections 8 $(ids "$name")
done
measure keepalive-version p256 kpki,nginx /version --connections "$KEEPALIVE_CONNECTIONS" $(ids p256)
measure keepalive-ssr p256 kpki /apis/authentication.k8s.io/v1/selfsubjectreviews \
    --connections "$KEEPALIVE_CONNECTIONS" $(ids p256) --body-file "$WORK/ssr.json" \
    --header 'Content-Type: application/json'
measure keepalive-secret p256 kpki /api/v1/namespaces/default/secrets/bench \
    --connections "$KEEPALIVE_CONNECTIONS" $(ids p256)
measure jwt-es256 p256 kpki /version --connections "$KEEPALIVE_CONNECTIONS" \
    --header "Authorization: Bearer $(cat "$WORK/p256/token-p256")"
measure jwt-rs256 rsa kpki /version --connections "$KEEPALIVE_CONNECTIONS" \
    --header "Authorization: Bearer $(cat "$WORK/rsa/token-rsa")"
measure jwt-es256-nocache p256nc kpki /version --connections "$KEEPALIVE_CONNECTIONS" \
    --header "Authorization: Bearer $(cat "$WORK/p256nc/token-p256nc")"
measure jwt-rs256-nocache rsanc kpki /version --connections "$KEEPALIVE_CONNECTIONS" \
    --header "Authorization: Bearer $(cat "$WORK/rsanc/token-rsanc")"
# Latency at half of each server's own peak. A p99 is what a stall of the shared machine moves
# most (one 30 ms stall in a 3 s window is 1 % of its requests), so this row takes at least
# five windows and interleaves the two servers round by round, as measure does for one rate.
# The peak is measured again, closed loop, right before each window: the machine's speed
# moves between rows, and half of a peak measured minutes earlier in a quiet moment can be
# more than the server can do in a busy one (the offered rate then queues).
HALF_PEAK_RUNS=$((RUNS > 5 ? RUNS : 5))
log "half-peak ($HALF_PEAK_RUNS runs of ${SECONDS_PER_RUN}s on kpki,nginx, each at half its peak just before)"
for ((round = 0; round < HALF_PEAK_RUNS; round++)); do
    order=(kpki nginx)
    ((round % 2 == 0)) || order=(nginx kpki)
    for server in "${order[@]}"; do
        loadgen "half-peak-probe-$server" "$server" p256 "$round" /version \
            --duration "$SECONDS_PER_RUN" --connections "$KEEPALIVE_CONNECTIONS" $(ids p256)
        rate=$("$PYTHON" -c 'import json, sys; print(max(1.0, json.load(open(sys.argv[1]))["rate_per_second"] / 2))' \
            "$RESULTS/half-peak-probe-$server.$server.$round.json")
        loadgen "half-peak-$server" "$server" p256 "$round" /version --duration "$SECONDS_PER_RUN" \
            --connections "$KEEPALIVE_CONNECTIONS" $(ids p256) --rate "$rate"
    done
done
}

# ---- memory, on servers started afresh ----

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# server_rss SERVER NAME: the server's summed VmRSS now.
server_rss() {
    if [ "$1" = kpki ]; then
        local var=KPKI_PID_$2
        rss_kib "${!var}"
    else
        local var=NGINX_PID_$2
        # shellcheck disable=SC2046
        rss_kib "${!var}" $(pgrep -P "${!var}")
    fi
}
# hold SCENARIO SERVER: HOLD_CONNECTIONS connections opened before the window, then a light
# open-loop load over them; the server's RSS is read at the window's end with all still open.
hold() {
    # shellcheck disable=SC2046
    loadgen "$1" "$2" p256 0 /version --connections "$HOLD_CONNECTIONS" --threads 2 \
        --rate 200 --duration 5 --timeout 120 $(ids p256)
}
# restart SERVER: stops the P-256 tree's SERVER and starts it afresh (same tree and store).
restart() {
    if [ "$1" = kpki ]; then
        local var=KPKI_PID_p256
        stop_pid "${!var}"
        start_kpki p256
    else
        local var=NGINX_PID_p256
        stop_pid "${!var}"
        start_nginx p256
    fi
    sleep 1
}
# Two fresh starts per server, so that neither figure carries the other's high-water mark (freed
# memory mostly stays in the process): idle then holding the connections; the handshakes, idle
# after them, then (kpki) holding the connections on top.
for server in kpki nginx; do
    restart "$server"
    server_rss "$server" p256 >"$RESULTS/rss-idle.$server"
    log "$server: holding $HOLD_CONNECTIONS connections"
    hold hold-fresh "$server"
    restart "$server"
    log "$server: $CHURN_HANDSHAKES TLS 1.3 handshakes, none resumed"
    # shellcheck disable=SC2046
    loadgen churn "$server" p256 0 /version --mode handshake --handshake-request --tls 1.3 \
        --requests "$CHURN_HANDSHAKES" --connections 8 --threads 2 $(ids p256)
    sleep 1
    server_rss "$server" p256 >"$RESULTS/rss-churned.$server"
done
log "kpki: holding $HOLD_CONNECTIONS connections after the handshakes"
hold hold-churned kpki
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the report ----
export RESULTS WORKERS RUNS SECONDS_PER_RUN KEEPALIVE_CONNECTIONS HOLD_CONNECTIONS IDENTITIES \
    FD_LIMIT CHURN_HANDSHAKES LOAD_BEFORE LOAD_AFTER DATE SUITES
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
KERNEL=$(uname -r)
KPKI_VERSION=$("$KPKI" version 2>/dev/null | head -1)
OPENSSL_VERSION=$(openssl version)
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
REPO=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$(dirname "$0")" diff --quiet HEAD -- src 2>/dev/null || REPO="$REPO (with uncommitted changes in src/)"
export CPU_MODEL KERNEL KPKI_VERSION OPENSSL_VERSION NGINX_VERSION REPO
"$PYTHON" - <<'PY'
import glob, json, os, statistics

E = os.environ
R = E["RESULTS"]

def runs(scenario, server):  # in round order (the file names end in .<round>.json)
    files = glob.glob(f"{R}/{scenario}.{server}.*.json")
    return [json.load(open(f)) for f in sorted(files, key=lambda f: int(f.rsplit(".", 2)[-2]))]

def med(values):
    return statistics.median(values) if values else float("nan")

def summary(scenario, server):
    rs = runs(scenario, server)
    if not rs:
        return None
    errors = sum(r["error_count"] for r in rs)
    return {
        "cpu": med([r["server"]["cpu_ms_per_op"] for r in rs]),
        "cpu_min": min(r["server"]["cpu_ms_per_op"] for r in rs),
        "cpu_max": max(r["server"]["cpu_ms_per_op"] for r in rs),
        "client_cpu": med([r["client_cpu_ms_per_op"] for r in rs]),
        "rate": med([r["rate_per_second"] for r in rs]),
        "p50": med([r["latency_ms"]["p50"] for r in rs]),
        "p99": med([r["latency_ms"]["p99"] for r in rs]),
        "rss": med([r["server"]["rss_kib_after"] for r in rs]),
        "ok": sum(r["ok"] for r in rs),
        "errors": errors,
        "error_detail": {k: v["by_detail"] for r in rs for k, v in r["errors"].items()
                         if isinstance(v, dict) and v["total"]},
        "n": len(rs),
    }

def ms(x, digits=3):
    return f"{x:.{digits}f}"

def mib(kib):
    return f"{kib / 1024:.1f} MiB"

print("# kpki apiserver vs nginx over mutual TLS\n")
print("```\n$ bench/apiserver-tls.sh BUILD_DIR   # = make bench-apiserver\n```\n")
print(f"- machine: {E['CPU_MODEL']}, {os.cpu_count()} cores, Linux {E['KERNEL']}")
print(f"- date: {E['DATE']}; load average (1/5/15 min) {E['LOAD_BEFORE']} before, {E['LOAD_AFTER']} after")
print(f"- software: {E['KPKI_VERSION']} (repo at {E['REPO']}); {E['OPENSSL_VERSION']}; nginx {E['NGINX_VERSION']}")
print(f"- servers: `kpki apiserver --threads {E['WORKERS']}` and nginx with `worker_processes {E['WORKERS']}`, "
      "`ssl_verify_client on`, the same CA, server certificate and client certificates; both on 127.0.0.1")
print(f"- suites both servers negotiate for the load generator's offer (OpenSSL's defaults): {E['SUITES']}")
print(f"- load: kpki-loadgen (1 thread unless said), closed loop, windows of {E['SECONDS_PER_RUN']} s, "
      f"{E['RUNS']} runs per row with the servers alternating; medians; {E['IDENTITIES']} client "
      "identities per tree, one per connection in turn")
print("- server CPU = utime+stime of the server's processes (/proc/PID/stat) over the window / "
      "operations completed in it; the load generator runs on the same 2 cores\n")

def table(title, rows, note=None):
    print(f"## {title}\n")
    if note:
        print(note + "\n")
    print("| operation | server | server CPU ms/op (min-max) | kpki / nginx CPU | ops/s | p50 ms | p99 ms | server RSS after | client CPU ms/op | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, scenario in rows:
        k = summary(scenario, "kpki")
        n = summary(scenario, "nginx")
        for server, s in (("kpki", k), ("nginx", n)):
            if s is None:
                continue
            ratio = ""
            if server == "kpki" and n is not None:
                ratio = f"{s['cpu'] / n['cpu']:.2f}×"
            err = str(s["errors"]) if not s["errors"] else f"{s['errors']} {json.dumps(s['error_detail'])}"
            print(f"| {label} | {server} | {ms(s['cpu'], 4)} ({ms(s['cpu_min'], 4)}-{ms(s['cpu_max'], 4)}) | {ratio} | "
                  f"{s['rate']:.0f} | {ms(s['p50'])} | {ms(s['p99'])} | {mib(s['rss'])} | {ms(s['client_cpu'], 4)} | {err} |")
    print()

table("Full mTLS handshakes",
      [row for name, chain in (("p256", "P-256 chain"), ("rsa", "RSA-2048 chain"))
       for row in [(f"{chain}, TLS {tls}", f"handshake-{name}-tls{tls}") for tls in ("1.3", "1.2")]
       + [(f"{chain}, TLS 1.3, kpki without the client-chain cache", f"handshake-{name}nc-tls1.3")]],
      "Each operation: connect, a full handshake with a client certificate (no session resumption), "
      "`GET /version` with `Connection: close`, the answer. 8 connections at a time. The "
      f"{E['IDENTITIES']} client identities take turns, so a client reconnects with its certificate "
      "as kubelets and controllers do: kpki's client-chain cache (on by default) answers for the "
      "chain's signatures after the first time; the rows without it are a server started with "
      "`--client-cert-cache-entries 0`. The full handshake, the client's proof that it holds its "
      "key included, runs every time.")
table("Keep-alive requests (P-256 tree, TLS 1.3)",
      [("GET /version", "keepalive-version"),
       ("POST SelfSubjectReview", "keepalive-ssr"),
       ("GET a secret", "keepalive-secret"),
       ("GET /version, ES256 service-account JWT, no client certificate, token cache", "jwt-es256"),
       ("GET /version, ES256 JWT, without the token cache", "jwt-es256-nocache"),
       ("GET /version, RS256 service-account JWT (RSA tree), token cache", "jwt-rs256"),
       ("GET /version, RS256 JWT, without the token cache", "jwt-rs256-nocache")],
      f"{E['KEEPALIVE_CONNECTIONS']} connections opened before the window, each with its own client "
      "certificate (none for the JWT rows) and one warm-up request that is not counted. The JWT rows run against the default server (the "
      "verified-token cache on) and a second server on the same tree with "
      "`--token-cache-entries 0`.")

print("## Latency at half the peak rate\n")
print(f"Each server at half its own peak, open loop, {E['KEEPALIVE_CONNECTIONS']} connections with client "
      f"certificates; {len(runs('half-peak-kpki', 'kpki'))} windows per server, the two servers interleaved "
      "round by round, each window right after a closed-loop window of keep-alive GET /version on the same "
      "server that measures the peak it takes half of (the shared machine's speed moves between rows); "
      "medians, and every window's p99 (a stall of the shared machine shows as one "
      "window far above the others).\n")
print("| server | peak (median of the closed-loop windows) | offered rate (open loop, median) | achieved | p50 ms | p90 ms | p99 ms | max ms | p99 of each window, ms | errors (closed-loop, open-loop windows) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
for server in ("kpki", "nginx"):
    rs = runs(f"half-peak-{server}", server)
    if not rs:
        continue
    probes = runs(f"half-peak-probe-{server}", server)
    peaks = [r["rate_per_second"] for r in probes]
    peak = med(peaks)
    rate = med([max(1.0, p / 2) for p in peaks])
    print(f"| {server} | {peak:.0f}/s | {rate:.0f}/s | {med([r['rate_per_second'] for r in rs]):.0f}/s | "
          f"{ms(med([r['latency_ms']['p50'] for r in rs]))} | {ms(med([r['latency_ms']['p90'] for r in rs]))} | "
          f"{ms(med([r['latency_ms']['p99'] for r in rs]))} | {ms(med([r['latency_ms']['max'] for r in rs]))} | "
          f"{', '.join(ms(r['latency_ms']['p99']) for r in rs)} | "
          f"{sum(r['error_count'] for r in probes)}, {sum(r['error_count'] for r in rs)} |")
print()

print("## Resident memory\n")
print(f"The P-256 tree's servers, started afresh (same tree and store): idle, then holding {E['HOLD_CONNECTIONS']} "
      "connections (opened at most 64 at a time per load-generator thread, then 5 s at 200 requests/s over "
      f"them). Started afresh again: after {E['CHURN_HANDSHAKES']} full TLS 1.3 handshakes with a request each, "
      "none resumed, with no connection open; then kpki holding the connections on top of that.\n")
print("| server | idle after start | holding connections | connections held | after the handshakes, none open | holding connections after the handshakes |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
def held(r):
    first = f" (first failure: {r['first_open_error']})" if r["first_open_error"] else ""
    return f"{r['connections_open_before']} of {r['connections']}{first}"
mem = {}
for server in ("kpki", "nginx"):
    fresh = runs("hold-fresh", server)
    churned = runs("hold-churned", server)
    if not fresh:
        continue
    idle = int(open(f"{R}/rss-idle.{server}").read())
    after_churn = int(open(f"{R}/rss-churned.{server}").read())
    mem[server] = {"idle": idle, "fresh": fresh[0], "churn": after_churn,
                   "churned": churned[0] if churned else None}
    again = f"{mib(churned[0]['server']['rss_kib_after'])}, {held(churned[0])}" if churned else "-"
    print(f"| {server} | {mib(idle)} | {mib(fresh[0]['server']['rss_kib_after'])} | {held(fresh[0])} | "
          f"{mib(after_churn)} | {again} |")
print(f"\nnginx's figures are the sum over its master and {E['WORKERS']} workers (shared pages counted "
      f"in each). Descriptor limit in this run: {E['FD_LIMIT']}.\n")

print("## Targets (issue 5)\n")
def verdict(ok):
    return "**met**" if ok else "**not met**"
hs = summary("handshake-p256-tls1.3", "kpki")
ver = summary("keepalive-version", "kpki")
jr = summary("jwt-rs256-nocache", "kpki")
je = summary("jwt-es256-nocache", "kpki")
jrc = summary("jwt-rs256", "kpki")
hp = runs("half-peak-kpki", "kpki")
hp99 = med([r["latency_ms"]["p99"] for r in hp]) if hp else float("nan")
k = mem["kpki"]
mb = lambda kib: kib * 1024 / 1e6
hsnc = summary("handshake-p256nc-tls1.3", "kpki")
print(f"- server CPU per full P-256 mTLS handshake (TLS 1.3) <= 0.5 ms: {ms(hs['cpu'])} ms, {verdict(hs['cpu'] <= 0.5)}; "
      f"without the client-chain cache {ms(hsnc['cpu'])} ms")
print(f"- server CPU per authenticated keep-alive GET /version <= 0.02 ms: {ms(ver['cpu'], 4)} ms, {verdict(ver['cpu'] <= 0.02)}")
print(f"- JWT-authenticated requests >= 40k/s per core without a cache: RS256 {1 / jr['cpu'] * 1000:.0f}/s per core of server CPU "
      f"({ms(jr['cpu'], 4)} ms each), {verdict(1 / jr['cpu'] * 1000 >= 40000)}; ES256 {1 / je['cpu'] * 1000:.0f}/s; "
      f"with the cache RS256 {1 / jrc['cpu'] * 1000:.0f}/s")
print(f"- p99 latency < 5 ms at half the peak rate: {ms(hp99)} ms, {verdict(hp99 < 5)}")
print(f"- RSS < 50 MB idle: {mb(k['idle']):.1f} MB after start, {verdict(mb(k['idle']) < 50)}; "
      f"{mb(k['churn']):.1f} MB idle after {E['CHURN_HANDSHAKES']} handshakes, {verdict(mb(k['churn']) < 50)}")
def hold_verdict(label, r):
    n = r["connections_open_before"]
    rss = mb(r["server"]["rss_kib_after"])
    judged = verdict(rss < 300) if n >= 10000 else "not judged (fewer than 10,000 reached)"
    return f"{rss:.1f} MB with {n} connections open {label}, {judged}"
line = "- RSS < 300 MB with 10,000 connections: " + hold_verdict("on a fresh server", k["fresh"])
if k["churned"]:
    line += "; " + hold_verdict("after the handshakes", k["churned"])
print(line)
PY
