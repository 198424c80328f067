#!/usr/bin/env bash
# The kpki command line: help, version, output formats, the config file, and bad input of every
# kind - each refused with a message naming the flag, file or value, a documented exit code,
# and nothing written.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$KPKI" --help
grep -q 'init' "$WORK/stdout" || fail "kpki --help does not list init"
expect_exit 1 "$KPKI"
expect_exit 1 "$KPKI" frobnicate
stderr_has "unknown command 'frobnicate'"
expect_exit 0 "$KPKI" version
grep -q '^kpki [0-9]' "$WORK/stdout" || fail "kpki version prints no version"
expect_exit 0 "$KPKI" init --help
for option in root node-name apiserver-advertise-address apiserver-bind-port \
    control-plane-endpoint service-cidr service-dns-domain apiserver-cert-extra-sans \
    etcd-server-cert-extra-sans etcd-peer-cert-extra-sans cluster-name key-type cert-validity \
    ca-validity kubelet-serving join-from config output quiet; do
    grep -q -- "--$option" "$WORK/stdout" || fail "kpki init --help lacks --$option"
done
pass "help and version"

# Bad input: exit 1, the flag and value named, and nothing created.
root=$WORK/never
bad() {
    local message=$1; shift
    expect_exit 1 "$KPKI" init --root "$root" --node-name n1 --apiserver-advertise-address 10.0.0.1 "$@"
    stderr_has "$message"
    [ ! -e "$root" ] || fail "'$*' left files behind"
}
bad "--service-cidr: invalid CIDR '10.96.0.0/33'" --service-cidr 10.96.0.0/33
bad "--service-cidr: invalid CIDR '10.96.0.1/12': host bits are set" --service-cidr 10.96.0.1/12
bad "--apiserver-advertise-address: invalid IP address '300.1.1.1'" --apiserver-advertise-address 300.1.1.1
bad "--node-name: invalid node name 'Bad_Name'" --node-name Bad_Name
bad "--key-type: unknown key type 'rsa-1024'" --key-type rsa-1024
bad "--cert-validity: invalid duration '1year'" --cert-validity 1year
bad "--ca-validity: invalid duration '-5h'" --ca-validity -5h
bad "--apiserver-cert-extra-sans: invalid SAN 'bad_name'" --apiserver-cert-extra-sans ok.example.com,bad_name
bad "--control-plane-endpoint: invalid control-plane endpoint" --control-plane-endpoint 'cp!:6443'
bad "--apiserver-bind-port: invalid port '0'" --apiserver-bind-port 0
bad "--kubelet-serving: invalid kubelet serving mode 'maybe'" --kubelet-serving maybe
bad "--service-dns-domain: invalid DNS domain" --service-dns-domain 'Cluster.Local'
bad "unknown flag '--cert-dir'" --cert-dir /tmp
bad "flag '--cluster-name' needs a value" --cluster-name
bad "unexpected argument 'extra'" extra
bad "--output: unknown format 'xml'" --output xml
pass "bad flag values are refused, named, and leave nothing behind"

# The config file: same names as the flags; flags win; errors name file and line.
cat >"$WORK/init.yaml" <<YAML
node-name: from-file
apiserver-advertise-address: 127.0.0.1
key-type: ecdsa-p256
apiserver-cert-extra-sans:
  - file.example.com
cluster-name: filecluster
YAML
expect_exit 0 "$KPKI" init --root "$WORK/cfg" --config "$WORK/init.yaml" --node-name from-flag --quiet
[ ! -s "$WORK/stdout" ] || fail "--quiet printed something"
openssl x509 -in "$WORK/cfg/etc/kubernetes/pki/etcd/server.crt" -noout -subject | grep -q 'CN *= *from-flag' ||
    fail "the flag did not override the file's node-name"
openssl x509 -in "$WORK/cfg/etc/kubernetes/pki/apiserver.crt" -noout -ext subjectAltName |
    grep -q 'DNS:file.example.com' || fail "the file's extra SAN is missing"
grep -q 'name: filecluster' "$WORK/cfg/etc/kubernetes/admin.conf" || fail "cluster-name from the file not used"
pass "config file values apply and flags override them"
printf 'node-name: a\nkey-typ: rsa-2048\n' >"$WORK/typo.yaml"
expect_exit 1 "$KPKI" init --root "$root" --config "$WORK/typo.yaml"
stderr_has "typo.yaml: line 2: unknown option 'key-typ'"
printf 'node-name: [a\n' >"$WORK/broken.yaml"
expect_exit 1 "$KPKI" init --root "$root" --config "$WORK/broken.yaml"
stderr_has "broken.yaml: line"
expect_exit 4 "$KPKI" init --root "$root" --config "$WORK/absent.yaml"
stderr_has "--config: cannot read '$WORK/absent.yaml'"
expect_exit 1 "$KPKI" init --root "$root" --config "$WORK"
stderr_has "is a directory"
[ ! -e "$root" ] || fail "a bad config file left files behind"
pass "config file errors name the file and line"

# JSON output.
expect_exit 0 "$KPKI" init --root "$WORK/json" --node-name n1 --apiserver-advertise-address 127.0.0.1 \
    --key-type ecdsa-p256 --output json
"$PYTHON" - "$WORK/stdout" <<'PY' || fail "--output json is not the documented shape"
import json, sys
doc = json.load(open(sys.argv[1]))
assert len(doc["items"]) == 18, len(doc["items"])
assert all(item["action"] == "created" for item in doc["items"])
assert doc["keysGenerated"] == 17
names = [item["name"] for item in doc["items"]]
assert names[0] == "ca" and "kubelet.conf" in names
PY
pass "--output json"

# The root is a file; a destination is a directory; an unwritable root.
touch "$WORK/plainfile"
expect_exit 1 "$KPKI" init --root "$WORK/plainfile" --node-name n1 --apiserver-advertise-address 127.0.0.1
stderr_has "--root '$WORK/plainfile' exists and is not a directory"
mkdir -p "$WORK/dirtree/etc/kubernetes/pki/ca.crt"
expect_exit 1 "$KPKI" init --root "$WORK/dirtree" --node-name n1 --apiserver-advertise-address 127.0.0.1 --key-type ecdsa-p256
stderr_has "ca.crt' is a directory"
[ -z "$(find "$WORK/dirtree" -type f)" ] || fail "files were written next to a directory in the way"
pass "a root that is a file and a destination that is a directory are refused"

mkdir -p "$WORK/locked"
chmod 0555 "$WORK/locked"
as_user=()
if [ "$(id -u)" = 0 ]; then
    # root ignores permission bits: drop to nobody for this check.
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 0755 "$WORK"
fi
expect_exit 3 "${as_user[@]}" "$KPKI" init --root "$WORK/locked/tree" --node-name n1 \
    --apiserver-advertise-address 127.0.0.1 --key-type ecdsa-p256
stderr_has "cannot create directory '$WORK/locked/tree"
stderr_has "Permission denied"
pass "an unwritable root: exit 3, the directory named"

# A full disk, simulated by the fault hook (ENOSPC on the 40th file operation), then for real
# on a tiny tmpfs when we may mount one.
expect_exit 6 env KPKI_FAULT_FAIL_AT=40:28 "$KPKI" init --root "$WORK/full" --node-name n1 \
    --apiserver-advertise-address 127.0.0.1 --key-type ecdsa-p256
stderr_has "No space left on device"
[ -z "$(find "$WORK/full" -name '*kpki-tmp*')" ] || fail "temporary files left after ENOSPC"
expect_exit 0 "$KPKI" init --root "$WORK/full" --node-name n1 --apiserver-advertise-address 127.0.0.1 --key-type ecdsa-p256 --quiet
pass "ENOSPC (injected): exit 6, no partial files, a rerun finishes"

if [ "$(id -u)" = 0 ] && mkdir -p "$WORK/tiny" && mount -t tmpfs -o size=24k tmpfs "$WORK/tiny" 2>/dev/null; then
    expect_exit 6 "$KPKI" init --root "$WORK/tiny/tree" --node-name n1 \
        --apiserver-advertise-address 127.0.0.1 --key-type rsa-4096
    stderr_has "No space left on device"
    partial=$(find "$WORK/tiny" -type f \( -name '*kpki-tmp*' -o -size 0 \))
    umount "$WORK/tiny"
    [ -z "$partial" ] || fail "partial files on a full disk: $partial"
    pass "a really full disk (tmpfs): exit 6, no partial files"
else
    echo "note: not root or cannot mount tmpfs; the real full-disk case was skipped"
fi
