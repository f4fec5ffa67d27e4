#!/bin/sh
# One OCI lifecycle, the same way for every runtime (bench/run.sh times it with hyperfine):
#   create --bundle BUNDLE ID && start ID && (state ID until it says "stopped") && delete ID
# Usage: bench/lifecycle.sh BUNDLE ID RUNTIME [GLOBAL-OPTION...]
# e.g.   bench/lifecycle.sh /tmp/b bench-crun crun --root /tmp/roots/crun
# `state` is polled without sleeping: each poll is one run of the runtime's own `state`.
# Its whole output is read before matching: `state | grep -q` closes the pipe early, and
# rwasm (as of this writing) panics on EPIPE, slowly when RUST_BACKTRACE is set.
set -eu
bundle=$1 id=$2
shift 2
"$@" create --bundle "$bundle" "$id"
"$@" start "$id"
polls=0
while :; do
    state=$("$@" state "$id")
    case $state in *'"status": "stopped"'* | *'"status":"stopped"'*) break ;; esac
    polls=$((polls + 1))
    if [ "$polls" -ge 5000 ]; then
        echo "lifecycle.sh: $1: container $id not stopped after $polls state calls" >&2
        exit 1
    fi
done
"$@" delete "$id"
