# Sourced by the benchmarks that run crun (bench/run.sh, bench/plugins.sh); needs say, die.
#
# crun 1.8 refuses hybrid cgroups while cgroup2 holds a controller (../shared/notes/host.md):
# bind hugetlb, cgroup2's only controller here, to a v1 hierarchy once. Every runtime of
# the run then sees the same layout (one more v1 hierarchy).
crun_hybrid_step() {
    [ -d /sys/fs/cgroup/unified ] && mountpoint -q /sys/fs/cgroup/unified || return 0
    if mountpoint -q /sys/fs/cgroup/hugetlb; then
        say "cgroups: hugetlb already has a v1 hierarchy at /sys/fs/cgroup/hugetlb (crun's hybrid-mode step: nothing to do)"
    else
        mkdir -p /sys/fs/cgroup/hugetlb
        mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb ||
            die "cannot mount the hugetlb v1 hierarchy that crun needs on this hybrid layout"
        say "cgroups: mounted a v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb (crun's hybrid-mode step; cgroup2 controllers now: '$(cat /sys/fs/cgroup/unified/cgroup.controllers)')"
    fi
}
