# One entry point for people and CI (see README.md). Every target works on a fresh
# Debian 12 machine as root.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Outside the clone, so CI reuses a session's build and a clean checkout stays clean.
export CARGO_TARGET_DIR ?= /var/tmp/rwasm-target
RWASM := $(CARGO_TARGET_DIR)/release/rwasm
PLUGIN_OUT := $(CARGO_TARGET_DIR)/wasm32-wasip2/plugin
PLUGINS := env-inject policy audit misbehave scripted legacy-v0-1 wrong-major net-sketch socket-user \
	net-bridge net-hostile net-cni storage-overlay storage-vfs storage-hostile volume-local
export RWASM_PLUGIN_DIR := $(PLUGIN_OUT)
export RWASM_BIN := $(RWASM)
APT_PACKAGES := busybox-static runc crun hyperfine iproute2 jq
# docker_tty: `run -it` driven in a tmux window, as the issue checks it.
APT_PACKAGES += tmux
# The C guest (examples/c-plugin): clang, wasm-ld and wasi-libc from Debian.
APT_PACKAGES += clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
# linux.seccomp: the libseccomp crate links the system library (headers and pkg-config file).
APT_PACKAGES += libseccomp-dev pkg-config
# Container networks: nft (the nftables crate drives it) for NAT rules in `inet rwasm`;
# the reference CNI plugins for bench/network.sh and the net-cni driver; bc for its sums.
APT_PACKAGES += nftables containernetworking-plugins bc
# `rwasm pull`: oci-client's TLS through the system OpenSSL (native-tls).
APT_PACKAGES += libssl-dev
# The pull tests and bench-pull: a real registry on loopback, skopeo and umoci to fill it
# and to measure against, htpasswd for the registry's basic auth.
APT_PACKAGES += docker-registry skopeo umoci apache2-utils
# bench-containers: podman (with Debian's runc) beside rwasm for 200 detached containers.
APT_PACKAGES += podman

.PHONY: setup build plugins demo test lint man bench bench-plugins bench-network bench-pull bench-containers bench-storage clean

## setup: install what builds and tests need (apt packages, the wasm32-wasip2 target)
setup:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

## build: the runtime (release) and the plugins (wasm32-wasip2 components)
build: plugins
	cargo build --release -p rwasm

plugins:
	cargo build --target wasm32-wasip2 --profile plugin $(addprefix -p ,$(PLUGINS))
	mkdir -p examples/wasm
	cp $(PLUGIN_OUT)/{env_inject,policy,audit,misbehave,scripted}.wasm examples/wasm/
# The guests of other crates and languages: the copyable template and the C plugin.
	cargo build --manifest-path examples/plugin-template/Cargo.toml --target wasm32-wasip2 --release
	cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/plugin_template.wasm $(PLUGIN_OUT)/
	$(MAKE) -C examples/c-plugin OUT=$(PLUGIN_OUT)
	cp $(PLUGIN_OUT)/{plugin_template,c_plugin}.wasm examples/wasm/

## demo: set everything up, then run a container from the built-in image with the example plugins
demo: setup build
	$(RWASM) setup
	mkdir -p /var/log/rwasm-audit
	$(RWASM) --plugins examples/plugins.toml run --rm busybox sh -c 'echo "$$GREETING (hostname $$(hostname), pid $$$$)"'
	@echo "audit trail: $$(wc -l < /var/log/rwasm-audit/audit.jsonl) lines in /var/log/rwasm-audit/audit.jsonl"

## test: every test tier (unit, plugin host, real containers as root)
test: setup build
	$(RWASM) setup
	cargo test --release --manifest-path examples/plugin-template/Cargo.toml
	cargo nextest run --release --workspace --no-fail-fast

lint:
	cargo fmt --all -- --check
	cargo fmt --manifest-path examples/plugin-template/Cargo.toml -- --check
	cargo clippy --release -p rwasm --all-targets -- -D warnings

## man: one man page per command, generated from the clap definitions, into $(CARGO_TARGET_DIR)/man
man: build
	$(RWASM) generate-man $(CARGO_TARGET_DIR)/man

## bench: rwasm beside runc and crun, one hyperfine run, ratios to crun
bench: setup build
	bench/run.sh

## bench-plugins: what hook plugins cost a run, (a) none (b) 3x3 plugins (c) 9 OCI hooks, plus one call
bench-plugins: setup build
	cargo build --release -p rwasm --example plugin_call
	bench/plugins.sh

## bench-containers: 200 x `run -d`, `ps -a`, `rm -f` of all, rwasm vs podman with runc
bench-containers: setup build
	bench/containers.sh

## bench-network: network setup + teardown per container, rwasm's bridge driver vs CNI's bridge
bench-network: setup build
	bench/network.sh

## bench-pull: pull + unpack of a ~81 MB 4-layer image from a loopback registry, rwasm vs skopeo + umoci
bench-pull: setup build
	bench/pull.sh

## bench-storage: rootfs preparation by the overlay, vfs and native-overlay drivers, and
## `run --rm busybox true` beside podman with runc
bench-storage: setup build
	cargo build --release -p rwasm --example storage_prepare
	bench/storage.sh

clean:
	cargo clean
	rm -rf examples/wasm
