#!/usr/bin/env bash
# bench/compare-kpki.sh OLD_KPKI NEW_KPKI LOADGEN [--rounds N] [--seconds S]
#                       [--key-type ecdsa-p256|rsa-2048] [--rows ROW,...]
#
# Two builds of `kpki apiserver` side by side on one tree (made by NEW_KPKI; P-256 unless
# --key-type rsa-2048, which makes its keys, the client identities and the service-account key
# RSA, so the tokens are RS256, the algorithm of kubeadm's sa.key), to measure
# what a change did: the servers run at the same time and are measured in alternating windows
# (the order rotating each round), so both see the same machine. Rows: a full TLS 1.3 mTLS
# handshake with GET /version; a keep-alive GET /version over 256 connections with client
# certificates; the same authenticated by a service-account token, once with the
# verified-token cache off (--token-cache-entries 0) and once with it on (--rows: some of
# handshake, keepalive, jwt-nocache, jwt-cache; default all). Prints a Markdown table of server
# CPU per operation (median, min-max), the NEW/OLD ratio of the medians, the median of each
# round's NEW/OLD ratio and in how many rounds NEW was lower; progress on stderr.
# Each build gets its own store; the JWT rows each use a token its own server issued.
set -euo pipefail
# shellcheck source=bench/identities.sh
. "$(dirname "${BASH_SOURCE[0]}")/identities.sh"

usage() {
    echo "usage: bench/compare-kpki.sh OLD_KPKI NEW_KPKI LOADGEN [--rounds N] [--seconds S]" \
        "[--key-type ecdsa-p256|rsa-2048] [--rows ROW,...]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
OLD=$1 NEW=$2 LOADGEN=$3
shift 3
ROUNDS=5
SECONDS_PER_RUN=3
KEY_TYPE=ecdsa-p256
ALL_ROWS=handshake,keepalive,jwt-nocache,jwt-cache
ROWS=$ALL_ROWS
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --seconds) SECONDS_PER_RUN=${2:?}; shift 2 ;;
        --key-type) KEY_TYPE=${2:?}; shift 2 ;;
        --rows) ROWS=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
case "$KEY_TYPE" in
    ecdsa-p256) KEY_LABEL=P-256 JWS_ALG=ES256 ;;
    rsa-2048) KEY_LABEL=RSA-2048 JWS_ALG=RS256 ;;
    *) echo "compare-kpki.sh: --key-type is ecdsa-p256 or rsa-2048, not '$KEY_TYPE'" >&2; exit 2 ;;
esac
IFS=, read -r -a row_list <<<"$ROWS"
for row in "${row_list[@]}"; do
    [[ ",$ALL_ROWS," == *",$row,"* ]] ||
        { echo "compare-kpki.sh: --rows takes some of $ALL_ROWS, not '$row'" >&2; exit 2; }
done
# wanted ROW: whether --rows asked for ROW.
wanted() { [[ ",$ROWS," == *",$1,"* ]]; }
for tool in "$OLD" "$NEW" "$LOADGEN"; do
    [ -x "$tool" ] || { echo "compare-kpki.sh: $tool is not an executable" >&2; exit 2; }
done
command -v openssl >/dev/null && command -v curl >/dev/null && command -v python3 >/dev/null ||
    { echo "compare-kpki.sh: needs openssl, curl and python3 (scripts/deps.sh bench)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kpki-compare.XXXXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
log() { echo "compare-kpki.sh: $*" >&2; }

ROOT=$WORK/tree
PKI=$ROOT/etc/kubernetes/pki
"$NEW" init --root "$ROOT" --node-name bench --apiserver-advertise-address 127.0.0.1 \
    --key-type "$KEY_TYPE" --quiet
make_identities "$PKI" "$ROOT/ids" 16 "$KEY_TYPE"

# start NAME BINARY [flags...]: a server on a free port, with a service account and its token.
start() {
    local name=$1 bin=$2
    shift 2
    "$bin" apiserver --root "$ROOT" --bind-address 127.0.0.1 --secure-port 0 --threads "$(nproc)" \
        --port-file "$WORK/$name.port" --storage-file "$WORK/$name.db" --v 0 "$@" \
        >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    echo "$!" >"$WORK/$name.pid"
    local i
    for i in $(seq 1 100); do
        [ -s "$WORK/$name.port" ] && break
        kill -0 "$!" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    local url="https://127.0.0.1:$(cat "$WORK/$name.port")"
    local auth=(--cert "$ROOT/ids/0.crt" --key "$ROOT/ids/0.key" --cacert "$PKI/ca.crt" -sf)
    curl "${auth[@]}" "$url/api/v1/namespaces/default/serviceaccounts" -X POST \
        -H 'Content-Type: application/json' \
        -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"bench"}}' >/dev/null
    curl "${auth[@]}" "$url/api/v1/namespaces/default/serviceaccounts/bench/token" -X POST \
        -H 'Content-Type: application/json' \
        -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":86400}}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])' >"$WORK/$name.token"
}
start old "$OLD" --token-cache-entries 0
start new "$NEW" --token-cache-entries 0
start oldc "$OLD"
start newc "$NEW"

# run ROW SERVER [loadgen flags...]: one window, its server CPU per operation appended to a file.
run() {
    local row=$1 server=$2
    shift 2
    "$LOADGEN" --url "https://127.0.0.1:$(cat "$WORK/$server.port")/version" --ca "$PKI/ca.crt" \
        --server-pid "$(cat "$WORK/$server.pid")" --output json --duration "$SECONDS_PER_RUN" "$@" \
        >"$WORK/out.json"
    python3 - "$WORK/out.json" >>"$WORK/$row.${server%c}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["error_count"]:
    sys.exit(f"compare-kpki.sh: {d['error_count']} errors")
print(d["server"]["cpu_ms_per_op"])
PY
}
token() { echo "Authorization: Bearer $(cat "$WORK/$1.token")"; }

for ((round = 0; round < ROUNDS; round++)); do
    log "round $((round + 1)) of $ROUNDS"
    if ((round % 2 == 0)); then order=(old new); else order=(new old); fi
    # Each row asked for, the servers in this round's order.
    if wanted handshake; then
        for s in "${order[@]}"; do
            run handshake "$s" --mode handshake --handshake-request --tls 1.3 --connections 8 \
                --cert-dir "$ROOT/ids"
        done
    fi
    if wanted keepalive; then
        for s in "${order[@]}"; do run keepalive "$s" --connections 256 --cert-dir "$ROOT/ids"; done
    fi
    if wanted jwt-nocache; then
        for s in "${order[@]}"; do
            run jwt-nocache "$s" --connections 256 --header "$(token "$s")"
        done
    fi
    if wanted jwt-cache; then
        for s in "${order[@]}"; do
            run jwt-cache "${s}c" --connections 256 --header "$(token "${s}c")"
        done
    fi
done

python3 - "$WORK" "$ROUNDS" "$KEY_LABEL" "$JWS_ALG" "$ROWS" <<'PY'
import statistics, sys
work, rounds, key, alg, wanted = sys.argv[1:6]
rows = [(f"full {key} mTLS handshake, TLS 1.3, + GET /version", "handshake"),
        ("keep-alive GET /version, client certificate", "keepalive"),
        (f"keep-alive GET /version, {alg} token, no token cache", "jwt-nocache"),
        (f"keep-alive GET /version, {alg} token, token cache", "jwt-cache")]
print(f"Server CPU ms per operation, median of {rounds} alternating windows (min-max); the "
      "median of each round's new/old ratio, and in how many rounds new was lower.\n")
print("| operation | old | new | new / old | pairwise new / old | new lower |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for label, row in rows:
    if row not in wanted.split(","):
        continue
    old = [float(x) for x in open(f"{work}/{row}.old")]
    new = [float(x) for x in open(f"{work}/{row}.new")]
    mo, mn = statistics.median(old), statistics.median(new)
    ratios = [n / o for o, n in zip(old, new)]
    lower = sum(1 for r in ratios if r < 1)
    print(f"| {label} | {mo:.4f} ({min(old):.4f}-{max(old):.4f}) | "
          f"{mn:.4f} ({min(new):.4f}-{max(new):.4f}) | {mn / mo:.2f} | "
          f"{statistics.median(ratios):.3f} | {lower} of {len(ratios)} |")
PY
