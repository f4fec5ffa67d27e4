#!/bin/sh
# One OCI lifecycle, the same way for every runtime (bench/run.sh times it with hyperfine):
#   create --bundle BUNDLE ID && start ID && (state ID until it says "stopped") && delete ID
# Usage: bench/lifecycle.sh BUNDLE ID RUNTIME [GLOBAL-OPTION...]
# e.g.   bench/lifecycle.sh /tmp/b bench-crun crun --root /tmp/roots/crun
# `state` is polled without sleeping: each poll is one run of the runtime's own `state`.
set -eu
bundle=$1 id=$2
shift 2
"$@" create --bundle "$bundle" "$id"
"$@" start "$id"
polls=0
until "$@" state "$id" | grep -q '"status": *"stopped"'; do
    polls=$((polls + 1))
    if [ "$polls" -ge 5000 ]; then
        echo "lifecycle.sh: $1: container $id not stopped after $polls state calls" >&2
        exit 1
    fi
done
"$@" delete "$id"
