# Sourced by bench/pull.sh and bench/storage.sh: the multi-layer test image, built with
# umoci (gzip layers, as umoci repack writes them):
#   1. busybox-static with its applet links           (~2 MB)
#   2. 32 MiB of random bytes in one file              (incompressible)
#   3. 32 MiB of base64 text in 8 files                (compresses to ~75 %)
#   4. 2000 files of 8 KiB of base64 text in 20 dirs   (many small files: unpack cost)
# so ~82 MiB unpacked, ~81 MB gzipped, Cmd sh, Env PATH=/bin.
#
#   build_big_image LAYOUT SCRATCH   # makes the OCI layout LAYOUT holding tag v1
# (SCRATCH: an empty directory path for umoci's unpacked bundles; removed again)

big_fill_1() {
    mkdir -p "$1/bin" "$1/etc" "$1/tmp"
    cp /bin/busybox "$1/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$1/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
}
big_fill_2() { mkdir -p "$1/data"; head -c $((32 << 20)) /dev/urandom >"$1/data/random.bin"; }
big_fill_3() {
    mkdir -p "$1/text"
    for i in $(seq 8); do
        head -c $((3 << 20)) /dev/urandom | base64 -w 76 >"$1/text/t$i.txt"
        truncate -s $((4 << 20)) "$1/text/t$i.txt"
    done
}
big_fill_4() {
    python3 - "$1" <<'PY'
import base64, os, sys
root = os.path.join(sys.argv[1], "small")
for d in range(20):
    os.makedirs(os.path.join(root, f"d{d:02}"))
    for f in range(100):
        with open(os.path.join(root, f"d{d:02}", f"f{f:03}.txt"), "wb") as out:
            out.write(base64.b64encode(os.urandom(6144))[:8192])
PY
}

build_big_image() {
    local layout=$1 scratch=$2 n
    umoci init --layout "$layout"
    umoci new --image "$layout:v1"
    for n in 1 2 3 4; do
        umoci unpack --image "$layout:v1" "$scratch"
        "big_fill_$n" "$scratch/rootfs"
        umoci repack --image "$layout:v1" "$scratch"
        rm -rf "$scratch"
    done
    umoci config --image "$layout:v1" --config.cmd sh --config.env PATH=/bin
}
