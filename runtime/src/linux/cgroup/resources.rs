//! The one translation of `linux.resources` into cgroup file writes, for v1 and v2.
//!
//! The result is plain data, a list of [`Write`]s in the order they must be made; the
//! managers only check that each file exists and write it. Values follow the OCI
//! runtime-spec (config-linux.md, "Control groups") and runc's behaviour:
//!
//! - A value of 0 for memory limit/reservation/swap, CPU shares/quota/period and blkio
//!   weight means "not set", as in runc (whose Go structs cannot tell 0 from absent), so
//!   configs written for runc behave the same. `pids.limit` ≤ 0 means unlimited.
//! - -1 means unlimited where the kernel has a limit (v1 writes `-1`, v2 writes `max`).
//! - `memory.swap` is the memory+swap limit, as in v1's `memory.memsw.limit_in_bytes`;
//!   v2's `memory.swap.max` gets `swap − limit` (runc's `ConvertMemorySwapToCgroupV2Value`).
//! - v2 weights convert from v1 ranges with runc's formulas: `cpu.weight = 1 + ((shares −
//!   2) × 9999) / 262142`, `io.weight = 1 + (weight − 10) × 9999 / 990`.
//!
//! Device allowlist (`linux.resources.devices`, config-linux.md "Device allowlist"):
//!
//! - Every entry is checked on v1 and v2 alike: `type` is `a`, `c` or `b` (unset means
//!   `a`); `major`/`minor` are numbers ≥ 0 or unset (any, `*`); `access` is a non-empty
//!   combination of `r`, `w`, `m`, each at most once. Type `a` takes no numbers and only
//!   `rwm`: the kernel reads an `a` line as "every device, every access" whatever follows,
//!   so `a 1:3 r` would silently allow or deny far more than it says. An error names the
//!   entry as `linux.resources.devices[N]` ([`CgroupError::InvalidDeviceRule`]).
//! - v1: each entry, in list order, is one line `TYPE MAJOR:MINOR ACCESS` (`*` for an unset
//!   number) written to `devices.deny` (`allow: false`) or `devices.allow`, as runc writes
//!   them; Docker's and podman's leading `{"allow": false, "access": "rwm"}` is the
//!   deny-all `a *:* rwm`. After the spec's entries, the devices rwasm itself creates in
//!   every container (runtime-spec "Default Devices": `/dev/null` 1:3, `zero` 1:5, `full`
//!   1:7, `random` 1:8, `urandom` 1:9, `tty` 5:0, plus `/dev/pts/*` 136:* and `/dev/ptmx`
//!   5:2) are allowed `rwm`, as runc appends its default list. Unlike runc, rwasm allows
//!   no wildcard `c *:* m` / `b *:* m`: mknod of other devices stays denied.
//! - v1, no list or an empty one: nothing is written and the container keeps the rules it
//!   inherited from its parent cgroup (normally everything allowed). runc differs here: it
//!   always writes deny-all plus its defaults. [`v1_writes`] also serves updates, where an
//!   absent list must leave the container's rules alone; an engine that wants a locked-down
//!   container sends a list (Docker, podman and containerd always do).
//! - v1 updates rewrite the rules from scratch (deny-all first, then the allows), so a
//!   running container's opens can fail in between; runc avoids this by diffing against
//!   `devices.list`. The kernel also refuses an `a` line (EINVAL) once the container's
//!   devices cgroup has sub-cgroups.
//! - v2 has no device files: enforcement needs a `BPF_CGROUP_DEVICE` eBPF program, which
//!   rwasm does not load yet. The list is validated and the v2 manager logs once per apply
//!   at warn level that it is not enforced; it is not an error, since engines always send
//!   a list.
//!
//! Hugepage limits (`linux.resources.hugepageLimits`, config-linux.md "Huge page limits"):
//! each entry's `limit` (bytes) goes to `hugetlb.<pageSize>.limit_in_bytes` on v1 and
//! `hugetlb.<pageSize>.max` on v2, as runc writes them. `pageSize` is the kernel's
//! spelling, digits then `KB`, `MB` or `GB` (`2MB`, `1GB`; the sizes this kernel offers
//! are under /sys/kernel/mm/hugepages); anything else is refused, since it becomes part of
//! a file name. A size the kernel does not offer has no such file: the managers' missing
//! file error names the field. The reservation limits (`hugetlb.*.rsvd.*`) are not set.
//!
//! Fields this module does not apply are listed by [`unapplied_fields`] (the managers log
//! them at warn level).

use std::borrow::Cow;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, LinuxThrottleDevice};

use super::error::CgroupError;

/// One write of a controller file inside the container's cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller whose hierarchy (v1) or directory (v2) holds the file, e.g. `memory`.
    pub controller: &'static str,
    /// The file name inside the container's directory, e.g. `memory.limit_in_bytes`
    /// (built from the spec only for `hugetlb.<pageSize>.*`, whose size is checked).
    pub file: Cow<'static, str>,
    /// The exact text to write.
    pub value: String,
    /// The spec field it comes from, e.g. `linux.resources.memory.limit`, for errors.
    pub field: &'static str,
}

/// What the translation needs to know about the cgroup as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// v1: `memory.limit_in_bytes` now, in bytes; `None` when unknown or unlimited (a fresh
    /// cgroup). Decides the order of the memory and memory+swap writes.
    pub memory_limit: Option<u64>,
    /// Whether the host accounts swap (v1 `memory.memsw.limit_in_bytes`, v2
    /// `memory.swap.max` exist). When it does, an unlimited memory limit without a swap
    /// value also lifts the swap limit, as runc does.
    pub swap_accounting: bool,
}

const MEM_LIMIT: &str = "linux.resources.memory.limit";
const MEM_RESERVATION: &str = "linux.resources.memory.reservation";
const MEM_SWAP: &str = "linux.resources.memory.swap";
const MEM_SWAPPINESS: &str = "linux.resources.memory.swappiness";
const MEM_OOM: &str = "linux.resources.memory.disableOOMKiller";
const CPU_SHARES: &str = "linux.resources.cpu.shares";
const CPU_QUOTA: &str = "linux.resources.cpu.quota";
const CPU_PERIOD: &str = "linux.resources.cpu.period";
const CPU_CPUS: &str = "linux.resources.cpu.cpus";
const CPU_MEMS: &str = "linux.resources.cpu.mems";
const PIDS_LIMIT: &str = "linux.resources.pids.limit";
const BLKIO_WEIGHT: &str = "linux.resources.blockIO.weight";
const BLKIO_LEAF_WEIGHT: &str = "linux.resources.blockIO.leafWeight";
const BLKIO_WEIGHT_DEVICE: &str = "linux.resources.blockIO.weightDevice";
const THROTTLE_READ_BPS: &str = "linux.resources.blockIO.throttleReadBpsDevice";
const THROTTLE_WRITE_BPS: &str = "linux.resources.blockIO.throttleWriteBpsDevice";
const THROTTLE_READ_IOPS: &str = "linux.resources.blockIO.throttleReadIOPSDevice";
const THROTTLE_WRITE_IOPS: &str = "linux.resources.blockIO.throttleWriteIOPSDevice";

/// The spec field of the device allowlist.
pub(crate) const DEVICES: &str = "linux.resources.devices";
/// The `field` of the [`Write`]s that allow rwasm's default devices (not from the spec).
const DEVICES_DEFAULT: &str = "linux.resources.devices (rwasm's default devices)";

/// The device nodes rwasm creates in every container (runtime-spec "Default Devices"),
/// plus `/dev/pts/*` and `/dev/ptmx`, as (type, major, minor; `None` = any): allowed `rwm`
/// after a non-empty spec list.
const DEFAULT_DEVICES: [(char, u32, Option<u32>); 8] = [
    ('c', 1, Some(3)), // /dev/null
    ('c', 1, Some(5)), // /dev/zero
    ('c', 1, Some(7)), // /dev/full
    ('c', 1, Some(8)), // /dev/random
    ('c', 1, Some(9)), // /dev/urandom
    ('c', 5, Some(0)), // /dev/tty
    ('c', 136, None),  // /dev/pts/*
    ('c', 5, Some(2)), // /dev/ptmx
];

fn invalid(field: &'static str, value: impl ToString, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn w(
    controller: &'static str,
    file: impl Into<Cow<'static, str>>,
    value: impl Into<String>,
    field: &'static str,
) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.into(),
        field,
    }
}

const HUGEPAGE_LIMITS: &str = "linux.resources.hugepageLimits";

/// Each hugepage limit as (page size, bytes), both checked (module docs).
fn hugepage_limits(r: &LinuxResources) -> Result<Vec<(&str, i64)>, CgroupError> {
    let mut out = Vec::new();
    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        let size = h.page_size().as_str();
        let digits = size
            .strip_suffix("KB")
            .or_else(|| size.strip_suffix("MB"))
            .or_else(|| size.strip_suffix("GB"));
        if !digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(
                HUGEPAGE_LIMITS,
                size,
                "pageSize must be digits followed by KB, MB or GB, as the kernel spells it (2MB, 1GB)",
            ));
        }
        if h.limit() < 0 {
            return Err(invalid(
                HUGEPAGE_LIMITS,
                h.limit(),
                "limit is a number of bytes, 0 or more",
            ));
        }
        out.push((size, h.limit()));
    }
    Ok(out)
}

/// The memory values, validated, 0 dropped.
struct Memory {
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
}

fn memory(r: &LinuxResources, cur: &Current) -> Result<Option<Memory>, CgroupError> {
    let Some(m) = r.memory() else { return Ok(None) };
    let check = |field: &'static str, v: Option<i64>| match v {
        Some(0) | None => Ok(None),
        Some(v) if v < -1 => Err(invalid(
            field,
            v,
            "must be -1 (unlimited) or a number of bytes > 0",
        )),
        Some(v) => Ok(Some(v)),
    };
    let limit = check(MEM_LIMIT, m.limit())?;
    let reservation = check(MEM_RESERVATION, m.reservation())?;
    let mut swap = check(MEM_SWAP, m.swap())?;
    if let Some(s) = swap.filter(|s| *s != -1) {
        match limit {
            Some(l) if l > 0 && s < l => {
                return Err(invalid(
                    MEM_SWAP,
                    s,
                    format!(
                        "swap is the memory+swap limit and must be >= linux.resources.memory.limit ({l})"
                    ),
                ));
            }
            Some(l) if l > 0 => {}
            _ => {
                return Err(invalid(
                    MEM_SWAP,
                    s,
                    "a memory+swap limit needs a memory limit (linux.resources.memory.limit > 0)",
                ));
            }
        }
    }
    if limit == Some(-1) && swap.is_none() && cur.swap_accounting {
        // runc: unlimited memory without a swap value means unlimited memory+swap too, else
        // the kernel refuses a memory limit above the current memory+swap limit.
        swap = Some(-1);
    }
    Ok(Some(Memory {
        limit,
        reservation,
        swap,
    }))
}

/// Validates a cpuset list such as `0-3,7` (cpuset(7) "List format").
fn cpuset_list(field: &'static str, v: &str) -> Result<String, CgroupError> {
    let t = v.trim();
    let ok = t.split(',').all(|item| {
        let item = item.trim();
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            (Ok(a), Ok(b)) => a <= b,
            _ => false,
        }
    });
    if ok {
        Ok(t.to_owned())
    } else {
        Err(invalid(field, v, "must be a cpuset list such as 0-3,7"))
    }
}

/// The cpuset values, validated, empty strings dropped.
fn cpuset(r: &LinuxResources) -> Result<(Option<String>, Option<String>), CgroupError> {
    let Some(c) = r.cpu() else {
        return Ok((None, None));
    };
    let cpus = c.cpus().as_deref().filter(|s| !s.trim().is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.trim().is_empty());
    Ok((
        cpus.map(|v| cpuset_list(CPU_CPUS, v)).transpose()?,
        mems.map(|v| cpuset_list(CPU_MEMS, v)).transpose()?,
    ))
}

/// CPU shares (v1 relative weight, 2..=262144), quota and period (microseconds).
struct Cpu {
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
}

fn cpu(r: &LinuxResources) -> Result<Option<Cpu>, CgroupError> {
    let Some(c) = r.cpu() else { return Ok(None) };
    let shares = match c.shares() {
        Some(0) | None => None,
        Some(s @ 2..=262_144) => Some(s),
        Some(s) => return Err(invalid(CPU_SHARES, s, "must be 2..=262144 (CPU shares)")),
    };
    let quota = match c.quota() {
        Some(0) | None => None,
        Some(-1) => Some(-1),
        Some(q) if q >= 1000 => Some(q),
        Some(q) => {
            return Err(invalid(
                CPU_QUOTA,
                q,
                "must be -1 (unlimited) or at least 1000 microseconds",
            ));
        }
    };
    let period = match c.period() {
        Some(0) | None => None,
        Some(p @ 1000..=1_000_000) => Some(p),
        Some(p) => {
            return Err(invalid(
                CPU_PERIOD,
                p,
                "must be 1000..=1000000 microseconds (1 ms to 1 s)",
            ));
        }
    };
    Ok(Some(Cpu {
        shares,
        quota,
        period,
    }))
}

fn pids_max(r: &LinuxResources) -> Option<String> {
    r.pids().map(|p| {
        if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_owned()
        }
    })
}

fn blkio_weight(field: &'static str, v: Option<u16>) -> Result<Option<u16>, CgroupError> {
    match v {
        Some(0) | None => Ok(None),
        Some(w @ 10..=1000) => Ok(Some(w)),
        Some(w) => Err(invalid(field, w, "must be 10..=1000")),
    }
}

fn device(field: &'static str, major: i64, minor: i64) -> Result<String, CgroupError> {
    match (u32::try_from(major), u32::try_from(minor)) {
        (Ok(a), Ok(b)) => Ok(format!("{a}:{b}")),
        _ => Err(invalid(
            field,
            format!("{major}:{minor}"),
            "major and minor must be device numbers >= 0",
        )),
    }
}

/// One checked entry of `linux.resources.devices`: the v1 line and the file it goes to.
struct DeviceRule {
    allow: bool,
    /// `TYPE MAJOR:MINOR ACCESS`, e.g. `c 1:3 rwm`, `a *:* rwm`, `c 136:* rw`.
    line: String,
}

fn device_line(typ: char, major: Option<u32>, minor: Option<u32>, access: &str) -> String {
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
    format!("{typ} {}:{} {access}", num(major), num(minor))
}

fn device_rule(index: usize, d: &LinuxDeviceCgroup) -> Result<DeviceRule, CgroupError> {
    let bad = |reason| CgroupError::InvalidDeviceRule {
        index,
        rule: serde_json::to_string(d).unwrap_or_else(|_| format!("{d:?}")),
        reason,
    };
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::C) => 'c',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::U | LinuxDeviceType::P) => {
            return Err(bad(
                "type must be a (all), c (char) or b (block); the devices cgroup knows no other",
            ));
        }
    };
    let num = |n: Option<i64>| match n {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            bad("major and minor must be device numbers >= 0, or unset (null) for any")
        }),
    };
    let (major, minor) = (num(d.major())?, num(d.minor())?);
    let access = d.access().as_deref().unwrap_or("");
    if access.is_empty() {
        return Err(bad("access must not be empty: give some of r, w and m"));
    }
    let mut seen = String::new();
    for c in access.chars() {
        if !matches!(c, 'r' | 'w' | 'm') || seen.contains(c) {
            return Err(bad(
                "access must be made of r (read), w (write) and m (mknod), each at most once",
            ));
        }
        seen.push(c);
    }
    if typ == 'a' {
        if major.is_some() || minor.is_some() {
            return Err(bad(
                "type a (all devices) takes no major or minor: the kernel would ignore them and match every device",
            ));
        }
        if access.len() != 3 {
            return Err(bad(
                "type a (all devices) needs access rwm: the kernel switches every access at once",
            ));
        }
    }
    Ok(DeviceRule {
        allow: d.allow(),
        line: device_line(typ, major, minor, access),
    })
}

/// The device allowlist, every entry checked, in list order.
fn device_rules(r: &LinuxResources) -> Result<Vec<DeviceRule>, CgroupError> {
    let list = r.devices().as_deref().unwrap_or(&[]);
    list.iter()
        .enumerate()
        .map(|(i, d)| device_rule(i, d))
        .collect()
}

/// The four throttle lists with their field, v1 file and v2 io.max key, in that order.
fn throttles(
    r: &LinuxResources,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &[LinuxThrottleDevice],
)> {
    let Some(b) = r.block_io() else {
        return Vec::new();
    };
    fn list(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or(&[])
    }
    vec![
        (
            THROTTLE_READ_BPS,
            "blkio.throttle.read_bps_device",
            "rbps",
            list(b.throttle_read_bps_device()),
        ),
        (
            THROTTLE_WRITE_BPS,
            "blkio.throttle.write_bps_device",
            "wbps",
            list(b.throttle_write_bps_device()),
        ),
        (
            THROTTLE_READ_IOPS,
            "blkio.throttle.read_iops_device",
            "riops",
            list(b.throttle_read_iops_device()),
        ),
        (
            THROTTLE_WRITE_IOPS,
            "blkio.throttle.write_iops_device",
            "wiops",
            list(b.throttle_write_iops_device()),
        ),
    ]
}

/// cgroup v1 writes for `r`, in order: cpuset, devices, memory, cpu, pids, blkio (runc's
/// order).
///
/// Devices: the spec's entries in list order to `devices.deny` or `devices.allow`, then
/// rwasm's default devices to `devices.allow`, when the list is non-empty (see the module
/// documentation).
///
/// Memory ordering: the kernel keeps `memory.memsw.limit_in_bytes` ≥
/// `memory.limit_in_bytes` at every moment, so when both are set the memory+swap limit is
/// written first if it is -1 or above the current memory limit (raising), and second
/// otherwise (lowering, and every fresh cgroup, whose limits are unlimited) — runc's rule,
/// which is valid for every pair of old and new values.
pub fn v1_writes(r: &LinuxResources, cur: &Current) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    let (cpus, mems) = cpuset(r)?;
    if let Some(v) = cpus {
        out.push(w("cpuset", "cpuset.cpus", v, CPU_CPUS));
    }
    if let Some(v) = mems {
        out.push(w("cpuset", "cpuset.mems", v, CPU_MEMS));
    }

    let devices = device_rules(r)?;
    if !devices.is_empty() {
        for d in devices {
            let file = if d.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            out.push(w("devices", file, d.line, DEVICES));
        }
        for (typ, major, minor) in DEFAULT_DEVICES {
            out.push(w(
                "devices",
                "devices.allow",
                device_line(typ, Some(major), minor, "rwm"),
                DEVICES_DEFAULT,
            ));
        }
    }

    if let Some(m) = memory(r, cur)? {
        let limit = m
            .limit
            .map(|v| w("memory", "memory.limit_in_bytes", v.to_string(), MEM_LIMIT));
        let memsw = m.swap.map(|v| {
            w(
                "memory",
                "memory.memsw.limit_in_bytes",
                v.to_string(),
                MEM_SWAP,
            )
        });
        let swap_first = match m.swap {
            Some(-1) => true,
            Some(s) => cur
                .memory_limit
                .is_some_and(|c| u64::try_from(s).is_ok_and(|s| c < s)),
            None => false,
        };
        if swap_first {
            out.extend(memsw);
            out.extend(limit);
        } else {
            out.extend(limit);
            out.extend(memsw);
        }
        if let Some(v) = m.reservation {
            out.push(w(
                "memory",
                "memory.soft_limit_in_bytes",
                v.to_string(),
                MEM_RESERVATION,
            ));
        }
    }
    if let Some(mem) = r.memory() {
        match mem.swappiness() {
            Some(s @ 0..=100) => out.push(w(
                "memory",
                "memory.swappiness",
                s.to_string(),
                MEM_SWAPPINESS,
            )),
            Some(s) => return Err(invalid(MEM_SWAPPINESS, s, "must be 0..=100")),
            None => {}
        }
        if let Some(d) = mem.disable_oom_killer() {
            out.push(w(
                "memory",
                "memory.oom_control",
                if d { "1" } else { "0" },
                MEM_OOM,
            ));
        }
    }

    if let Some(c) = cpu(r)? {
        if let Some(s) = c.shares {
            out.push(w("cpu", "cpu.shares", s.to_string(), CPU_SHARES));
        }
        if let Some(p) = c.period {
            out.push(w("cpu", "cpu.cfs_period_us", p.to_string(), CPU_PERIOD));
        }
        if let Some(q) = c.quota {
            out.push(w("cpu", "cpu.cfs_quota_us", q.to_string(), CPU_QUOTA));
        }
    }

    if let Some(v) = pids_max(r) {
        out.push(w("pids", "pids.max", v, PIDS_LIMIT));
    }
    for (size, limit) in hugepage_limits(r)? {
        let file = format!("hugetlb.{size}.limit_in_bytes");
        out.push(w("hugetlb", file, limit.to_string(), HUGEPAGE_LIMITS));
    }

    if let Some(b) = r.block_io() {
        if let Some(v) = blkio_weight(BLKIO_WEIGHT, b.weight())? {
            out.push(w("blkio", "blkio.weight", v.to_string(), BLKIO_WEIGHT));
        }
        if let Some(v) = blkio_weight(BLKIO_LEAF_WEIGHT, b.leaf_weight())? {
            out.push(w(
                "blkio",
                "blkio.leaf_weight",
                v.to_string(),
                BLKIO_LEAF_WEIGHT,
            ));
        }
        for d in b.weight_device().as_deref().unwrap_or(&[]) {
            let dev = device(BLKIO_WEIGHT_DEVICE, d.major(), d.minor())?;
            if let Some(v) = blkio_weight(BLKIO_WEIGHT_DEVICE, d.weight())? {
                out.push(w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{dev} {v}"),
                    BLKIO_WEIGHT_DEVICE,
                ));
            }
            if let Some(v) = blkio_weight(BLKIO_WEIGHT_DEVICE, d.leaf_weight())? {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{dev} {v}"),
                    BLKIO_WEIGHT_DEVICE,
                ));
            }
        }
    }
    for (field, file, _, list) in throttles(r) {
        for t in list {
            // v1: a rate of 0 removes the device's limit.
            let dev = device(field, t.major(), t.minor())?;
            out.push(w("blkio", file, format!("{dev} {}", t.rate()), field));
        }
    }
    Ok(out)
}

/// runc's `ConvertCPUSharesToCgroupV2Value`: v1 shares 2..=262144 to v2 weight 1..=10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's `ConvertBlkIOToIOWeightValue`: v1 blkio weight 10..=1000 to v2 io.weight 1..=10000.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

fn max_or(v: i64) -> String {
    if v == -1 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// cgroup v2 writes for `r` (cgroup-v2.rst), in order: cpuset, memory, cpu, pids, io.
///
/// The device allowlist is validated as on v1 but not translated: v2 needs an eBPF
/// program for it (see the module documentation).
pub fn v2_writes(r: &LinuxResources, cur: &Current) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    device_rules(r)?;
    let (cpus, mems) = cpuset(r)?;
    if let Some(v) = cpus {
        out.push(w("cpuset", "cpuset.cpus", v, CPU_CPUS));
    }
    if let Some(v) = mems {
        out.push(w("cpuset", "cpuset.mems", v, CPU_MEMS));
    }

    if let Some(m) = memory(r, cur)? {
        // v2 limits are independent; runc's order: swap, max, low.
        if let Some(s) = m.swap {
            let v = match (s, m.limit) {
                (-1, _) => "max".to_owned(),
                (s, Some(l)) => (s - l).to_string(), // validated: s >= l > 0
                (s, None) => s.to_string(),          // unreachable after validation
            };
            out.push(w("memory", "memory.swap.max", v, MEM_SWAP));
        }
        if let Some(l) = m.limit {
            out.push(w("memory", "memory.max", max_or(l), MEM_LIMIT));
        }
        if let Some(v) = m.reservation {
            out.push(w("memory", "memory.low", max_or(v), MEM_RESERVATION));
        }
    }

    if let Some(c) = cpu(r)? {
        if let Some(s) = c.shares {
            out.push(w(
                "cpu",
                "cpu.weight",
                shares_to_weight(s).to_string(),
                CPU_SHARES,
            ));
        }
        if c.quota.is_some() || c.period.is_some() {
            let mut v = match c.quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_owned(),
            };
            if let Some(p) = c.period {
                v = format!("{v} {p}");
            }
            let field = if c.quota.is_some() {
                CPU_QUOTA
            } else {
                CPU_PERIOD
            };
            out.push(w("cpu", "cpu.max", v, field));
        }
    }

    if let Some(v) = pids_max(r) {
        out.push(w("pids", "pids.max", v, PIDS_LIMIT));
    }
    for (size, limit) in hugepage_limits(r)? {
        let file = format!("hugetlb.{size}.max");
        out.push(w("hugetlb", file, limit.to_string(), HUGEPAGE_LIMITS));
    }

    if let Some(b) = r.block_io() {
        if let Some(v) = blkio_weight(BLKIO_WEIGHT, b.weight())? {
            out.push(w(
                "io",
                "io.weight",
                format!("default {}", blkio_to_io_weight(v)),
                BLKIO_WEIGHT,
            ));
        }
        blkio_weight(BLKIO_LEAF_WEIGHT, b.leaf_weight())?;
        for d in b.weight_device().as_deref().unwrap_or(&[]) {
            let dev = device(BLKIO_WEIGHT_DEVICE, d.major(), d.minor())?;
            blkio_weight(BLKIO_WEIGHT_DEVICE, d.leaf_weight())?;
            if let Some(v) = blkio_weight(BLKIO_WEIGHT_DEVICE, d.weight())? {
                out.push(w(
                    "io",
                    "io.weight",
                    format!("{dev} {}", blkio_to_io_weight(v)),
                    BLKIO_WEIGHT_DEVICE,
                ));
            }
        }
    }
    // io.max: one line per device with every key given for it, in first-seen order.
    let mut lines: Vec<(String, Vec<String>, &'static str)> = Vec::new();
    for (field, _, key, list) in throttles(r) {
        for t in list {
            let dev = device(field, t.major(), t.minor())?;
            // io.max rejects 0 (ERANGE); v1's 0 means "no limit", which is `max` here.
            let rate = if t.rate() == 0 {
                "max".to_owned()
            } else {
                t.rate().to_string()
            };
            let kv = format!("{key}={rate}");
            match lines.iter_mut().find(|(d, _, _)| *d == dev) {
                Some((_, kvs, _)) => kvs.push(kv),
                None => lines.push((dev, vec![kv], field)),
            }
        }
    }
    for (dev, kvs, field) in lines {
        out.push(w("io", "io.max", format!("{dev} {}", kvs.join(" ")), field));
    }
    Ok(out)
}

/// The `linux.resources` fields present in `r` that this module does not apply on cgroup
/// v1 (`v2 == false`) or v2. The managers log them at warn level rather than fail, since
/// engines routinely send some of them (e.g. `devices` on v2, applied on v1 only).
#[allow(
    deprecated,
    reason = "memory.kernel is deprecated in the spec and only reported here"
)]
pub fn unapplied_fields(r: &LinuxResources, v2: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if v2 && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        out.push(DEVICES);
    }
    if let Some(m) = r.memory() {
        if m.kernel().is_some() {
            out.push("linux.resources.memory.kernel");
        }
        if m.kernel_tcp().is_some() {
            out.push("linux.resources.memory.kernelTCP");
        }
        if v2 && m.swappiness().is_some() {
            out.push(MEM_SWAPPINESS);
        }
        if v2 && m.disable_oom_killer().is_some() {
            out.push(MEM_OOM);
        }
        if m.use_hierarchy().is_some() {
            out.push("linux.resources.memory.useHierarchy");
        }
        if m.check_before_update().is_some() {
            out.push("linux.resources.memory.checkBeforeUpdate");
        }
    }
    if let Some(c) = r.cpu() {
        if c.idle().is_some() {
            out.push("linux.resources.cpu.idle");
        }
        if c.burst().is_some() {
            out.push("linux.resources.cpu.burst");
        }
        if c.realtime_runtime().is_some() {
            out.push("linux.resources.cpu.realtimeRuntime");
        }
        if c.realtime_period().is_some() {
            out.push("linux.resources.cpu.realtimePeriod");
        }
    }
    if let Some(b) = r.block_io() {
        let leaf = b.leaf_weight().is_some()
            || b.weight_device()
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|d| d.leaf_weight().is_some());
        if v2 && leaf {
            out.push(BLKIO_LEAF_WEIGHT);
        }
    }
    if r.network().is_some() {
        out.push("linux.resources.network");
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("linux.resources.rdma");
    }
    if r.unified().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("linux.resources.unified");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    const FRESH: Current = Current {
        memory_limit: None,
        swap_accounting: true,
    };

    fn triples(ws: &[Write]) -> Vec<(&str, &str, &str)> {
        ws.iter()
            .map(|w| (w.controller, &*w.file, w.value.as_str()))
            .collect()
    }

    fn full() -> LinuxResources {
        res(json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 20},
            "blockIO": {
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
            }
        }))
    }

    #[test]
    fn v1_every_field_in_order() {
        let ws = v1_writes(&full(), &FRESH).unwrap();
        assert_eq!(
            triples(&ws),
            [
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("cpu", "cpu.shares", "512"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("pids", "pids.max", "20"),
                ("blkio", "blkio.weight", "500"),
                ("blkio", "blkio.weight_device", "8:0 300"),
                ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio", "blkio.throttle.write_bps_device", "8:0 2097152"),
                ("blkio", "blkio.throttle.read_iops_device", "8:16 100"),
                ("blkio", "blkio.throttle.write_iops_device", "8:0 200"),
            ]
        );
        assert_eq!(ws[2].field, "linux.resources.memory.limit");
        assert_eq!(ws[3].field, "linux.resources.memory.swap");
        assert_eq!(
            ws[14].field,
            "linux.resources.blockIO.throttleWriteIOPSDevice"
        );
    }

    #[test]
    fn v2_every_field_in_order() {
        let ws = v2_writes(&full(), &FRESH).unwrap();
        assert_eq!(
            triples(&ws),
            [
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
                ("memory", "memory.swap.max", "67108864"),
                ("memory", "memory.max", "67108864"),
                ("memory", "memory.low", "33554432"),
                ("cpu", "cpu.weight", "20"),
                ("cpu", "cpu.max", "50000 100000"),
                ("pids", "pids.max", "20"),
                ("io", "io.weight", "default 4950"),
                ("io", "io.weight", "8:0 2930"),
                ("io", "io.max", "8:0 rbps=1048576 wbps=2097152 wiops=200"),
                ("io", "io.max", "8:16 riops=100"),
            ]
        );
    }

    #[test]
    fn v2_conversions_match_runc() {
        // runc's ConvertCPUSharesToCgroupV2Value and ConvertBlkIOToIOWeightValue.
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn v1_memory_order_raising_and_lowering() {
        let r = res(json!({"memory": {"limit": 268435456, "swap": 536870912}}));
        // Raising from a 64 MiB limit: memory+swap first.
        let cur = Current {
            memory_limit: Some(64 << 20),
            swap_accounting: true,
        };
        let ws = v1_writes(&r, &cur).unwrap();
        assert_eq!(ws[0].file, "memory.memsw.limit_in_bytes");
        assert_eq!(ws[1].file, "memory.limit_in_bytes");
        // Lowering from 1 GiB: memory first.
        let cur = Current {
            memory_limit: Some(1 << 30),
            swap_accounting: true,
        };
        let ws = v1_writes(&r, &cur).unwrap();
        assert_eq!(ws[0].file, "memory.limit_in_bytes");
        assert_eq!(ws[1].file, "memory.memsw.limit_in_bytes");
        // Fresh cgroup (unlimited): memory first.
        let ws = v1_writes(&r, &FRESH).unwrap();
        assert_eq!(ws[0].file, "memory.limit_in_bytes");
        // Unlimited swap: memory+swap first whatever the current limit.
        let r = res(json!({"memory": {"limit": 268435456, "swap": -1}}));
        let ws = v1_writes(&r, &FRESH).unwrap();
        assert_eq!(
            triples(&ws)[0],
            ("memory", "memory.memsw.limit_in_bytes", "-1")
        );
        assert_eq!(
            triples(&ws)[1],
            ("memory", "memory.limit_in_bytes", "268435456")
        );
    }

    #[test]
    fn unlimited_values() {
        let r = res(json!({
            "memory": {"limit": -1, "reservation": -1},
            "cpu": {"quota": -1, "period": 100000},
            "pids": {"limit": -1}
        }));
        assert_eq!(
            triples(&v1_writes(&r, &FRESH).unwrap()),
            [
                ("memory", "memory.memsw.limit_in_bytes", "-1"),
                ("memory", "memory.limit_in_bytes", "-1"),
                ("memory", "memory.soft_limit_in_bytes", "-1"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "-1"),
                ("pids", "pids.max", "max"),
            ]
        );
        assert_eq!(
            triples(&v2_writes(&r, &FRESH).unwrap()),
            [
                ("memory", "memory.swap.max", "max"),
                ("memory", "memory.max", "max"),
                ("memory", "memory.low", "max"),
                ("cpu", "cpu.max", "max 100000"),
                ("pids", "pids.max", "max"),
            ]
        );
        // Without swap accounting, an unlimited memory limit does not touch swap files.
        let no_swap = Current {
            memory_limit: None,
            swap_accounting: false,
        };
        let r = res(json!({"memory": {"limit": -1}, "pids": {"limit": 0}}));
        assert_eq!(
            triples(&v1_writes(&r, &no_swap).unwrap()),
            [
                ("memory", "memory.limit_in_bytes", "-1"),
                ("pids", "pids.max", "max")
            ]
        );
    }

    #[test]
    fn zero_means_unset_and_empty_resources_write_nothing() {
        let r = res(json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": " "},
            "blockIO": {"weight": 0}
        }));
        assert!(v1_writes(&r, &FRESH).unwrap().is_empty());
        assert!(v2_writes(&r, &FRESH).unwrap().is_empty());
        assert!(
            v1_writes(&LinuxResources::default(), &FRESH)
                .unwrap()
                .is_empty()
        );
        assert!(
            v2_writes(&LinuxResources::default(), &FRESH)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn v2_cpu_max_forms() {
        let only_quota = res(json!({"cpu": {"quota": 25000}}));
        assert_eq!(
            triples(&v2_writes(&only_quota, &FRESH).unwrap()),
            [("cpu", "cpu.max", "25000")]
        );
        let only_period = res(json!({"cpu": {"period": 50000}}));
        let ws = v2_writes(&only_period, &FRESH).unwrap();
        assert_eq!(triples(&ws), [("cpu", "cpu.max", "max 50000")]);
        assert_eq!(ws[0].field, "linux.resources.cpu.period");
    }

    #[test]
    fn v2_throttle_zero_is_max() {
        let r = res(
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 0}]}}),
        );
        assert_eq!(
            triples(&v2_writes(&r, &FRESH).unwrap()),
            [("io", "io.max", "254:0 rbps=max")]
        );
        assert_eq!(
            triples(&v1_writes(&r, &FRESH).unwrap()),
            [("blkio", "blkio.throttle.read_bps_device", "254:0 0")]
        );
    }

    #[test]
    fn v1_only_fields() {
        let r = res(
            json!({"memory": {"swappiness": 10, "disableOOMKiller": true}, "blockIO": {"leafWeight": 100}}),
        );
        assert_eq!(
            triples(&v1_writes(&r, &FRESH).unwrap()),
            [
                ("memory", "memory.swappiness", "10"),
                ("memory", "memory.oom_control", "1"),
                ("blkio", "blkio.leaf_weight", "100"),
            ]
        );
        assert!(v2_writes(&r, &FRESH).unwrap().is_empty());
        assert_eq!(
            unapplied_fields(&r, true),
            [MEM_SWAPPINESS, MEM_OOM, BLKIO_LEAF_WEIGHT]
        );
        assert!(unapplied_fields(&r, false).is_empty());
    }

    #[test]
    fn unapplied_fields_are_listed() {
        let r = res(json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"kernel": 1000},
            "cpu": {"realtimeRuntime": 1000, "burst": 10},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1048576}],
            "unified": {"memory.high": "1000000"}
        }));
        assert_eq!(
            unapplied_fields(&r, false),
            [
                "linux.resources.memory.kernel",
                "linux.resources.cpu.burst",
                "linux.resources.cpu.realtimeRuntime",
                "linux.resources.unified",
            ]
        );
        assert_eq!(unapplied_fields(&r, true)[0], "linux.resources.devices");
        let empty = res(json!({"devices": []}));
        assert!(unapplied_fields(&empty, true).is_empty());
    }

    #[test]
    fn hugepage_limits_per_page_size() {
        let r = res(json!({"hugepageLimits": [
            {"pageSize": "2MB", "limit": 4194304},
            {"pageSize": "1GB", "limit": 0}
        ]}));
        assert_eq!(
            triples(&v1_writes(&r, &FRESH).unwrap()),
            [
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                ("hugetlb", "hugetlb.1GB.limit_in_bytes", "0"),
            ]
        );
        assert_eq!(
            triples(&v2_writes(&r, &FRESH).unwrap()),
            [
                ("hugetlb", "hugetlb.2MB.max", "4194304"),
                ("hugetlb", "hugetlb.1GB.max", "0"),
            ]
        );
        assert!(unapplied_fields(&r, false).is_empty());
        for bad in ["2M", "MB", "../2MB", "2 MB", "2mb", ""] {
            let r = res(json!({"hugepageLimits": [{"pageSize": bad, "limit": 1}]}));
            let e = v1_writes(&r, &FRESH).unwrap_err().to_string();
            assert!(e.contains("linux.resources.hugepageLimits"), "{bad}: {e}");
            assert!(v2_writes(&r, &FRESH).is_err(), "{bad}");
        }
    }

    /// Docker's and podman's default: deny all, then the allowed devices.
    fn docker_like() -> LinuxResources {
        res(json!({
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "access": "r"},
                {"allow": true, "type": "c", "minor": 1, "access": "mw"},
                {"allow": false, "type": "c", "major": 1, "minor": 9, "access": "w"},
                {"allow": true, "type": "a", "access": "mrw"}
            ],
            "pids": {"limit": 5}
        }))
    }

    const DEFAULTS: [&str; 8] = [
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
    ];

    #[test]
    fn v1_devices_deny_all_then_list_order_then_defaults() {
        let ws = v1_writes(&docker_like(), &FRESH).unwrap();
        let mut want = vec![
            ("devices", "devices.deny", "a *:* rwm"),
            ("devices", "devices.allow", "c 10:200 rwm"),
            ("devices", "devices.allow", "b 8:* r"),
            ("devices", "devices.allow", "c *:1 mw"),
            ("devices", "devices.deny", "c 1:9 w"),
            ("devices", "devices.allow", "a *:* mrw"),
        ];
        want.extend(DEFAULTS.iter().map(|l| ("devices", "devices.allow", *l)));
        want.push(("pids", "pids.max", "5"));
        assert_eq!(triples(&ws), want);
        assert!(ws[..6].iter().all(|w| w.field == "linux.resources.devices"));
        assert!(
            ws[6..14]
                .iter()
                .all(|w| w.field == "linux.resources.devices (rwasm's default devices)")
        );
        // Devices come right after cpuset, as in runc.
        let r = res(json!({
            "cpu": {"cpus": "0", "shares": 512},
            "devices": [{"allow": false, "access": "rwm"}]
        }));
        let ws = v1_writes(&r, &FRESH).unwrap();
        assert_eq!(triples(&ws)[0], ("cpuset", "cpuset.cpus", "0"));
        assert_eq!(triples(&ws)[1], ("devices", "devices.deny", "a *:* rwm"));
        assert_eq!(triples(&ws)[10], ("cpu", "cpu.shares", "512"));
    }

    #[test]
    fn devices_absent_or_empty_write_nothing_and_v2_writes_none() {
        for r in [json!({}), json!({"devices": []})] {
            assert!(
                v1_writes(&res(r.clone()), &FRESH).unwrap().is_empty(),
                "{r}"
            );
        }
        assert_eq!(
            triples(&v2_writes(&docker_like(), &FRESH).unwrap()),
            [("pids", "pids.max", "5")]
        );
    }

    #[test]
    fn invalid_device_entries_name_the_index() {
        let cases = [
            (
                json!({"allow": true, "type": "a", "major": 1, "access": "rwm"}),
                "takes no major",
            ),
            (
                json!({"allow": true, "type": "a", "minor": 3, "access": "rwm"}),
                "takes no major",
            ),
            (
                json!({"allow": false, "major": 1, "minor": 3, "access": "rwm"}),
                "takes no major",
            ),
            (json!({"allow": true, "access": "r"}), "needs access rwm"),
            (
                json!({"allow": true, "type": "u", "major": 1, "access": "rwm"}),
                "type must be",
            ),
            (
                json!({"allow": true, "type": "p", "access": "rwm"}),
                "type must be",
            ),
            (
                json!({"allow": true, "type": "c", "major": 1, "minor": 3}),
                "must not be empty",
            ),
            (
                json!({"allow": true, "type": "c", "major": 1, "access": ""}),
                "must not be empty",
            ),
            (
                json!({"allow": true, "type": "c", "major": 1, "access": "rwx"}),
                "made of r",
            ),
            (
                json!({"allow": true, "type": "c", "major": 1, "access": "rr"}),
                "at most once",
            ),
            (
                json!({"allow": true, "type": "c", "major": 1, "access": "RWM"}),
                "made of r",
            ),
            (
                json!({"allow": true, "type": "b", "major": -1, "access": "r"}),
                ">= 0",
            ),
            (
                json!({"allow": true, "type": "b", "major": 8, "minor": 4294967296_i64, "access": "r"}),
                ">= 0",
            ),
        ];
        for (entry, want) in cases {
            let r = res(json!({"devices": [{"allow": false, "access": "rwm"}, entry.clone()]}));
            let e1 = v1_writes(&r, &FRESH).unwrap_err();
            let e2 = v2_writes(&r, &FRESH).unwrap_err();
            assert_eq!(e1.to_string(), e2.to_string(), "v1 and v2 validate alike");
            let CgroupError::InvalidDeviceRule { index, .. } = &e1 else {
                panic!("{entry}: unexpected {e1}")
            };
            assert_eq!(*index, 1, "{e1}");
            let msg = e1.to_string();
            assert!(
                msg.starts_with("invalid linux.resources.devices[1] {"),
                "{msg}"
            );
            assert!(msg.contains(want), "{entry}: {msg}");
        }
        let r =
            res(json!({"devices": [{"allow": true, "type": "a", "major": 1, "access": "rwm"}]}));
        assert_eq!(
            v1_writes(&r, &FRESH).unwrap_err().to_string(),
            "invalid linux.resources.devices[0] {\"allow\":true,\"type\":\"a\",\"major\":1,\"access\":\"rwm\"}: \
             type a (all devices) takes no major or minor: the kernel would ignore them and match every device"
        );
    }

    fn err_field(r: serde_json::Value) -> (String, String) {
        let r = res(r);
        let e1 = v1_writes(&r, &FRESH).unwrap_err();
        let e2 = v2_writes(&r, &FRESH).unwrap_err();
        assert_eq!(e1.to_string(), e2.to_string(), "v1 and v2 validate alike");
        match e1 {
            CgroupError::InvalidResource { field, .. } => (field.to_owned(), e1.to_string()),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn invalid_values_name_the_spec_field() {
        let cases = [
            (json!({"memory": {"limit": -2}}), MEM_LIMIT),
            (json!({"memory": {"reservation": -5}}), MEM_RESERVATION),
            (json!({"memory": {"limit": 100, "swap": 50}}), MEM_SWAP),
            (json!({"memory": {"swap": 500}}), MEM_SWAP),
            (json!({"memory": {"limit": -1, "swap": 500}}), MEM_SWAP),
            (json!({"memory": {"swap": -7}}), MEM_SWAP),
            (json!({"cpu": {"shares": 1}}), CPU_SHARES),
            (json!({"cpu": {"shares": 262145}}), CPU_SHARES),
            (json!({"cpu": {"quota": 999}}), CPU_QUOTA),
            (json!({"cpu": {"quota": -2}}), CPU_QUOTA),
            (json!({"cpu": {"period": 999}}), CPU_PERIOD),
            (json!({"cpu": {"period": 1000001}}), CPU_PERIOD),
            (json!({"cpu": {"cpus": "0-x"}}), CPU_CPUS),
            (json!({"cpu": {"cpus": "3-1"}}), CPU_CPUS),
            (json!({"cpu": {"mems": "0,,1"}}), CPU_MEMS),
            (json!({"blockIO": {"weight": 5}}), BLKIO_WEIGHT),
            (json!({"blockIO": {"weight": 1001}}), BLKIO_WEIGHT),
            (json!({"blockIO": {"leafWeight": 2}}), BLKIO_LEAF_WEIGHT),
            (
                json!({"blockIO": {"weightDevice": [{"major": -1, "minor": 0, "weight": 100}]}}),
                BLKIO_WEIGHT_DEVICE,
            ),
            (
                json!({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": -1, "rate": 1}]}}),
                THROTTLE_READ_BPS,
            ),
            (
                json!({"blockIO": {"throttleWriteIOPSDevice": [{"major": -8, "minor": 0, "rate": 1}]}}),
                THROTTLE_WRITE_IOPS,
            ),
        ];
        for (r, want) in cases {
            let (field, msg) = err_field(r.clone());
            assert_eq!(field, want, "{r}: {msg}");
            assert!(msg.starts_with(&format!("invalid {want} ")), "{msg}");
        }
        let (_, msg) = err_field(json!({"cpu": {"period": 10}}));
        assert_eq!(
            msg,
            "invalid linux.resources.cpu.period \"10\": must be 1000..=1000000 microseconds (1 ms to 1 s)"
        );
    }
}
