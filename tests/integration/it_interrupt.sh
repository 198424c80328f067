#!/usr/bin/env bash
# Killing kpki init at any moment leaves every file absent or complete, and a rerun finishes
# the tree. First deterministically: SIGKILL before each file operation in turn (the fault hook
# KPKI_FAULT_KILL_AT); then with real SIGKILLs at random moments of RSA runs.
. "$(dirname "$0")/lib.sh"

flags=(--node-name n1 --apiserver-advertise-address 127.0.0.1 --quiet)
scratch=$(fast_dir)

# After a kill: a rerun must succeed, and a third run must find everything consistent.
check_recovers() {
    local root=$1 what=$2
    "$KPKI" init --root "$root" "${flags[@]}" "${@:3}" 2>"$WORK/rerun.err" ||
        { cat "$WORK/rerun.err"; fail "$what: the rerun failed"; }
    "$KPKI" init --root "$root" "${flags[@]}" "${@:3}" --output json >"$WORK/third.json" 2>/dev/null ||
        fail "$what: the third run failed"
    "$PYTHON" - "$WORK/third.json" <<'PY' || fail "$what: the third run was not all 'reused'"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
bad = [i["name"] + ":" + i["action"] for i in items if i["action"] != "reused"]
assert not bad, bad
PY
    [ -z "$(find "$root" -name '*kpki-tmp*')" ] || fail "$what: temporary files survived the rerun"
}

# Every file present after a kill must be whole: certificates and keys parse, kubeconfigs load.
check_files_whole() {
    local root=$1 what=$2 file
    [ -d "$root" ] || return 0 # killed before it made the root
    while IFS= read -r file; do
        case $file in
            *kpki-tmp*) ;; # a staged temporary: never a destination
            *.crt) openssl x509 -in "$file" -noout 2>/dev/null || fail "$what: $file is partial" ;;
            *.key) openssl pkey -in "$file" -noout 2>/dev/null || fail "$what: $file is partial" ;;
            *.pub) openssl pkey -pubin -in "$file" -noout 2>/dev/null || fail "$what: $file is partial" ;;
            *.pem) openssl x509 -in "$file" -noout 2>/dev/null && openssl pkey -in "$file" -noout 2>/dev/null ||
                       fail "$what: $file is partial" ;;
            *.conf) grep -q '^users:' "$file" || fail "$what: $file is partial" ;;
        esac
    done < <(find "$root" -type f)
}

# Both kubelet serving modes: the self-signed one writes a CA of its own beside the key.
for mode in ca self-signed; do
    n=1
    while :; do
        root=$scratch/kill-$mode-$n
        status=0
        # (a child shell, so that bash's "Killed" notice goes to /dev/null with the rest)
        KPKI_FAULT_KILL_AT=$n bash -c '"$@"; exit $?' kpki "$KPKI" init --root "$root" \
            "${flags[@]}" --key-type ecdsa-p256 --kubelet-serving "$mode" 2>/dev/null || status=$?
        if [ $status -eq 0 ]; then
            break # n is past the last file operation: the run completed
        fi
        [ $status -eq 137 ] || fail "$mode, operation $n: expected death by SIGKILL (137), got $status"
        # The rerun itself parses every file present; openssl double-checks every 8th state.
        [ $((n % 8)) -ne 1 ] || check_files_whole "$root" "$mode, killed before operation $n"
        check_recovers "$root" "$mode, killed before operation $n" --key-type ecdsa-p256 \
            --kubelet-serving "$mode"
        rm -rf "$root"
        n=$((n + 1))
    done
    [ $n -gt 40 ] || fail "only $((n - 1)) file operations were counted; the hook is not reached"
    pass "$mode: killed before each of $((n - 1)) file operations: files whole, the rerun finishes"
done

# Real signals at random moments (RSA keys make the run long enough to hit every phase).
for i in 1 2 3 4 5 6; do
    root=$WORK/random-$i
    "$KPKI" init --root "$root" "${flags[@]}" --key-type rsa-2048 2>/dev/null &
    pid=$!
    sleep "0.$(( RANDOM % 7 ))$(( RANDOM % 10 ))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    check_files_whole "$root" "random kill $i"
    check_recovers "$root" "random kill $i" --key-type rsa-2048
done
pass "six SIGKILLs at random moments of RSA runs: files whole, the rerun finishes"
