#!/usr/bin/env bash
# Network setup + teardown per container, in one hyperfine run (issue 6's benchmark):
#
#   bench/network.sh        (or `make bench-network`, which first runs setup and build)
#
#   (a) rwasm run --rm --network none busybox true     (no driver: the baseline)
#   (b) rwasm run --rm --network NET busybox true      (the net-bridge WASM driver: bridge,
#       lease, veth, addresses, route, masquerade; teardown of all of it)
#   (c) the reference CNI bridge plugin (Debian's containernetworking-plugins, host-local
#       IPAM, ipMasq) invoked directly: ADD then DEL on a fresh network namespace
#       (`ip netns add`/`del` included, which (b) gets from its clone)
# (b) - (a) is what rwasm's driver costs a container; compare it with (c). Each uses a
# bridge and /24 of its own. Environment: RUNS (30), WARMUP (3), RWASM_BIN, RWASM_PLUGIN_DIR.
set -euo pipefail

die() { echo "bench/network.sh: $*" >&2; exit 1; }

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
TARGET=${CARGO_TARGET_DIR:-/var/tmp/rwasm-target}
RW=${RWASM_BIN:-$TARGET/release/rwasm}
PLUGINS=${RWASM_PLUGIN_DIR:-$TARGET/wasm32-wasip2/plugin}
CNI=/usr/lib/cni

[ "$(id -u)" = 0 ] || die "must run as root (netns, veths, nftables)"
for tool in hyperfine ip nft; do command -v "$tool" >/dev/null || die "$tool not found (make setup)"; done
[ -x "$CNI/bridge" ] || die "no $CNI/bridge: apt-get install containernetworking-plugins (make setup)"
[ -x "$RW" ] || die "no rwasm at $RW (make build)"
[ -f "$PLUGINS/net_bridge.wasm" ] || die "no net_bridge.wasm in $PLUGINS (make plugins)"

WORK=$(mktemp -d /tmp/rwasm-bench-net.XXXXXX)
cleanup() {
    ip link del rwbench0 2>/dev/null || true
    ip link del cnibench0 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/state" "$WORK/cni-ipam"
cat > "$WORK/net.toml" <<TOML
[[plugin]]
name = "benchnet"
path = "$PLUGINS/net_bridge.wasm"
kind = "network-driver"
timeout-ms = 10000
[plugin.config]
bridge = "rwbench0"
subnet = "10.248.1.0/24"
link-prefix = "rvbn"
[plugin.grants]
dirs = { "$WORK/state" = "/state:rw" }
[plugin.grants.network]
bridges = ["rwbench0"]
subnets = ["10.248.1.0/24"]
link-prefix = "rvbn"
nat = true
TOML
cat > "$WORK/cni.json" <<JSON
{"cniVersion": "1.0.0", "name": "cnibench", "type": "bridge", "bridge": "cnibench0",
 "isGateway": true, "ipMasq": true,
 "ipam": {"type": "host-local", "subnet": "10.248.2.0/24", "dataDir": "$WORK/cni-ipam"}}
JSON
cat > "$WORK/cni.sh" <<SH
#!/bin/sh
set -e
ns=cnib\$\$
ip netns add \$ns
export CNI_CONTAINERID=\$ns CNI_NETNS=/var/run/netns/\$ns CNI_IFNAME=eth0 CNI_PATH=$CNI
CNI_COMMAND=ADD $CNI/bridge < $WORK/cni.json > /dev/null
CNI_COMMAND=DEL $CNI/bridge < $WORK/cni.json > /dev/null
ip netns del \$ns
SH
chmod +x "$WORK/cni.sh"
G=(--root "$WORK/root" --data-root "$WORK/data")
"$RW" "${G[@]}" setup >/dev/null
"$RW" "${G[@]}" --plugins "$WORK/net.toml" run --rm --network benchnet busybox true \
    || die "the bridge run does not work"
"$WORK/cni.sh" || die "the CNI bridge plugin does not work"

hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/h.json" \
    -n "(a) rwasm --network none" "$RW ${G[*]} run --rm --network none busybox true" \
    -n "(b) rwasm --network (net-bridge)" "$RW ${G[*]} --plugins $WORK/net.toml run --rm --network benchnet busybox true" \
    -n "(c) CNI bridge ADD+DEL (+netns)" "$WORK/cni.sh"
if command -v jq >/dev/null; then
    jq -r '.results[] | "\(.command): median \(.median * 1000 | floor) ms"' "$WORK/h.json"
    a=$(jq '.results[0].median' "$WORK/h.json"); b=$(jq '.results[1].median' "$WORK/h.json")
    c=$(jq '.results[2].median' "$WORK/h.json")
    echo "network setup+teardown by rwasm's driver, (b)-(a): $(echo "($b - $a) * 1000" | bc -l | cut -c1-6) ms; CNI bridge (c): $(echo "$c * 1000" | bc -l | cut -c1-6) ms"
fi
