#!/usr/bin/env python3
"""How long moving a process into fresh v1 cgroups takes: the first `cgroup.procs` write
of a batch, and the rest of the batch, as every runtime does it on this hybrid host.

    bench/cgroup-procs-write.py [ROUNDS] [PAUSE_SECONDS]

Each round starts `sleep 10`, creates /sys/fs/cgroup/<controller>/rwasm-bench-procs in
every v1 hierarchy, writes the pid to each `cgroup.procs` (timing each write), then kills
the sleeper and removes the directories, and waits PAUSE_SECONDS. Without `favordynmods`
the first write of a batch waits for an RCU grace period (cgroup_threadgroup_rwsem's
rcu_sync) unless another migration happened in the last few tens of milliseconds.
Needs root.
"""

import os
import statistics
import subprocess
import sys
import time

CGROUP = "/sys/fs/cgroup"
NAME = "rwasm-bench-procs"


def v1_hierarchies() -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup" and fields[4].startswith(CGROUP + "/"):
                out.append(fields[4])
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    hierarchies = v1_hierarchies()
    if not hierarchies:
        sys.exit("cgroup-procs-write.py: no cgroup v1 hierarchy under /sys/fs/cgroup")
    first, rest = [], []
    for _ in range(rounds):
        sleeper = subprocess.Popen(["sleep", "10"])
        made = []
        try:
            times = []
            for h in hierarchies:
                d = os.path.join(h, NAME)
                os.makedirs(d, exist_ok=True)
                made.append(d)
                if os.path.exists(os.path.join(h, "cpuset.cpus")):
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        with open(os.path.join(h, f)) as src, open(os.path.join(d, f), "w") as dst:
                            dst.write(src.read())
                start = time.perf_counter()
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(sleeper.pid))
                times.append((time.perf_counter() - start) * 1000)
            first.append(times[0])
            rest.append(sum(times[1:]))
        finally:
            sleeper.kill()
            sleeper.wait()
            for d in reversed(made):
                os.rmdir(d)
        time.sleep(pause)
    print(f"{len(hierarchies)} hierarchies, {rounds} rounds, {pause} s apart")
    print(f"first write: median {statistics.median(first):.2f} ms, min {min(first):.2f}, max {max(first):.2f}")
    print(f"the other {len(hierarchies) - 1} writes together: median {statistics.median(rest):.2f} ms")


if __name__ == "__main__":
    main()
