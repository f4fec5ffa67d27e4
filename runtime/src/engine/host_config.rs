//! The security, device and namespace flags of `rwasm run`/`create`, named as Docker's
//! `HostConfig` fields (`docker run --help`, Docker's "Runtime privilege and Linux
//! capabilities", "Seccomp security profiles"), turned into the OCI fields the runtime
//! applies: `process.capabilities`, `linux.seccomp`, `process.noNewPrivileges`,
//! `process.rlimits`, `linux.devices` and their cgroup rules, `linux.resources.blockIO`
//! throttles, `linux.resources.memory.disableOOMKiller`, `process.oomScoreAdj`, the
//! `/dev/shm` size, `linux.sysctl`, `linux.namespaces` (pid, ipc, uts), additional
//! groups, `root.readonly`, and the `--init` annotation that makes the container's init
//! stay as PID 1.

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use super::docker::{DEFAULT_CAPS, FlagError, parse_bytes};

/// Annotation asking the runtime to keep its init as PID 1, reaping zombies and
/// forwarding signals to the user process (`--init`); value `"true"`.
pub use crate::linux::init::INIT_ANNOTATION;

/// A namespace flag's value: `--pid`, `--ipc`, `--uts`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NsMode {
    /// A new namespace (Docker's `private`, `shareable` and the default).
    #[default]
    Private,
    /// The host's namespace: no new one.
    Host,
    /// `container:NAME|ID`, resolved to the namespace file of that container's init
    /// (`/proc/PID/ns/KIND`) before the spec is built.
    Container(String),
    /// A resolved `container:` namespace path.
    Path(PathBuf),
}

/// The flags, as typed (strings are parsed by [`apply`], so errors name the flag).
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// `--cap-add`: capability names with or without `CAP_`, any case, or `ALL`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`: as `--cap-add`; `ALL` drops Docker's defaults (adds still apply).
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability the runtime holds, no seccomp, no masked or
    /// read-only paths, writable /sys, every host device, and a device cgroup allowing all.
    pub privileged: bool,
    /// `--security-opt`: `seccomp=unconfined`, `seccomp=FILE`, `no-new-privileges[=true|false]`
    /// (`:` accepted for `=` as in old Docker), `apparmor=…` and `label=…` (accepted, no
    /// effect: this runtime has no LSM support).
    pub security_opt: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`: NAME as Docker's (`nofile`, `nproc`, `core`, ...), values
    /// in the rlimit's unit, `-1` or `unlimited` for no limit; HARD defaults to SOFT.
    pub ulimits: Vec<String>,
    /// `--device HOST[:CONTAINER[:PERMS]]`, PERMS of `rwm` (default `rwm`).
    pub devices: Vec<String>,
    /// `--device-read-bps PATH:RATE`, RATE a Docker size per second (`1mb`).
    pub device_read_bps: Vec<String>,
    /// `--device-write-bps PATH:RATE`.
    pub device_write_bps: Vec<String>,
    /// `--device-read-iops PATH:N`, N operations per second.
    pub device_read_iops: Vec<String>,
    /// `--device-write-iops PATH:N`.
    pub device_write_iops: Vec<String>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--oom-score-adj`, -1000 to 1000.
    pub oom_score_adj: Option<i32>,
    /// `--shm-size`: size of /dev/shm as a Docker size (default 64m).
    pub shm_size: Option<String>,
    /// `--sysctl KEY=VALUE` (namespaced sysctls only, checked by the runtime).
    pub sysctls: Vec<String>,
    /// `--pid`.
    pub pid: NsMode,
    /// `--ipc`.
    pub ipc: NsMode,
    /// `--uts` (`host` only, as in Docker).
    pub uts: NsMode,
    /// `--userns`: only `host` (or empty), as Docker's flag without a daemon remap.
    pub userns: Option<String>,
    /// `--group-add`: numeric gids; names are looked up in the image's /etc/group (see
    /// [`super::run::prepare`]) before the spec is built.
    pub group_add: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--init`.
    pub init: bool,
    /// `--gpus all|N|device=NAME[,NAME]`: devices of kind `nvidia.com/gpu` from the CDI
    /// spec files in `/etc/cdi` and `/var/run/cdi`.
    pub gpus: Option<String>,
}

/// The CDI kind `--gpus` draws from (the one `nvidia-ctk cdi generate` writes).
pub const GPU_CDI_KIND: &str = "nvidia.com/gpu";

/// The CDI devices `--gpus VALUE` selects from the default CDI spec directories.
fn gpu_devices(v: &str) -> Result<Vec<crate::plugin::KindDevice>, FlagError> {
    let dirs: Vec<PathBuf> = crate::plugin::manifest::DEFAULT_CDI_SPEC_DIRS
        .iter()
        .map(PathBuf::from)
        .collect();
    gpu_devices_in(&dirs, v)
}

/// The CDI devices `--gpus VALUE` selects from `dirs`, or an error naming the missing spec.
fn gpu_devices_in(dirs: &[PathBuf], v: &str) -> Result<Vec<crate::plugin::KindDevice>, FlagError> {
    let all = crate::plugin::devices_of_kind(dirs, GPU_CDI_KIND);
    let missing = |what: String| {
        invalid(
            "--gpus",
            v,
            format!(
                "no CDI spec in {} defines {what} (write one, e.g. with `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )
    };
    let v = v.trim_matches('"');
    let picked: Vec<_> = if v == "all" {
        // A spec's own `all` device, else every device.
        match all.iter().find(|d| d.name == "all") {
            Some(d) => vec![d.clone()],
            None => all.clone(),
        }
    } else if let Some(list) = v.strip_prefix("device=") {
        list.split(',')
            .map(|n| {
                all.iter()
                    .find(|d| d.name == n)
                    .cloned()
                    .ok_or_else(|| missing(format!("{GPU_CDI_KIND}={n}")))
            })
            .collect::<Result<_, _>>()?
    } else {
        let n: usize = v
            .parse()
            .map_err(|_| invalid("--gpus", v, "expected all, a count, or device=NAME[,NAME]"))?;
        let numbered: Vec<_> = all.iter().filter(|d| d.name != "all").cloned().collect();
        if numbered.len() < n {
            return Err(missing(format!(
                "{n} devices of kind {GPU_CDI_KIND} (found {})",
                numbered.len()
            )));
        }
        numbered.into_iter().take(n).collect()
    };
    if picked.is_empty() {
        return Err(missing(format!("any device of kind {GPU_CDI_KIND}")));
    }
    Ok(picked)
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.into(),
        reason: reason.into(),
    }
}

/// Parse a namespace flag value; `container:` keeps the name for later resolution.
pub fn parse_ns(flag: &'static str, v: &str) -> Result<NsMode, FlagError> {
    match v {
        "" | "private" => Ok(NsMode::Private),
        "shareable" if flag == "--ipc" => Ok(NsMode::Private),
        "host" => Ok(NsMode::Host),
        _ => match v.strip_prefix("container:") {
            Some(c) if !c.is_empty() && flag != "--uts" => Ok(NsMode::Container(c.into())),
            _ => Err(invalid(
                flag,
                v,
                match flag {
                    "--uts" => "expected host",
                    "--ipc" => "expected private, shareable, host or container:NAME",
                    _ => "expected host or container:NAME",
                },
            )),
        },
    }
}

/// A capability as Docker spells it (`net_admin`, `CAP_NET_ADMIN`) in the spec's form.
fn capability(flag: &'static str, name: &str) -> Result<Capability, FlagError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| invalid(flag, name, "unknown capability"))
}

/// Every capability the calling process may hand on: its bounding set. (Docker's "all"
/// is every capability it knows; a capability missing from the caller's bounding set
/// would fail at capset, so rwasm's "all" is what it holds, as podman's is.)
pub fn all_caps() -> HashSet<Capability> {
    caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| serde_json::from_value(serde_json::Value::String(c.to_string())).ok())
        .collect()
}

/// The container's capability set from Docker's defaults and `--cap-add/--cap-drop`
/// (moby `oci/caps.TweakCapabilities`: drops apply to the defaults, adds win).
pub fn capabilities(h: &HostConfig) -> Result<HashSet<Capability>, FlagError> {
    if h.privileged {
        return Ok(all_caps());
    }
    let is_all = |s: &String| s.eq_ignore_ascii_case("all");
    let mut set: HashSet<Capability> = if h.cap_drop.iter().any(is_all) {
        HashSet::new()
    } else {
        DEFAULT_CAPS.into_iter().collect()
    };
    for d in h.cap_drop.iter().filter(|d| !is_all(d)) {
        set.remove(&capability("--cap-drop", d)?);
    }
    if h.cap_add.iter().any(is_all) {
        return Ok(all_caps());
    }
    for a in &h.cap_add {
        set.insert(capability("--cap-add", a)?);
    }
    Ok(set)
}

/// What `--security-opt` asks for.
#[derive(Debug, Default)]
struct SecurityOpts {
    seccomp: Option<String>,
    no_new_privileges: Option<bool>,
}

fn security_opts(opts: &[String]) -> Result<SecurityOpts, FlagError> {
    let mut s = SecurityOpts::default();
    for o in opts {
        let (k, v) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (k, v) {
            ("seccomp", Some(v)) if !v.is_empty() => s.seccomp = Some(v.to_string()),
            ("no-new-privileges", None) => s.no_new_privileges = Some(true),
            ("no-new-privileges", Some(b)) => {
                s.no_new_privileges = Some(b.parse().map_err(|_| {
                    invalid("--security-opt", o, "no-new-privileges takes true or false")
                })?)
            }
            ("apparmor" | "label", Some(_)) => {}
            _ => {
                return Err(invalid(
                    "--security-opt",
                    o,
                    "expected seccomp=FILE|unconfined or no-new-privileges[=true|false]",
                ));
            }
        }
    }
    Ok(s)
}

/// Docker's `--ulimit` names and the spec's rlimit types.
fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        "as" => PosixRlimitType::RlimitAs,
        _ => return None,
    })
}

/// Parse `--ulimit NAME=SOFT[:HARD]` (Docker's `units.ParseUlimit`).
pub fn parse_ulimit(s: &str) -> Result<PosixRlimit, FlagError> {
    let bad = |r: &str| invalid("--ulimit", s, r);
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
    let typ = rlimit_type(name).ok_or_else(|| bad("unknown ulimit name"))?;
    let num = |v: &str| -> Result<u64, FlagError> {
        match v {
            "-1" | "unlimited" => Ok(u64::MAX),
            _ => v
                .parse()
                .map_err(|_| bad("limits must be numbers, -1 or unlimited")),
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(bad(
            "ulimit soft limit must be less than or equal to hard limit",
        ));
    }
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| FlagError::Spec(e.to_string()))
}

/// A host device node: (type, major, minor, mode bits, uid, gid).
fn host_node(
    flag: &'static str,
    arg: &str,
    p: &Path,
) -> Result<(LinuxDeviceType, i64, i64, u32, u32, u32), FlagError> {
    let m = std::fs::metadata(p)
        .map_err(|e| invalid(flag, arg, format!("cannot stat {}: {e}", p.display())))?;
    let ft = m.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(invalid(
            flag,
            arg,
            format!("{} is not a device node", p.display()),
        ));
    };
    let rdev = m.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    #[allow(clippy::cast_possible_wrap)] // majors and minors are 12 and 20 bits
    Ok((
        typ,
        major as i64,
        minor as i64,
        m.mode() & 0o7777,
        m.uid(),
        m.gid(),
    ))
}

fn device(
    path: &str,
    (typ, major, minor, mode, uid, gid): (LinuxDeviceType, i64, i64, u32, u32, u32),
) -> LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(mode)
        .uid(uid)
        .gid(gid)
        .build()
        .expect("device fields set")
}

/// Parse `--device HOST[:CONTAINER[:PERMS]]` into the device and its cgroup access.
pub fn parse_device(arg: &str) -> Result<(LinuxDevice, String), FlagError> {
    let parts: Vec<&str> = arg.split(':').collect();
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let (host, dest, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, d] => (*h, *d, "rwm"),
        [h, d, p] if is_perms(p) => (*h, *d, *p),
        _ => {
            return Err(invalid(
                "--device",
                arg,
                "expected HOST[:CONTAINER[:PERMISSIONS]] with permissions of r, w and m",
            ));
        }
    };
    if !host.starts_with('/') || !dest.starts_with('/') {
        return Err(invalid("--device", arg, "device paths must be absolute"));
    }
    let node = host_node("--device", arg, Path::new(host))?;
    Ok((device(dest, node), perms.to_string()))
}

/// Parse a `--device-{read,write}-{bps,iops}` value `PATH:RATE`.
fn parse_throttle(
    flag: &'static str,
    arg: &str,
    bytes: bool,
) -> Result<LinuxThrottleDevice, FlagError> {
    let (path, rate) = arg
        .rsplit_once(':')
        .ok_or_else(|| invalid(flag, arg, "expected PATH:RATE"))?;
    let rate: u64 = if bytes {
        parse_bytes(flag, rate)?.unsigned_abs()
    } else {
        rate.parse()
            .map_err(|_| invalid(flag, arg, "the rate must be a whole number of operations"))?
    };
    let (_, major, minor, ..) = host_node(flag, arg, Path::new(path))?;
    LinuxThrottleDeviceBuilder::default()
        .major(major)
        .minor(minor)
        .rate(rate)
        .build()
        .map_err(|e| FlagError::Spec(e.to_string()))
}

/// Every device node under the host's /dev (for `--privileged`), as Docker adds them;
/// pseudo-terminal, shm and mqueue directories are the container's own.
fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !matches!(
                    p.to_str(),
                    Some("/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev/fd")
                ) {
                    stack.push(p);
                }
            } else if (ft.is_char_device() || ft.is_block_device())
                && p.to_str() != Some("/dev/console")
                && let Some(s) = p.to_str()
                && let Ok(node) = host_node("--privileged", s, &p)
            {
                out.push(device(s, node));
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn ns(t: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut b = LinuxNamespaceBuilder::default().typ(t);
    if let Some(p) = path {
        b = b.path(p);
    }
    b.build().expect("static namespace")
}

/// Apply `mode` to namespace `t` of the spec's list.
fn set_ns(
    list: &mut Vec<LinuxNamespace>,
    t: LinuxNamespaceType,
    mode: &NsMode,
    flag: &'static str,
) -> Result<(), FlagError> {
    list.retain(|n| n.typ() != t);
    match mode {
        NsMode::Private => list.push(ns(t, None)),
        NsMode::Host => {}
        NsMode::Path(p) => list.push(ns(t, Some(p))),
        NsMode::Container(c) => {
            return Err(invalid(
                flag,
                &format!("container:{c}"),
                "container not resolved",
            ));
        }
    }
    Ok(())
}

/// The /dev/shm a container shares, as Docker binds it: the host's with `--ipc host`;
/// with `--ipc container:X` (resolved to `/proc/PID/ns/ipc`) X's, named through X's
/// root as `/proc/PID/root/dev/shm` (the runtime clones that mount from X's mount
/// namespace: `linux::foreign_mount`).
fn shared_shm(ipc: &NsMode) -> Option<PathBuf> {
    match ipc {
        NsMode::Host => Some("/dev/shm".into()),
        NsMode::Path(ns) => ns
            .parent()
            .filter(|d| d.file_name().is_some_and(|n| n == "ns"))
            .and_then(Path::parent)
            .filter(|p| p.starts_with("/proc"))
            .map(|proc| proc.join("root/dev/shm")),
        _ => None,
    }
}

/// Shape Docker's default `spec` (from [`super::docker::docker_spec`]) by the flags.
pub fn apply(spec: &mut Spec, h: &HostConfig) -> Result<(), FlagError> {
    if let Some(u) = h.userns.as_deref()
        && !matches!(u, "" | "host")
    {
        return Err(invalid(
            "--userns",
            u,
            "only host is supported (rwasm does not remap users)",
        ));
    }
    if let Some(a) = h.oom_score_adj
        && !(-1000..=1000).contains(&a)
    {
        return Err(invalid(
            "--oom-score-adj",
            &a.to_string(),
            "must be in the range -1000 to 1000",
        ));
    }
    let sec = security_opts(&h.security_opt)?;
    let caps = capabilities(h)?;
    let mut process = spec.process().clone().unwrap_or_default();
    let mut linux = spec.linux().clone().unwrap_or_default();

    let mut c = process.capabilities().clone().unwrap_or_default();
    c.set_bounding(Some(caps.clone()));
    c.set_effective(Some(caps.clone()));
    c.set_permitted(Some(caps.clone()));
    process.set_capabilities(Some(c));
    if let Some(n) = sec.no_new_privileges {
        process.set_no_new_privileges(Some(n));
    }
    if let Some(a) = h.oom_score_adj {
        process.set_oom_score_adj(Some(a));
    }
    let mut rlimits: Vec<PosixRlimit> = process.rlimits().clone().unwrap_or_default();
    for u in &h.ulimits {
        let r = parse_ulimit(u)?;
        rlimits.retain(|x| x.typ() != r.typ());
        rlimits.push(r);
    }
    if !rlimits.is_empty() {
        process.set_rlimits(Some(rlimits));
    }
    if !h.group_add.is_empty() {
        let mut user = process.user().clone();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        for g in &h.group_add {
            let n: u32 = g.parse().map_err(|_| {
                invalid("--group-add", g, "no such group in the image's /etc/group")
            })?;
            if n != user.gid() && !gids.contains(&n) {
                gids.push(n);
            }
        }
        gids.dedup();
        user.set_additional_gids(Some(gids));
        process.set_user(user);
    }

    // Seccomp: none when privileged or unconfined; a file; else the default profile.
    let seccomp = match sec.seccomp.as_deref() {
        Some("unconfined") => None,
        _ if h.privileged => None,
        Some(file) => Some(
            super::seccomp_profile::load_profile(Path::new(file), &caps).map_err(|err| {
                invalid(
                    "--security-opt",
                    &format!("seccomp={file}"),
                    crate::error_chain(&err),
                )
            })?,
        ),
        None => Some(super::seccomp_profile::default_profile(&caps)),
    };
    linux.set_seccomp(seccomp);

    // Devices and their cgroup rules.
    let mut devices = linux.devices().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let rule = |d: &LinuxDevice, access: &str| {
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(d.typ())
            .major(d.major())
            .minor(d.minor())
            .access(access)
            .build()
            .expect("device rule fields set")
    };
    for arg in &h.devices {
        let (d, perms) = parse_device(arg)?;
        rules.push(rule(&d, &perms));
        devices.retain(|x| x.path() != d.path());
        devices.push(d);
    }
    if let Some(v) = h.gpus.as_deref() {
        for g in gpu_devices(v)? {
            tracing::debug!(file = %g.file.display(), "--gpus: CDI device {GPU_CDI_KIND}={}", g.name);
            for (dest, host, perms) in &g.nodes {
                let (d, _) = parse_device(&format!("{host}:{dest}"))?;
                rules.push(rule(&d, perms));
                devices.retain(|x| x.path() != d.path());
                devices.push(d);
            }
            let mut env = process.env().clone().unwrap_or_default();
            for kv in &g.env {
                let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                env.retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
                env.push(kv.clone());
            }
            process.set_env(Some(env));
            let mut user = process.user().clone();
            let mut gids = user.additional_gids().clone().unwrap_or_default();
            gids.extend(
                g.gids
                    .iter()
                    .copied()
                    .filter(|x| !gids.contains(x))
                    .collect::<Vec<_>>(),
            );
            user.set_additional_gids(Some(gids));
            process.set_user(user);
            let mut mounts = spec.mounts().clone().unwrap_or_default();
            for (host, dest, opts) in &g.mounts {
                let mut o = opts.clone();
                if !o.iter().any(|x| x == "bind" || x == "rbind") {
                    o.push("rbind".into());
                }
                mounts.push(
                    oci_spec::runtime::MountBuilder::default()
                        .destination(dest)
                        .typ("bind")
                        .source(host)
                        .options(o)
                        .build()
                        .map_err(|e| FlagError::Spec(e.to_string()))?,
                );
            }
            spec.set_mounts(Some(mounts));
            let mut hooks = spec.hooks().clone().unwrap_or_default();
            for (name, hook) in &g.hooks {
                #[allow(deprecated, reason = "CDI may still name prestart hooks")]
                let list = match name.as_str() {
                    "prestart" => hooks.prestart_mut(),
                    "createRuntime" => hooks.create_runtime_mut(),
                    "createContainer" => hooks.create_container_mut(),
                    "startContainer" => hooks.start_container_mut(),
                    "poststart" => hooks.poststart_mut(),
                    "poststop" => hooks.poststop_mut(),
                    other => {
                        return Err(invalid(
                            "--gpus",
                            v,
                            format!("{}: unknown hookName {other:?}", g.file.display()),
                        ));
                    }
                };
                list.get_or_insert_with(Vec::new).push(hook.clone());
            }
            spec.set_hooks(Some(hooks));
        }
    }
    if h.privileged {
        for d in host_devices() {
            if !devices.iter().any(|x| x.path() == d.path()) {
                devices.push(d);
            }
        }
        rules = vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .access("rwm")
                .build()
                .expect("static rule"),
        ];
        linux.set_masked_paths(Some(vec![]));
        linux.set_readonly_paths(Some(vec![]));
        // Docker: a privileged container's /sys (and its cgroup tree) are writable.
        if let Some(mounts) = spec.mounts().clone() {
            let mounts = mounts
                .into_iter()
                .map(|mut m| {
                    if matches!(m.destination().to_str(), Some("/sys" | "/sys/fs/cgroup"))
                        && let Some(o) = m.options().clone()
                    {
                        m.set_options(Some(o.into_iter().filter(|x| x != "ro").collect()));
                    }
                    m
                })
                .collect();
            spec.set_mounts(Some(mounts));
        }
    }
    if !devices.is_empty() {
        linux.set_devices(Some(devices));
    }
    resources.set_devices(Some(rules));

    // Block I/O throttles.
    let throttles = |flag: &'static str, list: &[String], bytes: bool| {
        list.iter()
            .map(|a| parse_throttle(flag, a, bytes))
            .collect::<Result<Vec<_>, _>>()
    };
    let rbps = throttles("--device-read-bps", &h.device_read_bps, true)?;
    let wbps = throttles("--device-write-bps", &h.device_write_bps, true)?;
    let riops = throttles("--device-read-iops", &h.device_read_iops, false)?;
    let wiops = throttles("--device-write-iops", &h.device_write_iops, false)?;
    if !(rbps.is_empty() && wbps.is_empty() && riops.is_empty() && wiops.is_empty()) {
        let mut b = resources.block_io().clone().unwrap_or_default();
        if !rbps.is_empty() {
            b.set_throttle_read_bps_device(Some(rbps));
        }
        if !wbps.is_empty() {
            b.set_throttle_write_bps_device(Some(wbps));
        }
        if !riops.is_empty() {
            b.set_throttle_read_iops_device(Some(riops));
        }
        if !wiops.is_empty() {
            b.set_throttle_write_iops_device(Some(wiops));
        }
        resources.set_block_io(Some(b));
    }
    if h.oom_kill_disable {
        let mut m = resources.memory().unwrap_or_default();
        m.set_disable_oom_killer(Some(true));
        resources.set_memory(Some(m));
    }
    linux.set_resources(Some(resources));

    // Sysctls.
    if !h.sysctls.is_empty() {
        let mut map = linux.sysctl().clone().unwrap_or_default();
        for kv in &h.sysctls {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| invalid("--sysctl", kv, "expected KEY=VALUE"))?;
            map.insert(k.to_string(), v.to_string());
        }
        linux.set_sysctl(Some(map));
    }

    // Namespaces.
    let mut list = linux.namespaces().clone().unwrap_or_default();
    set_ns(&mut list, LinuxNamespaceType::Pid, &h.pid, "--pid")?;
    set_ns(&mut list, LinuxNamespaceType::Ipc, &h.ipc, "--ipc")?;
    set_ns(&mut list, LinuxNamespaceType::Uts, &h.uts, "--uts")?;
    linux.set_namespaces(Some(list));
    if h.uts == NsMode::Host {
        spec.set_hostname(None);
    }

    // /dev/shm: its size, or the host's with --ipc host (Docker binds it).
    let shm = h
        .shm_size
        .as_deref()
        .map(|s| {
            let n = parse_bytes("--shm-size", s)?;
            if n <= 0 {
                return Err(invalid("--shm-size", s, "must be greater than 0"));
            }
            Ok(n)
        })
        .transpose()?;
    if let Some(mounts) = spec.mounts().clone() {
        let mounts = mounts
            .into_iter()
            .map(|mut m| {
                if m.destination() == Path::new("/dev/shm") {
                    if let Some(src) = shared_shm(&h.ipc) {
                        m.set_typ(Some("bind".into()));
                        m.set_source(Some(src));
                        m.set_options(Some(vec!["rbind".into(), "rprivate".into()]));
                    } else if let Some(n) = shm {
                        let opts = m
                            .options()
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|o| !o.starts_with("size="))
                            .chain([format!("size={n}")])
                            .collect();
                        m.set_options(Some(opts));
                    }
                }
                m
            })
            .collect();
        spec.set_mounts(Some(mounts));
    }

    if h.read_only
        && let Some(mut root) = spec.root().clone()
    {
        root.set_readonly(Some(true));
        spec.set_root(Some(root));
    }
    if h.init {
        let mut a = spec.annotations().clone().unwrap_or_default();
        a.insert(INIT_ANNOTATION.into(), "true".into());
        spec.set_annotations(Some(a));
    }
    spec.set_process(Some(process));
    spec.set_linux(Some(linux));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipc_container_shares_the_others_shm_through_its_root() {
        assert_eq!(shared_shm(&NsMode::Host), Some("/dev/shm".into()));
        assert_eq!(
            shared_shm(&NsMode::Path("/proc/42/ns/ipc".into())),
            Some("/proc/42/root/dev/shm".into())
        );
        assert_eq!(shared_shm(&NsMode::Private), None);
        assert_eq!(shared_shm(&NsMode::Path("/run/netns/x".into())), None);
    }

    #[test]
    fn cap_add_and_drop_follow_docker() {
        let h = HostConfig {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["net_admin".into(), "CAP_CHOWN".into()],
            ..Default::default()
        };
        let got = capabilities(&h).unwrap();
        assert_eq!(
            got,
            [Capability::NetAdmin, Capability::Chown]
                .into_iter()
                .collect()
        );
        let h = HostConfig {
            cap_drop: vec!["chown".into()],
            ..Default::default()
        };
        let got = capabilities(&h).unwrap();
        assert_eq!(got.len(), 13);
        assert!(!got.contains(&Capability::Chown));
        let e = capabilities(&HostConfig {
            cap_add: vec!["flying".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--cap-add"), "{e}");
    }

    #[test]
    fn ulimits_parse_as_docker() {
        let r = parse_ulimit("nofile=100:200").unwrap();
        assert_eq!(
            (r.typ(), r.soft(), r.hard()),
            (PosixRlimitType::RlimitNofile, 100, 200)
        );
        let r = parse_ulimit("core=-1").unwrap();
        assert_eq!((r.soft(), r.hard()), (u64::MAX, u64::MAX));
        assert!(parse_ulimit("nofile=200:100").is_err());
        assert!(
            parse_ulimit("bogus=1")
                .unwrap_err()
                .to_string()
                .contains("--ulimit")
        );
    }

    #[test]
    fn devices_and_namespace_modes() {
        let (d, p) = parse_device("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(
            (d.path().to_str(), d.major(), d.minor(), p.as_str()),
            (Some("/dev/mynull"), 1, 3, "rw")
        );
        let (d, p) = parse_device("/dev/zero:r").unwrap();
        assert_eq!((d.path().to_str(), p.as_str()), (Some("/dev/zero"), "r"));
        assert!(parse_device("/etc/passwd").is_err());
        assert_eq!(parse_ns("--pid", "host").unwrap(), NsMode::Host);
        assert_eq!(
            parse_ns("--ipc", "container:web").unwrap(),
            NsMode::Container("web".into())
        );
        assert!(parse_ns("--uts", "container:x").is_err());
        let opts =
            security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()]).unwrap();
        assert_eq!(opts.no_new_privileges, Some(true));
        assert_eq!(opts.seccomp.as_deref(), Some("unconfined"));
        assert!(security_opts(&["selinux".into()]).is_err());
    }

    #[test]
    fn gpus_pick_cdi_devices_by_count_name_or_all() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_path_buf()];
        let e = gpu_devices_in(&dirs, "all").unwrap_err().to_string();
        assert!(
            e.contains("--gpus") && e.contains("nvidia.com/gpu") && e.contains("no CDI spec"),
            "{e}"
        );
        std::fs::write(
            d.path().join("nvidia.json"),
            r#"{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
                "containerEdits": {"env": ["NVIDIA_VISIBLE=1"]},
                "devices": [
                  {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0", "hostPath": "/dev/null"}],
                   "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk", "args": ["nvidia-ctk", "hook"]}]}},
                  {"name": "1", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia1", "hostPath": "/dev/zero"}]}}]}"#,
        )
        .unwrap();
        let all = gpu_devices_in(&dirs, "all").unwrap();
        assert_eq!(
            all.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["0", "1"]
        );
        assert_eq!(all[0].env, ["NVIDIA_VISIBLE=1"]);
        assert_eq!(all[0].hooks[0].0, "createContainer");
        assert_eq!(all[0].hooks[0].1.path(), Path::new("/usr/bin/nvidia-ctk"));
        assert_eq!(
            all[1].nodes,
            [("/dev/nvidia1".into(), "/dev/zero".into(), "rwm".into())]
        );
        assert_eq!(gpu_devices_in(&dirs, "1").unwrap().len(), 1);
        assert_eq!(gpu_devices_in(&dirs, "device=1").unwrap()[0].name, "1");
        assert!(gpu_devices_in(&dirs, "3").is_err());
        assert!(
            gpu_devices_in(&dirs, "device=7")
                .unwrap_err()
                .to_string()
                .contains("nvidia.com/gpu=7")
        );
    }
}
