//! `rwasm run IMAGE`: Docker's grammar and defaults over the same OCI core.
//!
//! Flag values follow Docker's units and rules (`docker run --help`, Docker's
//! `opts.RAMInBytes`, `--cpus`, `--memory-swap`), and the generated config.json carries
//! the defaults a Docker user expects: the standard mounts, masked and read-only paths,
//! Docker's default capability set, a device allowlist, and new pid, ipc, uts, mount,
//! network (loopback up) and cgroup namespaces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// A flag value Docker would refuse; names the flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// A flag's value is malformed, out of Docker's range, or conflicts with another flag.
    #[error("invalid value {value:?} for {flag}: {reason}")]
    Invalid {
        /// The flag as the user types it, e.g. `--memory`.
        flag: &'static str,
        /// The value given, verbatim.
        value: String,
        /// Docker's wording of the rule it breaks, e.g. `minimum memory limit allowed is 6MB`.
        reason: String,
    },
    /// oci-spec's builders rejected the generated spec (a bug rather than a user error).
    #[error("building the container spec: {0}")]
    Spec(String),
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.into(),
        reason: reason.into(),
    }
}

/// Parse a size as Docker's `RAMInBytes` does: a number with an optional binary unit
/// `b`, `k`, `m`, `g`, `t`, `p` (case-insensitive, optionally followed by `b`): bytes.
pub fn parse_bytes(flag: &'static str, s: &str) -> Result<i64, FlagError> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| invalid(flag, s, "expected a size such as 256m or 1g"))?;
    let mul: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return Err(invalid(flag, s, "unknown unit (use b, k, m, g, t or p)")),
    };
    let v = n * mul;
    if !(0.0..9.0e18).contains(&v) {
        return Err(invalid(flag, s, "out of range"));
    }
    #[allow(clippy::cast_possible_truncation)] // range-checked above; Docker truncates too
    Ok(v as i64)
}

/// The resource and process flags of `rwasm run`, already split from the CLI.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    /// `-e NAME=VALUE`, or `-e NAME` to pass the caller's value through; later entries win.
    pub env: Vec<String>,
    /// `-h`; defaults to the first 12 characters of the container id.
    pub hostname: Option<String>,
    /// `-w`; an absolute path in the container, default `/`.
    pub workdir: Option<String>,
    /// `-u UID[:GID]`, numeric only; the gid defaults to the uid, the whole to `0:0`.
    pub user: Option<String>,
    /// `-m`: memory limit as a Docker size (see [`parse_bytes`]), at least 6 MiB.
    pub memory: Option<String>,
    /// `--memory-swap`: memory plus swap as a size, or `-1` for unlimited; needs `-m` and
    /// must be at least it; unset with `-m` means twice the memory limit, as in Docker.
    pub memory_swap: Option<String>,
    /// `--memory-reservation`: soft memory limit as a Docker size.
    pub memory_reservation: Option<String>,
    /// `--cpus`: a decimal CPU count from 0.01 to the host's CPUs, applied as a CFS quota
    /// over a 100000 µs period; conflicts with `--cpu-period` and `--cpu-quota`.
    pub cpus: Option<String>,
    /// `-c`/`--cpu-shares`: relative CPU weight in CPU shares (1024 is the kernel's default).
    pub cpu_shares: Option<u64>,
    /// `--cpu-period`: CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`: CFS quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`: CPUs the container may use, a list such as `0-3,5`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`: memory (NUMA) nodes the container may use, a list such as `0,1`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`: maximum number of tasks in the container's cgroup.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight`: relative block I/O weight from 10 to 1000; 0 means unset, as in Docker.
    pub blkio_weight: Option<u16>,
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd; `""` clears it
    /// (see [`crate::engine::image::defaults::apply`]).
    pub entrypoint: Option<String>,
    /// Security, device and namespace flags (`--cap-add`, `--privileged`, `--device`, ...).
    pub host: super::host_config::HostConfig,
    /// `--network`: `none` (default), `host` (no network namespace), `bridge` or a network
    /// driver's name (see [`crate::engine::network`]).
    pub network: Option<String>,
    /// `-p/--publish` `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`, parsed.
    pub publish: Vec<crate::plugin::network::PortMapping>,
    /// `-P/--publish-all`: publish the image's ExposedPorts, each on a free host port.
    pub publish_all: bool,
    /// `-t/--tty`: the process gets a pseudo-terminal (`process.terminal`) and, as in
    /// Docker, `TERM=xterm` unless `-e` sets it.
    pub terminal: bool,
    /// `--storage-driver`: `overlay` (default), `vfs`, `native-overlay` or a storage
    /// driver plugin's name (see [`crate::engine::storage`]).
    pub storage_driver: Option<String>,
    /// `--storage-opt KEY=VALUE` as given, for the storage driver's `prepare` (see
    /// [`crate::engine::storage::check_options`]).
    pub storage_opts: Vec<String>,
    /// `-v/--volume` as given (see [`crate::engine::volume_mounts::parse_volume`]).
    pub volumes: Vec<String>,
    /// `--tmpfs /path[:opts]` as given (see [`crate::engine::volume_mounts::parse_tmpfs`]).
    pub tmpfs: Vec<String>,
    /// `--mount KEY=VALUE,...` as given (see [`crate::engine::volume_mounts::parse_mount`]).
    pub mounts: Vec<String>,
}

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// Default PATH of a Docker container.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("static mount")
}

/// Look `name` up in an `/etc/passwd`- or `/etc/group`-style file: (id, primary gid).
fn lookup(file: &Path, name: &str) -> Option<(u32, u32)> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) || f.get(2) == Some(&name))
            .then(|| {
                Some((
                    f.get(2)?.parse().ok()?,
                    f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                ))
            })
            .flatten()
    })
}

/// Resolve `-u USER[:GROUP]` as Docker does: names through the image's /etc/passwd and
/// /etc/group, numbers as they are; without a group, the user's primary group from
/// /etc/passwd, else 0.
pub fn resolve_user(s: &str, rootfs: &Path) -> Result<(u32, u32), FlagError> {
    let (u, g) = s.split_once(':').map_or((s, None), |(u, g)| (u, Some(g)));
    let passwd = lookup(&rootfs.join("etc/passwd"), u);
    let uid = match (u.parse::<u32>(), passwd) {
        (Ok(n), _) => n,
        (Err(_), Some((n, _))) => n,
        (Err(_), None) => {
            return Err(invalid(
                "--user",
                s,
                format!("no user {u:?} in the image's /etc/passwd"),
            ));
        }
    };
    let gid = match g {
        None => passwd.map_or(0, |(_, g)| g),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&rootfs.join("etc/group"), g)
                .map(|(n, _)| n)
                .ok_or_else(|| {
                    invalid(
                        "--user",
                        s,
                        format!("no group {g:?} in the image's /etc/group"),
                    )
                })?,
        },
    };
    if uid > super::validate::MAX_ID || gid > super::validate::MAX_ID {
        return Err(invalid(
            "--user",
            s,
            format!("ids must be in range 0-{}", super::validate::MAX_ID),
        ));
    }
    Ok((uid, gid))
}

/// Resolve `--group-add` entries: numbers as they are, names through the image's
/// /etc/group (Docker's behaviour); an unknown name is an error naming the flag.
pub fn resolve_groups(groups: &[String], rootfs: &Path) -> Result<Vec<String>, FlagError> {
    groups
        .iter()
        .map(|g| {
            if g.parse::<u32>().is_ok() {
                return Ok(g.clone());
            }
            lookup(&rootfs.join("etc/group"), g)
                .map(|(n, _)| n.to_string())
                .ok_or_else(|| invalid("--group-add", g, "no such group in the image's /etc/group"))
        })
        .collect()
}

/// Parse a resolved `-u UID:GID`.
fn parse_user(s: &str) -> Result<(u32, u32), FlagError> {
    resolve_user(s, Path::new("/nonexistent"))
}

/// `linux.resources` from the flags, with Docker's rules.
fn resources(f: &RunFlags) -> Result<oci_spec::runtime::LinuxResources, FlagError> {
    let e = |x: oci_spec::OciSpecError| FlagError::Spec(x.to_string());
    let memory = f
        .memory
        .as_deref()
        .map(|v| parse_bytes("--memory", v))
        .transpose()?;
    if let Some(m) = memory
        && m < 6 * 1024 * 1024
    {
        return Err(invalid(
            "--memory",
            f.memory.as_deref().unwrap_or(""),
            "minimum memory limit allowed is 6MB",
        ));
    }
    let swap = match f.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(v) => {
            let s = parse_bytes("--memory-swap", v)?;
            match memory {
                None => {
                    return Err(invalid(
                        "--memory-swap",
                        v,
                        "you should always set a memory limit (-m) when using --memory-swap",
                    ));
                }
                Some(m) if s < m => {
                    return Err(invalid(
                        "--memory-swap",
                        v,
                        "minimum memoryswap limit should be larger than memory limit",
                    ));
                }
                _ => Some(s),
            }
        }
        // Docker: -m without --memory-swap allows as much swap as memory.
        None => memory.map(|m| m * 2),
    };
    let reservation = f
        .memory_reservation
        .as_deref()
        .map(|v| parse_bytes("--memory-reservation", v))
        .transpose()?;
    let mut mem = LinuxMemoryBuilder::default();
    if let Some(m) = memory {
        mem = mem.limit(m);
    }
    if let Some(s) = swap {
        mem = mem.swap(s);
    }
    if let Some(r) = reservation {
        mem = mem.reservation(r);
    }

    let mut cpu = LinuxCpuBuilder::default();
    if let Some(c) = f.cpus.as_deref() {
        if f.cpu_period.is_some() || f.cpu_quota.is_some() {
            return Err(invalid(
                "--cpus",
                c,
                "conflicting options: --cpus with --cpu-period or --cpu-quota",
            ));
        }
        let n: f64 = c
            .parse()
            .map_err(|_| invalid("--cpus", c, "expected a number of CPUs such as 0.5"))?;
        let max = std::thread::available_parallelism().map_or(1, |n| n.get());
        #[allow(clippy::cast_precision_loss)] // a CPU count is tiny
        if !(0.01..=max as f64).contains(&n) {
            return Err(invalid(
                "--cpus",
                c,
                format!("range of CPUs is from 0.01 to {max}.00"),
            ));
        }
        #[allow(clippy::cast_possible_truncation)] // 0.01 ≤ n ≤ CPU count
        let quota = (n * 100_000.0).round() as i64;
        cpu = cpu.quota(quota).period(100_000u64);
    }
    if let Some(p) = f.cpu_period {
        cpu = cpu.period(p);
    }
    if let Some(q) = f.cpu_quota {
        cpu = cpu.quota(q);
    }
    if let Some(s) = f.cpu_shares {
        cpu = cpu.shares(s);
    }
    if let Some(c) = &f.cpuset_cpus {
        cpu = cpu.cpus(c.clone());
    }
    if let Some(m) = &f.cpuset_mems {
        cpu = cpu.mems(m.clone());
    }
    let mut res = LinuxResourcesBuilder::default()
        .memory(mem.build().map_err(e)?)
        .cpu(cpu.build().map_err(e)?)
        .devices(default_device_rules());
    if let Some(p) = f.pids_limit {
        res = res.pids(LinuxPidsBuilder::default().limit(p).build().map_err(e)?);
    }
    if let Some(w) = f.blkio_weight
        && w != 0
    {
        if !(10..=1000).contains(&w) {
            return Err(invalid(
                "--blkio-weight",
                &w.to_string(),
                "range is from 10 to 1000",
            ));
        }
        res = res.block_io(
            LinuxBlockIoBuilder::default()
                .weight(w)
                .build()
                .map_err(e)?,
        );
    }
    res.build().map_err(e)
}

/// Docker's device cgroup: deny everything, then allow the default devices.
fn default_device_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let rule = |allow: bool,
                typ: LinuxDeviceType,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("static rule")
    };
    vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(5), "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(7), "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(8), "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(9), "rwm"),
        rule(true, LinuxDeviceType::C, Some(5), Some(0), "rwm"),
        rule(true, LinuxDeviceType::C, Some(5), Some(1), "rwm"),
        rule(true, LinuxDeviceType::C, Some(5), Some(2), "rwm"),
        rule(true, LinuxDeviceType::C, Some(136), None, "rwm"),
    ]
}

/// The config.json of a Docker-style container.
///
/// `rootfs` is the bundle-relative root path; `extra_mounts` are appended (the
/// container's /etc/hostname and /etc/hosts).
pub fn docker_spec(
    id: &str,
    rootfs: &Path,
    args: Vec<String>,
    flags: &RunFlags,
    extra_mounts: Vec<Mount>,
    annotations: HashMap<String, String>,
) -> Result<Spec, FlagError> {
    let e = |x: oci_spec::OciSpecError| FlagError::Spec(x.to_string());
    let hostname = flags
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if flags.terminal {
        env.push("TERM=xterm".to_string());
    }
    for kv in &flags.env {
        let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
        if k.is_empty() || k.contains('\0') {
            return Err(invalid("--env", kv, "expected NAME=VALUE"));
        }
        // Docker: `-e NAME` alone passes the caller's value through.
        let entry = if kv.contains('=') {
            kv.clone()
        } else {
            match std::env::var(k) {
                Ok(v) => format!("{k}={v}"),
                Err(_) => continue,
            }
        };
        env.retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
        env.push(entry);
    }
    let (uid, gid) = flags
        .user
        .as_deref()
        .map(parse_user)
        .transpose()?
        .unwrap_or((0, 0));
    let cwd = flags.workdir.clone().unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(invalid(
            "--workdir",
            &cwd,
            "the working directory must be an absolute path",
        ));
    }
    let caps: std::collections::HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
        .map_err(e)?;
    let process = ProcessBuilder::default()
        .args(args)
        .env(env)
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(e)?,
        )
        .capabilities(capabilities)
        .no_new_privileges(false)
        .oom_score_adj(0)
        .terminal(flags.terminal)
        .build()
        .map_err(e)?;
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ];
    mounts.extend(extra_mounts);
    let ns = |t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .expect("static namespace")
    };
    let mut namespaces = vec![
        ns(LinuxNamespaceType::Pid),
        ns(LinuxNamespaceType::Ipc),
        ns(LinuxNamespaceType::Uts),
        ns(LinuxNamespaceType::Mount),
        ns(LinuxNamespaceType::Network),
        ns(LinuxNamespaceType::Cgroup),
    ];
    if flags.network.as_deref() == Some("host") {
        // `--network host`: the host's network namespace (Docker's behaviour).
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(flags)?)
        .cgroups_path(PathBuf::from(format!("rwasm/{id}")))
        .masked_paths(MASKED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(e)?;
    let mut spec = SpecBuilder::default()
        .version(super::state::OCI_VERSION)
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(false)
                .build()
                .map_err(e)?,
        )
        .hostname(hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .annotations(annotations)
        .build()
        .map_err(e)?;
    super::host_config::apply(&mut spec, &flags.host)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_docker_units() {
        assert_eq!(parse_bytes("-m", "256m").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("-m", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-m", "512MB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("-m", "100").unwrap(), 100);
        assert_eq!(parse_bytes("-m", "1.5k").unwrap(), 1536);
        assert!(parse_bytes("-m", "12q").is_err());
        assert!(parse_bytes("-m", "lots").is_err());
    }

    fn res(f: RunFlags) -> Result<oci_spec::runtime::LinuxResources, FlagError> {
        resources(&f)
    }

    #[test]
    fn memory_swap_rules() {
        let r = res(RunFlags {
            memory: Some("64m".into()),
            ..Default::default()
        })
        .unwrap();
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(
            m.swap(),
            Some(128 << 20),
            "-m alone: memory+swap = 2 x memory"
        );
        let r = res(RunFlags {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.memory().unwrap().swap(), Some(-1));
        let e = res(RunFlags {
            memory: Some("64m".into()),
            memory_swap: Some("32m".into()),
            ..Default::default()
        });
        assert!(e.unwrap_err().to_string().contains("--memory-swap"));
        assert!(
            res(RunFlags {
                memory_swap: Some("64m".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            res(RunFlags {
                memory: Some("1m".into()),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn cpus_become_quota_over_period() {
        let r = res(RunFlags {
            cpus: Some("0.5".into()),
            ..Default::default()
        })
        .unwrap();
        let c = r.cpu().clone().unwrap();
        assert_eq!((c.quota(), c.period()), (Some(50_000), Some(100_000)));
        assert!(
            res(RunFlags {
                cpus: Some("0".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            res(RunFlags {
                cpus: Some("0.5".into()),
                cpu_quota: Some(1),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn spec_has_docker_defaults() {
        let flags = RunFlags {
            env: vec!["A=1".into(), "PATH=/bin".into()],
            ..Default::default()
        };
        let s = docker_spec(
            "0123456789abcdef",
            Path::new("rootfs"),
            vec!["sh".into()],
            &flags,
            vec![],
            HashMap::new(),
        )
        .unwrap();
        assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"A=1".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert!(env.contains(&"PATH=/bin".to_string()));
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(
            !caps
                .bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );
        assert!(
            s.linux()
                .as_ref()
                .unwrap()
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
    }
}
