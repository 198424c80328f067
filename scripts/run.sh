#!/usr/bin/env bash
# `make run`: build a fresh PKI under ./cluster with the built kpki, start the API server on it
# and say how to point kubectl at it. Runs in the foreground until Ctrl-C.
#   KPKI_PORT (default 6443)  the API server's port
#   KPKI_NODE_NAME            the node name of the tree (default kpki-node)
set -euo pipefail
kpki=${1:-build/kpki}
root=./cluster
port=${KPKI_PORT:-6443}
rm -rf "$root"
"$kpki" init --root "$root" --node-name "${KPKI_NODE_NAME:-kpki-node}" \
    --apiserver-advertise-address 127.0.0.1 --apiserver-bind-port "$port" --quiet
echo "The tree under $root:"
find "$root" \( -type f -o -type l \) -printf '  %M  %P\t%l\n' | sort -k2 |
    sed 's/\t\(.\)/ -> \1/; s/\t$//'

kubectl=kubectl
for v in 33 32 31 30 29 28 27; do
    if [ -x "/usr/lib/google-cloud-sdk/bin/kubectl.1.$v" ]; then
        kubectl=/usr/lib/google-cloud-sdk/bin/kubectl.1.$v
        break
    fi
done
abs=$(cd "$root" && pwd)
cat <<EOF

Starting the API server on https://127.0.0.1:$port (Ctrl-C stops it). In another terminal:

  export KUBECONFIG=$abs/etc/kubernetes/admin.conf
  $kubectl get ns
  $kubectl auth whoami
  $kubectl create secret generic demo --from-literal=hello=world
  $kubectl get secret demo -o yaml
  $kubectl --kubeconfig $abs/etc/kubernetes/kubelet.conf get secret demo    # 403: the Node authorizer
  $kpki token create --root $abs                                         # a bootstrap token

EOF
exec "$kpki" apiserver --root "$root" --bind-address 127.0.0.1 --secure-port "$port"
