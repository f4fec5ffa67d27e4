//! net-cni: a network driver (world `network-driver` of `rwasm:plugin@0.3.0`) that runs
//! real CNI plugin binaries (Debian's containernetworking-plugins in /usr/lib/cni) for a
//! network configuration list, as a CNI runtime does (CNI SPEC.md 1.0, "Execution of
//! Network Configuration Lists"), so existing CNI setups work unchanged.
//!
//! - `setup` (ADD): each plugin of the list in order, its config on stdin with the list's
//!   `name` and `cniVersion` and the previous plugin's result as `prevResult`; the last
//!   result is cached in the state directory and answered. A failure runs DEL over the
//!   whole list (best effort) and returns the plugin's CNI error (`code`, `msg`).
//! - `teardown` (DEL): each plugin in reverse order, with the cached result as
//!   `prevResult`; then the cache goes. Every plugin runs even when one fails.
//! - `check` (CHECK): each plugin in order with the cached result.
//!
//! Each binary runs through the host's `exec-binary` (granted by `[plugin.grants.network]
//! exec-dir`), which sets `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_PATH` itself; the driver
//! sets `CNI_COMMAND`, `CNI_IFNAME`. Config: `conflist` (guest path of the `.conflist`
//! file, in a granted directory), `state-dir` (default `/state`), `timeout-ms` per
//! binary (default 10000).

wit_bindgen::generate!({ world: "network-driver", path: "../../sdk/wit" });

use std::cell::RefCell;

use exports::rwasm::plugin::network::{
    Dns, Guest, IpConfig, NetInterface, NetworkRequest, NetworkResult, Route,
};
use rwasm::plugin::net_host;
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};
use serde_json::{Value, json};

#[derive(Clone)]
struct Settings {
    conflist: String,
    state: String,
    timeout_ms: u32,
}

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

fn err(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

fn settings() -> Result<Settings, Error> {
    SETTINGS
        .with(|s| s.borrow().clone())
        .ok_or_else(|| err(ErrorCode::InvalidConfig, "not configured"))
}

/// The conflist: `(name, cniVersion, plugins)`.
fn conflist(s: &Settings) -> Result<(String, String, Vec<Value>), Error> {
    let text = std::fs::read_to_string(&s.conflist).map_err(|e| {
        err(
            ErrorCode::InvalidConfig,
            format!("cannot read conflist {}: {e}", s.conflist),
        )
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        err(
            ErrorCode::InvalidConfig,
            format!("conflist {}: not JSON: {e}", s.conflist),
        )
    })?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                err(
                    ErrorCode::InvalidConfig,
                    format!("conflist {}: `{k}` must be a string", s.conflist),
                )
            })
    };
    let (name, version) = (field("name")?, field("cniVersion")?);
    let plugins = v
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidConfig,
                format!(
                    "conflist {}: `plugins` must be a non-empty list",
                    s.conflist
                ),
            )
        })?;
    Ok((name, version, plugins))
}

/// Runs one plugin of the list for `command`; its result JSON (`Null` for DEL/CHECK).
fn invoke(
    s: &Settings,
    command: &str,
    req: &NetworkRequest,
    list: &(String, String, Vec<Value>),
    plugin: &Value,
    prev: Option<&Value>,
) -> Result<Value, Error> {
    let kind = plugin.get("type").and_then(Value::as_str).ok_or_else(|| {
        err(
            ErrorCode::InvalidConfig,
            "a plugin of the conflist has no `type`",
        )
    })?;
    let mut cfg = plugin.clone();
    cfg["name"] = json!(list.0);
    cfg["cniVersion"] = json!(list.1);
    if let Some(p) = prev {
        cfg["prevResult"] = p.clone();
    }
    let env = vec![
        ("CNI_COMMAND".to_string(), command.to_string()),
        ("CNI_IFNAME".to_string(), req.ifname.clone()),
        ("CNI_ARGS".to_string(), String::new()),
    ];
    let stdin = serde_json::to_vec(&cfg).expect("config serializes");
    let out = net_host::exec_binary(kind, &env, &stdin, s.timeout_ms)?;
    if out.exit_code != 0 {
        // CNI's error shape: {"code": N, "msg": "...", "details": "..."}.
        let e: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let msg = e.get("msg").and_then(Value::as_str).unwrap_or_default();
        let details = e.get("details").and_then(Value::as_str).unwrap_or_default();
        return Err(err(
            ErrorCode::Unavailable,
            format!(
                "CNI plugin {kind} {command} failed (exit {}, code {}): {msg}{}{}",
                out.exit_code,
                e.get("code").map(Value::to_string).unwrap_or_default(),
                if details.is_empty() { "" } else { ": " },
                if details.is_empty() {
                    String::from_utf8_lossy(&out.stderr).trim().to_string()
                } else {
                    details.to_string()
                },
            ),
        ));
    }
    if command != "ADD" {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        err(
            ErrorCode::Unavailable,
            format!("CNI plugin {kind} ADD: result is not JSON: {e}"),
        )
    })
}

fn cache_path(s: &Settings, id: &str) -> String {
    format!("{}/{id}.json", s.state)
}

fn cached(s: &Settings, id: &str) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(cache_path(s, id)).ok()?).ok()
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn opt(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// A CNI 1.0 result as the WIT record.
fn to_result(r: &Value) -> NetworkResult {
    let list = |k: &str| {
        r.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let dns = r.get("dns").map(|d| Dns {
        nameservers: strs(d.get("nameservers")),
        domain: opt(d, "domain"),
        search: strs(d.get("search")),
        options: strs(d.get("options")),
    });
    NetworkResult {
        interfaces: list("interfaces")
            .iter()
            .map(|i| NetInterface {
                name: opt(i, "name").unwrap_or_default(),
                mac: opt(i, "mac"),
                sandbox: opt(i, "sandbox").filter(|s| !s.is_empty()),
            })
            .collect(),
        ips: list("ips")
            .iter()
            .map(|i| IpConfig {
                address: opt(i, "address").unwrap_or_default(),
                gateway: opt(i, "gateway"),
                interface: i
                    .get("interface")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok()),
            })
            .collect(),
        routes: list("routes")
            .iter()
            .map(|rt| Route {
                destination: opt(rt, "dst").unwrap_or_default(),
                gateway: opt(rt, "gw"),
            })
            .collect(),
        dns: dns.filter(|d| !d.nameservers.is_empty()),
    }
}

/// DEL over the whole list in reverse order; the first failure, after every plugin ran.
fn delete(s: &Settings, req: &NetworkRequest) -> Result<(), Error> {
    let list = conflist(s)?;
    let prev = cached(s, &req.container_id);
    let mut first = Ok(());
    for p in list.2.iter().rev() {
        if let Err(e) = invoke(s, "DEL", req, &list, p, prev.as_ref())
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    let _ = std::fs::remove_file(cache_path(s, &req.container_id));
    first
}

struct NetCni;

impl Guest for NetCni {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        let mut s = Settings {
            conflist: String::new(),
            state: "/state".to_string(),
            timeout_ms: 10_000,
        };
        for e in config {
            match (e.key.as_str(), e.value) {
                ("conflist", ConfigValue::Text(t)) => s.conflist = t,
                ("state-dir", ConfigValue::Text(t)) => s.state = t,
                ("timeout-ms", ConfigValue::Integer(n)) => {
                    s.timeout_ms = u32::try_from(n).map_err(|_| {
                        err(
                            ErrorCode::InvalidConfig,
                            "key `timeout-ms`: 0 to 4294967295",
                        )
                    })?
                }
                (k, _) => {
                    return Err(err(
                        ErrorCode::InvalidConfig,
                        format!(
                            "key `{k}`: unknown or of the wrong type (conflist, state-dir: strings; timeout-ms: integer)"
                        ),
                    ));
                }
            }
        }
        if s.conflist.is_empty() {
            return Err(err(
                ErrorCode::InvalidConfig,
                "key `conflist`: required (the guest path of a .conflist file)",
            ));
        }
        SETTINGS.with(|c| *c.borrow_mut() = Some(s));
        Ok(())
    }

    fn setup(req: NetworkRequest) -> Result<NetworkResult, Error> {
        let s = settings()?;
        let list = conflist(&s)?;
        let mut prev: Option<Value> = None;
        for p in &list.2 {
            match invoke(&s, "ADD", &req, &list, p, prev.as_ref()) {
                Ok(r) => prev = Some(r),
                Err(e) => {
                    if let Some(r) = &prev {
                        let _ = std::fs::write(cache_path(&s, &req.container_id), r.to_string());
                    }
                    let _ = delete(&s, &req);
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        std::fs::write(cache_path(&s, &req.container_id), result.to_string()).map_err(|e| {
            err(
                ErrorCode::Unavailable,
                format!("cannot write {}: {e}", cache_path(&s, &req.container_id)),
            )
        })?;
        Ok(to_result(&result))
    }

    fn teardown(req: NetworkRequest) -> Result<(), Error> {
        delete(&settings()?, &req)
    }

    fn check(req: NetworkRequest) -> Result<(), Error> {
        let s = settings()?;
        let list = conflist(&s)?;
        let prev = cached(&s, &req.container_id).ok_or_else(|| {
            err(
                ErrorCode::InvalidInput,
                format!("container {} has no cached CNI result", req.container_id),
            )
        })?;
        for p in &list.2 {
            invoke(&s, "CHECK", &req, &list, p, Some(&prev))?;
        }
        Ok(())
    }
}

export!(NetCni);
