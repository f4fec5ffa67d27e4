//! net-bridge: rwasm's first-party `bridge` network driver (world `network-driver` of
//! `rwasm:plugin@0.3.0`), after the reference CNI `bridge` and `host-local` plugins and
//! Docker's default bridge network.
//!
//! `setup` (CNI ADD): create or reuse the bridge (default `rwasm0`) with the gateway
//! address (default the subnet's first address, subnet default `10.88.0.0/16`), lease an
//! address, create a veth pair whose host end (`<link-prefix><first 8 hex of the id>`)
//! joins the bridge and whose peer becomes `ifname` in the container, address it, add the
//! default route via the gateway, masquerade the container's traffic leaving the subnet,
//! and forward the published ports. `teardown` (CNI DEL) removes the rules, the veth and
//! the lease; it succeeds when there is nothing to remove. `check` (CNI CHECK) verifies the
//! lease.
//!
//! IPAM, as host-local: one file per leased address under `<state>/<subnet>/`, named by
//! the address and holding the container id, created with `O_EXCL` (WASI's exclusive
//! open), so parallel setups of different containers never get the same address without
//! any lock; a lease survives rwasm restarts (it is a file) and goes at teardown.
//!
//! Configuration (`[plugin.config]`, overridden by the network's config): `bridge`,
//! `subnet`, `gateway`, `mtu`, `link-prefix` (must match the grant's), `state-dir`
//! (default `/state`, the guest path of the granted directory).

wit_bindgen::generate!({ world: "network-driver", path: "../../sdk/wit" });

use std::cell::RefCell;
use std::fs;
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;

use exports::rwasm::plugin::network::{
    Guest, IpConfig, NetInterface, NetworkRequest, NetworkResult, Route,
};
use rwasm::plugin::host::{Level, log};
use rwasm::plugin::net_host::{self, LinkSettings, Netns, PortForward, RouteSpec};
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};

/// The driver's settings for one call.
#[derive(Clone, Debug)]
struct Settings {
    bridge: String,
    subnet: Ipv4Addr,
    len: u8,
    gateway: Ipv4Addr,
    mtu: u32,
    prefix: String,
    state: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            bridge: "rwasm0".to_string(),
            subnet: Ipv4Addr::new(10, 88, 0, 0),
            len: 16,
            gateway: Ipv4Addr::new(10, 88, 0, 1),
            mtu: 1500,
            prefix: "rwv".to_string(),
            state: "/state".to_string(),
        }
    }
}

thread_local! {
    /// The `[plugin.config]` given to `configure` on this instance.
    static CONFIG: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn err(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = text.split_once('/')?;
    let l: u8 = l.parse().ok()?;
    (l <= 30).then_some(())?;
    Some((a.parse().ok()?, l))
}

/// Settings from `pairs` (config keys, later ones win); `Err` names the bad key.
fn settings(pairs: &[(String, String)]) -> Result<Settings, Error> {
    let mut s = Settings::default();
    let mut gateway = None;
    let bad = |k: &str, why: &str| err(ErrorCode::InvalidConfig, format!("key `{k}`: {why}"));
    for (k, v) in pairs {
        match k.as_str() {
            "bridge" => s.bridge = v.clone(),
            "subnet" => {
                let (a, l) = parse_cidr(v).ok_or_else(|| {
                    bad(k, "use an IPv4 network of /30 or larger, e.g. 10.88.0.0/16")
                })?;
                if u32::from(a) & !mask(l) != 0 {
                    return Err(bad(k, "host bits are set"));
                }
                s.subnet = a;
                s.len = l;
            }
            "gateway" => {
                gateway = Some(
                    v.parse::<Ipv4Addr>()
                        .map_err(|_| bad(k, "not an IPv4 address"))?,
                )
            }
            "mtu" => s.mtu = v.parse().map_err(|_| bad(k, "not a number"))?,
            "link-prefix" => s.prefix = v.clone(),
            "state-dir" => s.state = v.clone(),
            _ => {}
        }
    }
    s.gateway = gateway.unwrap_or(Ipv4Addr::from(u32::from(s.subnet) + 1));
    if u32::from(s.gateway) & mask(s.len) != u32::from(s.subnet) {
        return Err(bad("gateway", "outside the subnet"));
    }
    Ok(s)
}

fn call_settings(req: &NetworkRequest) -> Result<Settings, Error> {
    let mut pairs = CONFIG.with(|c| c.borrow().clone());
    pairs.extend(req.config.iter().cloned());
    settings(&pairs)
}

fn veth_name(s: &Settings, id: &str) -> String {
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{}{short}", s.prefix)
}

fn lease_dir(s: &Settings) -> String {
    format!("{}/{}-{}", s.state, s.subnet, s.len)
}

/// Leases an address for `id`: its existing lease, or the lowest free one.
fn lease(s: &Settings, id: &str) -> Result<Ipv4Addr, Error> {
    let dir = lease_dir(s);
    fs::create_dir_all(&dir).map_err(|e| {
        err(
            ErrorCode::Unavailable,
            format!("cannot create lease directory {dir}: {e}"),
        )
    })?;
    if let Some(ip) = leased(s, id)? {
        return Ok(ip);
    }
    let first = u32::from(s.subnet) + 1;
    let last = (u32::from(s.subnet) | !mask(s.len)) - 1;
    for n in first..=last {
        let ip = Ipv4Addr::from(n);
        if ip == s.gateway {
            continue;
        }
        let path = format!("{dir}/{ip}");
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(id.as_bytes()).map_err(|e| {
                    err(
                        ErrorCode::Unavailable,
                        format!("cannot write lease {path}: {e}"),
                    )
                })?;
                return Ok(ip);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(err(
                    ErrorCode::Unavailable,
                    format!("cannot create lease {path}: {e}"),
                ));
            }
        }
    }
    Err(err(
        ErrorCode::Unavailable,
        format!("no free address left in {}/{}", s.subnet, s.len),
    ))
}

/// The address leased to `id`, if any.
fn leased(s: &Settings, id: &str) -> Result<Option<Ipv4Addr>, Error> {
    let dir = lease_dir(s);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(err(
                ErrorCode::Unavailable,
                format!("cannot list {dir}: {e}"),
            ));
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Ok(ip) = name.parse::<Ipv4Addr>()
            && fs::read_to_string(entry.path()).is_ok_and(|c| c.trim() == id)
        {
            return Ok(Some(ip));
        }
    }
    Ok(None)
}

fn release(s: &Settings, id: &str) -> Result<(), Error> {
    if let Some(ip) = leased(s, id)? {
        let path = format!("{}/{ip}", lease_dir(s));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(err(
                    ErrorCode::Unavailable,
                    format!("cannot remove lease {path}: {e}"),
                ));
            }
        }
    }
    Ok(())
}

fn up(mtu: u32) -> LinkSettings {
    LinkSettings {
        mtu: Some(mtu),
        mac: None,
        up: Some(true),
    }
}

fn connect(s: &Settings, req: &NetworkRequest, ip: Ipv4Addr) -> Result<NetworkResult, Error> {
    let subnet = format!("{}/{}", s.subnet, s.len);
    if net_host::ensure_bridge(&s.bridge)? {
        log(Level::Info, &format!("created bridge {}", s.bridge));
    }
    net_host::add_address(Netns::Host, &s.bridge, &format!("{}/{}", s.gateway, s.len))?;
    net_host::set_link(
        Netns::Host,
        &s.bridge,
        &LinkSettings {
            mtu: None,
            mac: None,
            up: Some(true),
        },
    )?;
    net_host::set_sysctl("net.ipv4.ip_forward", "1")?;
    let host = veth_name(s, &req.container_id);
    net_host::create_veth(&host, &req.ifname)?;
    net_host::set_master(&host, &s.bridge)?;
    net_host::set_link(Netns::Host, &host, &up(s.mtu))?;
    net_host::add_address(Netns::Container, &req.ifname, &format!("{ip}/{}", s.len))?;
    net_host::set_link(Netns::Container, &req.ifname, &up(s.mtu))?;
    net_host::add_route(
        Netns::Container,
        &RouteSpec {
            destination: "0.0.0.0/0".to_string(),
            gateway: Some(s.gateway.to_string()),
            link: Some(req.ifname.clone()),
        },
    )?;
    net_host::masquerade(&ip.to_string(), &subnet)?;
    if !req.port_mappings.is_empty() {
        // DNAT from the host's own loopback needs the bridge to route 127/8 sources.
        net_host::set_sysctl(&format!("net.ipv4.conf.{}.route_localnet", s.bridge), "1")?;
    }
    for p in &req.port_mappings {
        net_host::forward_port(&PortForward {
            protocol: p.protocol,
            host_ip: p.host_ip.clone(),
            host_port: p.host_port,
            container_ip: ip.to_string(),
            container_port: p.container_port,
        })?;
    }
    Ok(NetworkResult {
        interfaces: vec![
            NetInterface {
                name: host,
                mac: None,
                sandbox: None,
            },
            NetInterface {
                name: req.ifname.clone(),
                mac: None,
                sandbox: Some(req.netns.clone()),
            },
        ],
        ips: vec![IpConfig {
            address: format!("{ip}/{}", s.len),
            gateway: Some(s.gateway.to_string()),
            interface: Some(1),
        }],
        routes: vec![Route {
            destination: "0.0.0.0/0".to_string(),
            gateway: Some(s.gateway.to_string()),
        }],
        dns: None,
    })
}

struct NetBridge;

impl Guest for NetBridge {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        let mut pairs = Vec::new();
        for e in config {
            let v = match e.value {
                ConfigValue::Text(t) => t,
                ConfigValue::Integer(i) => i.to_string(),
                _ => {
                    return Err(err(
                        ErrorCode::InvalidConfig,
                        format!("key `{}`: use a string or an integer", e.key),
                    ));
                }
            };
            pairs.push((e.key, v));
        }
        settings(&pairs)?;
        CONFIG.with(|c| *c.borrow_mut() = pairs);
        Ok(())
    }

    fn setup(req: NetworkRequest) -> Result<NetworkResult, Error> {
        let s = call_settings(&req)?;
        let ip = lease(&s, &req.container_id)?;
        match connect(&s, &req, ip) {
            Ok(r) => Ok(r),
            Err(e) => {
                // The host removes our rules and links; the lease is ours to give back.
                let _ = release(&s, &req.container_id);
                Err(e)
            }
        }
    }

    fn teardown(req: NetworkRequest) -> Result<(), Error> {
        let s = call_settings(&req)?;
        // Every step runs even when one fails; the first failure is returned.
        let results = [
            net_host::remove_rules().map(|_| ()),
            net_host::delete_link(Netns::Host, &veth_name(&s, &req.container_id)),
            release(&s, &req.container_id),
        ];
        results.into_iter().collect()
    }

    fn check(req: NetworkRequest) -> Result<(), Error> {
        let s = call_settings(&req)?;
        match leased(&s, &req.container_id)? {
            Some(_) => Ok(()),
            None => Err(err(
                ErrorCode::InvalidInput,
                format!("container {} holds no lease", req.container_id),
            )),
        }
    }
}

export!(NetBridge);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_override() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.bridge.as_str(), s.gateway),
            ("rwasm0", Ipv4Addr::new(10, 88, 0, 1))
        );
        let s = settings(&[("subnet".into(), "10.77.0.0/24".into())]).unwrap();
        assert_eq!(s.gateway, Ipv4Addr::new(10, 77, 0, 1));
        assert!(settings(&[("subnet".into(), "10.77.0.1/24".into())]).is_err());
    }
}
