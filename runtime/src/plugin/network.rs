//! Network driver plugins (world `network-driver` of `rwasm:plugin@0.3.0`): the values a
//! driver is called with and answers (CNI-shaped, CNI `SPEC.md` "Result"), and the
//! [`PluginSet`] calls that run its `setup` (ADD), `teardown` (DEL) and `check` (CHECK).
//!
//! The driver asks the host for every privileged operation through `net-host`; the host
//! checks each against the manifest's `[plugin.grants.network]` (see `host::net_ctx`).
//! After a failed `setup`, and after every `teardown`, the host itself removes the
//! firewall rules tagged with the container id and the host links the driver created, so
//! a failing or buggy driver leaves nothing of the container behind.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::manifest::PluginKind;
use super::{Phase, PluginError, PluginSet, host};

/// A network operation, named as CNI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    /// CNI ADD: connect the container.
    Setup,
    /// CNI DEL: disconnect it and release what it held.
    Teardown,
    /// CNI CHECK: verify it is still connected as set up.
    Check,
}

impl NetOp {
    /// `setup`, `teardown`, `check`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetOp::Setup => "setup",
            NetOp::Teardown => "teardown",
            NetOp::Check => "check",
        }
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (Docker's default for `-p`).
    Tcp,
    /// UDP.
    Udp,
}

/// A published port (Docker's `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to answer on; every host address when `None`.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// What a driver is asked to connect (CNI's `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The container id.
    pub container_id: String,
    /// The container's network namespace (`/proc/PID/ns/net`); `None` at a teardown after
    /// the container's processes are gone.
    pub netns: Option<PathBuf>,
    /// Interface to create in the container (`eth0`).
    pub ifname: String,
    /// The network's name (`--network NAME`).
    pub network: String,
    /// The network's configuration, as keys and values.
    pub config: Vec<(String, String)>,
    /// Ports to publish.
    pub port_mappings: Vec<PortMapping>,
    /// The container's annotations.
    pub annotations: Vec<(String, String)>,
    /// Driver options.
    pub options: Vec<(String, String)>,
}

/// An interface the driver created (CNI result `interfaces`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInterface {
    /// Its name.
    pub name: String,
    /// Its MAC address.
    pub mac: Option<String>,
    /// The namespace path, for interfaces inside the container.
    pub sandbox: Option<String>,
}

/// An address (CNI result `ips`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// CIDR, e.g. `10.88.0.2/16`.
    pub address: String,
    /// Gateway address.
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    pub interface: Option<u32>,
}

/// A route (CNI result `routes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// CIDR.
    pub destination: String,
    /// Next hop.
    pub gateway: Option<String>,
}

/// DNS settings (CNI result `dns`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Resolver addresses.
    pub nameservers: Vec<String>,
    /// Local domain.
    pub domain: Option<String>,
    /// Search domains.
    pub search: Vec<String>,
    /// resolv.conf options.
    pub options: Vec<String>,
}

/// The CNI-shaped result of `setup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkResult {
    /// Interfaces created.
    pub interfaces: Vec<NetInterface>,
    /// Addresses assigned.
    pub ips: Vec<IpConfig>,
    /// Routes added.
    pub routes: Vec<Route>,
    /// DNS settings, if the driver has any.
    pub dns: Option<Dns>,
}

impl NetworkResult {
    /// The first address without its prefix (`10.88.0.2`), if any.
    pub fn first_address(&self) -> Option<Ipv4Addr> {
        self.ips
            .iter()
            .find_map(|ip| ip.address.split('/').next()?.parse().ok())
    }
}

/// What one driver call did besides its answer.
#[derive(Debug, Default)]
pub struct NetCallOutcome {
    /// `setup`'s result (`None` for teardown and check).
    pub result: Option<NetworkResult>,
    /// Host links the driver created during the call (the host deletes them at teardown
    /// if the driver does not).
    pub created_links: Vec<String>,
}

/// The host's own clean-up of container `id`: its tagged firewall rules and the given
/// host links (`links` must be links a driver created for it). Errors are logged.
pub fn clean_up(id: &str, links: &[String]) {
    use crate::linux::net::{netlink, nft};
    for link in links {
        if let Err(e) = netlink::delete_link(netlink::Ns::Host, link) {
            tracing::warn!(container = %id, link = %link, "{}", crate::error_chain(&e));
        }
    }
    match nft::remove_rules(id) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(container = %id, rules = n, "removed firewall rules"),
        Err(e) => tracing::warn!(container = %id, "{}", crate::error_chain(&e)),
    }
}

impl PluginSet {
    /// Whether the manifest has a `network-driver` plugin named `name`.
    pub fn has_network_driver(&self, name: &str) -> bool {
        self.plugins
            .iter()
            .any(|p| p.spec.kind == PluginKind::NetworkDriver && p.spec.name == name)
    }

    /// Runs `op` of the network driver named `name` for `req`. The driver acts on the
    /// namespace at `req.netns` only. After a failed `setup` the host removes what the
    /// call left (rules tagged with the container id, links it created).
    ///
    /// Errors: [`PluginError::NoNetworkDriver`] when there is no such driver, else
    /// [`PluginError::NetworkFailed`] naming the driver, the operation and the phase.
    pub fn network(
        &self,
        name: &str,
        op: NetOp,
        req: &NetworkRequest,
    ) -> Result<NetCallOutcome, PluginError> {
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.spec.kind == PluginKind::NetworkDriver && p.spec.name == name)
            .ok_or_else(|| PluginError::NoNetworkDriver {
                name: name.to_string(),
                manifest: self.manifest.clone(),
            })?;
        let failed = |phase, cause| PluginError::NetworkFailed {
            plugin: plugin.spec.name.clone(),
            op: op.as_str(),
            phase,
            cause,
        };
        let _span =
            tracing::info_span!("network", plugin = %plugin.spec.name, op = op.as_str()).entered();
        self.join_prefetch();
        let host = self
            .host_or_new()
            .map_err(|cause| failed(Phase::Load, cause))?;
        let started = Instant::now();
        let (loaded, _) = host
            .load_network(&plugin.spec, &self.cache_dir)
            .map_err(|cause| failed(Phase::Load, cause))?;
        let netns = match &req.netns {
            Some(path) => Some((
                open_netns(path).map_err(|cause| failed(Phase::Prepare, cause))?,
                path.clone(),
            )),
            None => None,
        };
        let ctx = host::NetCtx::new(
            &req.container_id,
            netns,
            plugin.spec.network.clone().unwrap_or_default(),
        );
        let (result, created) = host.network_call(&loaded, &plugin.spec, op, req, ctx);
        tracing::debug!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "network driver call finished"
        );
        match result {
            Ok(result) => Ok(NetCallOutcome {
                result,
                created_links: created,
            }),
            Err((phase, cause)) => {
                if op == NetOp::Setup {
                    clean_up(&req.container_id, &created);
                }
                Err(failed(phase, cause))
            }
        }
    }
}

fn open_netns(path: &Path) -> Result<File, super::FailureCause> {
    File::open(path).map_err(|source| super::FailureCause::Io {
        path: path.to_path_buf(),
        source,
    })
}
