#!/usr/bin/env bash
# Many detached containers, rwasm beside podman (with runc), in one run (issue 4's benchmark):
#
#   bench/containers.sh     (or `make bench-containers`, which first runs setup and build)
#
# For i in 1..N (N=200), alternately: `rwasm run -d busybox sleep 3600` and
# `podman --runtime runc run -d --network none busybox sleep 3600` (the same busybox image,
# saved by rwasm and loaded into a podman store of the script's own), each timed alone, so
# load from elsewhere hits both alike. Podman gets `--ulimit nofile=1024:1024 --ulimit
# nproc=4096:4096`: as root it raises both to the maximum by default, which a root without
# CAP_SYS_RESOURCE (this sandbox) is refused; rwasm's containers inherit the caller's. Then `ps -a` of all N, alternately, 5 times each;
# then `rm -f` of all N in one command each (podman with `-t 0`: kill at once, as rwasm and
# Docker do, not its 10 s stop timeout). Prints medians, totals and rwasm/podman ratios
# as a Markdown table. Environment: N (200), RWASM_BIN.
set -euo pipefail

die() { echo "bench/containers.sh: $*" >&2; exit 1; }

N=${N:-200}
TARGET=${CARGO_TARGET_DIR:-/var/tmp/rwasm-target}
RW=${RWASM_BIN:-$TARGET/release/rwasm}
[ "$(id -u)" = 0 ] || die "must run as root (containers, cgroups, mounts)"
[ -x "$RW" ] || die "no rwasm at $RW (make build)"
for tool in podman runc python3; do command -v "$tool" >/dev/null || die "$tool not found (make setup)"; done

WORK=$(mktemp -d /var/tmp/rwasm-bench-containers.XXXXXX)
R=("$RW" --root "$WORK/rwasm-state" --data-root "$WORK/rwasm-data")
P=(podman --root "$WORK/podman/storage" --runroot "$WORK/podman/run" --runtime runc
   --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
cleanup() {
    "${R[@]}" ps -aq 2>/dev/null | xargs -r "${R[@]}" rm -f >/dev/null 2>&1 || true
    "${P[@]}" rm -fa >/dev/null 2>&1 || true
    "${P[@]}" system reset -f >/dev/null 2>&1 || true
    umount -R "$WORK/podman" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"${R[@]}" setup >/dev/null
"${R[@]}" save -o "$WORK/busybox.tar" busybox
"${P[@]}" load -q -i "$WORK/busybox.tar" >/dev/null
IMG=$("${P[@]}" images -q | head -1)
[ -n "$IMG" ] || die "podman did not load the busybox image"

ms() { python3 -c 'import sys; print(f"{(int(sys.argv[2])-int(sys.argv[1]))/1e6:.2f}")' "$1" "$2"; }
timed() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>>"$WORK/errors" || die "failed: $* ($(tail -3 "$WORK/errors"))"; t1=$(date +%s%N); ms "$t0" "$t1"; }

echo "bench/containers.sh: $N containers each, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$WORK/run.rwasm"; : > "$WORK/run.podman"
for i in $(seq "$N"); do
    timed "${R[@]}" run -d --name "c$i" busybox sleep 3600 >> "$WORK/run.rwasm"
    timed "${P[@]}" run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --name "c$i" "$IMG" sleep 3600 >> "$WORK/run.podman"
done
running=$("${R[@]}" ps -q | wc -l); [ "$running" = "$N" ] || die "rwasm ps shows $running running, not $N"
running=$("${P[@]}" ps -q | wc -l); [ "$running" = "$N" ] || die "podman ps shows $running running, not $N"
: > "$WORK/ps.rwasm"; : > "$WORK/ps.podman"
for _ in 1 2 3 4 5; do
    timed "${R[@]}" ps -a >> "$WORK/ps.rwasm"
    timed "${P[@]}" ps -a >> "$WORK/ps.podman"
done
mapfile -t ids < <("${R[@]}" ps -aq)
timed "${R[@]}" rm -f "${ids[@]}" > "$WORK/rm.rwasm"
mapfile -t ids < <("${P[@]}" ps -aq)
timed "${P[@]}" rm -f -t 0 "${ids[@]}" > "$WORK/rm.podman"   # -t 0: SIGKILL at once, as Docker's rm -f

python3 - "$WORK" "$N" <<'PY'
import statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
def vals(name): return [float(x) for x in open(f"{work}/{name}").read().split()]
rows = [("`run -d` one container, median", "run", statistics.median),
        ("`run -d` all containers, total", "run", sum),
        ("`ps -a` of all, median of 5", "ps", statistics.median),
        ("`rm -f` of all, one command", "rm", sum)]
print(f"| ({n} containers) | rwasm | podman + runc | rwasm/podman |")
print("|---|---:|---:|---:|")
for label, f, agg in rows:
    a, b = agg(vals(f"{f}.rwasm")), agg(vals(f"{f}.podman"))
    print(f"| {label} | {a:.1f} ms | {b:.1f} ms | {a/b:.2f}× |")
PY
echo "bench/containers.sh: load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
