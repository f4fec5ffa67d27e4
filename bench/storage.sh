#!/usr/bin/env bash
# Storage: rootfs preparation by rwasm's storage drivers, and `run --rm` end to end beside
# podman with runc, side by side in one run (issue 5's benchmark):
#
#   bench/storage.sh       (or `make bench-storage`, which first runs setup and build)
#
# Images, in a data root of the script's own: the built-in busybox (`rwasm setup`, one
# layer, ~2 MB) and big-image.sh's 4-layer image (~82 MiB unpacked: busybox-static, 32 MiB
# random, 32 MiB base64 text, 2000 small files), built with umoci, archived by skopeo
# (oci-archive) and loaded with `rwasm load`.
#
# (a) Rootfs preparation by the drivers overlay (the default plugin), vfs (the copying
#     plugin) and native-overlay (no plugin), on both images, measured two ways:
#     1. prepare only: runtime/examples/storage_prepare.rs, in one process, times what
#        `run` does before the container exists (storage::mount: the driver's component
#        loaded from the compiled cache, its `prepare`, the bind at the bundle's rootfs)
#        and what `rm` does (storage::release), drivers round-robin;
#     2. end to end: `rwasm --storage-driver D run --rm IMAGE true`, drivers round-robin
#        (interleave.py).
# (b) `rwasm run --rm busybox true` against `podman --runtime /usr/sbin/runc run --rm
#     --network none busybox true` of the same image (saved by rwasm, loaded into a podman
#     store of the script's own), interleaved rounds. Podman gets `--ulimit nofile=1024:1024
#     --ulimit nproc=4096:4096` (as root it raises both to the maximum, which a root without
#     CAP_SYS_RESOURCE is refused) and `--network none` (rwasm's default).
# Environment: ROUNDS (20), WARMUP (2), RWASM_BIN, STORAGE_PREPARE_BIN, RWASM_PLUGIN_DIR,
# BENCH_RESULTS (bench/RESULTS.md; only the part between this script's markers is rewritten).
set -euo pipefail

die() { echo "bench/storage.sh: $*" >&2; exit 1; }
say() { echo "bench/storage.sh: $*" >&2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
ROUNDS=${ROUNDS:-20}
WARMUP=${WARMUP:-2}
TARGET=${CARGO_TARGET_DIR:-/var/tmp/rwasm-target}
RWASM_SRC=${RWASM_BIN:-$TARGET/release/rwasm}
PREP_SRC=${STORAGE_PREPARE_BIN:-$TARGET/release/examples/storage_prepare}
export RWASM_PLUGIN_DIR=${RWASM_PLUGIN_DIR:-$TARGET/wasm32-wasip2/plugin}
RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}
RUNC=/usr/sbin/runc

[ "$(id -u)" = 0 ] || die "must run as root (mounts, containers, cgroups)"
for tool in podman umoci skopeo python3 jq "$RUNC"; do
    command -v "$tool" >/dev/null || die "$tool not found; install it (make setup)"
done
[ -x "$RWASM_SRC" ] || die "no rwasm binary at $RWASM_SRC; build it (make build) or set RWASM_BIN"
[ -x "$PREP_SRC" ] || die "no $PREP_SRC; build it: cargo build --release -p rwasm --example storage_prepare"
for c in storage_overlay storage_vfs; do
    [ -f "$RWASM_PLUGIN_DIR/$c.wasm" ] || die "no $RWASM_PLUGIN_DIR/$c.wasm; build the plugins (make plugins)"
done

WORK=$(mktemp -d /var/tmp/rwasm-bench-storage.XXXXXX)
mkdir -p "$WORK/bin"
# Copies: a rebuild during the run changes nothing measured.
cp "$RWASM_SRC" "$WORK/bin/rwasm"
cp "$PREP_SRC" "$WORK/bin/storage_prepare"
RW=$WORK/bin/rwasm
R=("$RW" --root "$WORK/state" --data-root "$WORK/data")
P=(podman --root "$WORK/podman/storage" --runroot "$WORK/podman/run" --runtime "$RUNC"
   --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
cleanup() {
    local rc=$?
    "${R[@]}" ps -aq 2>/dev/null | xargs -r "${R[@]}" rm -f >/dev/null 2>&1 || true
    "${P[@]}" rm -fa >/dev/null 2>&1 || true
    "${P[@]}" system reset -f >/dev/null 2>&1 || true
    umount -R "$WORK/podman" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

say "images: busybox (rwasm setup) and the 4-layer image (umoci, skopeo, rwasm load)"
"${R[@]}" setup >/dev/null
# shellcheck source=big-image.sh
. "$HERE/big-image.sh"
build_big_image "$WORK/src" "$WORK/b" >/dev/null
skopeo copy --quiet "oci:$WORK/src:v1" "oci-archive:$WORK/big.tar:bench/big:v1"
"${R[@]}" load -i "$WORK/big.tar" >/dev/null
rm -rf "$WORK/src" "$WORK/big.tar"
BIG=bench/big:v1
"${R[@]}" run --rm "$BIG" sh -c 'test -s /data/random.bin && test -f /small/d19/f099.txt' ||
    die "the 4-layer image does not run"
IMAGES_TABLE=$("${R[@]}" images)

"${R[@]}" save -o "$WORK/busybox.tar" busybox
"${P[@]}" load -q -i "$WORK/busybox.tar" >/dev/null
PIMG=$("${P[@]}" images -q | head -1)
[ -n "$PIMG" ] || die "podman did not load the busybox image"
PODMAN_RUN="${P[*]} run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 $PIMG true"
# Every command must work before it is timed.
for d in overlay vfs native-overlay; do
    "${R[@]}" --storage-driver "$d" run --rm busybox true || die "rwasm --storage-driver $d run failed"
done
$PODMAN_RUN || die "podman run failed: $PODMAN_RUN"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "(a1) prepare + release in one process, $ROUNDS rounds per image"
PREP_CMDS=()
: >"$WORK/a1.md"
for img in busybox "$BIG"; do
    PREP_CMDS+=("$WORK/bin/storage_prepare $WORK/data $img $ROUNDS")
    "$WORK/bin/storage_prepare" "$WORK/data" "$img" "$ROUNDS" >>"$WORK/a1.md"
    echo >>"$WORK/a1.md"
done
LOAD_A1=$(cut -d' ' -f1-3 /proc/loadavg)

say "(a2) run --rm IMAGE true per driver, $WARMUP + $ROUNDS interleaved rounds per image"
E2E_CMDS=()
: >"$WORK/a2.md"
for img in busybox "$BIG"; do
    args=()
    for d in overlay vfs native-overlay; do
        args+=("$d=${R[*]} --storage-driver $d run --rm $img true")
    done
    E2E_CMDS+=("$(printf "'%s' " "${args[@]}")")
    echo "$img:" >>"$WORK/a2.md"
    echo >>"$WORK/a2.md"
    python3 "$HERE/interleave.py" -n "$ROUNDS" -w "$WARMUP" "${args[@]}" >>"$WORK/a2.md"
    echo >>"$WORK/a2.md"
done
LOAD_A2=$(cut -d' ' -f1-3 /proc/loadavg)

say "(b) rwasm run --rm vs podman + runc run --rm, $WARMUP + $ROUNDS interleaved rounds"
B_ARGS=("podman + runc=$PODMAN_RUN" "rwasm=${R[*]} run --rm busybox true")
python3 "$HERE/interleave.py" -n "$ROUNDS" -w "$WARMUP" "${B_ARGS[@]}" >"$WORK/b.md"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

report() {
    echo "<!-- bench/storage.sh: begin (generated; edits here are overwritten) -->"
    echo "## Storage drivers and \`run --rm\` beside podman ([storage.sh](storage.sh), \`make bench-storage\`)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) vCPUs; load average (1, 5, 15 min) $LOAD_BEFORE before,"
    echo "$LOAD_A1 after (a1), $LOAD_A2 after (a2), $LOAD_AFTER after (b)."
    echo "$("$RW" --version) (HEAD $(git -C "$REPO" rev-parse --short HEAD)), $(podman --version), $("$RUNC" --version | head -1)."
    echo "Images in rwasm's store (\`rwasm images\`):"
    echo
    echo '```'
    echo "$IMAGES_TABLE"
    echo '```'
    echo
    echo "### (a1) Rootfs preparation only (in one process)"
    echo
    echo "\`storage_prepare\` ([runtime/examples/storage_prepare.rs](../runtime/examples/storage_prepare.rs)):"
    echo "*prepare* is \`storage::mount\`, what \`run\`/\`start\` do before the container exists (the"
    echo "driver's component loaded from the compiled cache, its \`prepare\`, the bind at the bundle's"
    echo "\`rootfs\`); *release* is \`storage::release\`, what \`rm\` does (unmounts, the driver's \`release\`,"
    echo "the bundle removed). Drivers round-robin, 1 warm-up round, then $ROUNDS rounds."
    echo
    cat "$WORK/a1.md"
    echo "### (a2) \`rwasm --storage-driver D run --rm IMAGE true\`, end to end"
    echo
    echo "[interleave.py](interleave.py) rounds ($WARMUP warm-up + $ROUNDS; each round runs every driver once;"
    echo "ratio to overlay; each time includes ~2–3 ms of Python's fork/exec)."
    echo
    cat "$WORK/a2.md"
    echo "### (b) \`run --rm busybox true\`: rwasm beside podman with runc"
    echo
    echo "Same image (rwasm's busybox, \`rwasm save\` → \`podman load\`), interleaved rounds ($WARMUP"
    echo "warm-up + $ROUNDS), ratio to podman + runc."
    echo
    cat "$WORK/b.md"
    echo
    echo "Reproduce: \`make bench-storage\` (= setup, build, the \`storage_prepare\` example, then"
    echo "\`ROUNDS=$ROUNDS bench/storage.sh\`). The commands, as run (\`$WORK\` is the script's"
    echo "temporary directory):"
    echo
    echo '```sh'
    for c in "${PREP_CMDS[@]}"; do echo "$c"; done
    for c in "${E2E_CMDS[@]}"; do echo "python3 bench/interleave.py -n $ROUNDS -w $WARMUP $c"; done
    echo "python3 bench/interleave.py -n $ROUNDS -w $WARMUP $(printf "'%s' " "${B_ARGS[@]}")"
    echo '```'
    echo "<!-- bench/storage.sh: end -->"
}
report >"$WORK/block.md"
cat "$WORK/block.md"
if grep -q '^<!-- bench/storage.sh: begin' "$RESULTS" 2>/dev/null; then
    awk -v block="$WORK/block.md" '
        /^<!-- bench\/storage.sh: begin/ { while ((getline line < block) > 0) print line; skip = 1; next }
        /^<!-- bench\/storage.sh: end/ { skip = 0; next }
        !skip { print }' "$RESULTS" >"$WORK/results.md"
else
    { cat "$RESULTS" 2>/dev/null || true; echo; cat "$WORK/block.md"; } >"$WORK/results.md"
fi
cp "$WORK/results.md" "$RESULTS"
say "wrote $RESULTS"
