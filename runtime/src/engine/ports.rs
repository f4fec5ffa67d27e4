//! Published ports of a Docker-style container: host ports left to rwasm (`-p 80`,
//! `-p 127.0.0.1::80`, `-P`) chosen from the kernel's ephemeral range as Docker chooses
//! them, the image's ExposedPorts for `-P/--publish-all`, and the two text forms Docker
//! prints: `ps`'s PORTS column (`0.0.0.0:32768->80/tcp`) and `docker port`'s lines
//! (`80/tcp -> 0.0.0.0:32768`).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::PathBuf;

use crate::plugin::network::{PortMapping, Protocol};

/// Where the kernel keeps the ephemeral port range (`net.ipv4.ip_local_port_range`).
pub const PORT_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// A host port could not be chosen, or a port text does not parse.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every port the kernel offered was taken by another container's published port.
    #[error(
        "no free host port for {container_port}/{proto} on {host_ip}: every port tried is published by another container"
    )]
    Exhausted {
        /// The container port being published.
        container_port: u16,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// The host address asked for (`0.0.0.0` for every address).
        host_ip: Ipv4Addr,
    },
    /// The kernel refused a socket on the host address.
    #[error("cannot find a free host port on {host_ip}")]
    Bind {
        /// The host address asked for.
        host_ip: Ipv4Addr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The ephemeral range file cannot be read or parsed.
    #[error("cannot read the ephemeral port range from {path}")]
    Range {
        /// [`PORT_RANGE_FILE`].
        path: PathBuf,
        /// The I/O error (or `InvalidData`).
        #[source]
        source: std::io::Error,
    },
    /// An ExposedPorts entry or a recorded port is not `PORT[/tcp|udp]`.
    #[error("invalid port {value:?}: {reason}")]
    Invalid {
        /// The text.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// `tcp` or `udp`.
pub fn proto_str(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// The kernel's ephemeral range `(low, high)`, inclusive, from [`PORT_RANGE_FILE`].
pub fn ephemeral_range() -> Result<(u16, u16), PortError> {
    let err = |source| PortError::Range {
        path: PathBuf::from(PORT_RANGE_FILE),
        source,
    };
    let text = std::fs::read_to_string(PORT_RANGE_FILE).map_err(err)?;
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Ok((lo, hi)),
        _ => Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected two port numbers, found {text:?}"),
        ))),
    }
}

/// A socket holding a host port while the others are chosen.
enum Held {
    Tcp(#[allow(dead_code)] TcpListener), // held for its port only
    Udp(#[allow(dead_code)] UdpSocket),   // held for its port only
}

/// Gives every mapping whose `host_port` is 0 a free host port, as Docker's port
/// allocator does: from the kernel's ephemeral range ([`PORT_RANGE_FILE`]), by binding
/// the address with port 0 (so the port is free on the host), skipping ports in `taken`
/// (`(protocol, port)` published by other containers: DNAT rules hold no socket) and the
/// ones given to the earlier mappings. Errors: [`PortError::Bind`] when the address is
/// not the host's, [`PortError::Exhausted`] after 64 offers all taken.
pub fn allocate(
    mappings: &mut [PortMapping],
    taken: &HashSet<(Protocol, u16)>,
) -> Result<(), PortError> {
    let (lo, hi) = ephemeral_range()?;
    let mut held = Vec::new();
    let mut used: HashSet<(Protocol, u16)> = mappings
        .iter()
        .filter(|m| m.host_port != 0)
        .map(|m| (m.protocol, m.host_port))
        .collect();
    for m in mappings.iter_mut().filter(|m| m.host_port == 0) {
        let ip = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let addr = SocketAddrV4::new(ip, 0);
        let bind = |source| PortError::Bind {
            host_ip: ip,
            source,
        };
        let mut found = None;
        for _ in 0..64 {
            let (port, sock) = match m.protocol {
                Protocol::Tcp => {
                    let l = TcpListener::bind(addr).map_err(bind)?;
                    (l.local_addr().map_err(bind)?.port(), Held::Tcp(l))
                }
                Protocol::Udp => {
                    let s = UdpSocket::bind(addr).map_err(bind)?;
                    (s.local_addr().map_err(bind)?.port(), Held::Udp(s))
                }
            };
            // Keep every offered socket until the end, so the kernel offers another port.
            held.push(sock);
            let key = (m.protocol, port);
            if (lo..=hi).contains(&port) && !taken.contains(&key) && used.insert(key) {
                found = Some(port);
                break;
            }
        }
        m.host_port = found.ok_or(PortError::Exhausted {
            container_port: m.container_port,
            proto: proto_str(m.protocol),
            host_ip: ip,
        })?;
    }
    Ok(())
}

/// The image's ExposedPorts as recorded (`53/udp,80/tcp`), each published on every host
/// address with a host port to choose (`-P`); entries already in `explicit` (same
/// container port and protocol, from `-p`) are left out, as Docker lets `-p` win.
pub fn publish_all(exposed: &str, explicit: &[PortMapping]) -> Result<Vec<PortMapping>, PortError> {
    let mut out = Vec::new();
    for item in exposed.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |reason| PortError::Invalid {
            value: item.to_string(),
            reason,
        };
        let (port, proto) = match item.split_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (item, Protocol::Tcp),
        };
        let container_port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be 1 to 65535"))?;
        if explicit
            .iter()
            .any(|m| m.container_port == container_port && m.protocol == proto)
        {
            continue;
        }
        out.push(PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            protocol: proto,
        });
    }
    Ok(out)
}

/// Docker's `ps` form of a published port: `0.0.0.0:32768->80/tcp`.
pub fn ps_form(m: &PortMapping) -> String {
    format!(
        "{}:{}->{}/{}",
        m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        m.host_port,
        m.container_port,
        proto_str(m.protocol)
    )
}

/// Parses [`ps_form`] back (what container records hold).
pub fn parse_ps_form(text: &str) -> Result<PortMapping, PortError> {
    let bad = |reason| PortError::Invalid {
        value: text.to_string(),
        reason,
    };
    let (host, container) = text
        .split_once("->")
        .ok_or_else(|| bad("expected HOST_IP:HOST_PORT->PORT/PROTO"))?;
    let (ip, host_port) = host
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST_IP:HOST_PORT"))?;
    let (port, proto) = container
        .split_once('/')
        .ok_or_else(|| bad("expected PORT/PROTO"))?;
    let host_ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| bad("the host address is not IPv4"))?;
    Ok(PortMapping {
        host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
        host_port: host_port.parse().map_err(|_| bad("bad host port"))?,
        container_port: port.parse().map_err(|_| bad("bad container port"))?,
        protocol: match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Err(bad("the protocol must be tcp or udp")),
        },
    })
}

/// Docker's `port` line of a published port: `80/tcp -> 0.0.0.0:32768`.
pub fn port_line(m: &PortMapping) -> String {
    format!(
        "{}/{} -> {}:{}",
        m.container_port,
        proto_str(m.protocol),
        m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        m.host_port
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ports_come_from_the_ephemeral_range_and_differ() {
        let (lo, hi) = ephemeral_range().unwrap();
        let mut ms = publish_all("80/tcp,81/tcp,53/udp", &[]).unwrap();
        ms.push(PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 0,
            container_port: 8080,
            protocol: Protocol::Tcp,
        });
        allocate(&mut ms, &HashSet::new()).unwrap();
        let ports: HashSet<_> = ms.iter().map(|m| (m.protocol, m.host_port)).collect();
        assert_eq!(ports.len(), 4);
        assert!(
            ms.iter().all(|m| (lo..=hi).contains(&m.host_port)),
            "{ms:?}"
        );
    }

    #[test]
    fn exposed_ports_skip_explicit_ones_and_forms_round_trip() {
        let explicit = [PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let ms = publish_all("53/udp,80/tcp", &explicit).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!((ms[0].container_port, ms[0].protocol), (53, Protocol::Udp));
        assert!(publish_all("80/sctp", &[]).is_err());
        let m = &explicit[0];
        assert_eq!(ps_form(m), "0.0.0.0:8080->80/tcp");
        assert_eq!(port_line(m), "80/tcp -> 0.0.0.0:8080");
        assert_eq!(&parse_ps_form(&ps_form(m)).unwrap(), m);
        let local = parse_ps_form("127.0.0.1:32768->53/udp").unwrap();
        assert_eq!(local.host_ip, Some(Ipv4Addr::LOCALHOST));
    }
}
