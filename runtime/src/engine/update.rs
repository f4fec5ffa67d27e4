//! `update` (runc's `update`, `runc update --help`): change the cgroup resources of a
//! created or running container.
//!
//! The order is: the container must be `created` or `running`; the `pre-update` plugins
//! of the manifest the container was created with see the update (and may deny it, or
//! clamp it); every cgroup file the update writes is checked to exist on this host and
//! every value is translated (so a bad or unsupported field fails before anything is
//! written); the update is applied through the container's cgroup manager; the update is
//! merged into the container's recorded `config.json` (`linux.resources`), written
//! atomically, so that later updates, hooks and `state` see the new values.
//!
//! An update carries only the fields to change: fields it does not set keep their value,
//! in the cgroup and in the record.

use oci_spec::runtime::{ContainerState, LinuxResources, Spec};
use serde_json::{Value, json};

use crate::linux::cgroup::resources::{self, Current};
use crate::linux::cgroup::{CgroupError, CgroupManager, Manager};
use crate::plugin::{Applied, PluginSet};

use super::container::EngineError;
use super::docker::{FlagError, parse_bytes};
use super::state::{StateStore, write_atomic};

/// runc's `update` flags, as plain values (the CLI parses; nothing here knows clap).
/// Every field is optional; a field left `None` keeps its current value.
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    /// `--memory`: memory limit as a size (`256m`, `1g`, bytes) or `-1` for unlimited.
    pub memory: Option<String>,
    /// `--memory-reservation`: soft memory limit as a size, or `-1`.
    pub memory_reservation: Option<String>,
    /// `--memory-swap`: memory plus swap limit as a size, or `-1` for unlimited swap;
    /// at least `--memory` when both are given.
    pub memory_swap: Option<String>,
    /// `--cpu-shares` (runc: `--cpu-share`): relative CPU weight, 2 to 262144.
    pub cpu_shares: Option<u64>,
    /// `--cpu-quota`: CFS quota in microseconds per period, or -1 for none.
    pub cpu_quota: Option<i64>,
    /// `--cpu-period`: CFS period in microseconds, 1000 to 1000000.
    pub cpu_period: Option<u64>,
    /// `--cpuset-cpus`: CPUs the container may use, e.g. `0-3,5`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`: memory nodes the container may use, e.g. `0,1`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`: maximum number of tasks; 0 or less for unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight`: relative block I/O weight, 10 to 1000.
    pub blkio_weight: Option<u16>,
}

/// The spec field each flag of [`UpdateFlags`] sets, as (flag, `linux.resources` field),
/// so that an error about a field can name the flag the user typed.
pub const FLAG_FIELDS: [(&str, &str); 10] = [
    ("--memory", "linux.resources.memory.limit"),
    ("--memory-reservation", "linux.resources.memory.reservation"),
    ("--memory-swap", "linux.resources.memory.swap"),
    ("--cpu-shares", "linux.resources.cpu.shares"),
    ("--cpu-quota", "linux.resources.cpu.quota"),
    ("--cpu-period", "linux.resources.cpu.period"),
    ("--cpuset-cpus", "linux.resources.cpu.cpus"),
    ("--cpuset-mems", "linux.resources.cpu.mems"),
    ("--pids-limit", "linux.resources.pids.limit"),
    ("--blkio-weight", "linux.resources.blockIO.weight"),
];

fn invalid(flag: &'static str, value: impl ToString, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// A size flag: `-1` (unlimited) or a size as Docker and runc read it (`units.RAMInBytes`).
fn size(flag: &'static str, v: &str) -> Result<i64, FlagError> {
    if v.trim() == "-1" {
        return Ok(-1);
    }
    let n = parse_bytes(flag, v)?;
    if n == 0 {
        return Err(invalid(
            flag,
            v,
            "must be a positive size or -1 (unlimited)",
        ));
    }
    Ok(n)
}

/// A cpuset list: comma-separated numbers and ranges `a-b` with `a <= b`, e.g. `0-3,5`.
fn cpuset(flag: &'static str, v: &str) -> Result<String, FlagError> {
    let bad = |reason: &str| invalid(flag, v, reason.to_string());
    if v.is_empty() {
        return Err(bad("expected a list such as 0-3,5"));
    }
    for part in v.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a
            .parse()
            .map_err(|_| bad("expected numbers and ranges such as 0-3,5"))?;
        let b: u32 = b
            .parse()
            .map_err(|_| bad("expected numbers and ranges such as 0-3,5"))?;
        if a > b {
            return Err(bad("a range must go from low to high"));
        }
    }
    Ok(v.to_string())
}

/// `linux.resources` as runc's `update` builds it: `base` (from `-r FILE`, else empty)
/// with every flag given written over it. Each value is checked here with runc's and the
/// kernel's ranges; an error names the flag and the value.
pub fn resources_from_flags(
    base: LinuxResources,
    f: &UpdateFlags,
) -> Result<LinuxResources, FlagError> {
    let mut res = base;

    let memory = f
        .memory
        .as_deref()
        .map(|v| size("--memory", v))
        .transpose()?;
    let reservation = f
        .memory_reservation
        .as_deref()
        .map(|v| size("--memory-reservation", v))
        .transpose()?;
    let swap = f
        .memory_swap
        .as_deref()
        .map(|v| size("--memory-swap", v))
        .transpose()?;
    if let (Some(m), Some(s)) = (memory, swap)
        && m > 0
        && s > 0
        && s < m
    {
        return Err(invalid(
            "--memory-swap",
            f.memory_swap.as_deref().unwrap_or_default(),
            format!("memory+swap limit must be at least the memory limit ({m} bytes)"),
        ));
    }
    if memory.is_some() || reservation.is_some() || swap.is_some() {
        let mut mem = res.memory().unwrap_or_default();
        if memory.is_some() {
            mem.set_limit(memory);
        }
        if reservation.is_some() {
            mem.set_reservation(reservation);
        }
        if swap.is_some() {
            mem.set_swap(swap);
        }
        res.set_memory(Some(mem));
    }

    if let Some(s) = f.cpu_shares
        && !(2..=262_144).contains(&s)
    {
        return Err(invalid("--cpu-shares", s, "range is from 2 to 262144"));
    }
    if let Some(p) = f.cpu_period
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(invalid(
            "--cpu-period",
            p,
            "range is from 1000 to 1000000 microseconds",
        ));
    }
    if let Some(q) = f.cpu_quota
        && q != -1
        && q < 1000
    {
        return Err(invalid(
            "--cpu-quota",
            q,
            "must be at least 1000 microseconds, or -1 for no quota",
        ));
    }
    let cpus = f
        .cpuset_cpus
        .as_deref()
        .map(|v| cpuset("--cpuset-cpus", v))
        .transpose()?;
    let mems = f
        .cpuset_mems
        .as_deref()
        .map(|v| cpuset("--cpuset-mems", v))
        .transpose()?;
    if f.cpu_shares.is_some()
        || f.cpu_quota.is_some()
        || f.cpu_period.is_some()
        || cpus.is_some()
        || mems.is_some()
    {
        let mut cpu = res.cpu().clone().unwrap_or_default();
        if f.cpu_shares.is_some() {
            cpu.set_shares(f.cpu_shares);
        }
        if f.cpu_quota.is_some() {
            cpu.set_quota(f.cpu_quota);
        }
        if f.cpu_period.is_some() {
            cpu.set_period(f.cpu_period);
        }
        if cpus.is_some() {
            cpu.set_cpus(cpus);
        }
        if mems.is_some() {
            cpu.set_mems(mems);
        }
        res.set_cpu(Some(cpu));
    }

    if let Some(p) = f.pids_limit {
        let mut pids = res.pids().unwrap_or_default();
        pids.set_limit(p);
        res.set_pids(Some(pids));
    }
    if let Some(w) = f.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(invalid("--blkio-weight", w, "range is from 10 to 1000"));
        }
        let mut io = res.block_io().clone().unwrap_or_default();
        io.set_weight(Some(w));
        res.set_block_io(Some(io));
    }
    Ok(res)
}

/// Parses a `linux.resources` object (config-linux.md "Control groups"), as `runc update
/// -r FILE` reads it; `source` names the file (or `stdin`) for the error.
pub fn parse_resources(source: &str, bytes: &[u8]) -> Result<LinuxResources, FlagError> {
    serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            "--resources",
            source,
            format!("not a linux.resources JSON object: {e}"),
        )
    })
}

/// Whether `r` sets nothing at all (an update that would change nothing).
pub fn is_empty(r: &LinuxResources) -> bool {
    serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// What an update did.
#[derive(Debug)]
pub struct Updated {
    /// The update as applied, after the pre-update plugins.
    pub applied: LinuxResources,
    /// The container's whole `linux.resources` now, as recorded.
    pub resources: LinuxResources,
    /// What the pre-update plugins clamped, attributed to them.
    pub clamped: Vec<Applied>,
}

/// Updates the resources of container `id` with `update` (only the fields it sets).
///
/// Errors: [`EngineError::WrongState`] unless the container is created or running;
/// [`EngineError::Plugin`] when a pre-update plugin denies or fails (nothing is written);
/// [`EngineError::Cgroup`] when a field is invalid or this host lacks its cgroup file
/// (checked before any write), or when the kernel refuses a value (the fields the update
/// set are then written back to their recorded values, see [`restore_of`], so the cgroup
/// is not left half-updated; runc leaves it so).
pub fn update(
    store: &StateStore,
    id: &str,
    mut update: LinuxResources,
    plugins: &PluginSet,
) -> Result<Updated, EngineError> {
    let _span = tracing::info_span!("update", container = %id).entered();
    let record = store.load(id)?;
    let status = record.status();
    if !matches!(status, ContainerState::Created | ContainerState::Running) {
        return Err(EngineError::WrongState {
            id: id.into(),
            status,
            what: "only a created or running container can be updated",
        });
    }
    let handle = record
        .cgroup
        .as_ref()
        .ok_or_else(|| EngineError::NoCgroup { id: id.to_string() })?;
    let config = store.dir(id).join("config.json");
    let mut spec = Spec::load(&config).map_err(|source| EngineError::Config {
        path: config.clone(),
        source,
    })?;

    let clamped = plugins.pre_update(&record.oci_state(status), &spec, &mut update)?;
    for c in &clamped {
        tracing::info!(container = %id, "{c}");
    }

    let mut linux = spec.linux().clone().unwrap_or_default();
    let merged = merge(linux.resources().clone().unwrap_or_default(), &update);
    check_memory(&merged)?;
    let cg = Manager::from_handle(handle);
    preflight(&cg, &update)?;
    let old = linux.resources().clone().unwrap_or_default();
    if let Err(e) = cg.apply(&update) {
        let restore = restore_of(&old, &update);
        if let Err(again) = cg.apply(&restore) {
            tracing::warn!(container = %id, error = %again, "cannot write back the values before the failed update");
        }
        return Err(e.into());
    }

    linux.set_resources(Some(merged.clone()));
    spec.set_linux(Some(linux));
    write_atomic(
        &config,
        &serde_json::to_vec(&spec).expect("a loaded spec serializes"),
    )?;
    Ok(Updated {
        applied: update,
        resources: merged,
        clamped,
    })
}

/// The kernel (v1) refuses a memory limit above the memory+swap limit: say so before
/// writing anything, naming both values.
fn check_memory(merged: &LinuxResources) -> Result<(), EngineError> {
    let Some(m) = merged.memory() else {
        return Ok(());
    };
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap())
        && limit > 0
        && swap > 0
        && limit > swap
    {
        return Err(EngineError::InvalidUpdate {
            field: "linux.resources.memory.limit",
            reason: format!(
                "the memory limit {limit} would be above the memory+swap limit {swap}; \
                 update the memory+swap limit (--memory-swap) at the same time"
            ),
        });
    }
    Ok(())
}

/// Translates `update` and checks that every file it writes exists for this container,
/// so that an invalid value or a field this host cannot apply fails before any write.
fn preflight(cg: &Manager, update: &LinuxResources) -> Result<(), CgroupError> {
    let cur = Current {
        memory_limit: None,
        swap_accounting: false,
    };
    let writes = match cg {
        Manager::V1(_) => resources::v1_writes(update, &cur)?,
        Manager::V2(_) => resources::v2_writes(update, &cur)?,
    };
    for w in writes {
        if !cg.supports(w.controller, &w.file) {
            let path = cg
                .path(w.controller)
                .map_or_else(|| w.file.as_ref().into(), |d| d.join(&*w.file));
            return Err(CgroupError::FileUnavailable {
                field: w.field,
                path,
            });
        }
    }
    Ok(())
}

/// What writes back the fields `update` sets to their values in `old`, after the kernel
/// refused part of `update`: for each field `update` sets, its value in `old`, else the
/// cgroup default of an unset field (memory limits and `pids.limit` -1 unlimited,
/// `cpu.quota` -1, `cpu.shares` 1024, `cpu.period` 100000 µs, a throttled device rate 0,
/// no limit). Fields without a default (cpusets, devices, hugepages, `blockIO.weight`)
/// are left as the update wrote them, when not in `old`.
fn restore_of(old: &LinuxResources, update: &LinuxResources) -> LinuxResources {
    const THROTTLES: [&str; 4] = [
        "throttleReadBpsDevice",
        "throttleWriteBpsDevice",
        "throttleReadIOPSDevice",
        "throttleWriteIOPSDevice",
    ];
    fn project(old: &Value, update: &Value, default: &Value, key: &str) -> Option<Value> {
        match update {
            Value::Object(u) => {
                let mut out = serde_json::Map::new();
                for (k, v) in u {
                    if v.is_null() {
                        continue;
                    }
                    if let Some(x) = project(&old[k], v, &default[k], k) {
                        out.insert(k.clone(), x);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Array(entries) if THROTTLES.contains(&key) => {
                // Every device the update throttles: its old rate, else 0 (no limit).
                let mut list = old.as_array().cloned().unwrap_or_default();
                for e in entries {
                    let same = |x: &Value| x["major"] == e["major"] && x["minor"] == e["minor"];
                    if !list.iter().any(same) {
                        list.push(json!({"major": e["major"], "minor": e["minor"], "rate": 0}));
                    }
                }
                Some(Value::Array(list))
            }
            _ if !old.is_null() => Some(old.clone()),
            _ if !default.is_null() => Some(default.clone()),
            _ => None,
        }
    }
    let defaults = json!({
        "memory": {"limit": -1, "reservation": -1, "swap": -1},
        "cpu": {"quota": -1, "shares": 1024, "period": 100000},
        "pids": {"limit": -1},
    });
    let old = serde_json::to_value(old).expect("resources serialize");
    let update = serde_json::to_value(update).expect("resources serialize");
    project(&old, &update, &defaults, "")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// `old` with every field that `update` sets replaced (objects merge key by key; lists
/// and numbers replace).
fn merge(old: LinuxResources, update: &LinuxResources) -> LinuxResources {
    fn deep(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(b), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        continue;
                    }
                    deep(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }
    let mut base = serde_json::to_value(&old).expect("resources serialize");
    deep(
        &mut base,
        serde_json::to_value(update).expect("resources serialize"),
    );
    serde_json::from_value(base).unwrap_or(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_writes_back_old_values_or_defaults_of_what_the_update_set() {
        let old: LinuxResources = serde_json::from_value(json!({
            "memory": {"limit": 100},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 5}]}
        }))
        .unwrap();
        let update: LinuxResources = serde_json::from_value(json!({
            "memory": {"limit": 50, "swap": 60},
            "pids": {"limit": 20},
            "cpu": {"cpus": "1"},
            "blockIO": {"throttleReadBpsDevice": [
                {"major": 8, "minor": 0, "rate": 1}, {"major": 250, "minor": 9, "rate": 1}]}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(restore_of(&old, &update)).unwrap(),
            json!({
                "memory": {"limit": 100, "swap": -1},
                "pids": {"limit": -1},
                "blockIO": {"throttleReadBpsDevice": [
                    {"major": 8, "minor": 0, "rate": 5}, {"major": 250, "minor": 9, "rate": 0}]}
            })
        );
    }

    fn flags(f: UpdateFlags) -> Result<Value, FlagError> {
        resources_from_flags(LinuxResources::default(), &f)
            .map(|r| serde_json::to_value(r).unwrap())
    }

    #[test]
    fn flags_become_resources() {
        let v = flags(UpdateFlags {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            pids_limit: Some(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"memory": {"limit": 67108864, "swap": -1},
                   "cpu": {"quota": 50000, "period": 100000},
                   "pids": {"limit": 20}})
        );
    }

    #[test]
    fn flags_override_the_resources_file() {
        let base = parse_resources(
            "r.json",
            br#"{"memory": {"limit": 1048576000, "reservation": 1000000}, "cpu": {"shares": 512}}"#,
        )
        .unwrap();
        let r = resources_from_flags(
            base,
            &UpdateFlags {
                memory: Some("100m".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({"memory": {"limit": 104857600, "reservation": 1000000}, "cpu": {"shares": 512}})
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let cases = [
            (
                UpdateFlags {
                    memory: Some("lots".into()),
                    ..Default::default()
                },
                "--memory",
            ),
            (
                UpdateFlags {
                    memory: Some("0".into()),
                    ..Default::default()
                },
                "--memory",
            ),
            (
                UpdateFlags {
                    memory: Some("64m".into()),
                    memory_swap: Some("32m".into()),
                    ..Default::default()
                },
                "--memory-swap",
            ),
            (
                UpdateFlags {
                    cpu_shares: Some(1),
                    ..Default::default()
                },
                "--cpu-shares",
            ),
            (
                UpdateFlags {
                    cpu_period: Some(10),
                    ..Default::default()
                },
                "--cpu-period",
            ),
            (
                UpdateFlags {
                    cpu_quota: Some(-5),
                    ..Default::default()
                },
                "--cpu-quota",
            ),
            (
                UpdateFlags {
                    cpuset_cpus: Some("3-1".into()),
                    ..Default::default()
                },
                "--cpuset-cpus",
            ),
            (
                UpdateFlags {
                    cpuset_mems: Some("x".into()),
                    ..Default::default()
                },
                "--cpuset-mems",
            ),
            (
                UpdateFlags {
                    blkio_weight: Some(5),
                    ..Default::default()
                },
                "--blkio-weight",
            ),
        ];
        for (f, flag) in cases {
            let err = flags(f).unwrap_err().to_string();
            assert!(err.contains(flag), "{flag}: {err}");
        }
        let err = parse_resources("r.json", b"{\"memory\": 5}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--resources") && err.contains("r.json"),
            "{err}"
        );
    }

    #[test]
    fn merge_keeps_unset_fields() {
        let old: LinuxResources = serde_json::from_value(json!({
            "memory": {"limit": 100, "reservation": 50}, "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]
        }))
        .unwrap();
        let upd: LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": 200}, "cpu": {"shares": 2}}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(merge(old, &upd)).unwrap(),
            json!({"memory": {"limit": 200, "reservation": 50}, "pids": {"limit": 10},
                   "cpu": {"shares": 2}, "devices": [{"allow": false, "access": "rwm"}]})
        );
        assert!(is_empty(&LinuxResources::default()));
        assert!(!is_empty(&upd));
    }
}
