//! scripted: a test plugin whose answers come from its `[plugin.config]`, so rwasm's tests
//! can ask for any adjustment without writing a plugin per case.
//!
//! Config keys (all optional; anything else is an `invalid-config` error):
//!
//! | key | type | effect |
//! |---|---|---|
//! | a hook point (`pre-create`, `pre-update`, `poststart`, ...) | text | the adjustment to return at that point, as JSON with the WIT field names (below) |
//! | `deny` | text | deny with this reason |
//! | `deny-at` | list of hook points | where `deny` applies (default: every point) |
//! | `echo-env` | list of names | at pre-create, also set `SEEN` to `NAME=value,...` of those variables as this plugin saw them (`NAME` alone when unset): proves chaining |
//!
//! The JSON mirrors the WIT `adjustment` record, every field optional:
//!
//! ```json
//! {"env": [["A", "1"]], "remove-env": ["B"], "annotations": [["k", "v"]],
//!  "remove-annotations": ["k2"],
//!  "mounts": [{"destination": "/d", "source": "/s", "type": "bind", "options": ["ro"]}],
//!  "remove-mounts": ["/dev/shm"],
//!  "devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 5, "file-mode": 438,
//!               "uid": 0, "gid": 0, "permissions": "rw"}],
//!  "cdi-devices": ["vendor.com/class=name"],
//!  "resources": {"memory": {"limit": 1, "reservation": 1, "swap": 1},
//!                "cpu": {"shares": 2, "quota": 1, "period": 1, "cpus": "0", "mems": "0"},
//!                "pids-limit": 1,
//!                "block-io": {"weight": 10, "throttle-read-bps": [{"major": 8, "minor": 0, "rate": 1}],
//!                             "throttle-write-bps": [], "throttle-read-iops": [], "throttle-write-iops": []},
//!                "hugepage-limits": [{"page-size": "2MB", "limit": 1}]},
//!  "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}],
//!  "cgroups-path": "/x",
//!  "hooks": [{"stage": "poststart", "path": "/bin/sh", "args": ["sh", "-c", "..."], "env": [], "timeout": 5}],
//!  "args": ["/bin/echo", "hi"]}
//! ```
//!
//! WIT records are built with struct literals (not the SDK's builders), so that this plugin
//! depends on nothing but the generated bindings.

use rwasm_plugin_sdk::prelude::*;
use rwasm_plugin_sdk::{BlockIo, Cpu, HugepageLimit, Memory, ThrottleDevice};
use serde::Deserialize;

struct Scripted;

const POINTS: [&str; 8] = [
    "pre-create",
    "create-runtime",
    "create-container",
    "start-container",
    "poststart",
    "poststop",
    "pre-update",
    "post-delete",
];

impl Hook for Scripted {
    fn configure(config: &Config) -> Result<(), Error> {
        let mut known: Vec<&str> = POINTS.to_vec();
        known.extend(["deny", "deny-at", "echo-env"]);
        config.deny_unknown(&known)?;
        for point in POINTS {
            if let Some(text) = config.get_str(point)? {
                parse(point, text)?;
            }
        }
        if let Some(at) = config.get_texts("deny-at")? {
            for p in at {
                if !POINTS.contains(&p.as_str()) {
                    return Err(ConfigError::invalid(
                        "deny-at",
                        format!("unknown hook point `{p}`"),
                    )
                    .into());
                }
            }
        }
        config.get_str("deny")?;
        config.get_texts("echo-env")?;
        Ok(())
    }

    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        let config = Config::current();
        let point = point_name(call.point);
        if let Some(reason) = config.get_str("deny")? {
            let here = match config.get_texts("deny-at")? {
                None => true,
                Some(at) => at.iter().any(|p| p == point),
            };
            if here {
                return Ok(Verdict::deny(reason));
            }
        }
        let mut adjustment = match config.get_str(point)? {
            Some(text) => parse(point, text)?.into_wit(),
            None => Adjustment::default(),
        };
        if call.point == HookPoint::PreCreate
            && let Some(names) = config.get_texts("echo-env")?
        {
            let seen: Vec<String> = names
                .iter()
                .map(|name| {
                    let prefix = format!("{name}=");
                    call.spec
                        .env
                        .iter()
                        .find(|l| l.starts_with(&prefix))
                        .cloned()
                        .unwrap_or_else(|| name.clone())
                })
                .collect();
            adjustment.env.push(("SEEN".to_string(), seen.join(",")));
        }
        Ok(Verdict::Allow(adjustment))
    }
}

rwasm_plugin_sdk::export_hook!(Scripted);

fn point_name(p: HookPoint) -> &'static str {
    match p {
        HookPoint::PreCreate => "pre-create",
        HookPoint::CreateRuntime => "create-runtime",
        HookPoint::CreateContainer => "create-container",
        HookPoint::StartContainer => "start-container",
        HookPoint::Poststart => "poststart",
        HookPoint::Poststop => "poststop",
        HookPoint::PreUpdate => "pre-update",
        HookPoint::PostDelete => "post-delete",
    }
}

const STAGES: [&str; 6] = [
    "prestart",
    "create-runtime",
    "create-container",
    "start-container",
    "poststart",
    "poststop",
];

fn parse(key: &str, text: &str) -> Result<Script, ConfigError> {
    let script: Script = rwasm_plugin_sdk::serde_json::from_str(text)
        .map_err(|e| ConfigError::invalid(key, format!("not an adjustment in JSON: {e}")))?;
    check_stages(key, &script)?;
    Ok(script)
}

fn check_stages(key: &str, script: &Script) -> Result<(), ConfigError> {
    match script
        .hooks
        .iter()
        .find(|h| !STAGES.contains(&h.stage.as_str()))
    {
        Some(h) => Err(ConfigError::invalid(
            key,
            format!(
                "unknown hook stage `{}`, expected one of {}",
                h.stage,
                STAGES.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The adjustment as JSON spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Script {
    env: Vec<(String, String)>,
    remove_env: Vec<String>,
    annotations: Vec<(String, String)>,
    remove_annotations: Vec<String>,
    mounts: Vec<JMount>,
    remove_mounts: Vec<String>,
    devices: Vec<JDevice>,
    cdi_devices: Vec<String>,
    resources: Option<JResources>,
    rlimits: Vec<JRlimit>,
    cgroups_path: Option<String>,
    hooks: Vec<JHook>,
    args: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct JMount {
    destination: String,
    source: String,
    #[serde(rename = "type", default)]
    typ: String,
    #[serde(default)]
    options: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct JDevice {
    path: String,
    #[serde(rename = "type")]
    typ: String,
    #[serde(default)]
    major: i64,
    #[serde(default)]
    minor: i64,
    file_mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    #[serde(default)]
    permissions: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct JResources {
    memory: Option<JMemory>,
    cpu: Option<JCpu>,
    pids_limit: Option<i64>,
    block_io: Option<JBlockIo>,
    hugepage_limits: Vec<JHugepage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct JMemory {
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct JCpu {
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    cpus: Option<String>,
    mems: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JThrottle {
    major: i64,
    minor: i64,
    rate: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct JBlockIo {
    weight: Option<u16>,
    throttle_read_bps: Vec<JThrottle>,
    throttle_write_bps: Vec<JThrottle>,
    throttle_read_iops: Vec<JThrottle>,
    throttle_write_iops: Vec<JThrottle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct JHugepage {
    page_size: String,
    limit: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JRlimit {
    #[serde(rename = "type")]
    typ: String,
    hard: u64,
    soft: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct JHook {
    stage: String,
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    timeout: Option<i32>,
}

fn throttles(list: Vec<JThrottle>) -> Vec<ThrottleDevice> {
    list.into_iter()
        .map(|t| ThrottleDevice {
            major: t.major,
            minor: t.minor,
            rate: t.rate,
        })
        .collect()
}

impl Script {
    fn into_wit(self) -> Adjustment {
        Adjustment {
            env: self.env,
            remove_env: self.remove_env,
            annotations: self.annotations,
            remove_annotations: self.remove_annotations,
            mounts: self
                .mounts
                .into_iter()
                .map(|m| Mount {
                    destination: m.destination,
                    source: m.source,
                    type_: m.typ,
                    options: m.options,
                })
                .collect(),
            remove_mounts: self.remove_mounts,
            devices: self
                .devices
                .into_iter()
                .map(|d| Device {
                    path: d.path,
                    type_: d.typ,
                    major: d.major,
                    minor: d.minor,
                    file_mode: d.file_mode,
                    uid: d.uid,
                    gid: d.gid,
                    permissions: d.permissions,
                })
                .collect(),
            cdi_devices: self.cdi_devices,
            resources: self.resources.map(|r| Resources {
                memory: r.memory.map(|m| Memory {
                    limit: m.limit,
                    reservation: m.reservation,
                    swap: m.swap,
                }),
                cpu: r.cpu.map(|c| Cpu {
                    shares: c.shares,
                    quota: c.quota,
                    period: c.period,
                    cpus: c.cpus,
                    mems: c.mems,
                }),
                pids_limit: r.pids_limit,
                block_io: r.block_io.map(|b| BlockIo {
                    weight: b.weight,
                    throttle_read_bps: throttles(b.throttle_read_bps),
                    throttle_write_bps: throttles(b.throttle_write_bps),
                    throttle_read_iops: throttles(b.throttle_read_iops),
                    throttle_write_iops: throttles(b.throttle_write_iops),
                }),
                hugepage_limits: r
                    .hugepage_limits
                    .into_iter()
                    .map(|h| HugepageLimit {
                        page_size: h.page_size,
                        limit: h.limit,
                    })
                    .collect(),
            }),
            rlimits: self
                .rlimits
                .into_iter()
                .map(|r| Rlimit {
                    type_: r.typ,
                    hard: r.hard,
                    soft: r.soft,
                })
                .collect(),
            cgroups_path: self.cgroups_path,
            hooks: self
                .hooks
                .into_iter()
                .map(|h| OciHook {
                    stage: match h.stage.as_str() {
                        "prestart" => OciHookStage::Prestart,
                        "create-runtime" => OciHookStage::CreateRuntime,
                        "create-container" => OciHookStage::CreateContainer,
                        "start-container" => OciHookStage::StartContainer,
                        "poststart" => OciHookStage::Poststart,
                        // Anything else was refused by `check_stages` at configure.
                        _ => OciHookStage::Poststop,
                    },
                    path: h.path,
                    args: h.args,
                    env: h.env,
                    timeout: h.timeout,
                })
                .collect(),
            args: self.args,
        }
    }
}
