# Helpers for tests that run the real etcd 3.4 (Debian's etcd-server and etcd-client) with the
# certificates of a kpki tree, on loopback. Source after lib.sh:  . "$(dirname "$0")/etcd_lib.sh"
# Skips the test (exit 77) when etcd is not installed.

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
[ -x "$ETCD" ] || skip "no $ETCD"
[ -x "$ETCDCTL" ] || skip "no $ETCDCTL"
command -v openssl >/dev/null || skip "no openssl"
command -v python3 >/dev/null || skip "no python3 (free_port)"

# Nothing from the caller's environment may redirect etcd or etcdctl (ETCD_*/ETCDCTL_* variables
# are read as flags, and etcdctl refuses variables its flags shadow) or proxy the loopback.
for v in $(compgen -e); do
    case $v in ETCD_* | ETCDCTL_*) unset "$v" ;; esac
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export ETCDCTL_API=3

# Timeouts for one etcdctl call: generous when the call must succeed (a loaded 2-core machine),
# short when it must fail (etcdctl 3.4 only gives up when --command-timeout runs out).
# While polling for readiness, calls are short too and are only made once the client port
# accepts connections (etcd 3.4 listens for clients only once the member has joined a quorum).
OK_TIMEOUT=(--dial-timeout 5s --command-timeout 10s)
BAD_TIMEOUT=(--dial-timeout 2s --command-timeout 2s)
POLL_TIMEOUT=(--dial-timeout 2s --command-timeout 3s)
TIMEOUT=("${OK_TIMEOUT[@]}")
START_WAIT=45   # seconds a cluster gets to come up

# ports N: N distinct free loopback ports into the array PORTS. free_port costs a Python start
# (over a second through a pyenv shim on a loaded machine), so the calls prefer the system
# python3 and run in parallel, and the ports are taken once and reused by each part after the
# previous part's members are stopped.
ports() {
    PORTS=()
    local p q dup i finders rounds=0
    while [ "${#PORTS[@]}" -lt "$1" ]; do
        rounds=$((rounds + 1))
        [ "$rounds" -le 5 ] || fail "free_port did not find $1 distinct ports"
        finders=()
        for i in $(seq $(( $1 - ${#PORTS[@]} ))); do
            PATH=/usr/bin:/bin:$PATH free_port >"$WORK/port.$i" &
            finders+=($!)
        done
        for i in "${finders[@]}"; do wait "$i" || fail "free_port failed"; done
        for p in $(cat "$WORK"/port.*); do
            dup=0
            for q in "${PORTS[@]}"; do [ "$q" != "$p" ] || dup=1; done
            [ "$dup" = 1 ] || [ "${#PORTS[@]}" -ge "$1" ] || PORTS+=("$p")
        done
        rm -f "$WORK"/port.*
    done
}

# new_tree ROOT NODE [flags...]: a fast ECDSA tree for NODE at 127.0.0.1.
new_tree() {
    local root=$1 node=$2; shift 2
    "$KPKI" init --root "$root" --node-name "$node" --apiserver-advertise-address 127.0.0.1 \
        --key-type ecdsa-p256 --quiet "$@" || fail "kpki init --root $root --node-name $node $*"
}

# start_etcd NAME ROOT CPORT PPORT INITIAL_CLUSTER TOKEN: runs one member in the background with
# the certificates of the tree under ROOT, data and log under $WORK; sets LAST_PID.
start_etcd() {
    local name=$1 pki=$2/etc/kubernetes/pki cport=$3 pport=$4 cluster=$5 token=$6
    local dir=$WORK/etcd-$token-$name
    mkdir -p "$dir"
    chmod 0700 "$dir"
    "$ETCD" --name "$name" --data-dir "$dir/data" \
        --listen-client-urls "https://127.0.0.1:$cport" \
        --advertise-client-urls "https://127.0.0.1:$cport" \
        --listen-peer-urls "https://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "https://127.0.0.1:$pport" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --initial-cluster-token "$token" \
        --cert-file "$pki/etcd/server.crt" --key-file "$pki/etcd/server.key" \
        --trusted-ca-file "$pki/etcd/ca.crt" --client-cert-auth \
        --peer-cert-file "$pki/etcd/peer.crt" --peer-key-file "$pki/etcd/peer.key" \
        --peer-trusted-ca-file "$pki/etcd/ca.crt" --peer-client-cert-auth \
        >"$dir/log" 2>&1 &
    LAST_PID=$!
    CHILD_PIDS+=("$LAST_PID")
}

log_of() { echo "$WORK/etcd-$1-$2/log"; }

# show_logs LOG...: the tail of each log, for a failure message.
show_logs() {
    local f
    for f in "$@"; do
        echo "--- tail of $f" >&2
        tail -n 30 "$f" >&2 || true
    done
}

# ctl ROOT CERT ENDPOINTS args...: etcdctl with the etcd CA of ROOT and the client certificate
# CERT (a path under etc/kubernetes/pki without .crt/.key), the timeouts in TIMEOUT.
ctl() {
    local pki=$1/etc/kubernetes/pki cert=$2 endpoints=$3; shift 3
    "$ETCDCTL" --endpoints "$endpoints" "${TIMEOUT[@]}" --cacert "$pki/etcd/ca.crt" \
        --cert "$pki/$cert.crt" --key "$pki/$cert.key" "$@"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_etcd PID...: SIGTERM, then SIGKILL whatever still runs after 2 s (the data is scratch;
# three members stopped at once can spend seconds trying to hand leadership to each other).
# The reaped PIDs leave CHILD_PIDS, so that the exit trap cannot hit a recycled PID.
stop_etcd() {
    local pid i keep=()
    for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
    for i in $(seq 20); do
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then sleep 0.1; continue 2; fi
        done
        break
    done
    for pid in "$@"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for pid in "${CHILD_PIDS[@]}"; do
        case " $* " in *" $pid "*) ;; *) keep+=("$pid") ;; esac
    done
    CHILD_PIDS=("${keep[@]}")
}

# wait_up SECONDS CHECK PIDS LOGS: retries the command CHECK (a function name) until it succeeds;
# fails with the logs if a member exits or time runs out.
wait_up() {
    local secs=$1 check=$2 pids=$3 logs=$4 pid
    local deadline=$(( $(date +%s) + secs ))
    until "$check" >/dev/null 2>&1; do
        for pid in $pids; do
            kill -0 "$pid" 2>/dev/null || { show_logs $logs; fail "etcd (pid $pid) exited early"; }
        done
        if [ "$(date +%s)" -ge "$deadline" ]; then
            show_logs $logs
            "$check" >&2 || true
            fail "etcd not ready after ${secs}s ($check)"
        fi
        sleep 0.3
    done
}

# new_lines FILE FROM: the lines of FILE after line FROM.
new_lines() { tail -n "+$(( $2 + 1 ))" "$1"; }
line_count() { wc -l <"$1"; }

