//! The `net-host` capability of one network driver call: every request checked against
//! the driver's `[plugin.grants.network]`, then done by `linux::net`.
//!
//! | request | allowed when |
//! |---|---|
//! | `ensure-bridge B`, `set-master L B` | B is a granted bridge; L is owned |
//! | host link L (`set-link`, `add-address`, `add-route` out of L) | L is owned or a granted bridge |
//! | `delete-link` in the host | L is owned (a shared bridge is never deleted) |
//! | `create-veth H C` | H is owned (starts with `link-prefix`); C goes into the call's container |
//! | container link (any request) | the call has a container namespace |
//! | address, route destination (host), masquerade, forward target | inside a granted subnet |
//! | `masquerade`, `forward-port` | `nat = true` |
//! | `exec-binary NAME` | `exec-dir` is granted; NAME is a plain file name in it |
//! | `set-sysctl` | `net.ipv4.ip_forward=1`, or `net.ipv4.conf.L.{route_localnet,forwarding}` / `net.ipv6.conf.L.disable_ipv6` for an owned or granted L, value 0 or 1 |
//!
//! "Owned": the name starts with the granted `link-prefix` and is longer than it. A
//! refused request is an `invalid-input` error naming the grant it lacks.

use std::fs::File;
use std::net::Ipv4Addr;

use crate::linux::net::{netlink, nft, sysctl};

use super::super::manifest::NetworkGrant;

/// A refused or failed `net-host` request, as the guest sees it.
#[derive(Debug)]
pub(crate) enum NetRefusal {
    /// Not granted, or malformed: `invalid-input`.
    Refused(String),
    /// Granted, but the kernel or nft failed: `unavailable`.
    Failed(String),
}

type R<T> = Result<T, NetRefusal>;

fn refused<T>(msg: impl Into<String>) -> R<T> {
    Err(NetRefusal::Refused(msg.into()))
}

fn failed(e: crate::linux::net::NetError) -> NetRefusal {
    NetRefusal::Failed(crate::error_chain(&e))
}

/// Where a link is, as the guest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Host,
    Container,
}

/// The state of one driver call: who it is for and what it may touch.
pub(crate) struct NetCtx {
    container_id: String,
    netns: Option<File>,
    /// The path `netns` was opened from (`/proc/PID/ns/net`), for `exec-binary`'s `CNI_NETNS`.
    netns_path: Option<std::path::PathBuf>,
    grant: NetworkGrant,
    /// Host links created by this call, for the host's clean-up.
    pub(crate) created: Vec<String>,
}

/// An IPv4 CIDR `a.b.c.d/len` (host bits allowed: it names an address on a network).
pub(crate) fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad =
        || format!("invalid CIDR `{text}`: use an IPv4 address and prefix such as 10.88.0.2/16");
    let (a, l) = text.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let l: u8 = l.parse().map_err(|_| bad())?;
    if l > 32 {
        return Err(bad());
    }
    Ok((a, l))
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

fn contains((net, len): (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    u32::from(ip) & mask(len) == u32::from(net) & mask(len)
}

impl NetCtx {
    /// The context of a call for container `id`, acting in `netns` (its network
    /// namespace, when it has one) within `grant`.
    pub(crate) fn new(
        id: &str,
        netns: Option<(File, std::path::PathBuf)>,
        grant: NetworkGrant,
    ) -> NetCtx {
        let (netns, netns_path) = match netns {
            Some((f, p)) => (Some(f), Some(p)),
            None => (None, None),
        };
        NetCtx {
            container_id: id.to_string(),
            netns,
            netns_path,
            grant,
            created: Vec::new(),
        }
    }

    fn owned(&self, name: &str) -> bool {
        self.grant
            .link_prefix
            .as_deref()
            .is_some_and(|p| name.len() > p.len() && name.starts_with(p))
    }

    fn bridge(&self, name: &str) -> bool {
        self.grant.bridges.iter().any(|b| b == name)
    }

    fn what_it_owns(&self) -> String {
        let prefix = match &self.grant.link_prefix {
            Some(p) => format!("links starting with `{p}`"),
            None => "no links (no `link-prefix` granted)".to_string(),
        };
        let bridges = if self.grant.bridges.is_empty() {
            "no bridges".to_string()
        } else {
            format!("the bridges {}", self.grant.bridges.join(", "))
        };
        format!("the driver owns {prefix} and may use {bridges} (`[plugin.grants.network]`)")
    }

    /// The namespace of `side`; a host link must be owned, or a granted bridge when
    /// `bridges` is true.
    fn ns_for(&self, side: Side, link: &str, bridges: bool) -> R<netlink::Ns<'_>> {
        netlink::check_ifname(link).map_err(|e| NetRefusal::Refused(e.to_string()))?;
        match side {
            Side::Container => match &self.netns {
                Some(f) => Ok(netlink::Ns::Container(f)),
                None => refused("the container has no network namespace in this call"),
            },
            Side::Host if self.owned(link) || (bridges && self.bridge(link)) => {
                Ok(netlink::Ns::Host)
            }
            Side::Host => refused(format!(
                "refused: host link `{link}` is not the driver's; {}",
                self.what_it_owns()
            )),
        }
    }

    fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        self.grant.subnets.iter().any(|n| contains(*n, ip))
    }

    /// `net` lies inside a granted subnet.
    fn net_granted(&self, net: (Ipv4Addr, u8)) -> bool {
        self.grant
            .subnets
            .iter()
            .any(|g| net.1 >= g.1 && contains(*g, net.0))
    }

    fn subnets(&self) -> String {
        if self.grant.subnets.is_empty() {
            "none is granted".to_string()
        } else {
            let list: Vec<String> = self
                .grant
                .subnets
                .iter()
                .map(|(a, l)| format!("{a}/{l}"))
                .collect();
            format!("granted: {}", list.join(", "))
        }
    }

    /// `ensure-bridge`.
    pub(crate) fn ensure_bridge(&mut self, name: &str) -> R<bool> {
        netlink::check_ifname(name).map_err(|e| NetRefusal::Refused(e.to_string()))?;
        if !self.bridge(name) {
            return refused(format!(
                "refused: bridge `{name}` is not granted; {}",
                self.what_it_owns()
            ));
        }
        netlink::ensure_bridge(name).map_err(failed)
    }

    /// `create-veth`.
    pub(crate) fn create_veth(&mut self, host_name: &str, container_name: &str) -> R<()> {
        netlink::check_ifname(container_name).map_err(|e| NetRefusal::Refused(e.to_string()))?;
        self.ns_for(Side::Host, host_name, false)?;
        let Some(netns) = &self.netns else {
            return refused("the container has no network namespace in this call");
        };
        netlink::create_veth(host_name, container_name, netns).map_err(failed)?;
        self.created.push(host_name.to_string());
        Ok(())
    }

    /// `set-master`.
    pub(crate) fn set_master(&mut self, link: &str, bridge: &str) -> R<()> {
        self.ns_for(Side::Host, link, false)?;
        if !self.bridge(bridge) {
            return refused(format!(
                "refused: bridge `{bridge}` is not granted; {}",
                self.what_it_owns()
            ));
        }
        netlink::set_master(link, bridge).map_err(failed)
    }

    /// `set-link`.
    pub(crate) fn set_link(&mut self, side: Side, link: &str, s: &netlink::LinkSettings) -> R<()> {
        if let Some(mtu) = s.mtu
            && !(68..=65535).contains(&mtu)
        {
            return refused(format!("invalid MTU {mtu}: use 68 to 65535"));
        }
        let ns = self.ns_for(side, link, true)?;
        netlink::set_link(ns, link, s).map_err(failed)
    }

    /// `add-address`.
    pub(crate) fn add_address(&mut self, side: Side, link: &str, cidr: &str) -> R<()> {
        let (ip, len) = parse_cidr(cidr).map_err(NetRefusal::Refused)?;
        if !self.in_subnet(ip) {
            return refused(format!(
                "refused: address {cidr} is outside the driver's subnets ({})",
                self.subnets()
            ));
        }
        let ns = self.ns_for(side, link, true)?;
        netlink::add_address(ns, link, ip, len).map_err(failed)
    }

    /// `add-route`.
    pub(crate) fn add_route(
        &mut self,
        side: Side,
        destination: &str,
        gateway: Option<&str>,
        link: Option<&str>,
    ) -> R<()> {
        let (dest, len) = parse_cidr(destination).map_err(NetRefusal::Refused)?;
        let dest = Ipv4Addr::from(u32::from(dest) & mask(len));
        let gw = match gateway {
            Some(g) => Some(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| NetRefusal::Refused(format!("invalid gateway `{g}`")))?,
            ),
            None => None,
        };
        let ns = match (side, link) {
            (Side::Container, Some(l)) => self.ns_for(side, l, false)?,
            (Side::Container, None) => match &self.netns {
                Some(f) => netlink::Ns::Container(f),
                None => return refused("the container has no network namespace in this call"),
            },
            (Side::Host, None) => {
                return refused(
                    "a host route must name its link (an owned link or a granted bridge)",
                );
            }
            (Side::Host, Some(l)) => {
                let ns = self.ns_for(side, l, true)?;
                if !self.net_granted((dest, len)) {
                    return refused(format!(
                        "refused: host route to {destination} is outside the driver's subnets ({})",
                        self.subnets()
                    ));
                }
                ns
            }
        };
        netlink::add_route(ns, dest, len, gw, link).map_err(failed)
    }

    /// `delete-link`.
    pub(crate) fn delete_link(&mut self, side: Side, link: &str) -> R<()> {
        let ns = self.ns_for(side, link, false)?;
        netlink::delete_link(ns, link).map_err(failed)
    }

    /// `set-sysctl`.
    pub(crate) fn set_sysctl(&mut self, name: &str, value: &str) -> R<()> {
        if value != "0" && value != "1" {
            return refused(format!(
                "refused: sysctl {name}: only the values 0 and 1 are allowed"
            ));
        }
        let allowed = if name == "net.ipv4.ip_forward" {
            value == "1"
        } else {
            let link = name
                .strip_prefix("net.ipv4.conf.")
                .and_then(|r| {
                    r.strip_suffix(".route_localnet")
                        .or_else(|| r.strip_suffix(".forwarding"))
                })
                .or_else(|| {
                    name.strip_prefix("net.ipv6.conf.")
                        .and_then(|r| r.strip_suffix(".disable_ipv6"))
                });
            link.is_some_and(|l| {
                netlink::check_ifname(l).is_ok() && (self.owned(l) || self.bridge(l))
            })
        };
        if !allowed {
            return refused(format!(
                "refused: sysctl {name}={value} is not one a network driver may set (see the \
                 net-host interface); {}",
                self.what_it_owns()
            ));
        }
        sysctl::set(name, value).map_err(failed)
    }

    fn check_nat(&self) -> R<()> {
        if self.grant.nat {
            Ok(())
        } else {
            refused("refused: NAT is not granted (`[plugin.grants.network] nat = true`)")
        }
    }

    /// `masquerade`.
    pub(crate) fn masquerade(&mut self, source: &str, source_subnet: &str) -> R<()> {
        self.check_nat()?;
        let src = match source.contains('/') {
            true => parse_cidr(source).map_err(NetRefusal::Refused)?,
            false => (
                source
                    .parse()
                    .map_err(|_| NetRefusal::Refused(format!("invalid address `{source}`")))?,
                32,
            ),
        };
        let net = parse_cidr(source_subnet).map_err(NetRefusal::Refused)?;
        for (what, n) in [(source, src), (source_subnet, net)] {
            if !self.net_granted(n) {
                return refused(format!(
                    "refused: {what} is outside the driver's subnets ({})",
                    self.subnets()
                ));
            }
        }
        nft::masquerade(
            &self.container_id,
            nft::Net4 {
                addr: src.0,
                len: src.1,
            },
            nft::Net4 {
                addr: Ipv4Addr::from(u32::from(net.0) & mask(net.1)),
                len: net.1,
            },
        )
        .map_err(failed)
    }

    /// `forward-port`.
    pub(crate) fn forward_port(&mut self, mut f: nft::Forward) -> R<()> {
        self.check_nat()?;
        // The granted subnet the container is on: hairpin traffic from it is masqueraded.
        f.hairpin = self
            .grant
            .subnets
            .iter()
            .find(|n| contains(**n, f.container_ip))
            .map(|(a, l)| nft::Net4 { addr: *a, len: *l });
        if f.hairpin.is_none() {
            return refused(format!(
                "refused: container address {} is outside the driver's subnets ({})",
                f.container_ip,
                self.subnets()
            ));
        }
        if f.host_port == 0 || f.container_port == 0 {
            return refused("port 0 cannot be published");
        }
        nft::forward_port(&self.container_id, &f).map_err(|e| match e {
            crate::linux::net::NetError::Invalid { .. } => NetRefusal::Refused(e.to_string()),
            other => failed(other),
        })
    }

    /// `remove-rules`.
    pub(crate) fn remove_rules(&mut self) -> R<u32> {
        nft::remove_rules(&self.container_id).map_err(failed)
    }

    /// `exec-binary`: only with a granted `exec-dir`; the host's own `CNI_CONTAINERID`
    /// and `CNI_NETNS` (see [`super::net_exec`]).
    pub(crate) fn exec_binary(
        &mut self,
        binary: &str,
        env: &[(String, String)],
        stdin: &[u8],
        timeout_ms: u32,
    ) -> R<super::net_exec::Output> {
        let Some(dir) = self.grant.exec_dir.clone() else {
            return refused(format!(
                "running host binary `{binary}` is not granted: the driver has no `exec-dir` in `[plugin.grants.network]`"
            ));
        };
        let mut env: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| !["CNI_CONTAINERID", "CNI_NETNS", "CNI_PATH"].contains(&k.as_str()))
            .cloned()
            .collect();
        // A CNI plugin runs its delegates (IPAM) from CNI_PATH: the granted directory only.
        env.push(("CNI_PATH".to_string(), dir.display().to_string()));
        env.push(("CNI_CONTAINERID".to_string(), self.container_id.clone()));
        if let Some(p) = &self.netns_path {
            env.push(("CNI_NETNS".to_string(), p.display().to_string()));
        }
        super::net_exec::run(&dir, binary, &env, stdin, timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NetCtx {
        NetCtx::new(
            "c1",
            None,
            NetworkGrant {
                bridges: vec!["rwb0".to_string()],
                subnets: vec![(Ipv4Addr::new(10, 99, 0, 0), 16)],
                link_prefix: Some("rwt".to_string()),
                nat: false,
                exec_dir: None,
            },
        )
    }

    fn refusal<T: std::fmt::Debug>(r: R<T>) -> String {
        match r {
            Err(NetRefusal::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn links_it_does_not_own_are_refused() {
        let mut c = ctx();
        let settings = netlink::LinkSettings {
            up: Some(true),
            ..Default::default()
        };
        let m = refusal(c.set_link(Side::Host, "eth0", &settings));
        assert!(m.contains("host link `eth0` is not the driver's"), "{m}");
        assert!(m.contains("links starting with `rwt`"), "{m}");
        // A granted bridge is shared: the driver may use it, never delete it.
        let m = refusal(c.delete_link(Side::Host, "rwb0"));
        assert!(m.contains("`rwb0` is not the driver's"), "{m}");
        let m = refusal(c.delete_link(Side::Host, "rwt"));
        assert!(m.contains("not the driver's"), "{m}");
        let m = refusal(c.ensure_bridge("docker0"));
        assert!(m.contains("bridge `docker0` is not granted"), "{m}");
        let m = refusal(c.set_master("rwtabc", "br0"));
        assert!(m.contains("bridge `br0` is not granted"), "{m}");
    }

    #[test]
    fn addresses_routes_and_nat_stay_in_the_grant() {
        let mut c = ctx();
        let m = refusal(c.add_address(Side::Host, "rwb0", "192.168.1.1/24"));
        assert!(
            m.contains("outside the driver's subnets (granted: 10.99.0.0/16)"),
            "{m}"
        );
        let m = refusal(c.add_route(Side::Host, "0.0.0.0/0", None, Some("rwb0")));
        assert!(m.contains("outside the driver's subnets"), "{m}");
        let m = refusal(c.masquerade("10.99.0.2", "10.99.0.0/16"));
        assert!(m.contains("NAT is not granted"), "{m}");
        let m = refusal(c.add_address(Side::Container, "eth0", "10.99.0.2/16"));
        assert!(m.contains("no network namespace"), "{m}");
    }

    #[test]
    fn only_the_bridge_sysctls_are_allowed() {
        let mut c = ctx();
        for (name, value) in [
            ("net.ipv4.ip_forward", "0"),
            ("net.ipv4.conf.eth0.route_localnet", "1"),
            ("net.ipv4.conf.all.forwarding", "1"),
            ("kernel.panic", "1"),
            ("net.ipv4.conf.rwb0.route_localnet", "2"),
        ] {
            refusal(c.set_sysctl(name, value));
        }
    }
}
