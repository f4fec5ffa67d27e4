//! `resources`: `linux.resources` (runtime-spec `config-linux.md`, "Control groups"),
//! set where unset or tightened; also the clamping of a pending `rwasm update`.
//!
//! A plugin may set a field that is unset (absent, or 0 where runc reads 0 as unset) or
//! unlimited, or make a set one tighter or equal. Making it looser — a higher limit, a
//! larger CPU fraction, more CPUs or memory nodes, an unlimited value — is refused naming
//! the field (`resources.memory.limit`) unless the manifest grants `loosen-resources =
//! true`. Values and their rules:
//!
//! | field | valid values | tighter is |
//! |---|---|---|
//! | `memory.limit`, `memory.reservation`, `memory.swap` (memory+swap) | bytes > 0, or -1 unlimited; the resulting swap ≥ limit when both are finite | smaller |
//! | `cpu.shares` | 2..=262144 | smaller |
//! | `cpu.quota` | µs ≥ 1000, or -1 unlimited | a smaller fraction `quota / period` (period 100000 µs when unset) |
//! | `cpu.period` | 1000..=1000000 µs | compared with the quota, as above |
//! | `cpu.cpus`, `cpu.mems` | cpuset lists (`0-3,6`), numbers ≤ 4095 | a subset |
//! | `pids-limit` | > 0, or -1/0 unlimited | smaller |
//! | `block-io.weight` | 10..=1000 | smaller |
//! | `block-io.throttle-*` | per device `major:minor` (major ≤ 4095, minor ≤ 1048575); rate > 0, or 0 no limit | smaller |
//! | `hugepage-limits` | per page size `<N>KB`, `<N>MB`, `<N>GB`; bytes | smaller |
//!
//! At pre-create every field set is claimed (`linux.resources.memory.limit`, one claim per
//! throttled device and per page size), so two plugins setting one field conflict.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxResources,
    LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
};

use super::{
    BlockIoRequest, CpuRequest, Edit, MAX_LIST, MemoryRequest, PluginError, ResourcesRequest,
    ThrottleRequest,
};

/// `cpu.shares` of a cgroup that sets none (kernel `sched-design-CFS`, cgroup v1 cpu).
const DEFAULT_CPU_SHARES: u64 = 1024;
/// `blkio.weight` of a cgroup that sets none (kernel `blkio-controller.rst`, CFQ).
const DEFAULT_BLKIO_WEIGHT: u16 = 500;

/// The CFS period the kernel uses when none is set, in microseconds.
const DEFAULT_PERIOD_US: u64 = 100_000;
/// The largest CPU or memory node number a cpuset list may name.
const MAX_CPUSET_INDEX: u32 = 4095;

/// A limit as the tighten rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Not set: any value may be set.
    Unset,
    /// No limit: any value is tighter or equal.
    Unlimited,
    /// A finite limit.
    Finite(u128),
}

/// Checks that `new` does not loosen `current` (unless granted), claims `field` at
/// pre-create, and records the change.
fn tighten(
    e: &mut Edit<'_>,
    claim: bool,
    field: &str,
    current: Level,
    new: Level,
    shown: (String, String),
) -> Result<(), PluginError> {
    let (was, now) = shown;
    let loosens = match (current, new) {
        (Level::Unset | Level::Unlimited, _) => false,
        (Level::Finite(_), Level::Unlimited | Level::Unset) => true,
        (Level::Finite(c), Level::Finite(n)) => n > c,
    };
    if loosens && !e.rules.plugin.loosen_resources {
        return Err(e.invalid(
            field,
            format!(
                "{now} is looser than the current {was}: a plugin may only tighten resources unless the manifest grants `loosen-resources = true`"
            ),
        ));
    }
    if claim {
        e.claim(format!("linux.{field}"), field, false)?;
    }
    let how = match current {
        Level::Unset => format!("set {field} to {now}"),
        _ if loosens => format!("loosened {field} from {was} to {now} (granted)"),
        _ => format!("tightened {field} from {was} to {now}"),
    };
    e.did(how);
    Ok(())
}

fn shown(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "unset".to_string(), |v| v.to_string())
}

/// Applies `r` to `res`: at pre-create (`claim`) or to a pending update.
pub(crate) fn apply(
    e: &mut Edit<'_>,
    res: &mut LinuxResources,
    r: ResourcesRequest,
    claim: bool,
) -> Result<(), PluginError> {
    if let Some(m) = r.memory {
        let mut mem = (*res.memory()).unwrap_or_default();
        memory(e, claim, &mut mem, m)?;
        res.set_memory(Some(mem));
    }
    if let Some(c) = r.cpu {
        let mut cpu = res.cpu().clone().unwrap_or_default();
        cpu_fields(e, claim, &mut cpu, c)?;
        res.set_cpu(Some(cpu));
    }
    if let Some(n) = r.pids_limit {
        let level = |v: i64| {
            if v <= 0 {
                Level::Unlimited
            } else {
                Level::Finite(u128::from(v.unsigned_abs()))
            }
        };
        if n < -1 {
            return Err(e.invalid(
                "resources.pids.limit",
                format!("{n} is not a number of processes > 0, or -1 (unlimited)"),
            ));
        }
        let current = res.pids().as_ref().map(|p| p.limit());
        tighten(
            e,
            claim,
            "resources.pids.limit",
            current.map_or(Level::Unset, level),
            level(n),
            (shown(current), n.to_string()),
        )?;
        let mut pids = LinuxPids::default();
        pids.set_limit(n);
        res.set_pids(Some(pids));
    }
    if let Some(b) = r.block_io {
        let mut blkio = res.block_io().clone().unwrap_or_default();
        block_io(e, claim, &mut blkio, b)?;
        res.set_block_io(Some(blkio));
    }
    e.count(
        "resources.hugepage-limits",
        r.hugepage_limits.len(),
        MAX_LIST,
    )?;
    for (i, (size, limit)) in r.hugepage_limits.into_iter().enumerate() {
        let entry = format!("resources.hugepage-limits[{i}]");
        e.text(|| entry.clone(), &size)?;
        if !valid_page_size(&size) {
            return Err(e.invalid(
                format!("{entry}.page-size"),
                format!("`{size}` is not a page size such as 2MB or 1GB"),
            ));
        }
        let Ok(bytes) = i64::try_from(limit) else {
            return Err(e.invalid(
                format!("{entry}.limit"),
                format!("{limit} bytes is too large"),
            ));
        };
        let mut list = res.hugepage_limits().clone().unwrap_or_default();
        let current = list.iter().position(|h| *h.page_size() == size);
        let cur_level = current.map_or(Level::Unset, |j| {
            Level::Finite(u128::from(list[j].limit().unsigned_abs()))
        });
        let was = current.map(|j| list[j].limit());
        tighten(
            e,
            claim,
            &format!("resources.hugepageLimits {size}"),
            cur_level,
            Level::Finite(u128::from(limit)),
            (shown(was), limit.to_string()),
        )?;
        let mut h = LinuxHugepageLimit::default();
        h.set_page_size(size);
        h.set_limit(bytes);
        match current {
            Some(j) => list[j] = h,
            None => list.push(h),
        }
        res.set_hugepage_limits(Some(list));
    }
    Ok(())
}

/// `memory.limit`, `reservation` and `swap`: bytes, -1 unlimited, 0 (runc) unset.
fn memory(
    e: &mut Edit<'_>,
    claim: bool,
    mem: &mut LinuxMemory,
    m: MemoryRequest,
) -> Result<(), PluginError> {
    let level = |v: Option<i64>| match v {
        None | Some(0) => Level::Unset,
        Some(v) if v < 0 => Level::Unlimited,
        Some(v) => Level::Finite(u128::from(v.unsigned_abs())),
    };
    let fields: [(&str, Option<i64>, Option<i64>); 3] = [
        ("limit", mem.limit(), m.limit),
        ("reservation", mem.reservation(), m.reservation),
        ("swap", mem.swap(), m.swap),
    ];
    let mut values = [mem.limit(), mem.reservation(), mem.swap()];
    for (k, (name, current, new)) in fields.into_iter().enumerate() {
        let Some(n) = new else { continue };
        let field = format!("resources.memory.{name}");
        if n != -1 && n <= 0 {
            return Err(e.invalid(
                field,
                format!("{n} is not a number of bytes > 0, or -1 (unlimited)"),
            ));
        }
        tighten(
            e,
            claim,
            &field,
            level(current),
            level(Some(n)),
            (shown(current), n.to_string()),
        )?;
        values[k] = Some(n);
    }
    let [limit, reservation, swap] = values;
    if let (Some(l), Some(s)) = (limit, swap)
        && l > 0
        && s > 0
        && s < l
    {
        return Err(e.invalid(
            "resources.memory.swap",
            format!("memory+swap {s} is below the memory limit {l}: the kernel keeps memory+swap ≥ memory"),
        ));
    }
    mem.set_limit(limit);
    mem.set_reservation(reservation);
    mem.set_swap(swap);
    Ok(())
}

/// `cpu.*`.
fn cpu_fields(
    e: &mut Edit<'_>,
    claim: bool,
    cpu: &mut LinuxCpu,
    c: CpuRequest,
) -> Result<(), PluginError> {
    if let Some(n) = c.shares {
        if !(2..=262_144).contains(&n) {
            return Err(e.invalid(
                "resources.cpu.shares",
                format!("{n} is out of range 2..=262144"),
            ));
        }
        // Unset means the kernel's default weight, so a larger value is a loosening.
        let current = cpu
            .shares()
            .filter(|&s| s != 0)
            .or(Some(DEFAULT_CPU_SHARES));
        let cur = current.map_or(Level::Unset, |s| Level::Finite(u128::from(s)));
        tighten(
            e,
            claim,
            "resources.cpu.shares",
            cur,
            Level::Finite(u128::from(n)),
            (shown(current), n.to_string()),
        )?;
        cpu.set_shares(Some(n));
    }
    if let Some(q) = c.quota
        && q != -1
        && q < 1000
    {
        return Err(e.invalid(
            "resources.cpu.quota",
            format!("{q} µs is not a quota ≥ 1000, or -1 (unlimited)"),
        ));
    }
    if let Some(p) = c.period
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(e.invalid(
            "resources.cpu.period",
            format!("{p} µs is out of range 1000..=1000000"),
        ));
    }
    if c.quota.is_some() || c.period.is_some() {
        let old_q = cpu.quota().filter(|&q| q != 0);
        let old_p = cpu
            .period()
            .filter(|&p| p != 0)
            .unwrap_or(DEFAULT_PERIOD_US);
        let new_q = c.quota.or(old_q);
        let new_p = c
            .period
            .or(cpu.period().filter(|&p| p != 0))
            .unwrap_or(DEFAULT_PERIOD_US);
        // Compare quota/period fractions as quota × other period, in a common unit.
        let level = |q: Option<i64>, other_p: u64| match q {
            None => Level::Unset,
            Some(q) if q < 0 => Level::Unlimited,
            Some(q) => Level::Finite(u128::from(q.unsigned_abs()) * u128::from(other_p)),
        };
        let field = if c.quota.is_some() {
            "resources.cpu.quota"
        } else {
            "resources.cpu.period"
        };
        let was = format!("{}/{old_p} µs", shown(old_q));
        let now = format!("{}/{new_p} µs", shown(new_q));
        let cur = level(old_q, new_p);
        let new = match new_q {
            None => Level::Unset,
            q => level(q, old_p),
        };
        // A period set alone on an unset quota changes no limit.
        let new = if cur == Level::Unset {
            Level::Finite(0)
        } else {
            new
        };
        tighten(e, claim, field, cur, new, (was, now))?;
        if field == "resources.cpu.quota" && c.period.is_some() && claim {
            e.claim(
                "linux.resources.cpu.period".to_string(),
                "resources.cpu.period",
                false,
            )?;
        }
        cpu.set_quota(new_q);
        cpu.set_period(c.period.or(cpu.period()));
    }
    for (name, current, new) in [
        ("cpus", cpu.cpus().clone(), c.cpus.clone()),
        ("mems", cpu.mems().clone(), c.mems.clone()),
    ] {
        let Some(n) = new else { continue };
        let field = format!("resources.cpu.{name}");
        e.text(|| field.clone(), &n)?;
        let new_set = cpuset(&n).map_err(|reason| e.invalid(field.clone(), reason))?;
        let cur_set = match current.as_deref() {
            None | Some("") => None,
            Some(c) => cpuset(c).ok(),
        };
        // A subset is tighter: compare "not a subset" as looser.
        let (cur, lvl) = match &cur_set {
            None => (Level::Unset, Level::Finite(0)),
            Some(c) if new_set.is_subset(c) => (Level::Finite(1), Level::Finite(0)),
            Some(_) => (Level::Finite(0), Level::Finite(1)),
        };
        tighten(
            e,
            claim,
            &field,
            cur,
            lvl,
            (
                format!("`{}`", current.unwrap_or_default()),
                format!("`{n}`"),
            ),
        )?;
        if name == "cpus" {
            cpu.set_cpus(Some(n));
        } else {
            cpu.set_mems(Some(n));
        }
    }
    Ok(())
}

/// Parses a cpuset list (`0-3,6`) into its numbers.
fn cpuset(list: &str) -> Result<BTreeSet<u32>, String> {
    let bad =
        || format!("`{list}` is not a cpuset list such as `0-3,6` (numbers ≤ {MAX_CPUSET_INDEX})");
    let mut set = BTreeSet::new();
    if list.trim().is_empty() {
        return Err(bad());
    }
    for part in list.split(',') {
        let (a, b) = match part.trim().split_once('-') {
            Some((a, b)) => (a, b),
            None => (part.trim(), part.trim()),
        };
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || b > MAX_CPUSET_INDEX {
            return Err(bad());
        }
        set.extend(a..=b);
    }
    Ok(set)
}

fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// `block-io.*`.
fn block_io(
    e: &mut Edit<'_>,
    claim: bool,
    blkio: &mut LinuxBlockIo,
    b: BlockIoRequest,
) -> Result<(), PluginError> {
    if let Some(w) = b.weight {
        if !(10..=1000).contains(&w) {
            return Err(e.invalid(
                "resources.block-io.weight",
                format!("{w} is out of range 10..=1000"),
            ));
        }
        let current = blkio
            .weight()
            .filter(|&w| w != 0)
            .or(Some(DEFAULT_BLKIO_WEIGHT));
        let cur = current.map_or(Level::Unset, |c| Level::Finite(u128::from(c)));
        tighten(
            e,
            claim,
            "resources.blockIO.weight",
            cur,
            Level::Finite(u128::from(w)),
            (shown(current), w.to_string()),
        )?;
        blkio.set_weight(Some(w));
    }
    type Get = fn(&LinuxBlockIo) -> &Option<Vec<LinuxThrottleDevice>>;
    type Set = fn(&mut LinuxBlockIo, Option<Vec<LinuxThrottleDevice>>) -> &mut LinuxBlockIo;
    let lists: [(&str, &str, Vec<ThrottleRequest>, Get, Set); 4] = [
        (
            "throttle-read-bps",
            "throttleReadBpsDevice",
            b.throttle_read_bps,
            LinuxBlockIo::throttle_read_bps_device,
            LinuxBlockIo::set_throttle_read_bps_device,
        ),
        (
            "throttle-write-bps",
            "throttleWriteBpsDevice",
            b.throttle_write_bps,
            LinuxBlockIo::throttle_write_bps_device,
            LinuxBlockIo::set_throttle_write_bps_device,
        ),
        (
            "throttle-read-iops",
            "throttleReadIOPSDevice",
            b.throttle_read_iops,
            LinuxBlockIo::throttle_read_iops_device,
            LinuxBlockIo::set_throttle_read_iops_device,
        ),
        (
            "throttle-write-iops",
            "throttleWriteIOPSDevice",
            b.throttle_write_iops,
            LinuxBlockIo::throttle_write_iops_device,
            LinuxBlockIo::set_throttle_write_iops_device,
        ),
    ];
    for (wit_name, oci_name, requests, get, set) in lists {
        e.count(
            &format!("resources.block-io.{wit_name}"),
            requests.len(),
            MAX_LIST,
        )?;
        let mut list = get(blkio).clone().unwrap_or_default();
        for (i, (major, minor, rate)) in requests.into_iter().enumerate() {
            let entry = format!("resources.block-io.{wit_name}[{i}]");
            if !(0..=4095).contains(&major) || !(0..=1_048_575).contains(&minor) {
                return Err(e.invalid(
                    entry,
                    format!(
                        "{major}:{minor} is not a device number (major ≤ 4095, minor ≤ 1048575)"
                    ),
                ));
            }
            let level = |r: u64| {
                if r == 0 {
                    Level::Unlimited
                } else {
                    Level::Finite(u128::from(r))
                }
            };
            let at = list
                .iter()
                .position(|t| t.major() == major && t.minor() == minor);
            let was = at.map(|j| list[j].rate());
            let cur = was.map_or(Level::Unset, level);
            tighten(
                e,
                claim,
                &format!("resources.blockIO.{oci_name} {major}:{minor}"),
                cur,
                level(rate),
                (shown(was), rate.to_string()),
            )?;
            let t = LinuxThrottleDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .rate(rate)
                .build()
                .expect("every field set");
            match at {
                Some(j) => list[j] = t,
                None => list.push(t),
            }
        }
        if !list.is_empty() {
            set(blkio, Some(list));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{field, plugin, run};
    use super::super::{Adjustment, CpuRequest, MemoryRequest, ResourcesRequest};
    use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources, Spec};

    fn spec_with(res: LinuxResources) -> Spec {
        let mut s = Spec::default();
        s.linux_mut().as_mut().unwrap().set_resources(Some(res));
        s
    }

    fn mem_limit(limit: Option<i64>) -> LinuxResources {
        let mut m = LinuxMemory::default();
        m.set_limit(limit);
        let mut r = LinuxResources::default();
        r.set_memory(Some(m));
        r
    }

    fn ask(r: ResourcesRequest) -> Adjustment {
        Adjustment {
            resources: Some(r),
            ..Adjustment::default()
        }
    }

    fn memory(limit: i64) -> Adjustment {
        ask(ResourcesRequest {
            memory: Some(MemoryRequest {
                limit: Some(limit),
                ..MemoryRequest::default()
            }),
            ..ResourcesRequest::default()
        })
    }

    fn limit_of(s: &Spec) -> Option<i64> {
        s.linux()
            .as_ref()?
            .resources()
            .as_ref()?
            .memory()
            .as_ref()?
            .limit()
    }

    #[test]
    fn memory_may_be_set_or_tightened_but_not_loosened_without_the_grant() {
        let p = plugin("p", vec![]);
        let unset = Spec::default();
        assert_eq!(
            limit_of(&run(&p, memory(64 << 20), &unset).unwrap().spec),
            Some(64 << 20)
        );
        let set = spec_with(mem_limit(Some(128 << 20)));
        let out = run(&p, memory(64 << 20), &set).unwrap();
        assert_eq!(limit_of(&out.spec), Some(64 << 20));
        assert_eq!(
            out.applied[0].description,
            "tightened resources.memory.limit from 134217728 to 67108864"
        );
        assert_eq!(
            field(run(&p, memory(256 << 20), &set).unwrap_err()),
            "resources.memory.limit"
        );
        assert_eq!(
            field(run(&p, memory(-1), &set).unwrap_err()),
            "resources.memory.limit"
        );
        assert_eq!(
            field(run(&p, memory(0), &set).unwrap_err()),
            "resources.memory.limit"
        );
        let mut granted = plugin("p", vec![]);
        granted.loosen_resources = true;
        assert_eq!(
            limit_of(&run(&granted, memory(256 << 20), &set).unwrap().spec),
            Some(256 << 20)
        );
        // runc's 0 is unset: anything may be set.
        assert!(run(&p, memory(1 << 40), &spec_with(mem_limit(Some(0)))).is_ok());
        // -1 is unlimited: anything is tighter.
        assert!(run(&p, memory(1 << 30), &spec_with(mem_limit(Some(-1)))).is_ok());
    }

    #[test]
    fn swap_must_stay_above_the_limit() {
        let p = plugin("p", vec![]);
        let adj = ask(ResourcesRequest {
            memory: Some(MemoryRequest {
                limit: Some(64 << 20),
                swap: Some(32 << 20),
                ..MemoryRequest::default()
            }),
            ..ResourcesRequest::default()
        });
        assert_eq!(
            field(run(&p, adj, &Spec::default()).unwrap_err()),
            "resources.memory.swap"
        );
    }

    fn cpu(quota: Option<i64>, period: Option<u64>) -> Adjustment {
        ask(ResourcesRequest {
            cpu: Some(CpuRequest {
                quota,
                period,
                ..CpuRequest::default()
            }),
            ..ResourcesRequest::default()
        })
    }

    #[test]
    fn unset_shares_and_weight_count_as_the_kernel_default() {
        let p = plugin("p", vec![]);
        let shares = |n| {
            ask(ResourcesRequest {
                cpu: Some(CpuRequest {
                    shares: Some(n),
                    ..CpuRequest::default()
                }),
                ..ResourcesRequest::default()
            })
        };
        assert!(run(&p, shares(512), &Spec::default()).is_ok());
        assert_eq!(
            field(run(&p, shares(262_144), &Spec::default()).unwrap_err()),
            "resources.cpu.shares"
        );
        let weight = |w| {
            ask(ResourcesRequest {
                block_io: Some(super::super::BlockIoRequest {
                    weight: Some(w),
                    ..super::super::BlockIoRequest::default()
                }),
                ..ResourcesRequest::default()
            })
        };
        assert!(run(&p, weight(100), &Spec::default()).is_ok());
        assert_eq!(
            field(run(&p, weight(1000), &Spec::default()).unwrap_err()),
            "resources.blockIO.weight"
        );
    }

    #[test]
    fn cpu_quota_compares_fractions() {
        let p = plugin("p", vec![]);
        let mut c = LinuxCpu::default();
        c.set_quota(Some(50_000));
        c.set_period(Some(100_000));
        let mut r = LinuxResources::default();
        r.set_cpu(Some(c));
        let half = spec_with(r);
        assert!(run(&p, cpu(Some(25_000), None), &half).is_ok());
        assert_eq!(
            field(run(&p, cpu(Some(75_000), None), &half).unwrap_err()),
            "resources.cpu.quota"
        );
        assert_eq!(
            field(run(&p, cpu(Some(-1), None), &half).unwrap_err()),
            "resources.cpu.quota"
        );
        // A shorter period with the same quota is a larger fraction.
        assert_eq!(
            field(run(&p, cpu(None, Some(50_000)), &half).unwrap_err()),
            "resources.cpu.period"
        );
        assert!(run(&p, cpu(None, Some(200_000)), &half).is_ok());
        assert!(run(&p, cpu(Some(100_000), Some(200_000)), &half).is_ok());
        assert_eq!(
            field(run(&p, cpu(Some(999), None), &half).unwrap_err()),
            "resources.cpu.quota"
        );
        assert_eq!(
            field(run(&p, cpu(None, Some(10)), &half).unwrap_err()),
            "resources.cpu.period"
        );
        assert!(run(&p, cpu(Some(10_000), None), &Spec::default()).is_ok());
    }

    #[test]
    fn cpusets_may_only_shrink_and_pids_hugepages_throttles_follow_the_rule() {
        let p = plugin("p", vec![]);
        let mut c = LinuxCpu::default();
        c.set_cpus(Some("0-1".into()));
        let mut r = LinuxResources::default();
        r.set_cpu(Some(c));
        let mut pids = oci_spec::runtime::LinuxPids::default();
        pids.set_limit(100);
        r.set_pids(Some(pids));
        let s = spec_with(r);
        let cpus = |list: &str| {
            ask(ResourcesRequest {
                cpu: Some(CpuRequest {
                    cpus: Some(list.into()),
                    ..CpuRequest::default()
                }),
                ..ResourcesRequest::default()
            })
        };
        assert!(run(&p, cpus("1"), &s).is_ok());
        assert_eq!(
            field(run(&p, cpus("0-2"), &s).unwrap_err()),
            "resources.cpu.cpus"
        );
        assert_eq!(
            field(run(&p, cpus("x"), &s).unwrap_err()),
            "resources.cpu.cpus"
        );
        let pids = |n| {
            ask(ResourcesRequest {
                pids_limit: Some(n),
                ..ResourcesRequest::default()
            })
        };
        assert!(run(&p, pids(50), &s).is_ok());
        assert_eq!(
            field(run(&p, pids(200), &s).unwrap_err()),
            "resources.pids.limit"
        );
        assert_eq!(
            field(run(&p, pids(-1), &s).unwrap_err()),
            "resources.pids.limit"
        );
        let huge = |size: &str, n| {
            ask(ResourcesRequest {
                hugepage_limits: vec![(size.into(), n)],
                ..ResourcesRequest::default()
            })
        };
        assert!(run(&p, huge("2MB", 1 << 21), &s).is_ok());
        assert_eq!(
            field(run(&p, huge("2M", 1 << 21), &s).unwrap_err()),
            "resources.hugepage-limits[0].page-size"
        );
        let throttle = |rate| {
            ask(ResourcesRequest {
                block_io: Some(super::BlockIoRequest {
                    throttle_read_bps: vec![(8, 0, rate)],
                    ..Default::default()
                }),
                ..ResourcesRequest::default()
            })
        };
        let limited = run(&p, throttle(1000), &s).unwrap().spec;
        assert!(run(&p, throttle(500), &limited).is_ok());
        assert_eq!(
            field(run(&p, throttle(2000), &limited).unwrap_err()),
            "resources.blockIO.throttleReadBpsDevice 8:0"
        );
        assert_eq!(
            field(run(&p, throttle(0), &limited).unwrap_err()),
            "resources.blockIO.throttleReadBpsDevice 8:0"
        );
    }
}
