//! Building verdicts and adjustments: one builder method per field of the WIT `adjustment`
//! record, and constructors for the records they take ([`Mount`], [`Device`],
//! [`Resources`], [`Rlimit`], [`OciHook`]).
//!
//! ```
//! use rwasm_plugin_sdk::prelude::*;
//!
//! let adjustment = Adjustment::default()
//!     .env("GREETING", "hello")
//!     .remove_env("DEBUG")
//!     .annotation("org.example/owner", "ops")
//!     .device(Device::char("/dev/fuse", 10, 229).mode(0o666).permissions("rw"))
//!     .resources(Resources::default().memory_limit(256 << 20).pids_limit(128))
//!     .rlimit("RLIMIT_NOFILE", 1024, 4096)
//!     .hook(OciHook::new(OciHookStage::Poststop, "/usr/bin/logger").arg("stopped"));
//! assert!(!adjustment.is_empty());
//! ```
//!
//! Nothing here is checked: the host validates every entry when the plugin returns it
//! (see the crate documentation, "What the host checks").

use crate::{
    Adjustment, BlockIo, Cpu, Device, HugepageLimit, Memory, Mount, OciHook, OciHookStage,
    Resources, Rlimit, ThrottleDevice, Verdict,
};

impl Verdict {
    /// Go on without changing anything.
    pub fn allow() -> Self {
        Verdict::Allow(Adjustment::default())
    }

    /// Go on, applying `adjustment` (which the host accepts only at `pre-create`, and at
    /// `pre-update` only its `resources`).
    pub fn allow_with(adjustment: Adjustment) -> Self {
        Verdict::Allow(adjustment)
    }

    /// Refuse the container; `reason` is shown to the user, so say what to change.
    pub fn deny(reason: impl Into<String>) -> Self {
        Verdict::Deny(reason.into())
    }
}

impl From<Adjustment> for Verdict {
    fn from(adjustment: Adjustment) -> Self {
        Verdict::Allow(adjustment)
    }
}

/// An empty adjustment, to build on:
/// `Adjustment::default().env("A", "1").annotation("k", "v").mount(Mount::bind(..))`.
impl Default for Adjustment {
    fn default() -> Self {
        Adjustment {
            env: Vec::new(),
            remove_env: Vec::new(),
            annotations: Vec::new(),
            remove_annotations: Vec::new(),
            mounts: Vec::new(),
            remove_mounts: Vec::new(),
            devices: Vec::new(),
            cdi_devices: Vec::new(),
            resources: None,
            rlimits: Vec::new(),
            cgroups_path: None,
            hooks: Vec::new(),
            args: None,
        }
    }
}

impl Adjustment {
    /// Adds or replaces the `process.env` variable `name` (without `=`).
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Removes the `process.env` variable `name`, if the spec has it.
    #[must_use]
    pub fn remove_env(mut self, name: impl Into<String>) -> Self {
        self.remove_env.push(name.into());
        self
    }

    /// Adds or replaces the annotation `key`.
    #[must_use]
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }

    /// Removes the annotation `key`, if the spec has it.
    #[must_use]
    pub fn remove_annotation(mut self, key: impl Into<String>) -> Self {
        self.remove_annotations.push(key.into());
        self
    }

    /// Appends a mount; see [`Mount::bind`].
    #[must_use]
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Removes the spec's mount at `destination` (an absolute path in the container).
    #[must_use]
    pub fn remove_mount(mut self, destination: impl Into<String>) -> Self {
        self.remove_mounts.push(destination.into());
        self
    }

    /// Adds a device node and its device cgroup rule; see [`Device::char`].
    #[must_use]
    pub fn device(mut self, device: Device) -> Self {
        self.devices.push(device);
        self
    }

    /// Injects a device from the host's CDI spec files by its fully qualified name,
    /// `vendor.com/class=name` (e.g. `nvidia.com/gpu=0`).
    #[must_use]
    pub fn cdi_device(mut self, name: impl Into<String>) -> Self {
        self.cdi_devices.push(name.into());
        self
    }

    /// Sets (or tightens) `linux.resources`: only the fields set in `resources` change.
    /// Calling it again replaces the earlier value.
    #[must_use]
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Sets the `process.rlimits` entry `kind` (`RLIMIT_NOFILE`, or `nofile` for short)
    /// to `soft` and `hard`; see [`Rlimit::new`].
    #[must_use]
    pub fn rlimit(self, kind: &str, soft: u64, hard: u64) -> Self {
        self.rlimit_entry(Rlimit::new(kind, soft, hard))
    }

    /// Sets one `process.rlimits` entry.
    #[must_use]
    pub fn rlimit_entry(mut self, rlimit: Rlimit) -> Self {
        self.rlimits.push(rlimit);
        self
    }

    /// Sets `linux.cgroupsPath`.
    #[must_use]
    pub fn cgroups_path(mut self, path: impl Into<String>) -> Self {
        self.cgroups_path = Some(path.into());
        self
    }

    /// Appends an OCI exec hook; see [`OciHook::new`].
    #[must_use]
    pub fn hook(mut self, hook: OciHook) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Replaces `process.args` (the whole argv, `args[0]` included). The host refuses it
    /// unless the manifest grants the plugin `args`.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Whether the adjustment changes nothing.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.remove_env.is_empty()
            && self.annotations.is_empty()
            && self.remove_annotations.is_empty()
            && self.mounts.is_empty()
            && self.remove_mounts.is_empty()
            && self.devices.is_empty()
            && self.cdi_devices.is_empty()
            && self.resources.is_none()
            && self.rlimits.is_empty()
            && self.cgroups_path.is_none()
            && self.hooks.is_empty()
            && self.args.is_none()
    }
}

impl Mount {
    /// A recursive bind mount (type `bind`, options `["rbind"]`) of the host path `source`
    /// at `destination` in the container; both absolute.
    ///
    /// rwasm accepts it only if `source` lies inside a directory the manifest grants the
    /// plugin (`[plugin.grants] dirs`); a read-only grant needs [`Mount::read_only`].
    pub fn bind(source: impl Into<String>, destination: impl Into<String>) -> Self {
        Mount {
            destination: destination.into(),
            source: source.into(),
            type_: "bind".to_owned(),
            options: vec!["rbind".to_owned()],
        }
    }

    /// Adds an fstab-style option such as `nosuid`.
    #[must_use]
    pub fn option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// Makes the mount read-only (option `ro`).
    #[must_use]
    pub fn read_only(self) -> Self {
        self.option("ro")
    }
}

impl Device {
    fn node(path: impl Into<String>, kind: &str, major: i64, minor: i64) -> Self {
        Device {
            path: path.into(),
            type_: kind.to_owned(),
            major,
            minor,
            file_mode: None,
            uid: None,
            gid: None,
            permissions: String::new(),
        }
    }

    /// A character device `path` (under `/dev` in the container) with the kernel's
    /// `major`:`minor` numbers, e.g. `Device::char("/dev/fuse", 10, 229)`.
    ///
    /// Defaults: the runtime's file mode, owner root, cgroup access `rwm`.
    pub fn char(path: impl Into<String>, major: i64, minor: i64) -> Self {
        Device::node(path, "c", major, minor)
    }

    /// An unbuffered character device (type `u`).
    pub fn unbuffered(path: impl Into<String>, major: i64, minor: i64) -> Self {
        Device::node(path, "u", major, minor)
    }

    /// A block device (type `b`), e.g. `Device::block("/dev/loop7", 7, 7)`.
    pub fn block(path: impl Into<String>, major: i64, minor: i64) -> Self {
        Device::node(path, "b", major, minor)
    }

    /// A FIFO (type `p`; major and minor 0).
    pub fn fifo(path: impl Into<String>) -> Self {
        Device::node(path, "p", 0, 0)
    }

    /// The node's permission bits, e.g. `0o666`.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.file_mode = Some(mode);
        self
    }

    /// The node's owner.
    #[must_use]
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = Some(uid);
        self.gid = Some(gid);
        self
    }

    /// The device cgroup access the container gets: a combination of `r` (read), `w`
    /// (write) and `m` (mknod); `rwm` if never set.
    #[must_use]
    pub fn permissions(mut self, access: impl Into<String>) -> Self {
        self.permissions = access.into();
        self
    }
}

/// No memory setting: every field `None`.
impl Default for Memory {
    fn default() -> Self {
        Memory {
            limit: None,
            reservation: None,
            swap: None,
        }
    }
}

/// No CPU setting: every field `None`.
impl Default for Cpu {
    fn default() -> Self {
        Cpu {
            shares: None,
            quota: None,
            period: None,
            cpus: None,
            mems: None,
        }
    }
}

/// No block I/O setting: no weight, no throttles.
impl Default for BlockIo {
    fn default() -> Self {
        BlockIo {
            weight: None,
            throttle_read_bps: Vec::new(),
            throttle_write_bps: Vec::new(),
            throttle_read_iops: Vec::new(),
            throttle_write_iops: Vec::new(),
        }
    }
}

/// Changes nothing: build on it with the setters,
/// `Resources::default().memory_limit(256 << 20).cpu_quota(50_000, 100_000)`.
impl Default for Resources {
    fn default() -> Self {
        Resources {
            memory: None,
            cpu: None,
            pids_limit: None,
            block_io: None,
            hugepage_limits: Vec::new(),
        }
    }
}

impl Resources {
    fn memory_mut(&mut self) -> &mut Memory {
        self.memory.get_or_insert_with(Memory::default)
    }

    fn cpu_mut(&mut self) -> &mut Cpu {
        self.cpu.get_or_insert_with(Cpu::default)
    }

    fn block_io_mut(&mut self) -> &mut BlockIo {
        self.block_io.get_or_insert_with(BlockIo::default)
    }

    /// `memory.limit`, in bytes (`-1` for unlimited).
    #[must_use]
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_mut().limit = Some(bytes);
        self
    }

    /// `memory.reservation` (the soft limit), in bytes.
    #[must_use]
    pub fn memory_reservation(mut self, bytes: i64) -> Self {
        self.memory_mut().reservation = Some(bytes);
        self
    }

    /// `memory.swap`: memory plus swap, in bytes (`-1` for unlimited swap).
    #[must_use]
    pub fn memory_swap(mut self, bytes: i64) -> Self {
        self.memory_mut().swap = Some(bytes);
        self
    }

    /// `cpu.quota` and `cpu.period`: at most `quota` µs of CPU time every `period` µs
    /// (`cpu_quota(50_000, 100_000)` is half a CPU; a quota of `-1` is unlimited).
    #[must_use]
    pub fn cpu_quota(mut self, quota: i64, period: u64) -> Self {
        let cpu = self.cpu_mut();
        cpu.quota = Some(quota);
        cpu.period = Some(period);
        self
    }

    /// `cpu.shares`: the relative CPU weight (2 to 262144; 1024 is the default).
    #[must_use]
    pub fn cpu_shares(mut self, shares: u64) -> Self {
        self.cpu_mut().shares = Some(shares);
        self
    }

    /// `cpu.cpus`: the CPUs the container may run on, in cpuset list form (`0-3,6`).
    #[must_use]
    pub fn cpuset_cpus(mut self, cpus: impl Into<String>) -> Self {
        self.cpu_mut().cpus = Some(cpus.into());
        self
    }

    /// `cpu.mems`: the memory nodes the container may use, in cpuset list form.
    #[must_use]
    pub fn cpuset_mems(mut self, mems: impl Into<String>) -> Self {
        self.cpu_mut().mems = Some(mems.into());
        self
    }

    /// `pids.limit`: the most tasks the container may have (`-1` for unlimited).
    #[must_use]
    pub fn pids_limit(mut self, limit: i64) -> Self {
        self.pids_limit = Some(limit);
        self
    }

    /// `blockIO.weight`: the relative block I/O weight, 10 to 1000.
    #[must_use]
    pub fn blkio_weight(mut self, weight: u16) -> Self {
        self.block_io_mut().weight = Some(weight);
        self
    }

    /// Adds a `blockIO.throttleReadBpsDevice` entry: at most `bytes_per_second` read from
    /// the block device `major`:`minor`.
    #[must_use]
    pub fn throttle_read_bps(mut self, major: i64, minor: i64, bytes_per_second: u64) -> Self {
        self.block_io_mut()
            .throttle_read_bps
            .push(throttle(major, minor, bytes_per_second));
        self
    }

    /// Adds a `blockIO.throttleWriteBpsDevice` entry (bytes per second).
    #[must_use]
    pub fn throttle_write_bps(mut self, major: i64, minor: i64, bytes_per_second: u64) -> Self {
        self.block_io_mut()
            .throttle_write_bps
            .push(throttle(major, minor, bytes_per_second));
        self
    }

    /// Adds a `blockIO.throttleReadIOPSDevice` entry (I/O operations per second).
    #[must_use]
    pub fn throttle_read_iops(mut self, major: i64, minor: i64, iops: u64) -> Self {
        self.block_io_mut()
            .throttle_read_iops
            .push(throttle(major, minor, iops));
        self
    }

    /// Adds a `blockIO.throttleWriteIOPSDevice` entry (I/O operations per second).
    #[must_use]
    pub fn throttle_write_iops(mut self, major: i64, minor: i64, iops: u64) -> Self {
        self.block_io_mut()
            .throttle_write_iops
            .push(throttle(major, minor, iops));
        self
    }

    /// Adds a `hugepageLimits` entry: at most `bytes` of huge pages of `page_size`, as the
    /// kernel names it (`2MB`, `1GB`).
    #[must_use]
    pub fn hugepage_limit(mut self, page_size: impl Into<String>, bytes: u64) -> Self {
        self.hugepage_limits.push(HugepageLimit {
            page_size: page_size.into(),
            limit: bytes,
        });
        self
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

fn throttle(major: i64, minor: i64, rate: u64) -> ThrottleDevice {
    ThrottleDevice { major, minor, rate }
}

impl Rlimit {
    /// The rlimit `kind` with `soft` and `hard` values (in the resource's unit; for
    /// `RLIMIT_NOFILE`, file descriptors). `kind` is `RLIMIT_NOFILE`, `RLIMIT_NPROC`, ...;
    /// a name without the prefix (`nofile`) gets it and is upper-cased.
    pub fn new(kind: &str, soft: u64, hard: u64) -> Self {
        let type_ = if kind.starts_with("RLIMIT_") {
            kind.to_owned()
        } else {
            format!("RLIMIT_{}", kind.to_ascii_uppercase())
        };
        Rlimit { type_, hard, soft }
    }
}

impl OciHook {
    /// An exec hook running the absolute `path` at `stage`, with argv `[path]`: add
    /// arguments with [`OciHook::arg`], variables with [`OciHook::env`], a deadline with
    /// [`OciHook::timeout`].
    pub fn new(stage: OciHookStage, path: impl Into<String>) -> Self {
        let path = path.into();
        OciHook {
            stage,
            args: vec![path.clone()],
            path,
            env: Vec::new(),
            timeout: None,
        }
    }

    /// Appends one argument to argv.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Replaces the whole argv, `args[0]` included.
    #[must_use]
    pub fn argv<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds `name=value` to the hook's environment (which is otherwise empty).
    #[must_use]
    pub fn env(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.env
            .push(format!("{}={}", name.as_ref(), value.as_ref()));
        self
    }

    /// Kills the hook after `seconds` (the OCI `timeout`, whole seconds).
    #[must_use]
    pub fn timeout(mut self, seconds: i32) -> Self {
        self.timeout = Some(seconds);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_in_order() {
        let adj = Adjustment::default()
            .env("A", "1")
            .env("B", "2")
            .annotation("org.example/owner", "audit")
            .mount(Mount::bind("/srv/data", "/data").read_only());
        assert_eq!(
            adj.env,
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(
            adj.annotations,
            [("org.example/owner".into(), "audit".into())]
        );
        let m = &adj.mounts[0];
        assert_eq!(
            (m.source.as_str(), m.destination.as_str()),
            ("/srv/data", "/data")
        );
        assert_eq!(m.type_, "bind");
        assert_eq!(m.options, ["rbind", "ro"]);
        assert!(!adj.is_empty());
        assert!(Adjustment::default().is_empty());
    }

    #[test]
    fn removals() {
        let adj = Adjustment::default()
            .remove_env("DEBUG")
            .remove_annotation("org.example/x")
            .remove_mount("/tmp");
        assert_eq!(adj.remove_env, ["DEBUG"]);
        assert_eq!(adj.remove_annotations, ["org.example/x"]);
        assert_eq!(adj.remove_mounts, ["/tmp"]);
        for one in [
            Adjustment::default().remove_env("A"),
            Adjustment::default().remove_annotation("a"),
            Adjustment::default().remove_mount("/a"),
        ] {
            assert!(!one.is_empty());
        }
    }

    #[test]
    fn devices() {
        let fuse = Device::char("/dev/fuse", 10, 229)
            .mode(0o666)
            .owner(0, 5)
            .permissions("rw");
        assert_eq!(
            fuse,
            Device {
                path: "/dev/fuse".into(),
                type_: "c".into(),
                major: 10,
                minor: 229,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(5),
                permissions: "rw".into(),
            }
        );
        let plain = Device::char("/dev/x", 1, 5);
        assert_eq!(
            (plain.file_mode, plain.uid, plain.permissions.as_str()),
            (None, None, "")
        );
        assert_eq!(Device::block("/dev/loop7", 7, 7).type_, "b");
        assert_eq!(Device::unbuffered("/dev/u", 4, 1).type_, "u");
        let fifo = Device::fifo("/dev/pipe");
        assert_eq!((fifo.type_.as_str(), fifo.major, fifo.minor), ("p", 0, 0));
        let adj = Adjustment::default()
            .device(fuse.clone())
            .cdi_device("nvidia.com/gpu=0");
        assert_eq!(adj.devices, [fuse]);
        assert_eq!(adj.cdi_devices, ["nvidia.com/gpu=0"]);
    }

    #[test]
    fn resources_setters_fill_only_their_fields() {
        assert!(Resources::default().is_empty());
        let r = Resources::default()
            .memory_limit(256 << 20)
            .memory_reservation(128 << 20)
            .memory_swap(-1)
            .cpu_quota(50_000, 100_000)
            .cpu_shares(512)
            .cpuset_cpus("0-1")
            .cpuset_mems("0")
            .pids_limit(64)
            .blkio_weight(300)
            .throttle_read_bps(8, 0, 1 << 20)
            .throttle_write_bps(8, 0, 2 << 20)
            .throttle_read_iops(8, 0, 100)
            .throttle_write_iops(8, 0, 200)
            .hugepage_limit("2MB", 4 << 20);
        assert_eq!(
            r.memory,
            Some(Memory {
                limit: Some(256 << 20),
                reservation: Some(128 << 20),
                swap: Some(-1),
            })
        );
        assert_eq!(
            r.cpu,
            Some(Cpu {
                shares: Some(512),
                quota: Some(50_000),
                period: Some(100_000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
            })
        );
        assert_eq!(r.pids_limit, Some(64));
        let bio = r.block_io.as_ref().unwrap();
        assert_eq!(bio.weight, Some(300));
        let t = |rate| {
            vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate,
            }]
        };
        assert_eq!(bio.throttle_read_bps, t(1 << 20));
        assert_eq!(bio.throttle_write_bps, t(2 << 20));
        assert_eq!(bio.throttle_read_iops, t(100));
        assert_eq!(bio.throttle_write_iops, t(200));
        assert_eq!(
            r.hugepage_limits,
            [HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20
            }]
        );

        // One setter touches one record and leaves the rest unset.
        let only = Resources::default().memory_limit(1 << 30);
        assert_eq!(
            only.memory,
            Some(Memory {
                limit: Some(1 << 30),
                ..Memory::default()
            })
        );
        assert_eq!(
            (only.cpu, only.block_io, only.pids_limit),
            (None, None, None)
        );
        let adj = Adjustment::default().resources(Resources::default().pids_limit(1));
        assert_eq!(adj.resources.unwrap().pids_limit, Some(1));
    }

    #[test]
    fn rlimits_cgroups_path_and_args() {
        let adj = Adjustment::default()
            .rlimit("RLIMIT_NOFILE", 1024, 4096)
            .rlimit("nproc", 10, 20)
            .cgroups_path("/rwasm/web")
            .args(["sh", "-c", "true"]);
        assert_eq!(
            adj.rlimits,
            [
                Rlimit {
                    type_: "RLIMIT_NOFILE".into(),
                    hard: 4096,
                    soft: 1024
                },
                Rlimit {
                    type_: "RLIMIT_NPROC".into(),
                    hard: 20,
                    soft: 10
                },
            ]
        );
        assert_eq!(adj.cgroups_path.as_deref(), Some("/rwasm/web"));
        assert_eq!(
            adj.args,
            Some(vec!["sh".into(), "-c".into(), "true".into()])
        );
        let entry = Adjustment::default().rlimit_entry(Rlimit::new("core", 0, 0));
        assert_eq!(entry.rlimits[0].type_, "RLIMIT_CORE");
    }

    #[test]
    fn oci_hooks() {
        let hook = OciHook::new(OciHookStage::Poststop, "/usr/bin/logger")
            .arg("-t")
            .arg("rwasm")
            .env("LANG", "C")
            .timeout(5);
        assert_eq!(
            hook,
            OciHook {
                stage: OciHookStage::Poststop,
                path: "/usr/bin/logger".into(),
                args: vec!["/usr/bin/logger".into(), "-t".into(), "rwasm".into()],
                env: vec!["LANG=C".into()],
                timeout: Some(5),
            }
        );
        let renamed = OciHook::new(OciHookStage::Prestart, "/bin/busybox").argv(["true"]);
        assert_eq!(renamed.args, ["true"]);
        assert_eq!(renamed.timeout, None);
        let adj = Adjustment::default().hook(hook);
        assert_eq!(adj.hooks.len(), 1);
        assert!(!adj.is_empty());
    }

    #[test]
    fn every_kind_makes_it_non_empty() {
        let kinds = [
            Adjustment::default().env("A", "1"),
            Adjustment::default().annotation("a", "1"),
            Adjustment::default().mount(Mount::bind("/a", "/b")),
            Adjustment::default().device(Device::char("/dev/x", 1, 5)),
            Adjustment::default().cdi_device("v.com/c=n"),
            Adjustment::default().resources(Resources::default()),
            Adjustment::default().rlimit("nofile", 1, 1),
            Adjustment::default().cgroups_path("/x"),
            Adjustment::default().hook(OciHook::new(OciHookStage::Poststart, "/bin/true")),
            Adjustment::default().args(["true"]),
        ];
        for adj in kinds {
            assert!(!adj.is_empty(), "{adj:?}");
        }
    }

    #[test]
    fn verdicts() {
        assert!(matches!(Verdict::allow(), Verdict::Allow(a) if a.is_empty()));
        assert!(matches!(Verdict::deny("no"), Verdict::Deny(r) if r == "no"));
        let v: Verdict = Adjustment::default().env("A", "1").into();
        assert!(matches!(v, Verdict::Allow(a) if a.env.len() == 1));
        assert_eq!(
            Verdict::allow_with(Adjustment::default().remove_env("X")),
            Verdict::Allow(Adjustment::default().remove_env("X"))
        );
    }
}
