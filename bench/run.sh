#!/usr/bin/env bash
# rwasm beside runc and crun, in one hyperfine run per group, ratios to crun.
#
#   bench/run.sh            (or `make bench`, which first runs setup and build)
#
# Group 1, `run`: `X run --bundle B ID` of /bin/true in a busybox bundle for crun, runc,
# rwasm, rwasm with examples/plugins.toml (env-inject + audit) and rwasm with
# bench/plugins.toml (env-inject + audit + policy). Group 2, the OCI lifecycle
# (bench/lifecycle.sh): create, start, `state` until stopped, delete. Then the peak RSS of
# `run` for each (GNU time %M). One config.json serves every runtime: `runc spec` with
# args ["/bin/true"], terminal false and a memory limit (so that the policy plugin allows
# it); every other default (namespaces, mounts, capabilities) stays. Each runtime gets its
# own --root in a temporary directory.
#
# If rwasm refuses runc's default spec, the script prints rwasm's error, applies the one
# known edit for it to the config of *every* runtime and records both in RESULTS.md;
# BENCH_STRICT=1 makes it stop instead.
#
# Environment: RUNS (50), WARMUP (5), RSS_RUNS (10), RWASM_BIN (the release build),
# BUSYBOX_ROOTFS (rwasm setup's image), BENCH_RESULTS (bench/RESULTS.md), BENCH_STRICT.
# The script rewrites only the part of RESULTS.md between its markers, and leaves
# hyperfine's JSON exports and the RSS samples in bench/results/ (next to BENCH_RESULTS).
set -euo pipefail

die() { echo "bench/run.sh: $*" >&2; exit 1; }
say() { echo "bench/run.sh: $*" >&2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
RSS_RUNS=${RSS_RUNS:-10}
RWASM_SRC=${RWASM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/rwasm-target}/release/rwasm}
# The built-in image's one layer, unpacked in the image store (`rwasm setup` makes it).
busybox_layer() {
    local diff
    diff=$("$RWASM_SRC" image inspect busybox 2>/dev/null | jq -r '.[0].RootFS.Layers[0]') || return 0
    [ -n "$diff" ] && [ "$diff" != null ] && echo "${RWASM_DATA_ROOT:-/var/lib/rwasm}/images/layers/${diff#sha256:}"
}
ROOTFS_SRC=${BUSYBOX_ROOTFS:-$(busybox_layer)}
RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}
RAW_DIR=$(dirname "$RESULTS")/results
MEMORY_LIMIT=$((256 << 20))

# --- prerequisites ----------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (containers, cgroups, mounts)"
for tool in hyperfine runc crun jq mountpoint; do
    command -v "$tool" >/dev/null || die "$tool not found; install it: apt-get install hyperfine runc crun jq (or \`make setup\`)"
done
if [ ! -x /usr/bin/time ]; then
    say "GNU time missing (peak RSS needs /usr/bin/time -f %M): installing the Debian package \`time\`"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } ||
        die "cannot install the \`time\` package"
fi
[ -x "$RWASM_SRC" ] || die "no rwasm binary at $RWASM_SRC; build it: cd $REPO && cargo build --release -p rwasm (or set RWASM_BIN)"
[ -d "$ROOTFS_SRC/bin" ] && [ -e "$ROOTFS_SRC/bin/true" ] ||
    die "no busybox rootfs at $ROOTFS_SRC; create it with \`$RWASM_SRC setup\` (or set BUSYBOX_ROOTFS)"
for wasm in env_inject audit policy; do
    [ -f "$REPO/examples/wasm/$wasm.wasm" ] || die "examples/wasm/$wasm.wasm missing; build the plugins: cd $REPO && make plugins"
done
[ ! -e /etc/rwasm/plugins.toml ] ||
    die "/etc/rwasm/plugins.toml exists: rwasm would load it in the no-plugin runs; move it away for the benchmark"
[ -z "${RWASM_PLUGINS:-}" ] || die "RWASM_PLUGINS is set ($RWASM_PLUGINS): unset it, the script chooses the manifests"
case "$REPO" in *[[:space:]]*) die "the repository path must not contain spaces: $REPO" ;; esac
mkdir -p /var/log/rwasm-audit # the audit plugin's granted directory

# shellcheck source=lib/crun-hybrid.sh
. "$HERE/lib/crun-hybrid.sh"
crun_hybrid_step

# --- a private tree ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/rwasm-bench.XXXXXX)
BUNDLE=$WORK/bundle
PROBE=$WORK/probe
ROOTS=$WORK/roots
DATA=$WORK/data
RW=$WORK/bin/rwasm
cleanup() {
    local id
    for id in bench-crun bench-runc bench-rwasm bench-rwasm-p2 bench-rwasm-p3 bench-probe \
        life-crun life-runc life-rwasm life-rwasm-p3; do
        crun --root "$ROOTS/crun" delete -f "$id" >/dev/null 2>&1 || true
        runc --root "$ROOTS/runc" delete -f "$id" >/dev/null 2>&1 || true
        [ -x "$RW" ] && "$RW" --root "$ROOTS/rwasm" --data-root "$DATA" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$BUNDLE" "$PROBE" "$ROOTS"/{crun,runc,rwasm} "$DATA" "$WORK/bin"

# Other engineers rebuild the release binary while we measure: time a snapshot of it.
cp "$RWASM_SRC" "$RW"
[ "$(head -c4 "$RW" | od -An -c | tr -d ' ')" = '177ELF' ] ||
    die "$RWASM_SRC is not an ELF file right now (a build in progress?); retry when the build is done"
RWASM_VERSION=$("$RW" --version)
RWASM_BUILT=$(date -u -r "$RWASM_SRC" '+%Y-%m-%d %H:%M:%S UTC')
RWASM_SIZE_MB=$(( $(stat -c %s "$RW") / 1000000 ))
RWASM_DIRTY=$(git -C "$REPO" status --porcelain -- runtime Cargo.toml Cargo.lock 2>/dev/null | wc -l)
cp -a "$ROOTFS_SRC" "$BUNDLE/rootfs"

# --- one config.json for everyone -------------------------------------------------------
(cd "$WORK" && runc spec && mv config.json runc-default.json)
jq --argjson mem "$MEMORY_LIMIT" \
    '.process.args = ["/bin/true"] | .process.terminal = false | .linux.resources.memory.limit = $mem' \
    "$WORK/runc-default.json" >"$BUNDLE/config.json"

# The probe: the same config with `exit 7` and an absolute root.path, so a runtime that
# merely exits 0 (say, an empty binary mid-build) cannot pass for one that ran a container.
write_probe() {
    jq --arg root "$BUNDLE/rootfs" '.process.args = ["/bin/sh", "-c", "exit 7"] | .root.path = $root' \
        "$BUNDLE/config.json" >"$PROBE/config.json"
}
probe() { # RUNTIME-NAME COMMAND... ; 0 when the container ran and exited 7
    local name=$1 rc=0
    shift
    "$@" run --bundle "$PROBE" bench-probe >"$WORK/probe.out" 2>"$WORK/probe.err" || rc=$?
    [ "$rc" = 7 ] && return 0
    say "$name: probe container exited $rc, not 7; its stderr:"
    sed 's/^/    /' "$WORK/probe.err" >&2
    return 1
}

# Known rejections of runc's default spec by rwasm, and the one edit each needs:
# a pattern (grep -E on rwasm's error), a jq edit, what the edit means.
KNOWN_PATTERNS=('cannot remount cgroup' 'process\.capabilities\.ambient')
KNOWN_EDITS=(
    'del(.mounts[] | select(.destination == "/sys/fs/cgroup"))'
    'del(.process.capabilities.ambient)'
)
KNOWN_WHAT=(
    'drop the `/sys/fs/cgroup` mount (type cgroup): rwasm cannot remount its per-hierarchy bind mounts on this v1/hybrid host when the spec has no cgroup namespace'
    'drop `process.capabilities.ambient`: with no inheritable set the kernel refuses to raise ambient capabilities (EPERM); runc and crun ignore that error and run the container with an empty ambient set, rwasm fails'
)
APPLIED=()     # indexes into KNOWN_*, in the order applied
APPLIED_ERR=() # rwasm's error that called for each
write_probe
while ! probe rwasm "$RW" --root "$ROOTS/rwasm" --data-root "$DATA"; do
    error=$(grep -E '^rwasm: ' "$WORK/probe.err" | tail -n1 || true)
    [ -z "${BENCH_STRICT:-}" ] || die "rwasm refuses runc's default spec (BENCH_STRICT set): ${error:-see above}"
    fixed=
    for k in "${!KNOWN_PATTERNS[@]}"; do
        grep -qE "${KNOWN_PATTERNS[$k]}" <<<"$error" || continue
        for a in "${APPLIED[@]+"${APPLIED[@]}"}"; do
            [ "$a" != "$k" ] || die "rwasm still fails after the edit \"${KNOWN_WHAT[$k]}\": $error"
        done
        jq "${KNOWN_EDITS[$k]}" "$BUNDLE/config.json" >"$WORK/edited.json"
        mv "$WORK/edited.json" "$BUNDLE/config.json"
        APPLIED+=("$k")
        APPLIED_ERR+=("$error")
        say "rwasm refuses runc's default spec: $error"
        say "  -> for every runtime: ${KNOWN_WHAT[$k]}"
        write_probe
        fixed=1
        break
    done
    [ -n "$fixed" ] || die "rwasm refuses the benchmark's config.json and no known edit applies: ${error:-see above}"
done
probe runc runc --root "$ROOTS/runc" || die "runc cannot run the benchmark bundle"
probe crun crun --root "$ROOTS/crun" || die "crun cannot run the benchmark bundle"
probe "rwasm + plugins" "$RW" --root "$ROOTS/rwasm" --data-root "$DATA" --plugins "$HERE/plugins.toml" ||
    die "rwasm with bench/plugins.toml cannot run the benchmark bundle"
say "all runtimes run the bundle (probe: exit 7 came back from each)"

# --- the commands -----------------------------------------------------------------------
RWG="$RW --root $ROOTS/rwasm --data-root $DATA"
RUN_NAMES=(crun runc rwasm "rwasm + 2 plugins" "rwasm + 3 plugins")
RUN_CMDS=(
    "crun --root $ROOTS/crun run --bundle $BUNDLE bench-crun"
    "runc --root $ROOTS/runc run --bundle $BUNDLE bench-runc"
    "$RWG run --bundle $BUNDLE bench-rwasm"
    "$RWG --plugins $REPO/examples/plugins.toml run --bundle $BUNDLE bench-rwasm-p2"
    "$RWG --plugins $HERE/plugins.toml run --bundle $BUNDLE bench-rwasm-p3"
)
LIFE_NAMES=(crun runc rwasm "rwasm + 3 plugins")
LIFE_CMDS=(
    "$HERE/lifecycle.sh $BUNDLE life-crun crun --root $ROOTS/crun"
    "$HERE/lifecycle.sh $BUNDLE life-runc runc --root $ROOTS/runc"
    "$HERE/lifecycle.sh $BUNDLE life-rwasm $RWG"
    "$HERE/lifecycle.sh $BUNDLE life-rwasm-p3 $RWG --plugins $HERE/plugins.toml"
)

shquote() { # one word as a shell would need it
    case $1 in
        *[!A-Za-z0-9_./=:,+-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
        *) printf '%s' "$1" ;;
    esac
}
hyperfine_group() { # JSON-OUT then NAME CMD pairs
    local out=$1 args=() a
    shift
    while [ $# -gt 0 ]; do args+=(--command-name "$1" "$2"); shift 2; done
    HYPERFINE_LINE="hyperfine -N --warmup $WARMUP --runs $RUNS --export-json $out"
    for a in "${args[@]}"; do HYPERFINE_LINE+=" $(shquote "$a")"; done
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$out" "${args[@]}" >&2
}
pairs() { local -n names=$1 cmds=$2; local i; for i in "${!names[@]}"; do printf '%s\0%s\0' "${names[$i]}" "${cmds[$i]}"; done; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk '{exit !($1 > 1.0)}' /proc/loadavg; then
    say "warning: load average ${LOAD_BEFORE%% *} on $(nproc) CPUs: absolute times will be inflated, compare the ratios"
fi
say "group 1: run --bundle (hyperfine, $WARMUP warmups, $RUNS runs)"
mapfile -d '' -t P < <(pairs RUN_NAMES RUN_CMDS)
hyperfine_group "$WORK/run.json" "${P[@]}"
RUN_LINE=$HYPERFINE_LINE
say "group 2: create + start + state until stopped + delete"
mapfile -d '' -t P < <(pairs LIFE_NAMES LIFE_CMDS)
hyperfine_group "$WORK/lifecycle.json" "${P[@]}"
LIFE_LINE=$HYPERFINE_LINE

say "peak RSS of run ($RSS_RUNS runs each, GNU time %M)"
declare -A RSS
for i in "${!RUN_NAMES[@]}"; do
    read -ra cmd <<<"${RUN_CMDS[$i]}"
    : >"$WORK/rss.txt"
    for _ in $(seq "$RSS_RUNS"); do
        /usr/bin/time -f %M -a -o "$WORK/rss.txt" "${cmd[@]}" >/dev/null 2>&1
    done
    sed "s/^/${RUN_NAMES[$i]}\t/" "$WORK/rss.txt" >>"$WORK/rss-kib.tsv"
    # median of the runs, KiB -> MiB
    RSS[${RUN_NAMES[$i]}]=$(sort -n "$WORK/rss.txt" | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.1f", m/1024}')
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report -------------------------------------------------------------------------
table() { # JSON WITH-RSS
    local json=$1 with_rss=$2 base
    base=$(jq -r '.results[] | select(.command == "crun") | .median' "$json")
    if [ "$with_rss" = 1 ]; then
        echo "| | median | ratio to crun | mean ± σ | min | peak RSS (median) |"
        echo "|---|---:|---:|---:|---:|---:|"
    else
        echo "| | median | ratio to crun | mean ± σ | min |"
        echo "|---|---:|---:|---:|---:|"
    fi
    jq -r --argjson base "$base" '.results[] | [.command, .median, .median / $base, .mean, .stddev, .min] | @tsv' "$json" |
        while IFS=$'\t' read -r name median ratio mean sd min; do
            row=$(awk -v n="$name" -v md="$median" -v r="$ratio" -v mn="$mean" -v sd="$sd" -v mi="$min" \
                'BEGIN {printf "| %s | %.1f ms | %.2f× | %.1f ± %.1f ms | %.1f ms |", n, md*1000, r, mn*1000, sd*1000, mi*1000}')
            if [ "$with_rss" = 1 ]; then row="$row ${RSS[$name]} MiB |"; fi
            echo "$row"
        done
}

report() {
    echo "<!-- bench/run.sh: begin (generated; edits here are overwritten) -->"
    echo "## Results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) vCPUs, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME");"
    echo "load average $LOAD_BEFORE before, $LOAD_AFTER after. $RWASM_VERSION (HEAD $(git -C "$REPO" rev-parse --short HEAD),"
    echo "$RWASM_DIRTY uncommitted runtime files; binary built $RWASM_BUILT, $RWASM_SIZE_MB MB), $(runc --version | head -n1), $(crun --version | head -n1),"
    echo "$(hyperfine --version). Busybox bundle, \`/bin/true\`, $WARMUP warmups + $RUNS runs per command, \`-N\`."
    echo
    echo "### \`run --bundle B ID\`"
    echo
    table "$WORK/run.json" 1
    echo
    echo "### create + start + \`state\` until stopped + delete ([lifecycle.sh](lifecycle.sh))"
    echo
    table "$WORK/lifecycle.json" 0
    echo
    echo "Plugins: *2 plugins* is [examples/plugins.toml](../examples/plugins.toml) (env-inject, audit);"
    echo "*3 plugins* is [plugins.toml](plugins.toml) (env-inject, audit, policy). In the lifecycle group"
    echo "rwasm's \`start\` and \`delete\` run the plugins recorded at \`create\`; \`state\` runs none."
    echo "Peak RSS is GNU time's \`%M\` of the \`run\` command (the largest of it and the children it waited for)."
    echo
    echo "### The config.json"
    echo
    echo "\`runc spec\`, then \`.process.args = [\"/bin/true\"]\`, \`.process.terminal = false\` and"
    echo "\`.linux.resources.memory.limit = $MEMORY_LIMIT\` (so the policy plugin allows the container),"
    if [ ${#APPLIED[@]} -eq 0 ]; then
        echo "nothing else: rwasm accepts runc's default spec as it is."
    else
        echo "and, because **rwasm refuses runc's default spec**, these edits (applied to every runtime):"
        echo
        for j in "${!APPLIED[@]}"; do
            k=${APPLIED[$j]}
            echo "- ${KNOWN_WHAT[$k]}. rwasm's error: \`${APPLIED_ERR[$j]}\`; edit: \`jq '${KNOWN_EDITS[$k]}'\`."
        done
        echo
        echo "\`BENCH_STRICT=1 bench/run.sh\` stops at the first refusal instead; once rwasm is fixed the"
        echo "script uses the spec unedited."
    fi
    echo
    echo "### Reproduce"
    echo
    echo '```sh'
    echo "make bench            # = make setup build, then: RUNS=$RUNS WARMUP=$WARMUP bench/run.sh"
    echo '```'
    echo
    echo "The hyperfine command lines, as run (\`$WORK\` is the script's temporary directory):"
    echo
    echo '```sh'
    echo "$RUN_LINE"
    echo "$LIFE_LINE"
    echo '```'
    echo "<!-- bench/run.sh: end -->"
}

report >"$WORK/block.md"
cat "$WORK/block.md"
if [ -f "$RESULTS" ] && grep -q '^<!-- bench/run.sh: begin' "$RESULTS"; then
    awk -v block="$WORK/block.md" '
        /^<!-- bench\/run.sh: begin/ { while ((getline line < block) > 0) print line; skip = 1; next }
        /^<!-- bench\/run.sh: end/ { skip = 0; next }
        !skip { print }' "$RESULTS" >"$WORK/results.md"
else
    { echo "# rwasm beside runc and crun"; echo; cat "$WORK/block.md"
      [ -f "$RESULTS" ] && { echo; cat "$RESULTS"; }; } >"$WORK/results.md"
fi
cp "$WORK/results.md" "$RESULTS"
mkdir -p "$RAW_DIR"
cp "$WORK/run.json" "$WORK/lifecycle.json" "$WORK/rss-kib.tsv" "$BUNDLE/config.json" "$RAW_DIR/"
say "wrote $RESULTS and $RAW_DIR/{run.json,lifecycle.json,rss-kib.tsv,config.json}"
