# bench/identities.sh - sourced by the benchmark scripts (not run on its own).
#
# make_identities PKI_DIR OUT_DIR COUNT KEY_TYPE: COUNT client certificates signed by the
# cluster CA under PKI_DIR (ca.crt, ca.key), as OUT_DIR/N.crt + N.key for kpki-loadgen
# --cert-dir. Each is "CN=bench-N, O=kubeadm:cluster-admins", the group admin.conf's user has,
# so RBAC grants it everything; the key type follows kpki init's --key-type (rsa-2048 gives RSA
# keys, anything else P-256). Made with the openssl command line, as an operator would.
make_identities() {
    local pki=$1 out=$2 count=$3 key_type=$4
    mkdir -p "$out"
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
        >"$out/ext"
    local keyopts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [ "$key_type" = rsa-2048 ] && keyopts=(-newkey rsa:2048)
    local i
    for ((i = 0; i < count; i++)); do
        openssl req -new "${keyopts[@]}" -nodes -keyout "$out/$i.key" \
            -subj "/O=kubeadm:cluster-admins/CN=bench-$i" -out "$out/$i.csr" 2>/dev/null
        openssl x509 -req -in "$out/$i.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
            -CAcreateserial -days 2 -extfile "$out/ext" -out "$out/$i.crt" 2>/dev/null
    done
}
