#!/usr/bin/env bash
# Pull + unpack of a multi-layer image from a loopback registry: rwasm against skopeo +
# umoci, side by side in one hyperfine run.
#
#   bench/pull.sh        (or `make bench-pull`, which first runs setup and build)
#
# The registry is Debian's docker-registry on a free 127.0.0.1 port with its own storage
# under the script's temporary directory. The image (big-image.sh: busybox-static, 32 MiB
# random, 32 MiB base64 text, 2000 small files; ~82 MiB unpacked, ~81 MB gzipped) is
# built here with umoci and pushed with skopeo.
# Commands, each from a fresh store (hyperfine --prepare removes it before every run):
#   rwasm:          rwasm --data-root D pull HOST/bench:v1
#                   (manifest, config and layers fetched, 3 at a time, verified, stored
#                   in the blob store, each layer unpacked once into its own directory,
#                   as overlay lower layers)
#   skopeo + umoci: skopeo copy docker://HOST/bench:v1 oci:L:v1 && umoci unpack --image L:v1 B
#                   (the same fetch into an OCI layout, then every layer applied in
#                   order into one rootfs)
# Environment: RUNS (10), WARMUP (1), RWASM_BIN, BENCH_RESULTS (bench/RESULTS.md; only
# the part between this script's markers is rewritten).
set -euo pipefail

die() { echo "bench/pull.sh: $*" >&2; exit 1; }
say() { echo "bench/pull.sh: $*" >&2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
TARGET=${CARGO_TARGET_DIR:-/var/tmp/rwasm-target}
RWASM_SRC=${RWASM_BIN:-$TARGET/release/rwasm}
RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}

[ "$(id -u)" = 0 ] || die "must run as root (umoci unpack keeps ownership; rwasm's store is root's)"
for tool in hyperfine docker-registry skopeo umoci jq python3; do
    command -v "$tool" >/dev/null || die "$tool not found; install it (make setup)"
done
[ -x "$RWASM_SRC" ] || die "no rwasm binary at $RWASM_SRC; build it (make build) or set RWASM_BIN"

WORK=$(mktemp -d /var/tmp/rwasm-bench-pull.XXXXXX)
REG_PID=""
cleanup() {
    local rc=$?
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
mkdir -p "$WORK"/{bin,storage}
cp "$RWASM_SRC" "$WORK/bin/rwasm"
RW=$WORK/bin/rwasm

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/storage
http:
  addr: $HOST
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 200); do
    curl -fs "http://$HOST/v2/" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -fs "http://$HOST/v2/" >/dev/null || { cat "$WORK/registry.log" >&2; die "the registry did not start"; }

say "building the image (umoci) and pushing it (skopeo) to $HOST"
L=$WORK/src
# shellcheck source=big-image.sh
. "$HERE/big-image.sh"
build_big_image "$L" "$WORK/b"
skopeo copy --quiet --dest-tls-verify=false "oci:$L:v1" "docker://$HOST/bench:v1"
WIRE=$(skopeo inspect --raw --tls-verify=false "docker://$HOST/bench:v1" | jq '[.layers[].size] | add')
NLAYERS=$(skopeo inspect --raw --tls-verify=false "docker://$HOST/bench:v1" | jq '.layers | length')
UNPACKED=$("$RW" --data-root "$WORK/probe" pull -q "$HOST/bench:v1" >/dev/null && du -sb "$WORK/probe/images/layers" | cut -f1)
rm -rf "$WORK/probe"

D=$WORK/rwasm-data
S=$WORK/skopeo
NAMES=(rwasm "skopeo + umoci")
CMDS=(
    "$RW --data-root $D pull -q $HOST/bench:v1"
    "bash -c 'skopeo copy --quiet --src-tls-verify=false docker://$HOST/bench:v1 oci:$S/layout:v1 && umoci unpack --image $S/layout:v1 $S/bundle'"
)
PREPS=("rm -rf $D" "bash -c 'rm -rf $S && mkdir -p $S'")
# Both must really work before they are timed.
for i in 0 1; do
    bash -c "${PREPS[$i]}"
    bash -c "${CMDS[$i]}" >"$WORK/probe.out" 2>&1 || { cat "$WORK/probe.out" >&2; die "probe failed: ${CMDS[$i]}"; }
done
[ "$(cat "$S/bundle/rootfs/text/t1.txt" | wc -c)" = $((4 << 20)) ] || die "umoci's rootfs lacks /text/t1.txt"
ARGS=()
for i in 0 1; do ARGS+=(--prepare "${PREPS[$i]}" --command-name "${NAMES[$i]}" "${CMDS[$i]}"); done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "hyperfine: $WARMUP warmups, $RUNS runs per command"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/pull.json" "${ARGS[@]}" >&2
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

report() {
    local peer
    peer=$(jq -r '.results[] | select(.command == "skopeo + umoci") | .median' "$WORK/pull.json")
    echo "<!-- bench/pull.sh: begin (generated; edits here are overwritten) -->"
    echo "## Pull + unpack from a loopback registry ([pull.sh](pull.sh))"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) vCPUs; load average $LOAD_BEFORE before, $LOAD_AFTER after;"
    echo "$("$RW" --version) (HEAD $(git -C "$REPO" rev-parse --short HEAD)), $(skopeo --version), $(umoci --version),"
    echo "$(docker-registry --version | cut -d' ' -f2-3) on $HOST. Image: $NLAYERS gzip layers (busybox-static; 32 MiB random;"
    echo "32 MiB base64 text; 2000 × 8 KiB files), $WIRE bytes on the wire, $UNPACKED bytes unpacked by rwasm."
    echo "Fresh store before every run (\`--prepare\`), $WARMUP warmup + $RUNS runs each, \`-N\`."
    echo
    echo "| | median | ratio to skopeo + umoci | mean ± σ | min | max |"
    echo "|---|---:|---:|---:|---:|---:|"
    jq -r --argjson p "$peer" \
        '.results[] | [.command, .median, .median / $p, .mean, .stddev, .min, .max] | @tsv' "$WORK/pull.json" |
        while IFS=$'\t' read -r name md r mn sd mi mx; do
            awk -v n="$name" -v md="$md" -v r="$r" -v mn="$mn" -v sd="$sd" -v mi="$mi" -v mx="$mx" \
                'BEGIN {printf "| %s | %.0f ms | %.2f× | %.0f ± %.0f ms | %.0f ms | %.0f ms |\n", n, md*1000, r, mn*1000, sd*1000, mi*1000, mx*1000}'
        done
    echo
    echo "rwasm fetches up to 3 blobs at once, hashes each as it arrives, and unpacks each layer"
    echo "into its own directory (overlay lower layers, whiteouts as overlay whiteouts) as soon"
    echo "as it is stored, while the others still download; skopeo fetches into an OCI layout,"
    echo "then umoci applies the layers one after another into one rootfs."
    echo
    echo "Reproduce: \`make bench-pull\` (= setup, build, then \`RUNS=$RUNS bench/pull.sh\`). The commands,"
    echo "as run (\`$WORK\` is the script's temporary directory):"
    echo
    echo '```sh'
    for i in 0 1; do echo "# --prepare '${PREPS[$i]}'"; echo "${CMDS[$i]}"; done
    echo '```'
    echo "<!-- bench/pull.sh: end -->"
}
report >"$WORK/block.md"
cat "$WORK/block.md"
if grep -q '^<!-- bench/pull.sh: begin' "$RESULTS" 2>/dev/null; then
    awk -v block="$WORK/block.md" '
        /^<!-- bench\/pull.sh: begin/ { while ((getline line < block) > 0) print line; skip = 1; next }
        /^<!-- bench\/pull.sh: end/ { skip = 0; next }
        !skip { print }' "$RESULTS" >"$WORK/results.md"
else
    { cat "$RESULTS" 2>/dev/null || true; echo; cat "$WORK/block.md"; } >"$WORK/results.md"
fi
cp "$WORK/results.md" "$RESULTS"
mkdir -p "$(dirname "$RESULTS")/results"
cp "$WORK/pull.json" "$(dirname "$RESULTS")/results/pull.json"
say "wrote $RESULTS and results/pull.json"
