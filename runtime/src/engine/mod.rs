//! Containers and their state: the OCI lifecycle on top of `linux` and `plugin`.

pub mod attach;
pub mod container;
pub mod copy_up;
pub mod cp;
pub mod cp_tar;
pub mod disk_usage;
pub mod docker;
pub mod hooks;
pub mod host_config;
pub mod image;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod networks;
pub mod peers;
pub mod ports;
pub mod record;
pub mod run;
pub mod seccomp_profile;
pub mod state;
pub mod storage;
pub mod update;
pub mod validate;
pub mod volume;
pub mod volume_mounts;
