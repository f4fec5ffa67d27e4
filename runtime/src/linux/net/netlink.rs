//! Links, addresses and routes through rtnetlink (rtnetlink(7); the `rtnetlink` crate),
//! in the host's network namespace or in a container's.
//!
//! Every operation runs on a short-lived thread of its own with a current-thread tokio
//! runtime: the netlink socket is created on that thread after it joined the target
//! namespace (`setns(2)` with `CLONE_NEWNET` affects only the calling thread, and a
//! socket stays in the namespace it was created in), and the caller may itself be inside
//! another runtime (a plugin call), where it could not block on one. The thread ends with
//! the operation, so no thread is left in a container's namespace.

use std::fs::File;
use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use futures_util::TryStreamExt;
use nix::sched::{CloneFlags, setns};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::NetError;

/// The network namespace an operation acts in.
#[derive(Debug, Clone, Copy)]
pub enum Ns<'a> {
    /// The namespace rwasm runs in.
    Host,
    /// A container's namespace, as an open `/proc/PID/ns/net` (or bind-mounted) file.
    Container(&'a File),
}

/// Longest interface name (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// Checks an interface name as the kernel does (`dev_valid_name`): 1 to 15 bytes, not `.`
/// or `..`, no `/`, `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), NetError> {
    let bad = |reason| NetError::Invalid {
        what: "interface name",
        value: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(bad("use 1 to 15 characters"));
    }
    if name == "." || name == ".." {
        return Err(bad("`.` and `..` are not interface names"));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        return Err(bad("no `/`, `:`, spaces or NUL"));
    }
    Ok(())
}

/// Parses `aa:bb:cc:dd:ee:ff` into a unicast MAC address.
pub fn parse_mac(mac: &str) -> Result<[u8; 6], NetError> {
    let bad = |reason| NetError::Invalid {
        what: "MAC address",
        value: mac.to_string(),
        reason,
    };
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        let p = parts
            .next()
            .ok_or_else(|| bad("use six hex bytes aa:bb:cc:dd:ee:ff"))?;
        if p.len() != 2 {
            return Err(bad("use six hex bytes aa:bb:cc:dd:ee:ff"));
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad("use six hex bytes aa:bb:cc:dd:ee:ff"))?;
    }
    if parts.next().is_some() {
        return Err(bad("use six hex bytes aa:bb:cc:dd:ee:ff"));
    }
    if out[0] & 1 == 1 {
        return Err(bad("a multicast address cannot be a link's address"));
    }
    Ok(out)
}

/// The errno of a netlink error message, as a positive number.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Netlink { what, source }
}

/// Runs `f` with a netlink handle in `ns`, on a thread of its own (module docs).
fn run<T, F, Fut>(ns: Ns<'_>, f: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, NetError>>,
{
    let ns_err = |what: &str| {
        let what = what.to_string();
        move |source: std::io::Error| NetError::Namespace { what, source }
    };
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("rwasm-netlink".to_string())
            .spawn_scoped(s, move || {
                if let Ns::Container(file) = ns {
                    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
                        .map_err(ns_err("join the container's network namespace"))?;
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(ns_err("start the netlink runtime"))?;
                rt.block_on(async {
                    let (conn, handle, _) =
                        rtnetlink::new_connection().map_err(ns_err("open a netlink socket"))?;
                    let conn = tokio::spawn(conn);
                    let result = f(handle).await;
                    conn.abort();
                    result
                })
            })
            .map_err(ns_err("start the netlink thread"))?;
        worker.join().unwrap_or_else(|_| {
            Err(NetError::Namespace {
                what: "finish a netlink request (its thread panicked)".to_string(),
                source: std::io::Error::other("panic"),
            })
        })
    })
}

/// The link named `name`, if it exists.
async fn get(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, NetError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

async fn index(handle: &Handle, name: &str) -> Result<u32, NetError> {
    get(handle, name)
        .await?
        .map(|l| l.header.index)
        .ok_or_else(|| NetError::NoLink(name.to_string()))
}

/// The link kind (`bridge`, `veth`, ...) of `link`, `device` for a physical one.
fn kind_of(link: &LinkMessage) -> String {
    for attr in &link.attributes {
        if let LinkAttribute::LinkInfo(infos) = attr {
            for info in infos {
                if let LinkInfo::Kind(kind) = info {
                    return kind.to_string();
                }
            }
        }
    }
    "device".to_string()
}

/// Creates the bridge `name` in the host's namespace (up), or reuses it; returns whether
/// it was created. An existing link of another kind is [`NetError::WrongKind`].
pub fn ensure_bridge(name: &str) -> Result<bool, NetError> {
    run(Ns::Host, |h| async move {
        let check = |link: &LinkMessage| {
            let kind = kind_of(link);
            if kind == InfoKind::Bridge.to_string() {
                Ok(())
            } else {
                Err(NetError::WrongKind {
                    name: name.to_string(),
                    kind,
                    wanted: "bridge",
                })
            }
        };
        if let Some(link) = get(&h, name).await? {
            check(&link)?;
            return Ok(false);
        }
        match h.link().add(LinkBridge::new(name).build()).execute().await {
            Ok(()) => Ok(true),
            // Created by a parallel run in between.
            Err(e) if errno(&e) == Some(libc::EEXIST) => {
                let link = get(&h, name)
                    .await?
                    .ok_or_else(|| NetError::NoLink(name.to_string()))?;
                check(&link)?;
                Ok(false)
            }
            Err(e) => Err(nl(format!("create bridge {name}"))(e)),
        }
    })
}

/// Creates a veth pair in one request: `host_name` in the host's namespace and its peer,
/// named `peer_name`, directly in the container's namespace `netns` (the kernel's
/// `IFLA_NET_NS_FD` on the peer), so no half of the pair is ever left in the wrong place.
pub fn create_veth(host_name: &str, peer_name: &str, netns: &File) -> Result<(), NetError> {
    use std::os::fd::AsRawFd;
    let fd = netns.as_raw_fd();
    run(Ns::Host, |h| async move {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .setns_by_fd(fd)
            .build();
        let msg = LinkVeth::new(host_name, peer_name)
            .set_info_data(rtnetlink::packet_route::link::InfoData::Veth(
                rtnetlink::packet_route::link::InfoVeth::Peer(peer),
            ))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("create veth {host_name} (peer {peer_name})")))
    })
}

/// Attaches `link` to the bridge `bridge` (both in the host's namespace).
pub fn set_master(link: &str, bridge: &str) -> Result<(), NetError> {
    run(Ns::Host, |h| async move {
        let li = index(&h, link).await?;
        let bi = index(&h, bridge).await?;
        h.link()
            .set(LinkUnspec::new_with_index(li).controller(bi).build())
            .execute()
            .await
            .map_err(nl(format!("attach {link} to bridge {bridge}")))
    })
}

/// Link settings: MTU in bytes, MAC, up or down; `None` leaves a setting alone.
#[derive(Debug, Clone, Default)]
pub struct LinkSettings {
    /// Bytes.
    pub mtu: Option<u32>,
    /// A unicast address (see [`parse_mac`]).
    pub mac: Option<[u8; 6]>,
    /// Up (`true`) or down.
    pub up: Option<bool>,
}

/// Applies `settings` to `link` in `ns` (MTU and MAC before the link goes up).
pub fn set_link(ns: Ns<'_>, link: &str, settings: &LinkSettings) -> Result<(), NetError> {
    let settings = settings.clone();
    run(ns, |h| async move {
        let i = index(&h, link).await?;
        let mut b = LinkUnspec::new_with_index(i);
        if let Some(mtu) = settings.mtu {
            b = b.mtu(mtu);
        }
        if let Some(mac) = settings.mac {
            b = b.address(mac.to_vec());
        }
        b = match settings.up {
            Some(true) => b.up(),
            Some(false) => b.down(),
            None => b,
        };
        h.link()
            .set(b.build())
            .execute()
            .await
            .map_err(nl(format!("set link {link}")))
    })
}

/// Adds `addr/prefix` to `link` in `ns`; an address the link already has is not an error.
pub fn add_address(ns: Ns<'_>, link: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
    run(ns, |h| async move {
        let i = index(&h, link).await?;
        match h.address().add(i, addr.into(), prefix).execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            r => r.map_err(nl(format!("add address {addr}/{prefix} to {link}"))),
        }
    })
}

/// Adds a main-table route to `dest/prefix`, via `gateway` when given (else link scope),
/// out of `link` when given; an identical route is not an error.
pub fn add_route(
    ns: Ns<'_>,
    dest: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    link: Option<&str>,
) -> Result<(), NetError> {
    run(ns, |h| async move {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dest, prefix);
        if let Some(gw) = gateway {
            b = b.gateway(gw);
        } else {
            b = b.scope(rtnetlink::packet_route::route::RouteScope::Link);
        }
        if let Some(link) = link {
            b = b.output_interface(index(&h, link).await?);
        }
        match h.route().add(b.build()).execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            r => r.map_err(nl(format!("add route to {dest}/{prefix}"))),
        }
    })
}

/// Deletes `link` in `ns` (a veth's peer goes with it); a missing link is not an error.
pub fn delete_link(ns: Ns<'_>, link: &str) -> Result<(), NetError> {
    run(ns, |h| async move {
        let Some(l) = get(&h, link).await? else {
            return Ok(());
        };
        match h.link().del(l.header.index).execute().await {
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(nl(format!("delete link {link}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel() {
        for ok in ["eth0", "rwv1a2b3c4d", "a", "x234567890abcde"] {
            check_ifname(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "x234567890abcdef"] {
            assert!(check_ifname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs_parse_and_multicast_is_refused() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in [
            "01:00:5e:00:00:01",
            "02:42:ac:11:00",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:00:02:",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
