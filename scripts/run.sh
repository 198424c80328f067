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
find "$root" \( -type f -o -type l \) -printf '  %M  %P\t%l\n' | sort -k2 |
    sed 's/\t\(.\)/ -> \1/; s/\t$//'
echo
echo "Inspect with: openssl x509 -noout -text -in $root/etc/kubernetes/pki/apiserver.crt"
