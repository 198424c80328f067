#!/usr/bin/env bash
# `make run`: build a fresh PKI under ./cluster with the built kpki and show what it made.
set -euo pipefail
kpki=${1:-build/kpki}
root=./cluster
rm -rf "$root"
"$kpki" init --root "$root" --node-name "${KPKI_NODE_NAME:-kpki-node}" \
    --apiserver-advertise-address 127.0.0.1
echo
echo "The tree under $root:"
find "$root" \( -type f -o -type l \) -printf '%M %p%l\n' | sed 's/\([^ ]*\) \(.*\)/  \1  \2/' | sort -k2
