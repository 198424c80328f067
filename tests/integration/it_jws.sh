#!/usr/bin/env bash
# Service-account token signatures against the openssl command line, in both directions:
#  - the kid kpki computes is base64url(SHA-256(PKIX DER)) as openssl computes it;
#  - a token kpki signs verifies with `openssl dgst -verify` (RS256 directly; ES256/ES384 after
#    turning R || S back into a DER ECDSA-Sig-Value with `openssl asn1parse -genconf`);
#  - a token built here with printf, base64 and `openssl dgst -sign` verifies with kpki, and
#    the same token with its ECDSA signature left in DER form, or its payload changed, does not;
#  - the JWKS n / x / y are the key's own numbers as openssl prints them.
# kpki has no command for tokens yet: the unit test program test_jws doubles as the helper
# (`test_jws tool kid|sign|verify|jwks`, see tests/unit/test_jws.c).
. "$(dirname "$0")/lib.sh"

TOOL=${KPKI_TEST_JWS:-$(dirname "$KPKI")/tests/test_jws}
[ -x "$TOOL" ] || skip "helper $TOOL not built"
command -v openssl >/dev/null || skip "no openssl"
NOW=1750000000

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# base64url text on stdin -> bytes on stdout
unb64url() {
    local text
    text=$(tr -- '-_' '+/')
    case $(( ${#text} % 4 )) in
        2) text="$text==" ;;
        3) text="$text=" ;;
    esac
    printf '%s' "$text" | openssl base64 -d -A
}
# field N (1-3) of a token file
part() { cut -d. -f"$2" "$1"; }

# Keys: RSA-2048, P-256, P-384 made by openssl (PKCS#8), public halves as PKIX.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/p256.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$WORK/p384.key"
for k in rsa p256 p384; do
    openssl pkey -in "$WORK/$k.key" -pubout -out "$WORK/$k.pub"
done

# 1. kid
for k in rsa p256 p384; do
    want=$(openssl pkey -pubin -in "$WORK/$k.pub" -outform der | openssl dgst -sha256 -binary |
        b64url)
    got=$("$TOOL" tool kid "$WORK/$k.pub")
    [ "$got" = "$want" ] || fail "$k: kid $got, openssl says $want"
    got=$("$TOOL" tool kid "$WORK/$k.key")
    [ "$got" = "$want" ] || fail "$k: kid of the private key $got, want $want"
done
pass "kid = base64url(sha256(PKIX DER)) for RSA, P-256, P-384"

# 2. kpki signs, openssl verifies.
cat >"$WORK/claims.json" <<EOF
{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:default:builder","aud":["https://kubernetes.default.svc.cluster.local"],"exp":$((NOW + 3600)),"iat":$NOW,"nbf":$NOW,"kubernetes.io":{"namespace":"default","serviceaccount":{"name":"builder","uid":"6d1e5c3a-7b7e-4a55-9a53-1a0b1f8f0d6e"}}}
EOF

# der_from_raw RAW HALF OUT: R || S (HALF bytes each) -> DER ECDSA-Sig-Value
der_from_raw() {
    local hex r s
    hex=$(xxd -p -c 256 "$1" | tr -d '\n')
    r=${hex:0:$(($2 * 2))}
    s=${hex:$(($2 * 2))}
    printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "$r" "$s" >"$WORK/sig.cnf"
    openssl asn1parse -genconf "$WORK/sig.cnf" -out "$3" -noout >/dev/null
}

for row in rsa:RS256:sha256:256 p256:ES256:sha256:32 p384:ES384:sha384:48; do
    IFS=: read -r k alg digest size <<<"$row"
    "$TOOL" tool sign "$WORK/$k.key" "$WORK/claims.json" >"$WORK/$k.jwt"
    header=$(part "$WORK/$k.jwt" 1 | unb64url)
    kid=$("$TOOL" tool kid "$WORK/$k.pub")
    [ "$header" = "{\"alg\":\"$alg\",\"kid\":\"$kid\"}" ] || fail "$k: header $header"
    part "$WORK/$k.jwt" 2 | unb64url | cmp -s - <(tr -d '\n' <"$WORK/claims.json") ||
        fail "$k: payload is not the claims, compact"
    printf '%s.%s' "$(part "$WORK/$k.jwt" 1)" "$(part "$WORK/$k.jwt" 2)" >"$WORK/input"
    part "$WORK/$k.jwt" 3 | unb64url >"$WORK/sig.raw"
    if [ "$k" = rsa ]; then
        [ "$(wc -c <"$WORK/sig.raw")" -eq 256 ] || fail "RS256 signature is not 256 bytes"
        cp "$WORK/sig.raw" "$WORK/sig.bin"
    else
        [ "$(wc -c <"$WORK/sig.raw")" -eq $((size * 2)) ] || fail "$alg signature is not R || S"
        der_from_raw "$WORK/sig.raw" "$size" "$WORK/sig.bin"
    fi
    out=$(openssl dgst "-$digest" -verify "$WORK/$k.pub" -signature "$WORK/sig.bin" "$WORK/input")
    [ "$out" = "Verified OK" ] || fail "$alg: openssl says: $out"
    [ "$("$TOOL" tool verify "$WORK/$k.pub" "$WORK/$k.jwt" "$NOW")" = valid ] ||
        fail "$alg: kpki does not verify its own token"
    got=$("$TOOL" tool verify "$WORK/$k.pub" "$WORK/$k.jwt" $((NOW + 3660)) 2>/dev/null)
    [ "$got" = expired ] || fail "$alg: $got after exp + leeway, want expired"
done
pass "tokens kpki signs verify with openssl dgst (RS256, ES256, ES384)"

# 3. openssl signs, kpki verifies.
# raw_from_der DER HALF: the two INTEGERs of an ECDSA-Sig-Value as R || S, HALF bytes each
raw_from_der() {
    local value
    openssl asn1parse -inform DER -in "$1" | sed -n 's/.*INTEGER *:\([0-9A-F]*\)$/\1/p' |
        while read -r value; do
            value=$(printf '%0*d%s' $(($2 * 2)) 0 "$value")
            printf '%s' "${value: -$(($2 * 2))}"
        done | xxd -r -p
}

for row in rsa:RS256:sha256:256 p256:ES256:sha256:32 p384:ES384:sha384:48; do
    IFS=: read -r k alg digest size <<<"$row"
    kid=$("$TOOL" tool kid "$WORK/$k.pub")
    h=$(printf '{"alg":"%s","kid":"%s","typ":"JWT"}' "$alg" "$kid" | b64url)
    p=$(b64url <"$WORK/claims.json")
    printf '%s.%s' "$h" "$p" >"$WORK/input"
    openssl dgst "-$digest" -sign "$WORK/$k.key" -out "$WORK/sig.der" "$WORK/input"
    if [ "$k" = rsa ]; then
        sig=$(b64url <"$WORK/sig.der")
    else
        sig=$(raw_from_der "$WORK/sig.der" "$size" | b64url)
        # The DER form is not the JWS form: refused.
        printf '%s.%s.%s' "$h" "$p" "$(b64url <"$WORK/sig.der")" >"$WORK/der.jwt"
        got=$("$TOOL" tool verify "$WORK/$k.pub" "$WORK/der.jwt" "$NOW" 2>/dev/null)
        [ "$got" = bad-signature ] || fail "$alg with a DER signature: $got"
    fi
    printf '%s.%s.%s' "$h" "$p" "$sig" >"$WORK/ossl.jwt"
    got=$("$TOOL" tool verify "$WORK/$k.pub" "$WORK/ossl.jwt" "$NOW")
    [ "$got" = valid ] || fail "$alg token made by openssl: $got"
    # The same signature over a changed payload.
    p2=$(sed 's/builder/builden/' "$WORK/claims.json" | b64url)
    printf '%s.%s.%s' "$h" "$p2" "$sig" >"$WORK/changed.jwt"
    got=$("$TOOL" tool verify "$WORK/$k.pub" "$WORK/changed.jwt" "$NOW" 2>/dev/null)
    [ "$got" = bad-signature ] || fail "$alg with a changed payload: $got"
done
pass "tokens openssl signs verify with kpki; DER ECDSA signatures and changed payloads do not"

# 4. The classic confusion: HS256 keyed with the RSA public key file.
h=$(printf '{"alg":"HS256","kid":"%s"}' "$("$TOOL" tool kid "$WORK/rsa.pub")" | b64url)
p=$(b64url <"$WORK/claims.json")
sig=$(printf '%s.%s' "$h" "$p" |
    openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$WORK/rsa.pub")" -binary | b64url)
printf '%s.%s.%s' "$h" "$p" "$sig" >"$WORK/hs.jwt"
got=$("$TOOL" tool verify "$WORK/rsa.pub" "$WORK/hs.jwt" "$NOW" 2>/dev/null)
[ "$got" = bad-alg ] || fail "HS256 keyed with the public key: $got"
pass "HS256 keyed with the public key is bad-alg"

# 5. JWKS parameters are the keys' own.
"$TOOL" tool jwks "$WORK/rsa.pub" "$WORK/p256.pub" "$WORK/p384.pub" >"$WORK/jwks.json"
# jwk INDEX MEMBER: one member of one key of the JWKS
jwk() {
    "$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1]))["keys"][int(sys.argv[2])][sys.argv[3]])' "$WORK/jwks.json" "$@"
}
n=$(openssl rsa -pubin -in "$WORK/rsa.pub" -noout -modulus | sed 's/^Modulus=//' | xxd -r -p |
    b64url)
[ "$(jwk 0 n)" = "$n" ] || fail "JWKS n differs from openssl's modulus"
[ "$(jwk 0 e)" = AQAB ] || fail "JWKS e is $(jwk 0 e)"
[ "$(jwk 0 kty)/$(jwk 0 alg)/$(jwk 0 use)" = RSA/RS256/sig ] || fail "JWKS RSA members"
[ "$(jwk 0 kid)" = "$("$TOOL" tool kid "$WORK/rsa.pub")" ] || fail "JWKS kid"
for row in 1:p256:P-256:ES256:32 2:p384:P-384:ES384:48; do
    IFS=: read -r i k crv alg size <<<"$row"
    # The SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
    openssl pkey -pubin -in "$WORK/$k.pub" -outform der | tail -c $((size * 2)) >"$WORK/xy"
    [ "$(jwk "$i" x)" = "$(head -c "$size" "$WORK/xy" | b64url)" ] || fail "$crv x"
    [ "$(jwk "$i" y)" = "$(tail -c "$size" "$WORK/xy" | b64url)" ] || fail "$crv y"
    [ "$(jwk "$i" kty)/$(jwk "$i" crv)/$(jwk "$i" alg)/$(jwk "$i" use)" = "EC/$crv/$alg/sig" ] ||
        fail "JWKS $crv members"
done
pass "JWKS n, e, x, y match openssl's view of the keys"
