//! The one error type of the cgroup module.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while detecting, creating, configuring or removing a
/// container's cgroup. Every variant that touches the kernel names the file or directory
/// (and the pid, controller or OCI spec field where there is one).
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup or proc file could not be read.
    #[error("failed to read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A cgroup file could not be written (outside of applying a spec field).
    #[error("failed to write {value:?} to {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A cgroup, mount table or proc file has content we cannot parse.
    #[error("cannot parse {}: {reason} (in {content:?})", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending line or value.
        content: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The mount table lists no cgroup (v1) or cgroup2 filesystem under the cgroup root.
    #[error("no cgroup filesystem is mounted under {} (according to {})", .root.display(), .mountinfo.display())]
    NoCgroupMounts {
        /// The cgroup root that was searched (e.g. /sys/fs/cgroup).
        root: PathBuf,
        /// The mount table that was read.
        mountinfo: PathBuf,
    },

    /// The calling process's own cgroup for a hierarchy is not listed in its proc cgroup file.
    #[error("{} does not list this process's cgroup for the {controller} hierarchy", .proc_cgroup.display())]
    OwnCgroupMissing {
        /// The hierarchy's controllers, comma-separated (v2: empty).
        controller: String,
        /// The proc cgroup file that was read (normally /proc/self/cgroup).
        proc_cgroup: PathBuf,
    },

    /// `linux.cgroupsPath` cannot be used.
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidCgroupsPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// The container id cannot be used as a cgroup directory name.
    #[error("container id {id:?} cannot name a cgroup directory: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A `linux.resources` value is out of range or malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidResource {
        /// The spec field, e.g. `linux.resources.cpu.period`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is allowed.
        reason: String,
    },

    /// An entry of `linux.resources.devices` (the device allowlist) is malformed.
    #[error("invalid linux.resources.devices[{index}] {rule}: {reason}")]
    InvalidDeviceRule {
        /// The entry's position in the list, from 0.
        index: usize,
        /// The entry as JSON, e.g. `{"allow":true,"type":"a","major":1,"access":"rwm"}`.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A `linux.resources` field needs a controller this host does not offer to the container.
    #[error(
        "{field} needs the {controller} cgroup controller, which is not available here: {reason}"
    )]
    ControllerUnavailable {
        /// The spec field.
        field: &'static str,
        /// The controller, e.g. `blkio`.
        controller: String,
        /// Why (not mounted, not enabled in the parent's cgroup.subtree_control, ...).
        reason: String,
    },

    /// A `linux.resources` field needs a cgroup file this host lacks (e.g. `blkio.weight`
    /// without the BFQ/CFQ I/O scheduler).
    #[error("{field} cannot be applied: this host lacks {} (the kernel does not offer this cgroup file)", .path.display())]
    FileUnavailable {
        /// The spec field.
        field: &'static str,
        /// The missing file.
        path: PathBuf,
    },

    /// The kernel refused a value written for a `linux.resources` field.
    #[error("failed to apply {field}: writing {value:?} to {}", .path.display())]
    Apply {
        /// The spec field.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The I/O error (EINVAL: out of range for this kernel or this parent cgroup).
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be created.
    #[error("failed to create cgroup directory {}", .path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A process could not be moved into a cgroup.
    #[error("failed to add pid {pid} to {}", .path.display())]
    AddTask {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The I/O error (ESRCH: no such process).
        #[source]
        source: io::Error,
    },

    /// A process left in a cgroup could not be killed.
    #[error("failed to kill pid {pid} in {}", .path.display())]
    Kill {
        /// The process.
        pid: i32,
        /// The cgroup directory.
        path: PathBuf,
        /// The errno of kill(2).
        #[source]
        source: nix::errno::Errno,
    },

    /// Processes were still in the cgroup after killing them and waiting.
    #[error("cgroup {} still holds pids {pids:?} after {waited_ms} ms", .path.display())]
    NotEmpty {
        /// The cgroup directory.
        path: PathBuf,
        /// The processes still listed in `cgroup.procs`.
        pids: Vec<i32>,
        /// How long destroy waited.
        waited_ms: u128,
    },

    /// A cgroup directory could not be removed.
    #[error("failed to remove cgroup directory {}", .path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The I/O error (EBUSY: still populated).
        #[source]
        source: io::Error,
    },
}
