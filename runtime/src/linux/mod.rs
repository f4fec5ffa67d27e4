//! The privileged native core: namespaces, mounts, cgroups, process launch.

pub mod cgroup;
