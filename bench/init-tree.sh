#!/usr/bin/env bash
# init-tree.sh — time `kpki init` against bench/openssl-tree.sh, which builds the same certificate
# tree (docs/pki-tree.md) with the openssl command line, and print the result as Markdown.
#
# Usage:
#   bench/init-tree.sh KPKI_BINARY [--runs N] [--key-types rsa-2048,ecdsa-p256]
#       [--work-dir DIR] [--also-on DIR] [--no-openssl]
#
#   --runs N          timed runs of each tool per key type (default: 7 for rsa-*, 15 for ecdsa-*)
#   --key-types LIST  comma-separated key types (default: rsa-2048,ecdsa-p256)
#   --work-dir DIR    where the scratch directory holding every fresh root goes
#                     (default: ${TMPDIR:-/tmp}); it should be on the same filesystem as the repo
#                     and $TMPDIR, because kpki's durable commit (two syncfs() calls) costs what
#                     that filesystem makes it cost
#   --also-on DIR     also time kpki with its roots under DIR (e.g. /dev/shm, a tmpfs, where
#                     syncfs() has nothing to write), interleaved with the other runs; the
#                     difference of the two kpki medians estimates the cost of durability
#   --no-openssl      leave bench/openssl-tree.sh out (with --also-on: many cheap rounds that
#                     measure only what durable writes cost)
#
# For each key type the tools run in turn, round after round (kpki, openssl, then openssl, kpki,
# ...), so that both share the machine's noise; one untimed warm-up round comes first and also
# checks that both tools produced the same files with the same modes. Every run gets a new,
# missing root directory, deleted after the run; before each timed run `sync -f` flushes the
# scratch filesystem so that no run pays for the previous one's dirty data.
#
# Wall time is bash's $EPOCHREALTIME around the command (microseconds); CPU time is the user+sys
# time that bash's `time` keyword reports for the command, which is getrusage(RUSAGE_CHILDREN)
# of the process and every child it waited for (openssl-tree.sh's 64 openssl processes, kpki's
# key-generation threads). Both need nothing but bash >= 5 and coreutils, so this runs as is on a
# fresh Debian 12. From kpki's `--output json` come keygenSeconds and totalSeconds (its own
# in-process wall clock). Tables show medians, with min and max of the wall time.
#
# Progress goes to stderr, the Markdown report to stdout. Needs: bash >= 5, coreutils, awk,
# openssl (for bench/openssl-tree.sh).
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
openssl_tree="$bench_dir/openssl-tree.sh"

usage() {
    cat >&2 <<EOF
usage: $prog KPKI_BINARY [--runs N] [--key-types rsa-2048,ecdsa-p256] [--work-dir DIR]
       [--also-on DIR] [--no-openssl]
EOF
    exit 2
}

die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

say() {
    printf '%s: %s\n' "$prog" "$*" >&2
}

((BASH_VERSINFO[0] >= 5)) || die "needs bash >= 5 (for \$EPOCHREALTIME)"

# ---------------------------------------------------------------------------------------------
# Options

invocation=("$0" "$@")
kpki=""
runs=""
key_types="rsa-2048,ecdsa-p256"
work_parent=${TMPDIR:-/tmp}
also_on=""
with_openssl=1

while (($# > 0)); do
    opt=$1
    case $opt in
    -h | --help) usage ;;
    --no-openssl) with_openssl=0; shift; continue ;;
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --*) (($# >= 2)) || die "option $opt needs a value"; val=$2; shift 2 ;;
    *)
        [[ -z $kpki ]] || usage
        kpki=$1
        shift
        continue
        ;;
    esac
    case $opt in
    --runs) runs=$val ;;
    --key-types) key_types=$val ;;
    --work-dir) work_parent=$val ;;
    --also-on) also_on=$val ;;
    *) die "unknown option '$opt'" ;;
    esac
done

[[ -n $kpki ]] || usage
[[ -f $kpki && -x $kpki ]] || die "'$kpki' is not an executable file (build it first)"
kpki=$(cd -- "$(dirname -- "$kpki")" && pwd -P)/${kpki##*/}
if ((with_openssl)); then
    [[ -x $openssl_tree ]] || die "$openssl_tree is missing or not executable"
    command -v openssl >/dev/null || die "openssl is not on PATH (bench/openssl-tree.sh needs it)"
fi
if [[ -n $runs ]]; then
    [[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs '$runs' is not a positive integer"
fi
IFS=, read -r -a types <<<"$key_types"
((${#types[@]} > 0)) || die "--key-types is empty"
for t in "${types[@]}"; do
    case $t in
    rsa-2048 | rsa-3072 | rsa-4096 | ecdsa-p256 | ecdsa-p384) ;;
    *) die "unknown key type '$t' (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384)" ;;
    esac
done
[[ -d $work_parent ]] || die "--work-dir '$work_parent' is not a directory"
if [[ -n $also_on ]]; then
    [[ -d $also_on ]] || die "--also-on '$also_on' is not a directory"
fi

# ---------------------------------------------------------------------------------------------
# Scratch directories (deleted at exit, whatever happens)

work=""
alt_work=""
cleanup() {
    [[ -n $work ]] && rm -rf -- "$work"
    [[ -n $alt_work ]] && rm -rf -- "$alt_work"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work=$(mktemp -d "$work_parent/kpki-bench.XXXXXXXX")
work=$(cd -- "$work" && pwd -P)
mkdir -- "$work/out"
if [[ -n $also_on ]]; then
    alt_work=$(mktemp -d "$also_on/kpki-bench.XXXXXXXX")
    alt_work=$(cd -- "$alt_work" && pwd -P)
fi

fstype() {
    local t
    t=$(df --output=fstype -- "$1" 2>/dev/null | tail -n 1) || true
    [[ -n $t ]] || t=$(stat -f -c %T -- "$1" 2>/dev/null) || t="unknown"
    printf '%s' "$t"
}

# ---------------------------------------------------------------------------------------------
# Running and timing one tool

variants=(kpki openssl)
declare -A label=([kpki]="kpki init" [openssl]="openssl-tree.sh")
declare -A root_parent=([kpki]="$work" [openssl]="$work")
if [[ -n $also_on ]]; then
    variants=(kpki kpki-alt openssl)
    label[kpki-alt]="kpki init, root on $(fstype "$alt_work")"
    root_parent[kpki-alt]="$alt_work"
fi
if ((!with_openssl)); then
    unset 'variants[-1]'
    ((${#variants[@]} > 0)) || die "nothing to time"
fi

# tool_cmd VARIANT TYPE ROOT: fill the array `cmd` with the command line of one run.
tool_cmd() {
    local variant=$1 type=$2 root=$3
    case $variant in
    kpki | kpki-alt)
        cmd=("$kpki" init --root "$root" --node-name bench --apiserver-advertise-address 127.0.0.1
            --key-type "$type" --output json)
        ;;
    openssl)
        cmd=("$openssl_tree" --root "$root" --key-type "$type" --node-name bench
            --advertise-address 127.0.0.1)
        ;;
    esac
}

# tree_listing ROOT: every path under ROOT with its mode and type, the kubelet client
# certificate's timestamp replaced, sorted.
tree_listing() {
    (cd -- "$1" && find . -mindepth 1 -printf '%p %m %y\n') |
        sed 's/kubelet-client-[0-9-]*\.pem/kubelet-client-TIME.pem/' | sort
}

sync_scratch() {
    sync -f -- "$work" 2>/dev/null || sync
}

# run_one VARIANT TYPE: run it once on a new root; sets `wall` and `cpu` (seconds), and for kpki
# `keygen` and `total` (seconds, from its JSON). Leaves the root in place as `root`.
run_one() {
    local variant=$1 type=$2 t0 t1 user sys
    root="${root_parent[$variant]}/root-$variant"
    rm -rf -- "$root"
    tool_cmd "$variant" "$type" "$root"
    local out="$work/out/stdout" err="$work/out/stderr" tf="$work/out/time"
    sync_scratch
    local TIMEFORMAT='%3U %3S'
    t0=$EPOCHREALTIME
    if ! { time "${cmd[@]}" >"$out" 2>"$err"; } 2>"$tf"; then
        cat -- "$err" >&2
        die "failed: ${cmd[*]}"
    fi
    t1=$EPOCHREALTIME
    read -r user sys <"$tf"
    wall=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.6f", b - a }')
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
    keygen="" total=""
    if [[ $variant == kpki* ]]; then
        keygen=$(sed -n 's/^ *"keygenSeconds": *\([-+0-9.eE]*\).*/\1/p' "$out")
        total=$(sed -n 's/^ *"totalSeconds": *\([-+0-9.eE]*\).*/\1/p' "$out")
        [[ -n $keygen && -n $total ]] ||
            die "no keygenSeconds/totalSeconds in the JSON of: ${cmd[*]}"
    fi
}

fmt_s() { # seconds -> "123.4 ms" or "2.345 s"
    awk -v x="$1" 'BEGIN { if (x < 1) printf "%.1f ms", x * 1000; else printf "%.3f s", x }'
}

# stats FILE COLUMN: "median min max" of that column.
stats() {
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "0 0 0"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.6f %.6f %.6f\n", m, v[1], v[NR]
        }'
}

# ---------------------------------------------------------------------------------------------
# The runs

start_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
for type in "${types[@]}"; do
    if [[ -n $runs ]]; then
        n=$runs
    elif [[ $type == rsa-* ]]; then
        n=7
    else
        n=15
    fi
    say "$type: warm-up round (untimed), then $n timed rounds of ${variants[*]}"

    # Warm-up: caches, and a check that the trees have the same files and modes.
    reference=""
    for v in "${variants[@]}"; do
        run_one "$v" "$type"
        listing=$(tree_listing "$root")
        rm -rf -- "$root"
        if [[ -z $reference ]]; then
            reference=$listing
        elif [[ $listing != "$reference" ]]; then
            say "warning: $v's tree differs from ${variants[0]}'s (files or modes):"
            diff <(printf '%s\n' "$reference") <(printf '%s\n' "$listing") >&2 || true
        fi
    done

    for v in "${variants[@]}"; do : >"$work/$type.$v"; done
    for ((i = 1; i <= n; i++)); do
        # Rotate the order each round so that no tool always runs right after the same one.
        order=()
        for ((k = 0; k < ${#variants[@]}; k++)); do
            order+=("${variants[(k + i - 1) % ${#variants[@]}]}")
        done
        for v in "${order[@]}"; do
            run_one "$v" "$type"
            rm -rf -- "$root"
            printf '%s %s %s %s\n' "$wall" "$cpu" "${keygen:-0}" "${total:-0}" >>"$work/$type.$v"
            extra=""
            [[ -n $total ]] && extra=", in-process $(fmt_s "$total") (keygen $(fmt_s "$keygen"))"
            say "[$type $i/$n] ${label[$v]}: wall $(fmt_s "$wall"), cpu $(fmt_s "$cpu")$extra"
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---------------------------------------------------------------------------------------------
# The report

cpu_model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
cpu_family=$(sed -n 's/^cpu family[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
cpu_modelno=$(sed -n 's/^model[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
cores=$(nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo)
repo_rev=$(git -C "$bench_dir" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ $repo_rev != "?" ]] && ! git -C "$bench_dir" diff --quiet HEAD 2>/dev/null; then
    repo_rev="$repo_rev (with uncommitted changes)"
fi

pretty_invocation=$(printf '%q ' "${invocation[@]}")
pretty_invocation=${pretty_invocation% }

echo '```'
echo "\$ $pretty_invocation"
echo '```'
echo
echo "- machine: ${cpu_model:-unknown CPU}${cpu_family:+ (family $cpu_family, model $cpu_modelno)}, $cores cores, Linux $(uname -r)"
echo "- date: $start_date; load average (1/5/15 min) $load_before before, $load_after after"
echo "- software: $("$kpki" version 2>/dev/null | head -n 1 || echo kpki) (repo at $repo_rev); $(openssl version); bash $BASH_VERSION"
echo "- roots: fresh directories under $(dirname -- "$work")/ ($(fstype "$work")), one per run$(
    [[ -n $also_on ]] && printf '; the "%s" row under %s/ (%s)' "${label[kpki-alt]}" \
        "$(dirname -- "$alt_work")" "$(fstype "$alt_work")")"
echo "- timing: wall = \$EPOCHREALTIME around the process; CPU = user+sys of the process and its children (bash's \`time\` keyword, getrusage); medians, one untimed warm-up round, tools interleaved round by round, \`sync -f\` before each run"
echo "- commands: \`kpki init --root ROOT --node-name bench --apiserver-advertise-address 127.0.0.1 --key-type T --output json\` and \`bench/openssl-tree.sh --root ROOT --key-type T --node-name bench --advertise-address 127.0.0.1\`$(
    ((with_openssl)) || printf ' (not run here: --no-openssl)')"

for type in "${types[@]}"; do
    o_wall="" o_cpu=""
    if ((with_openssl)); then
        read -r o_wall _ _ < <(stats "$work/$type.openssl" 1)
        read -r o_cpu _ _ < <(stats "$work/$type.openssl" 2)
    fi
    n=$(wc -l <"$work/$type.${variants[0]}")
    echo
    echo "### $type ($n runs each)"
    echo
    echo "| tool | median wall | min | max | median CPU (user+sys) | wall vs openssl | CPU vs openssl |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for v in "${variants[@]}"; do
        read -r w_med w_min w_max < <(stats "$work/$type.$v" 1)
        read -r c_med _ _ < <(stats "$work/$type.$v" 2)
        if [[ $v == openssl ]]; then
            ratio_w="1 (baseline)" ratio_c="1 (baseline)"
        elif [[ -z $o_wall ]]; then
            ratio_w="not run" ratio_c="not run"
        else
            ratio_w=$(awk -v o="$o_wall" -v t="$w_med" 'BEGIN { printf "%.1f× faster", o / t }')
            ratio_c=$(awk -v o="$o_cpu" -v t="$c_med" 'BEGIN { printf "%.1f× less", o / t }')
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${label[$v]}" "$(fmt_s "$w_med")" \
            "$(fmt_s "$w_min")" "$(fmt_s "$w_max")" "$(fmt_s "$c_med")" "$ratio_w" "$ratio_c"
    done
    echo
    for v in "${variants[@]}"; do
        [[ $v == kpki* ]] || continue
        read -r w_med _ _ < <(stats "$work/$type.$v" 1)
        read -r t_med _ _ < <(stats "$work/$type.$v" 4)
        read -r k_med _ _ < <(stats "$work/$type.$v" 3)
        share=$(awk '{ if ($4 > 0) printf "%.6f\n", $3 / $4 }' "$work/$type.$v" | sort -g | awk '
            { v[NR] = $1 }
            END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                  printf "%.0f%%", m * 100 }')
        outside=$(awk -v w="$w_med" -v t="$t_med" 'BEGIN { print w - t }')
        echo "- ${label[$v]}, its own clock (\`totalSeconds\`): median $(fmt_s "$t_med"); key generation (\`keygenSeconds\`): median $(fmt_s "$k_med"), a median share of $share of the in-process total; outside that clock (process start, libraries, exit): about $(fmt_s "$outside")"
    done
    if [[ -n $also_on ]]; then
        read -r a_med _ _ < <(stats "$work/$type.kpki" 1)
        read -r b_med _ _ < <(stats "$work/$type.kpki-alt" 1)
        read -r at_med _ _ < <(stats "$work/$type.kpki" 4)
        read -r bt_med _ _ < <(stats "$work/$type.kpki-alt" 4)
        # Paired: line i of both files is round i, so the difference within each round is
        # less exposed to load that drifts over the run.
        read -r p_med _ _ < <(paste -d' ' "$work/$type.kpki" "$work/$type.kpki-alt" |
            awk '{ printf "%.6f\n", $4 - $8 }' >"$work/out/paired" && stats "$work/out/paired" 1)
        awk -v a="$a_med" -v b="$b_med" -v at="$at_med" -v bt="$bt_med" -v p="$p_med" \
            -v fa="$(fstype "$work")" -v fb="$(fstype "$alt_work")" 'BEGIN {
            d = a - b; dt = at - bt
            printf "- durability: median wall on %s minus median wall on %s = %.1f ms (%.0f%% of the %s median wall); medians of the in-process totals differ by %.1f ms; median of the per-round differences of the in-process totals: %.1f ms\n",
                fa, fb, d * 1000, (a > 0 ? d / a * 100 : 0), fa, dt * 1000, p * 1000 }'
    fi
done
say "done"
