//! A Docker-style container's network (`rwasm run --network bridge|none|host|NAME`,
//! Docker's flag): which mode, the driver call after the network namespace exists and
//! before the container starts, the container's `/etc/hosts` and `/etc/resolv.conf`, and
//! the teardown when the container is deleted (by `run`, the monitor, or `rm -f`).
//!
//! - `none`: a network namespace with `lo` up only (rwasm's default; see [`DEFAULT_MODE`]).
//! - `host`: no network namespace (the spec has none), the host's resolv.conf untouched.
//! - `container:NAME`: the network namespace of the running container NAME (its
//!   `/proc/PID/ns/net` in the spec), its /etc/hosts and /etc/resolv.conf; no driver call.
//! - `bridge` or any other NAME: the `network-driver` plugin named NAME in the manifest,
//!   else the user network NAME (`rwasm network create`, see `engine::networks`);
//!   `bridge` falls back to the first-party `net_bridge.wasm` (see [`builtin_bridge`]).
//!
//! What a driver did is kept in the bundle's `network.json` (written before the driver is
//! called, so a run killed mid-setup is still torn down by `rm -f`); the teardown calls the
//! driver's `teardown`, then removes the container's tagged firewall rules and the host
//! links the driver created, whatever the driver did.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugin::network::{self as net, NetOp, NetworkRequest, NetworkResult, PortMapping};
use crate::plugin::{PluginError, PluginSet};

/// Annotation holding the container's network mode (`none`, `host`, or a network name).
pub const NETWORK_ANNOTATION: &str = "org.rwasm.network";
/// Annotation holding the published ports (`-p`), as a JSON list of [`PortMapping`].
pub const PORTS_ANNOTATION: &str = "org.rwasm.ports";
/// The network a container gets without `--network`: `none`, as rwasm did before network
/// drivers existed (Docker's default is `bridge`; rwasm's bridge needs the driver
/// component installed, so it is not the default yet).
pub const DEFAULT_MODE: &str = "none";
/// The interface a driver creates in the container.
pub const IFNAME: &str = "eth0";
/// The file in the bundle that records what a driver set up.
const STATE_FILE: &str = "network.json";
/// The built-in `bridge` network's leases. Host-wide, not under `--data-root`: the
/// bridge `rwasm0` and its subnet are one per host, so every rwasm on the host must lease
/// from the same directory.
pub const BRIDGE_STATE_DIR: &str = "/var/lib/rwasm/net/bridge";
/// Where the built-in `bridge` driver's component is looked for after
/// `$RWASM_PLUGIN_DIR/net_bridge.wasm` and the directory of the `rwasm` binary.
pub const BRIDGE_WASM_PATH: &str = "/usr/local/lib/rwasm/plugins/net_bridge.wasm";

/// A failed network setup or teardown.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// `--network` has a value rwasm cannot honour.
    #[error("invalid value {value:?} for --network: {reason}")]
    BadMode {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A published port could not be given a host port.
    #[error(transparent)]
    Ports(#[from] super::ports::PortError),
    /// The driver failed, or there is none of that name.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// `bridge` or a user network was asked for, the manifest has no such driver and the
    /// first-party component is not installed.
    #[error("this network needs the net-bridge driver: no `network-driver` plugin of its name in the manifest and no net_bridge.wasm in {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoBridge {
        /// The places looked in.
        searched: Vec<PathBuf>,
    },
    /// The /etc/hosts entries of a user network's containers could not be updated.
    #[error(transparent)]
    Peers(#[from] super::peers::PeersError),
    /// A file of the container's network (network.json, hosts, resolv.conf) failed.
    #[error("cannot {what} {path}")]
    Io {
        /// `read`, `write`, `create`, `remove`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// network.json does not parse.
    #[error("corrupt network state {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Io { what, path, source }
}

/// A container's network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// A network driver's network, by name.
    Driver(String),
    /// `container:NAME`: the network namespace of that (running) container; no driver
    /// is called (Docker's `--network container:NAME`).
    Container(String),
}

impl Mode {
    /// Parses `--network` (Docker's values; `default` is [`DEFAULT_MODE`]).
    pub fn parse(value: &str) -> Result<Mode, NetworkError> {
        let bad = |reason| NetworkError::BadMode {
            value: value.to_string(),
            reason,
        };
        match value {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "default" => Mode::parse(DEFAULT_MODE),
            v if v.starts_with("container:") => match &v["container:".len()..] {
                "" => Err(bad("name the container: container:NAME")),
                c => Ok(Mode::Container(c.to_string())),
            },
            "" => Err(bad(
                "name a network: bridge, none, host or a network driver",
            )),
            v if v.len() > 64
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                Err(bad(
                    "a network name is 1 to 64 characters of a-z, 0-9 and -",
                ))
            }
            v => Ok(Mode::Driver(v.to_string())),
        }
    }

    /// The mode as the annotation stores it (`container:NAME` as given).
    pub fn as_str(&self) -> String {
        match self {
            Mode::None => "none".to_string(),
            Mode::Host => "host".to_string(),
            Mode::Driver(name) => name.clone(),
            Mode::Container(c) => format!("container:{c}"),
        }
    }
}

/// Parses Docker's `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]` (IPv4). A host
/// port left out (`-p 80`, `-p 127.0.0.1::80`) is 0 here: the run chooses a free one from
/// the ephemeral range (see [`super::ports::allocate`]).
pub fn parse_publish(value: &str) -> Result<PortMapping, NetworkError> {
    let bad = |reason| NetworkError::BadMode {
        value: value.to_string(),
        reason,
    };
    let (spec, proto) = match value.rsplit_once('/') {
        Some((s, "tcp")) => (s, net::Protocol::Tcp),
        Some((s, "udp")) => (s, net::Protocol::Udp),
        Some(_) => return Err(bad("the protocol must be tcp or udp")),
        None => (value, net::Protocol::Tcp),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [h, c] => (None, *h, *c),
        [ip, h, c] => (
            Some(
                ip.parse::<std::net::Ipv4Addr>()
                    .map_err(|_| bad("the host address must be an IPv4 address"))?,
            ),
            *h,
            *c,
        ),
        [c] => (None, "", *c),
        _ => return Err(bad("use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
    let host_port = if host_port.is_empty() {
        0
    } else {
        port(host_port).ok_or_else(|| bad("the host port must be 1 to 65535"))?
    };
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port: port(container_port)
            .ok_or_else(|| bad("the container port must be 1 to 65535"))?,
        protocol: proto,
    })
}

/// What network.json holds.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// The network (driver) name.
    network: String,
    /// The manifest the driver is in.
    manifest: PathBuf,
    /// The request the driver got at setup.
    request: NetworkRequest,
    /// Its result, once setup succeeded.
    result: Option<NetworkResult>,
    /// Host links the driver created.
    created_links: Vec<String>,
}

/// The data root of a Docker-style bundle `<data-root>/containers/<id>`.
fn data_root_of(bundle: &Path) -> Option<&Path> {
    let containers = bundle.parent()?;
    (containers.file_name()? == "containers").then_some(())?;
    containers.parent()
}

/// The user network `name` of the data root `bundle` is under, if there is one.
fn user_network(bundle: &Path, name: &str) -> Option<super::networks::NetworkRecord> {
    let root = data_root_of(bundle)?;
    super::networks::Networks::new(root).load_exact(name).ok()
}

/// Where `net_bridge.wasm` is: `$RWASM_PLUGIN_DIR/net_bridge.wasm`, or beside the
/// `rwasm` binary, or [`BRIDGE_WASM_PATH`].
fn bridge_wasm() -> Result<PathBuf, NetworkError> {
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("RWASM_PLUGIN_DIR") {
        searched.push(PathBuf::from(dir).join("net_bridge.wasm"));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        searched.push(dir.join("net_bridge.wasm"));
    }
    searched.push(PathBuf::from(BRIDGE_WASM_PATH));
    searched
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(NetworkError::NoBridge { searched })
}

/// The net-bridge settings of one network: its manifest's plugin name, bridge, subnet,
/// gateway (`None`: the subnet's first address), link prefix and lease directory.
struct BridgeNet<'a> {
    name: &'a str,
    bridge: &'a str,
    subnet: &'a str,
    gateway: Option<&'a str>,
    prefix: &'a str,
    state: &'a Path,
}

/// Writes (atomically) at `manifest` a manifest for `net_bridge.wasm` serving `n`,
/// granted exactly its bridge, subnet, link prefix, NAT and lease directory.
fn write_bridge_manifest(manifest: &Path, n: &BridgeNet<'_>) -> Result<(), NetworkError> {
    let wasm = bridge_wasm()?;
    if let Some(dir) = manifest.parent() {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    fs::create_dir_all(n.state).map_err(io_err("create", n.state))?;
    let gateway = n
        .gateway
        .map(|g| format!("gateway = {g:?}\n"))
        .unwrap_or_default();
    let text = format!(
        r#"# Written by rwasm: network `{name}` (first-party net-bridge driver).
[[plugin]]
name = "{name}"
path = {wasm:?}
kind = "network-driver"
timeout-ms = 10000
[plugin.config]
bridge = "{bridge}"
subnet = "{subnet}"
{gateway}link-prefix = "{prefix}"
[plugin.grants]
dirs = {{ {state:?} = "/state:rw" }}
[plugin.grants.network]
bridges = ["{bridge}"]
subnets = ["{subnet}"]
link-prefix = "{prefix}"
nat = true
"#,
        name = n.name,
        bridge = n.bridge,
        subnet = n.subnet,
        prefix = n.prefix,
        wasm = wasm.display().to_string(),
        state = n.state.display().to_string(),
    );
    super::state::write_atomic(manifest, text.as_bytes()).map_err(|e| NetworkError::Io {
        what: "write",
        path: manifest.to_path_buf(),
        source: io::Error::other(crate::error_chain(&e)),
    })
}

/// The first-party `bridge` network: a manifest for `net_bridge.wasm` (see
/// [`bridge_wasm`]) written to `<data-root>/net/bridge.toml`, with bridge `rwasm0`,
/// subnet 10.88.0.0/16, host links `rwv*`, NAT, and its leases in [`BRIDGE_STATE_DIR`].
pub fn builtin_bridge(data_root: &Path) -> Result<PathBuf, NetworkError> {
    let manifest = data_root.join("net").join("bridge.toml");
    write_bridge_manifest(
        &manifest,
        &BridgeNet {
            name: "bridge",
            bridge: "rwasm0",
            subnet: "10.88.0.0/16",
            gateway: None,
            prefix: "rwv",
            state: Path::new(BRIDGE_STATE_DIR),
        },
    )?;
    Ok(manifest)
}

/// The manifest of user network `r` (`rwasm network create`): net-bridge on the
/// network's bridge and subnet, its leases in `<networks>/<name>/leases`, written to
/// `<networks>/<name>/driver.toml`.
pub fn user_network_manifest(
    nets: &super::networks::Networks,
    r: &super::networks::NetworkRecord,
) -> Result<PathBuf, NetworkError> {
    let dir = nets.state_dir(&r.name);
    let manifest = dir.join("driver.toml");
    write_bridge_manifest(
        &manifest,
        &BridgeNet {
            name: &r.name,
            bridge: &r.bridge,
            subnet: &r.subnet,
            gateway: Some(&r.gateway),
            prefix: &r.link_prefix,
            state: &dir.join("leases"),
        },
    )?;
    Ok(manifest)
}

/// The network a container's bundle is connected to and its address, from its
/// network.json (`None` when it is not connected).
pub fn connection(bundle: &Path) -> Option<(String, Option<NetworkResult>)> {
    let state: State = serde_json::from_slice(&fs::read(bundle.join(STATE_FILE)).ok()?).ok()?;
    Some((state.network, state.result))
}

fn write_state(path: &Path, state: &State) -> Result<(), NetworkError> {
    let bytes = serde_json::to_vec_pretty(state).expect("network state serializes");
    super::state::write_atomic(path, &bytes).map_err(|e| NetworkError::Io {
        what: "write",
        path: path.to_path_buf(),
        source: io::Error::other(crate::error_chain(&e)),
    })
}

/// Rewrites a bind-mounted file in place (truncate + write: the container's bind mount
/// follows the inode, so a rename would not reach it).
fn rewrite(path: &Path, text: &str) -> Result<(), NetworkError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err("write", path))?;
    f.write_all(text.as_bytes()).map_err(io_err("write", path))
}

/// The resolv.conf a container on a driver's network gets: the driver's DNS, or the
/// host's without loopback resolvers (see `linux::net::resolv`).
pub fn resolv_conf(dns: Option<&net::Dns>) -> String {
    match dns {
        Some(d) if !d.nameservers.is_empty() => crate::linux::net::resolv::from_settings(
            &d.nameservers,
            d.domain.as_deref(),
            &d.search,
            &d.options,
        ),
        _ => crate::linux::net::resolv::for_container(
            &fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    }
}

/// Connects container `id` (bundle `bundle`, init `pid`) to the network its annotations
/// name, through `plugins`' driver (or the built-in bridge). `Ok(None)` for `none` and
/// `host`. The bundle's `hosts` gets the container's address and its `resolv.conf` (when
/// the bundle has one, bind-mounted at /etc/resolv.conf) the DNS settings.
pub fn setup(
    id: &str,
    bundle: &Path,
    pid: i32,
    annotations: &std::collections::HashMap<String, String>,
    plugins: &PluginSet,
    cache_dir: &Path,
) -> Result<Option<NetworkResult>, NetworkError> {
    let mode = Mode::parse(
        annotations
            .get(NETWORK_ANNOTATION)
            .map_or(DEFAULT_MODE, String::as_str),
    )?;
    let Mode::Driver(name) = mode else {
        return Ok(None);
    };
    let _span = tracing::info_span!("network setup", container = %id, network = %name).entered();
    let owned;
    let (set, manifest) = match plugins.manifest_path() {
        Some(m) if plugins.has_network_driver(&name) => (plugins, m.to_path_buf()),
        _ if name == "bridge" => {
            let root = data_root_of(bundle).unwrap_or(Path::new("/var/lib/rwasm"));
            let m = builtin_bridge(root)?;
            owned = PluginSet::load(&m, cache_dir)?;
            (&owned, m)
        }
        _ if let Some(r) = user_network(bundle, &name) => {
            let nets = super::networks::Networks::new(data_root_of(bundle).expect("checked"));
            let m = user_network_manifest(&nets, &r)?;
            owned = PluginSet::load(&m, cache_dir)?;
            (&owned, m)
        }
        _ => {
            return Err(PluginError::NoNetworkDriver {
                name,
                manifest: plugins.manifest_path().map(Path::to_path_buf),
            }
            .into());
        }
    };
    let port_mappings: Vec<PortMapping> = annotations
        .get(PORTS_ANNOTATION)
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let request = NetworkRequest {
        container_id: id.to_string(),
        netns: Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        ifname: IFNAME.to_string(),
        network: name.clone(),
        config: Vec::new(),
        port_mappings,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        options: Vec::new(),
    };
    let path = bundle.join(STATE_FILE);
    let mut state = State {
        network: name.clone(),
        manifest,
        request,
        result: None,
        created_links: Vec::new(),
    };
    write_state(&path, &state)?;
    let outcome = set.network(&name, NetOp::Setup, &state.request)?;
    state.created_links = outcome.created_links;
    state.result = outcome.result;
    write_state(&path, &state)?;
    let result = state.result.clone().unwrap_or_default();
    let hosts = bundle.join("hosts");
    if let (Some(ip), Ok(text)) = (result.first_address(), fs::read_to_string(&hosts)) {
        let hostname = fs::read_to_string(bundle.join("hostname")).unwrap_or_default();
        let hostname = hostname.trim();
        let text = text
            .lines()
            .filter(|l| !l.starts_with("127.0.1.1"))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        rewrite(&hosts, &format!("{text}{ip}\t{hostname}\n"))?;
    }
    if let (Some(ip), Some(root)) = (result.first_address(), data_root_of(bundle))
        && user_network(bundle, &name).is_some()
    {
        super::peers::join(root, &name, id, bundle, ip)?;
    }
    let resolv = bundle.join("resolv.conf");
    if resolv.exists() {
        rewrite(&resolv, &resolv_conf(result.dns.as_ref()))?;
    }
    Ok(Some(result))
}

/// Disconnects container `id` if its bundle records a network: the driver's `teardown`
/// (its failure is logged), then the host's own clean-up of the container's rules and
/// links; network.json goes last. `loaded` is used when it holds the driver.
pub fn teardown(id: &str, bundle: &Path, cache_dir: &Path, loaded: Option<&PluginSet>) {
    let path = bundle.join(STATE_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(container = %id, "{}", crate::error_chain(&io_err("read", &path)(e)));
            return;
        }
    };
    let state: State = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(source) => {
            let e = NetworkError::Corrupt {
                path: path.clone(),
                source,
            };
            tracing::warn!(container = %id, "{}", crate::error_chain(&e));
            net::clean_up(id, &[]);
            let _ = fs::remove_file(&path);
            return;
        }
    };
    let _span = tracing::info_span!("network teardown", container = %id, network = %state.network)
        .entered();
    let mut request = state.request.clone();
    request.netns = request.netns.filter(|p| p.exists());
    let owned;
    let set = match loaded {
        Some(p) if p.manifest_path() == Some(state.manifest.as_path()) => Ok(p),
        _ => {
            owned = PluginSet::load(&state.manifest, cache_dir);
            owned.as_ref().map_err(|e| crate::error_chain(e))
        }
    };
    match set {
        Ok(set) => {
            if let Err(e) = set.network(&state.network, NetOp::Teardown, &request) {
                tracing::warn!(container = %id, "{}", crate::error_chain(&e));
            }
        }
        Err(e) => tracing::warn!(container = %id, "network driver not loaded: {e}"),
    }
    net::clean_up(id, &state.created_links);
    if let (Some(ip), Some(root)) = (
        state.result.as_ref().and_then(NetworkResult::first_address),
        data_root_of(bundle),
    ) && user_network(bundle, &state.network).is_some()
        && let Err(e) = super::peers::leave(root, &state.network, id, bundle, ip)
    {
        tracing::warn!(container = %id, "{}", crate::error_chain(&e));
    }
    if let Err(e) = fs::remove_file(&path) {
        tracing::warn!(container = %id, "{}", crate::error_chain(&io_err("remove", &path)(e)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parses_docker_forms() {
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        assert_eq!(p.protocol, net::Protocol::Udp);
        let p = parse_publish("8080:80").unwrap();
        assert_eq!((p.host_ip, p.protocol), (None, net::Protocol::Tcp));
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 0, 80));
        let p = parse_publish("127.0.0.1::53/udp").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port),
            (Some(std::net::Ipv4Addr::LOCALHOST), 0)
        );
        for bad in [
            "0",
            "0:80",
            "8080:80/sctp",
            "x:1:2",
            "1:2:3:4",
            "70000:80",
            "x::80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_parse_as_docker_names_them() {
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(Mode::parse("default").unwrap(), Mode::None);
        assert_eq!(
            Mode::parse("bridge").unwrap(),
            Mode::Driver("bridge".to_string())
        );
        assert_eq!(
            Mode::parse("container:web").unwrap(),
            Mode::Container("web".to_string())
        );
        for bad in ["", "container:", "Bad_Name", "a b"] {
            assert!(Mode::parse(bad).is_err(), "{bad}");
        }
    }
}
