//! The host of the `network-driver` world (`rwasm:plugin@0.3.0`): its bindings, the
//! `net-host` imports (each checked by [`NetCtx`]), load and the `configure` + `setup` /
//! `teardown` / `check` call.
//!
//! A call runs inline on the calling thread, its epoch advanced by the host's ticker, in
//! a fresh store with the driver's memory cap, deadline and fuel, like a hook call.
//! A driver is granted its state directory (its IPAM leases): a regular directory that
//! only rwasm writes, so no file operation of the driver can block for long; the deadline
//! still bounds all guest code.

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::super::manifest::PluginSpec;
use super::super::network::{self as net, NetOp, NetworkRequest};
use super::super::{FailureCause, HookPoint, Phase};
use super::net_ctx::{NetRefusal, Side};
use super::state::HostState;
use super::{Host, STDOUT_CAPACITY, convert};
use crate::linux::net::{netlink, nft};

pub(crate) use super::net_ctx::NetCtx;

/// Bindings of the `network-driver` world; `types` and `host` are the hook world's.
mod bindings_net {
    wasmtime::component::bindgen!({
        world: "network-driver",
        path: "../sdk/wit",
        with: {
            "rwasm:plugin/types": crate::plugin::host::bindings::rwasm::plugin::types,
            "rwasm:plugin/host": crate::plugin::host::bindings::rwasm::plugin::host,
        },
    });
}

use super::bindings::rwasm::plugin::types as wit;
use bindings_net::exports::rwasm::plugin::network as wnet;
use bindings_net::rwasm::plugin::net_host;

/// The export a network driver has.
pub(super) const NETWORK_EXPORT: &str = "rwasm:plugin/network@0.3.0";
/// The import only network drivers may have.
const NET_HOST_IMPORT: &str = "rwasm:plugin/net-host@0.3.0";

/// Adds the `net-host` imports to the set's linker (WASI, `host` and `types` are there
/// already for the hook world).
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    net_host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// A loaded network driver.
pub(crate) struct NetLoaded {
    pre: bindings_net::NetworkDriverPre<HostState>,
}

fn wit_err(r: NetRefusal) -> wit::Error {
    match r {
        NetRefusal::Refused(message) => wit::Error {
            code: wit::ErrorCode::InvalidInput,
            message,
        },
        NetRefusal::Failed(message) => wit::Error {
            code: wit::ErrorCode::Unavailable,
            message,
        },
    }
}

fn side(ns: net_host::Netns) -> Side {
    match ns {
        net_host::Netns::Host => Side::Host,
        net_host::Netns::Container => Side::Container,
    }
}

impl HostState {
    fn net<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut NetCtx) -> Result<T, NetRefusal>,
    ) -> Result<T, wit::Error> {
        let plugin = self.plugin.clone();
        let Some(ctx) = self.net.as_mut() else {
            return Err(wit::Error {
                code: wit::ErrorCode::Unsupported,
                message: "net-host is only for network driver calls".to_string(),
            });
        };
        let r = f(ctx);
        match &r {
            Ok(_) => tracing::debug!(plugin = %plugin, "net-host {what}: done"),
            Err(NetRefusal::Refused(m)) => tracing::warn!(plugin = %plugin, "net-host {what}: {m}"),
            Err(NetRefusal::Failed(m)) => tracing::warn!(plugin = %plugin, "net-host {what}: {m}"),
        }
        r.map_err(wit_err)
    }
}

impl net_host::Host for HostState {
    fn ensure_bridge(&mut self, name: String) -> Result<bool, wit::Error> {
        self.net(&format!("ensure-bridge {name}"), |c| c.ensure_bridge(&name))
    }

    fn create_veth(&mut self, host_name: String, container_name: String) -> Result<(), wit::Error> {
        self.net(&format!("create-veth {host_name} {container_name}"), |c| {
            c.create_veth(&host_name, &container_name)
        })
    }

    fn set_master(&mut self, link: String, bridge: String) -> Result<(), wit::Error> {
        self.net(&format!("set-master {link} {bridge}"), |c| {
            c.set_master(&link, &bridge)
        })
    }

    fn set_link(
        &mut self,
        ns: net_host::Netns,
        link: String,
        settings: net_host::LinkSettings,
    ) -> Result<(), wit::Error> {
        let mac = match settings.mac.as_deref().map(netlink::parse_mac) {
            Some(Err(e)) => return Err(wit_err(NetRefusal::Refused(e.to_string()))),
            Some(Ok(m)) => Some(m),
            None => None,
        };
        let s = netlink::LinkSettings {
            mtu: settings.mtu,
            mac,
            up: settings.up,
        };
        self.net(&format!("set-link {link}"), |c| {
            c.set_link(side(ns), &link, &s)
        })
    }

    fn add_address(
        &mut self,
        ns: net_host::Netns,
        link: String,
        cidr: String,
    ) -> Result<(), wit::Error> {
        self.net(&format!("add-address {link} {cidr}"), |c| {
            c.add_address(side(ns), &link, &cidr)
        })
    }

    fn add_route(
        &mut self,
        ns: net_host::Netns,
        route: net_host::RouteSpec,
    ) -> Result<(), wit::Error> {
        self.net(&format!("add-route {}", route.destination), |c| {
            c.add_route(
                side(ns),
                &route.destination,
                route.gateway.as_deref(),
                route.link.as_deref(),
            )
        })
    }

    fn delete_link(&mut self, ns: net_host::Netns, link: String) -> Result<(), wit::Error> {
        self.net(&format!("delete-link {link}"), |c| {
            c.delete_link(side(ns), &link)
        })
    }

    fn set_sysctl(&mut self, name: String, value: String) -> Result<(), wit::Error> {
        self.net(&format!("set-sysctl {name}={value}"), |c| {
            c.set_sysctl(&name, &value)
        })
    }

    fn masquerade(&mut self, source: String, source_subnet: String) -> Result<(), wit::Error> {
        self.net(&format!("masquerade {source}"), |c| {
            c.masquerade(&source, &source_subnet)
        })
    }

    fn forward_port(&mut self, forward: net_host::PortForward) -> Result<(), wit::Error> {
        let ip = |s: &str, what: &str| {
            s.parse::<std::net::Ipv4Addr>()
                .map_err(|_| wit_err(NetRefusal::Refused(format!("invalid {what} `{s}`"))))
        };
        let f = nft::Forward {
            proto: match forward.protocol {
                wit::Protocol::Tcp => nft::Proto::Tcp,
                wit::Protocol::Udp => nft::Proto::Udp,
            },
            host_ip: match &forward.host_ip {
                Some(h) => Some(ip(h, "host address")?),
                None => None,
            },
            host_port: forward.host_port,
            container_ip: ip(&forward.container_ip, "container address")?,
            container_port: forward.container_port,
            hairpin: None,
        };
        self.net(&format!("forward-port {}", forward.host_port), |c| {
            c.forward_port(f)
        })
    }

    fn remove_rules(&mut self) -> Result<u32, wit::Error> {
        self.net("remove-rules", |c| c.remove_rules())
    }

    fn exec_binary(
        &mut self,
        binary: String,
        env: Vec<(String, String)>,
        stdin: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<net_host::ExecOutput, wit::Error> {
        self.net(&format!("exec-binary {binary}"), |c| {
            c.exec_binary(&binary, &env, &stdin, timeout_ms)
        })
        .map(|o| net_host::ExecOutput {
            exit_code: o.exit_code,
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }
}

/// Which world and version `exports` implement, for a network driver; `Err` says why it
/// is not one this host runs.
fn check_exports(exports: &[String]) -> Result<(), FailureCause> {
    if exports.iter().any(|e| e == NETWORK_EXPORT) {
        return Ok(());
    }
    if let Some(old) = exports
        .iter()
        .find(|e| e.starts_with("rwasm:plugin/network@"))
    {
        return Err(FailureCause::NetworkLink {
            reason: format!(
                "the component exports `{old}`, whose network interface was only sketched; \
                 rebuild it against rwasm:plugin@0.3.0 (`{NETWORK_EXPORT}`)"
            ),
        });
    }
    if let Some(hooks) = exports
        .iter()
        .find(|e| e.starts_with("rwasm:plugin/hooks@"))
    {
        return Err(FailureCause::WrongWorld {
            kind: "network-driver".to_string(),
            exports: hooks.clone(),
            world: "hook".to_string(),
            missing: NETWORK_EXPORT.to_string(),
        });
    }
    Err(FailureCause::NetworkLink {
        reason: format!(
            "the component does not export `{NETWORK_EXPORT}` (a network driver of world \
             rwasm:plugin/network-driver); it exports: {}",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ),
    })
}

fn to_wit(req: &NetworkRequest) -> wnet::NetworkRequest {
    wnet::NetworkRequest {
        container_id: req.container_id.clone(),
        netns: req
            .netns
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        ifname: req.ifname.clone(),
        network: req.network.clone(),
        config: req.config.clone(),
        port_mappings: req
            .port_mappings
            .iter()
            .map(|p| wnet::PortMapping {
                host_ip: p.host_ip.map(|i| i.to_string()),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: match p.protocol {
                    net::Protocol::Tcp => wit::Protocol::Tcp,
                    net::Protocol::Udp => wit::Protocol::Udp,
                },
            })
            .collect(),
        annotations: req.annotations.clone(),
        options: req.options.clone(),
    }
}

fn from_wit(r: wnet::NetworkResult) -> net::NetworkResult {
    net::NetworkResult {
        interfaces: r
            .interfaces
            .into_iter()
            .map(|i| net::NetInterface {
                name: i.name,
                mac: i.mac,
                sandbox: i.sandbox,
            })
            .collect(),
        ips: r
            .ips
            .into_iter()
            .map(|i| net::IpConfig {
                address: i.address,
                gateway: i.gateway,
                interface: i.interface,
            })
            .collect(),
        routes: r
            .routes
            .into_iter()
            .map(|i| net::Route {
                destination: i.destination,
                gateway: i.gateway,
            })
            .collect(),
        dns: r.dns.map(|d| net::Dns {
            nameservers: d.nameservers,
            domain: d.domain,
            search: d.search,
            options: d.options,
        }),
    }
}

/// Bytes of strings in a result, for `max-answer`.
fn result_bytes(r: &net::NetworkResult) -> u64 {
    serde_json::to_vec(r).map_or(u64::MAX, |v| u64::try_from(v.len()).unwrap_or(u64::MAX))
}

type NetCallResult = Result<Option<net::NetworkResult>, (Phase, FailureCause)>;

impl Host {
    /// Load phase of a network driver: compile or load from the cache, check its exports
    /// (`rwasm:plugin/network@0.3.0`) and imports (those of a hook plus `net-host`).
    pub(crate) fn load_network(
        &self,
        spec: &PluginSpec,
        cache_dir: &std::path::Path,
    ) -> Result<(NetLoaded, super::Origin), FailureCause> {
        let kind = super::driver_call::DriverKind {
            check_exports,
            host_import: NET_HOST_IMPORT,
            link: |reason| FailureCause::NetworkLink { reason },
            pre: bindings_net::NetworkDriverPre::new,
        };
        self.load_driver(spec, cache_dir, &kind)
            .map(|(pre, origin)| (NetLoaded { pre }, origin))
    }

    /// The load phase of a plugin of either kind, for `rwasm plugin validate`,
    /// `precompile` and `inspect`.
    pub(crate) fn load_any(
        &self,
        spec: &PluginSpec,
        cache_dir: &std::path::Path,
    ) -> Result<super::Origin, FailureCause> {
        match spec.kind {
            super::super::manifest::PluginKind::Hook => self.load(spec, cache_dir).map(|(_, o)| o),
            super::super::manifest::PluginKind::NetworkDriver => {
                self.load_network(spec, cache_dir).map(|(_, o)| o)
            }
            super::super::manifest::PluginKind::StorageDriver => {
                self.load_storage(spec, cache_dir).map(|(_, o)| o)
            }
            super::super::manifest::PluginKind::VolumeDriver => {
                self.load_volume(spec, cache_dir).map(|(_, o)| o)
            }
        }
    }

    /// Configure + `op` of a loaded driver, in `ctx`; returns the result and the host
    /// links the call created (also on failure, for the clean-up).
    pub(crate) fn network_call(
        &self,
        loaded: &NetLoaded,
        spec: &PluginSpec,
        op: NetOp,
        req: &NetworkRequest,
        ctx: NetCtx,
    ) -> (NetCallResult, Vec<String>) {
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        for grant in &spec.dirs {
            let access = if grant.writable {
                super::super::manifest::Access::ReadWrite
            } else {
                super::super::manifest::Access::ReadOnly
            };
            if let Err(cause) =
                super::grants::preopen(&mut builder, &grant.host, &grant.guest, access)
            {
                return (Err((Phase::Prepare, cause)), Vec::new());
            }
        }
        let mut state = HostState::new(builder.build(), spec, HookPoint::CreateRuntime);
        state.net = Some(ctx);
        let ticker = match self.ticker() {
            Ok(t) => t,
            Err(source) => {
                return (
                    Err((Phase::Prepare, FailureCause::Thread { source })),
                    Vec::new(),
                );
            }
        };
        let _runtime = ticker.handle().enter();
        let _ticking = ticker.activate();
        let mut store = Store::new(&self.engine, state);
        let result = run(&mut store, loaded, spec, op, req, self.fuel);
        let created = store
            .data_mut()
            .net
            .take()
            .map(|c| c.created)
            .unwrap_or_default();
        for (stream, bytes) in [("stdout", stdout.contents()), ("stderr", stderr.contents())] {
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                if result.is_err() {
                    tracing::warn!(stream, "guest: {line}");
                } else {
                    tracing::debug!(stream, "guest: {line}");
                }
            }
        }
        (result, created)
    }
}

fn run(
    store: &mut Store<HostState>,
    loaded: &NetLoaded,
    spec: &PluginSpec,
    op: NetOp,
    req: &NetworkRequest,
    fuel: bool,
) -> NetCallResult {
    super::driver_call::arm(store, spec, fuel)?;
    let driver = loaded
        .pre
        .instantiate(&mut *store)
        .map_err(|e| (Phase::Prepare, super::driver_call::classify(store, spec, e)))?;
    let guest = |e: wit::Error| FailureCause::Guest {
        message: convert::error_message(e),
    };
    let n = driver.rwasm_plugin_network();
    let config: Vec<_> = spec.config.iter().map(convert::config_entry).collect();
    match n.call_configure(&mut *store, &config) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err((Phase::Configure, guest(e))),
        Err(e) => {
            return Err((
                Phase::Configure,
                super::driver_call::classify(store, spec, e),
            ));
        }
    }
    let request = to_wit(req);
    let answer = match op {
        NetOp::Setup => n
            .call_setup(&mut *store, &request)
            .map(|r| r.map(|x| Some(from_wit(x)))),
        NetOp::Teardown => n
            .call_teardown(&mut *store, &request)
            .map(|r| r.map(|()| None)),
        NetOp::Check => n
            .call_check(&mut *store, &request)
            .map(|r| r.map(|()| None)),
    };
    let result = match answer {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err((Phase::Invoke, guest(e))),
        Err(e) => return Err((Phase::Invoke, super::driver_call::classify(store, spec, e))),
    };
    if store.data().overslept {
        return Err((
            Phase::Invoke,
            FailureCause::Deadline {
                timeout_ms: spec.timeout_ms,
            },
        ));
    }
    if let Some(r) = &result {
        let bytes = result_bytes(r);
        if bytes > spec.max_answer {
            return Err((
                Phase::Invoke,
                FailureCause::AnswerTooLarge {
                    bytes,
                    limit: spec.max_answer,
                },
            ));
        }
    }
    Ok(result)
}
