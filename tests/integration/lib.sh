# Shared helpers for integration tests. Source it first:  . "$(dirname "$0")/lib.sh"
# Provides: $KPKI (the binary), $WORK (a fresh temp dir removed on exit), fail, skip, pass,
# expect_exit, free_port, kubectl_bin, wait_for. Every test prints what it checks.
set -euo pipefail

KPKI=${KPKI:?set KPKI to the kpki binary}
KPKI_SOURCE=${KPKI_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mkdir -p "${KPKI_TEST_TMP:-/tmp}"
WORK=$(mktemp -d "${KPKI_TEST_TMP:-/tmp}/$(basename "$0" .sh).XXXXXX")
CHILD_PIDS=()
EXTRA_DIRS=()
# The system python, not a pyenv shim (slow to start, and absent for other users).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

cleanup() {
    local pid
    for pid in "${CHILD_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${CHILD_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK" "${EXTRA_DIRS[@]}"
}
trap cleanup EXIT
# bash skips the EXIT trap when a signal kills it; turn signals into an ordinary exit.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# A scratch directory on tmpfs (/dev/shm) when there is one: for tests that run kpki hundreds of
# times and test behaviour, not durability, so filesystem syncs do not dominate their time.
fast_dir() {
    local dir
    dir=$(mktemp -d /dev/shm/kpki-test.XXXXXX 2>/dev/null) || dir=$(mktemp -d "$WORK/fast.XXXXXX")
    EXTRA_DIRS+=("$dir")
    echo "$dir"
}

# A skipped test exits 77 so ctest can tell it apart (SKIP_RETURN_CODE).
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "ok: $*"; }

# expect_exit CODE cmd...  runs cmd, requires exit status CODE; stderr kept in $WORK/stderr.
expect_exit() {
    local want=$1; shift
    local got=0
    "$@" >"$WORK/stdout" 2>"$WORK/stderr" || got=$?
    if [ "$got" != "$want" ]; then
        echo "--- stdout"; cat "$WORK/stdout"; echo "--- stderr"; cat "$WORK/stderr"
        fail "expected exit $want, got $got: $*"
    fi
}

# stderr_has TEXT: the last expect_exit's stderr contains TEXT.
stderr_has() {
    grep -qF -- "$1" "$WORK/stderr" || { cat "$WORK/stderr"; fail "stderr lacks '$1'"; }
}

# A TCP port nobody listens on right now, for a server started later. It is drawn below the
# kernel's ephemeral range (ip_local_port_range), where no port-0 bind or outgoing connection of a
# test running in parallel can take it in the meantime; the kernel picks one if that range is
# too low to leave room.
free_port() {
    "$PYTHON" - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
candidates = random.sample(range(20000, low), min(200, low - 20000)) if low > 21024 else []
for port in candidates + [0]:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
PY
}

# The newest preinstalled versioned kubectl, or the one asked for (kubectl_bin 1.27).
kubectl_bin() {
    local dir=/usr/lib/google-cloud-sdk/bin
    if [ -n "${1:-}" ]; then
        [ -x "$dir/kubectl.$1" ] && { echo "$dir/kubectl.$1"; return; }
        return 1
    fi
    local v
    for v in 33 32 31 30 29 28 27; do
        [ -x "$dir/kubectl.1.$v" ] && { echo "$dir/kubectl.1.$v"; return; }
    done
    command -v kubectl || return 1
}

# wait_for SECONDS cmd...  retries cmd every 0.1 s until it succeeds.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# init_tree ROOT [flags...]: a fast ECDSA tree for node n1 at 127.0.0.1 unless flags say more.
init_tree() {
    local root=$1; shift
    "$KPKI" init --root "$root" --node-name n1 --apiserver-advertise-address 127.0.0.1 \
        --key-type ecdsa-p256 --quiet "$@"
}
