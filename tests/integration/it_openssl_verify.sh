#!/usr/bin/env bash
# Every certificate of a kpki tree, checked by the openssl command line: accepted by its own CA
# with the right purpose, rejected by each of the other two CAs, and rejected for the purpose
# it does not carry. Runs for an ECDSA and an RSA tree.
. "$(dirname "$0")/lib.sh"

# name | file (relative to the root) | CA | purposes it must pass | a purpose it must fail
CHECKS='
apiserver|etc/kubernetes/pki/apiserver.crt|ca|sslserver|sslclient
apiserver-kubelet-client|etc/kubernetes/pki/apiserver-kubelet-client.crt|ca|sslclient|sslserver
front-proxy-client|etc/kubernetes/pki/front-proxy-client.crt|front-proxy-ca|sslclient|sslserver
etcd-server|etc/kubernetes/pki/etcd/server.crt|etcd-ca|sslserver sslclient|
etcd-peer|etc/kubernetes/pki/etcd/peer.crt|etcd-ca|sslserver sslclient|
etcd-healthcheck-client|etc/kubernetes/pki/etcd/healthcheck-client.crt|etcd-ca|sslclient|sslserver
apiserver-etcd-client|etc/kubernetes/pki/apiserver-etcd-client.crt|etcd-ca|sslclient|sslserver
kubelet-client|var/lib/kubelet/pki/kubelet-client-current.pem|ca|sslclient|sslserver
kubelet-serving|var/lib/kubelet/pki/kubelet.crt|ca|sslserver|sslclient
admin.conf|etc/kubernetes/admin.conf|ca|sslclient|sslserver
super-admin.conf|etc/kubernetes/super-admin.conf|ca|sslclient|sslserver
controller-manager.conf|etc/kubernetes/controller-manager.conf|ca|sslclient|sslserver
scheduler.conf|etc/kubernetes/scheduler.conf|ca|sslclient|sslserver
'

ca_file() {
    case $1 in
        ca) echo etc/kubernetes/pki/ca.crt ;;
        front-proxy-ca) echo etc/kubernetes/pki/front-proxy-ca.crt ;;
        etcd-ca) echo etc/kubernetes/pki/etcd/ca.crt ;;
    esac
}

# The certificate to verify: kubeconfigs carry theirs base64-encoded.
leaf_of() {
    local root=$1 file=$2
    case $file in
        *.conf)
            sed -n 's/^ *client-certificate-data: //p' "$root/$file" | base64 -d >"$WORK/leaf.pem"
            echo "$WORK/leaf.pem" ;;
        *) echo "$root/$file" ;;
    esac
}

for key_type in ecdsa-p256 rsa-2048; do
    root=$WORK/$key_type
    init_tree "$root" --key-type "$key_type"
    # Each CA is self-signed and verifies against itself.
    for ca in ca front-proxy-ca etcd-ca; do
        openssl verify -CAfile "$root/$(ca_file $ca)" "$root/$(ca_file $ca)" >/dev/null ||
            fail "$key_type: $ca does not verify against itself"
    done
    while IFS='|' read -r name file own good bad; do
        [ -n "$name" ] || continue
        leaf=$(leaf_of "$root" "$file")
        for purpose in $good; do
            openssl verify -CAfile "$root/$(ca_file "$own")" -purpose "$purpose" "$leaf" \
                >/dev/null 2>&1 || fail "$key_type: $name not accepted by $own for $purpose"
        done
        if [ -n "$bad" ]; then
            if openssl verify -CAfile "$root/$(ca_file "$own")" -purpose "$bad" "$leaf" \
                >/dev/null 2>&1; then
                fail "$key_type: $name accepted for $bad, which it must not carry"
            fi
        fi
        for other in ca front-proxy-ca etcd-ca; do
            [ "$other" = "$own" ] && continue
            if openssl verify -CAfile "$root/$(ca_file "$other")" "$leaf" >/dev/null 2>&1; then
                fail "$key_type: $name accepted by the wrong CA $other"
            fi
        done
        pass "$key_type: $name: accepted by $own ($good), rejected by the other CAs"
    done <<<"$CHECKS"
    # Keys match their certificates and are in the encodings kubeadm writes.
    for pair in apiserver front-proxy-client etcd/server etcd/peer; do
        a=$(openssl x509 -in "$root/etc/kubernetes/pki/$pair.crt" -noout -pubkey | sha256sum)
        b=$(openssl pkey -in "$root/etc/kubernetes/pki/$pair.key" -pubout | sha256sum)
        [ "$a" = "$b" ] || fail "$key_type: $pair.key does not match $pair.crt"
    done
    case $key_type in
        rsa-*) header='BEGIN RSA PRIVATE KEY'; openssl rsa -check -noout \
                   -in "$root/etc/kubernetes/pki/ca.key" >/dev/null || fail "ca.key fails rsa -check" ;;
        *) header='BEGIN EC PRIVATE KEY' ;;
    esac
    grep -q "$header" "$root/etc/kubernetes/pki/sa.key" || fail "sa.key is not '$header'"
    grep -q 'BEGIN PUBLIC KEY' "$root/etc/kubernetes/pki/sa.pub" || fail "sa.pub is not PKIX"
    pass "$key_type: keys match and use kubeadm's encodings"
done
