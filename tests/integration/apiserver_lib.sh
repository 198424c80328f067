# Helpers for tests that run `kpki apiserver`. Source after lib.sh.
#   start_apiserver ROOT [flags...]  starts it on a free port with its store under $WORK, points
#                                    every kubeconfig of the tree at it; sets APISERVER_PORT,
#                                    APISERVER_PID, APISERVER_LOG, APISERVER_URL
#   stop_apiserver                   SIGTERM, and waits for a clean exit (status 0)
#   kc VERSION KUBECONFIG args...    kubectl.VERSION with that kubeconfig (a file name under
#                                    ROOT/etc/kubernetes, or a path) and a private cache

APISERVER_ROOT=
start_apiserver() {
    local root=$1; shift
    APISERVER_ROOT=$root
    APISERVER_LOG=$WORK/apiserver.log
    rm -f "$WORK/apiserver.port"
    "$KPKI" apiserver --root "$root" --bind-address 127.0.0.1 --secure-port 0 \
        --port-file "$WORK/apiserver.port" --storage-file "${APISERVER_STORE:-$WORK/store.db}" \
        "$@" >>"$APISERVER_LOG" 2>&1 &
    APISERVER_PID=$!
    CHILD_PIDS+=("$APISERVER_PID")
    local i
    for i in $(seq 1 300); do # up to 30 s: a loaded machine running ASan builds is slow
        [ -s "$WORK/apiserver.port" ] && break
        kill -0 "$APISERVER_PID" 2>/dev/null || { cat "$APISERVER_LOG"; fail "kpki apiserver exited"; }
        sleep 0.1
    done
    [ -s "$WORK/apiserver.port" ] || { cat "$APISERVER_LOG"; fail "kpki apiserver did not start"; }
    APISERVER_PORT=$(cat "$WORK/apiserver.port")
    APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
    local conf
    for conf in "$root"/etc/kubernetes/*.conf; do
        sed -i "s#server: https://.*#server: $APISERVER_URL#" "$conf"
    done
}

stop_apiserver() {
    kill -TERM "$APISERVER_PID"
    local status=0
    wait "$APISERVER_PID" || status=$?
    [ "$status" = 0 ] || { tail -20 "$APISERVER_LOG"; fail "kpki apiserver exited with $status on SIGTERM"; }
}

kc() {
    local version=$1 config=$2; shift 2
    case "$config" in
        */*) ;;
        *) config=$APISERVER_ROOT/etc/kubernetes/$config ;;
    esac
    mkdir -p "$WORK/home"
    HOME=$WORK/home "$(kubectl_bin "$version")" --kubeconfig "$config" "$@"
}

# curl_api PATH [curl args...]: curl with the tree's CA and admin's client certificate
# (extracted once from admin.conf).
curl_admin() {
    local path=$1; shift
    if [ ! -s "$WORK/admin.crt" ]; then
        local conf=$APISERVER_ROOT/etc/kubernetes/admin.conf
        sed -n 's/^ *client-certificate-data: //p' "$conf" | base64 -d >"$WORK/admin.crt"
        sed -n 's/^ *client-key-data: //p' "$conf" | base64 -d >"$WORK/admin.key"
    fi
    curl -sS --cacert "$APISERVER_ROOT/etc/kubernetes/pki/ca.crt" --cert "$WORK/admin.crt" \
        --key "$WORK/admin.key" "$@" "$APISERVER_URL$path"
}
