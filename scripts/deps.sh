#!/usr/bin/env bash
# Installs the Debian packages kpki needs to build, run and test, and nothing else.
# Idempotent: packages already installed are not touched. As root it runs apt-get; as anyone
# else it prints the exact command to run and exits 1.
#
#   scripts/deps.sh [build|test|bench]   (default: test, which includes build; bench also
#                                         includes build: nginx, the TLS benchmark's baseline)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libssl-dev libyaml-dev libjansson-dev libevent-dev libhttp-parser-dev libsqlite3-dev libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler openssl)
test_pkgs=(libcmocka-dev etcd-server etcd-client curl python3 util-linux)
# bench/apiserver-tls.sh: nginx is the baseline server, curl and python3 set up and read the runs.
bench_pkgs=(nginx curl python3)

want=("${build_pkgs[@]}")
case "${1:-test}" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    *) echo "scripts/deps.sh: unknown profile '$1' (build, test or bench)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
    echo "kpki needs these Debian packages: ${missing[*]}" >&2
    echo "run as root:  apt-get update && ${cmd[*]}" >&2
    exit 1
fi
echo "scripts/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${cmd[@]}" >/dev/null; then
    apt-get update >/dev/null
    "${cmd[@]}" >/dev/null
fi
# The etcd-server package enables a system service; kpki's tests start their own members on
# loopback, so a packaged one listening on 2379 would only get in the way.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
fi
# The nginx package starts a system nginx on port 80; the benchmark runs its own on a free port
# with its own configuration, so a packaged one would only take CPU and a port.
if [[ " ${missing[*]} " == *" nginx "* ]]; then
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
fi
