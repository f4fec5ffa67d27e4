//! User networks (`rwasm network create|ls|inspect|rm|prune`, Docker's `docker network`
//! commands): each one a bridge of its own (`rwasm-<first 8 hex of its id>`), a subnet
//! (default the first free `10.89.N.0/24`), a gateway on the bridge, and nftables rules
//! isolating it from rwasm's other bridges (Docker's isolation chains). Containers join
//! with `run --network NAME` through the first-party net-bridge driver, its leases in
//! the network's own directory.
//!
//! Records live under `<data-root>/networks/`: `<name>.json` (written atomically),
//! `<name>/leases/` (the driver's IPAM state) and `<name>/driver.toml` (the driver's
//! manifest). Creating and removing hold `<data-root>/networks/.lock`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::linux::net::{NetError, netlink, nft};

/// The first subnet tried for a network created without `--subnet`: `10.89.N.0/24`,
/// N counting up from 0 (podman's default range for its networks).
pub const DEFAULT_POOL: [u8; 2] = [10, 89];
/// The drivers a user network may have.
pub const DRIVERS: [&str; 1] = ["bridge"];
/// Names `network create` refuses: the modes `--network` already gives a meaning.
pub const RESERVED: [&str; 4] = ["bridge", "host", "none", "default"];
/// The host's IPv4 routes (procfs, `/proc/net/route`): a new subnet must not overlap one.
const ROUTES: &str = "/proc/net/route";

/// A failed network command.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    /// A flag of `network create` is invalid.
    #[error("invalid value {value:?} for {flag}: {reason}")]
    Invalid {
        /// `--subnet`, `--gateway`, `--driver`, `--label`, or `NAME`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A network of that name exists.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// No network of that name (or id prefix).
    #[error("network {0} not found")]
    NotFound(String),
    /// `network rm` of a network containers are connected to.
    #[error("error while removing network {name}: network has active endpoints: {}", containers.join(", "))]
    InUse {
        /// The network.
        name: String,
        /// The connected containers' names.
        containers: Vec<String>,
    },
    /// Every default subnet is taken.
    #[error("no free subnet left in {}.{}.0.0/16 (every /24 overlaps a network or a route); give --subnet", DEFAULT_POOL[0], DEFAULT_POOL[1])]
    NoSubnet,
    /// The bridge or its rules could not be made or removed.
    #[error("network {name}: cannot {what}")]
    Host {
        /// The network.
        name: String,
        /// e.g. `create bridge rwasm-1a2b3c4d`.
        what: String,
        /// The kernel's or nft's error.
        #[source]
        source: NetError,
    },
    /// A file under `<data-root>/networks` failed.
    #[error("cannot {what} {path}")]
    Io {
        /// `read`, `write`, `create`, `remove`, `lock`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A network record does not parse.
    #[error("corrupt network record {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetworksError {
    let path = path.to_path_buf();
    move |source| NetworksError::Io { what, path, source }
}

/// An IPv4 network `addr/len`, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub len: u8,
}

impl Cidr {
    fn mask(len: u8) -> u32 {
        if len == 0 { 0 } else { u32::MAX << (32 - len) }
    }

    /// Parses `A.B.C.D/LEN` (LEN at most 30, host bits clear).
    pub fn parse(text: &str) -> Result<Cidr, &'static str> {
        let (a, l) = text
            .split_once('/')
            .ok_or("use an IPv4 network such as 10.89.7.0/24")?;
        let addr: Ipv4Addr = a.parse().map_err(|_| "not an IPv4 address")?;
        let len: u8 = l.parse().map_err(|_| "the prefix length is not a number")?;
        if !(8..=30).contains(&len) {
            return Err("the prefix length must be 8 to 30");
        }
        if u32::from(addr) & !Cidr::mask(len) != 0 {
            return Err("host bits are set");
        }
        Ok(Cidr { addr, len })
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Cidr::mask(self.len) == u32::from(self.addr)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let m = Cidr::mask(self.len.min(other.len));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !Cidr::mask(self.len))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A user network's record (`<data-root>/networks/<name>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkRecord {
    /// The name (`[a-z0-9-]{1,64}`).
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// `bridge`.
    pub driver: String,
    /// CIDR, e.g. `10.89.0.0/24`.
    pub subnet: String,
    /// The bridge's address, e.g. `10.89.0.1`.
    pub gateway: String,
    /// The bridge, `rwasm-<first 8 hex of id>`.
    pub bridge: String,
    /// Host veth names of its containers start with this (`rw<4 hex of id>`).
    pub link_prefix: String,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// NAME.
    pub name: String,
    /// `--driver` (default `bridge`).
    pub driver: Option<String>,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--gateway` (needs `--subnet`, as Docker's).
    pub gateway: Option<String>,
    /// `--label k=v`.
    pub labels: Vec<String>,
}

/// The user networks of one data root.
pub struct Networks {
    dir: PathBuf,
}

/// An `O_CREAT` flock on `<networks>/.lock`, released on drop.
type Lock = Flock<fs::File>;

impl Networks {
    /// The networks under `data_root` (`<data-root>/networks`).
    pub fn new(data_root: &Path) -> Networks {
        Networks {
            dir: data_root.join("networks"),
        }
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The directory of network `name`'s own files (leases, the driver manifest).
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> Result<Lock, NetworksError> {
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| NetworksError::Io {
            what: "lock",
            path,
            source: e.into(),
        })
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworksError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io_err("read", &self.dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_suffix(".json") {
                out.push(self.load_exact(n)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The network named exactly `name`.
    pub fn load_exact(&self, name: &str) -> Result<NetworkRecord, NetworksError> {
        let path = self.record_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(NetworksError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| NetworksError::Corrupt { path, source })
    }

    /// The network named `what`, or whose id is or starts with `what` (Docker's lookup).
    pub fn load(&self, what: &str) -> Result<NetworkRecord, NetworksError> {
        if Mode::valid_name(what)
            && let Ok(r) = self.load_exact(what)
        {
            return Ok(r);
        }
        let hits: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|r| !what.is_empty() && r.id.starts_with(what))
            .collect();
        match <[NetworkRecord; 1]>::try_from(hits) {
            Ok([r]) => Ok(r),
            Err(_) => Err(NetworksError::NotFound(what.to_string())),
        }
    }

    /// `network create`: checks the options, picks the subnet (the given one, refused
    /// when it overlaps another network or a host route; else the first free
    /// [`DEFAULT_POOL`] /24), creates the bridge with the gateway address, up, adds its
    /// isolation rules, and writes the record. A failure removes what it made.
    pub fn create(&self, o: &CreateOptions) -> Result<NetworkRecord, NetworksError> {
        let invalid = |flag, value: &str, reason: &str| NetworksError::Invalid {
            flag,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if !Mode::valid_name(&o.name) {
            return Err(invalid(
                "NAME",
                &o.name,
                "a network name is 1 to 64 characters of a-z, 0-9 and -",
            ));
        }
        if RESERVED.contains(&o.name.as_str()) {
            return Err(invalid(
                "NAME",
                &o.name,
                "the name is a pre-defined network",
            ));
        }
        let driver = o.driver.clone().unwrap_or_else(|| "bridge".to_string());
        if !DRIVERS.contains(&driver.as_str()) {
            return Err(invalid(
                "--driver",
                &driver,
                "rwasm's user networks have the bridge driver only",
            ));
        }
        let mut labels = BTreeMap::new();
        for l in &o.labels {
            match l.split_once('=') {
                Some((k, v)) if !k.is_empty() => labels.insert(k.to_string(), v.to_string()),
                None if !l.is_empty() => labels.insert(l.clone(), String::new()),
                _ => return Err(invalid("--label", l, "use KEY=VALUE")),
            };
        }
        let given = match &o.subnet {
            Some(s) => Some(Cidr::parse(s).map_err(|r| invalid("--subnet", s, r))?),
            None => None,
        };
        let gateway = match (&o.gateway, given) {
            (Some(g), None) => return Err(invalid("--gateway", g, "give --subnet with it")),
            (Some(g), Some(net)) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| invalid("--gateway", g, "not an IPv4 address"))?;
                if !net.contains(ip) || ip == net.addr || ip == net.broadcast() {
                    return Err(invalid(
                        "--gateway",
                        g,
                        &format!("not a host address of the subnet {net}"),
                    ));
                }
                Some(ip)
            }
            (None, _) => None,
        };
        let _lock = self.lock()?;
        if self.record_path(&o.name).exists() {
            return Err(NetworksError::Exists(o.name.clone()));
        }
        let mut taken: Vec<(Cidr, String)> = self
            .list()?
            .iter()
            .filter_map(|r| Some((Cidr::parse(&r.subnet).ok()?, format!("network {}", r.name))))
            .collect();
        taken.extend(host_routes(Path::new(ROUTES))?);
        let subnet = match given {
            Some(net) => {
                if let Some((_, what)) = taken.iter().find(|(t, _)| t.overlaps(&net)) {
                    return Err(invalid(
                        "--subnet",
                        &net.to_string(),
                        &format!("overlaps {what}"),
                    ));
                }
                net
            }
            None => (0..=255u8)
                .map(|n| Cidr {
                    addr: Ipv4Addr::new(DEFAULT_POOL[0], DEFAULT_POOL[1], n, 0),
                    len: 24,
                })
                .find(|c| !taken.iter().any(|(t, _)| t.overlaps(c)))
                .ok_or(NetworksError::NoSubnet)?,
        };
        let gateway = gateway.unwrap_or(Ipv4Addr::from(u32::from(subnet.addr) + 1));
        let id = network_id(&o.name);
        let record = NetworkRecord {
            name: o.name.clone(),
            bridge: format!("rwasm-{}", &id[..8]),
            link_prefix: format!("rw{}", &id[..4]),
            id,
            driver,
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            labels,
            created: super::state::now_rfc3339(),
        };
        if let Err(e) = self.make(&record, subnet, gateway) {
            // Nothing is lost: the bridge, rules and files made so far go.
            let _ = self.unmake(&record);
            return Err(e);
        }
        Ok(record)
    }

    fn make(
        &self,
        r: &NetworkRecord,
        subnet: Cidr,
        gateway: Ipv4Addr,
    ) -> Result<(), NetworksError> {
        let host = |what: String| {
            let name = r.name.clone();
            move |source| NetworksError::Host { name, what, source }
        };
        let leases = self.state_dir(&r.name).join("leases");
        fs::create_dir_all(&leases).map_err(io_err("create", &leases))?;
        netlink::ensure_bridge(&r.bridge).map_err(host(format!("create bridge {}", r.bridge)))?;
        netlink::add_address(netlink::Ns::Host, &r.bridge, gateway, subnet.len)
            .map_err(host(format!("address bridge {}", r.bridge)))?;
        netlink::set_link(
            netlink::Ns::Host,
            &r.bridge,
            &netlink::LinkSettings {
                up: Some(true),
                ..Default::default()
            },
        )
        .map_err(host(format!("set bridge {} up", r.bridge)))?;
        nft::isolate(&rule_owner(r), &r.bridge)
            .map_err(host(format!("isolate bridge {}", r.bridge)))?;
        let bytes = serde_json::to_vec_pretty(r).expect("network record serializes");
        let path = self.record_path(&r.name);
        super::state::write_atomic(&path, &bytes).map_err(|e| NetworksError::Io {
            what: "write",
            path: path.clone(),
            source: io::Error::other(crate::error_chain(&e)),
        })
    }

    /// Removes the bridge, the isolation rules and the network's files (all of them,
    /// whatever fails: the first failure is returned).
    fn unmake(&self, r: &NetworkRecord) -> Result<(), NetworksError> {
        let host = |what: String| {
            let name = r.name.clone();
            move |source| NetworksError::Host { name, what, source }
        };
        let dir = self.state_dir(&r.name);
        let path = self.record_path(&r.name);
        let results = [
            netlink::delete_link(netlink::Ns::Host, &r.bridge)
                .map_err(host(format!("delete bridge {}", r.bridge))),
            nft::remove_rules(&rule_owner(r))
                .map(|_| ())
                .map_err(host(format!("remove the rules of bridge {}", r.bridge))),
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
                _ => Ok(()),
            },
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
                _ => Ok(()),
            },
        ];
        results.into_iter().collect()
    }

    /// `network rm`: refused while containers are connected (`connected` gives their
    /// names); otherwise removes the bridge, its rules, leases and record.
    pub fn remove(
        &self,
        what: &str,
        connected: impl Fn(&str) -> Vec<String>,
    ) -> Result<NetworkRecord, NetworksError> {
        let _lock = self.lock()?;
        let r = self.load(what)?;
        let users = connected(&r.name);
        if !users.is_empty() {
            return Err(NetworksError::InUse {
                name: r.name.clone(),
                containers: users,
            });
        }
        self.unmake(&r)?;
        Ok(r)
    }
}

/// The nft owner tag of a network's own rules (`rwasm:net-<id>`).
pub fn rule_owner(r: &NetworkRecord) -> String {
    format!("net-{}", r.id)
}

/// A network's id: 64 hex digits of SHA-256 over its name, the time and the pid (unique
/// per creation, as Docker's random ids).
fn network_id(name: &str) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(super::state::now_rfc3339().as_bytes());
    h.update(std::process::id().to_le_bytes());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    h.update(t.to_le_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The host's IPv4 routes but the default one, from `path` (`/proc/net/route`: hex
/// little-endian destination and mask per line), each with what to call it in an error.
fn host_routes(path: &Path) -> Result<Vec<(Cidr, String)>, NetworksError> {
    let text = fs::read_to_string(path).map_err(io_err("read", path))?;
    Ok(parse_routes(&text))
}

fn parse_routes(text: &str) -> Vec<(Cidr, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let len = u8::try_from(u32::from_be(mask).leading_ones()).ok()?;
            let addr = Ipv4Addr::from(u32::from_be(dest));
            (len > 0).then(|| {
                let c = Cidr { addr, len };
                (c, format!("the route to {c} on {}", f[0]))
            })
        })
        .collect()
}

/// Network names: as [`super::network::Mode::parse`] accepts them.
struct Mode;

impl Mode {
    fn valid_name(v: &str) -> bool {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_overlap() {
        let a = Cidr::parse("10.89.0.0/24").unwrap();
        let b = Cidr::parse("10.89.0.0/16").unwrap();
        let c = Cidr::parse("10.89.1.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && b.overlaps(&c));
        assert!(!a.overlaps(&c));
        assert!(a.contains(Ipv4Addr::new(10, 89, 0, 9)));
        for bad in [
            "10.89.0.1/24",
            "10.89.0.0",
            "10.89.0.0/31",
            "x/24",
            "10.0.0.0/4",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_come_from_procfs_without_the_default() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            rwasm0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = parse_routes(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, Cidr::parse("10.88.0.0/16").unwrap());
        assert!(r[0].1.contains("rwasm0"));
    }
}
