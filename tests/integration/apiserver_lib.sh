# Helpers for tests that run `kpki apiserver`. Source after lib.sh.
#   start_apiserver ROOT [flags...]  starts it on a free port with its store under $WORK, points
#                                    every kubeconfig of the tree at it; sets APISERVER_PORT,
#                                    APISERVER_PID, APISERVER_LOG, APISERVER_URL
#   stop_apiserver                   SIGTERM, and waits for a clean exit (status 0)
#   kc VERSION KUBECONFIG args...    kubectl.VERSION with that kubeconfig (a file name under
#                                    ROOT/etc/kubernetes, or a path) and a private cache
#   jwt MODE KEY KID UID [JSON]      a service-account token for default/robot built here

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

# jwt MODE KEY [claim overrides as JSON]: a token for default/robot, valid unless overridden.
jwt() {
    "$PYTHON" - "$@" <<'PY'
import base64, hashlib, hmac, json, subprocess, sys, time
mode, key, kid, uid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
overrides = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": "https://kubernetes.default.svc.cluster.local",
          "aud": ["https://kubernetes.default.svc.cluster.local"],
          "sub": "system:serviceaccount:default:robot", "iat": now, "nbf": now,
          "exp": now + 600, "jti": "0f0e0d0c-0000-4000-8000-000000000001",
          "kubernetes.io": {"namespace": "default",
                            "serviceaccount": {"name": "robot", "uid": uid}}}
claims.update(overrides)
alg = {"rs256": "RS256", "none": "none", "hs256": "HS256"}[mode]
header = {"alg": alg, "kid": kid}
signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
if mode == "rs256":
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
elif mode == "hs256":
    sig = hmac.new(open(key, "rb").read(), signing_input.encode(), hashlib.sha256).digest()
else:
    sig = b""
print(signing_input + "." + b64(sig))
PY
}

# jwt_kid PUBLIC-KEY-FILE: the kid Kubernetes gives a key (base64url SHA-256 of its PKIX DER).
jwt_kid() {
    openssl pkey -pubin -in "$1" -outform DER | openssl dgst -sha256 -binary |
        basenc --base64url | tr -d '=\n'
}
