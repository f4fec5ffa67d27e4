//! The privileged native core: namespaces, mounts, cgroups, process launch.
//!
//! Nothing here knows about plugins, images or the CLI: functions take plain values (an
//! `oci_spec::runtime::Spec`, paths, pids).

pub mod cgroup;
pub mod console;
pub mod credentials;
pub mod devices;
pub mod exe;
pub mod exec_hook;
pub mod exec_in;
pub mod foreign_mount;
pub mod init;
pub mod launch;
pub mod layer_copy;
pub mod mount_opts;
pub mod namespaces;
pub mod net;
pub mod overlay;
pub mod path_in_root;
pub mod proc;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod sync;
pub mod tty;
