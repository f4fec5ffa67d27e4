//! NAT rules for containers in rwasm's own nftables table, `inet rwasm` (nft(8)), each
//! rule's comment tagged with the container id, so that teardown removes exactly that
//! container's rules and never touches a table rwasm does not own.
//!
//! Which nftables binding: the `nftables` crate, which drives Debian's `nft` (package
//! `nftables`) with its JSON API (libnftables-json(5)), not a netlink-level crate such as
//! `rustables`. `nft -j` gives atomic batches (a rule set applies whole or not at all),
//! rules listed with their handles and comments (what teardown by tag needs), and the
//! same expressions `nft list ruleset` prints, which makes the rules reviewable;
//! `rustables` would build each expression (payload offsets, registers, NAT register
//! loads) by hand and its releases lag the kernel's nftables features. The cost is one
//! `nft` process per operation (a few ms), paid at container setup and teardown only.
//!
//! Chains (created on first use, `add` is idempotent): `postrouting` (nat, srcnat),
//! `prerouting` (nat, dstnat) and `output` (nat, dstnat - for the host's own
//! connections, 127.0.0.1 included).

use std::net::Ipv4Addr;

use nftables::helper;
use nftables::schema::Nftables;
use serde_json::{Value, json};

use super::NetError;

/// rwasm's table (family `inet`).
pub const TABLE: &str = "rwasm";
/// The `nft` program (Debian's `nftables`, `/usr/sbin/nft`).
const NFT: &str = "nft";

/// The comment of every rule of container `id`: `rwasm:<id>`, then, for a port forward,
/// ` <proto>/<host port>`.
pub fn tag(id: &str) -> String {
    format!("rwasm:{id}")
}

/// A transport protocol of a forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// An IPv4 network, `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net4 {
    /// The network address (host bits may be set: they are ignored).
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub len: u8,
}

fn prefix(net: Net4) -> Value {
    if net.len == 32 {
        json!(net.addr.to_string())
    } else {
        json!({"prefix": {"addr": net.addr.to_string(), "len": net.len}})
    }
}

fn matches(proto: &str, field: &str, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": {"payload": {"protocol": proto, "field": field}}, "right": right}})
}

/// The table and chains, to prepend to every batch.
fn base() -> Vec<Value> {
    let chain = |name: &str, hook: &str, prio: i32| {
        json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": name,
            "type": "nat", "hook": hook, "prio": prio, "policy": "accept"}}})
    };
    vec![
        json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
        chain("postrouting", "postrouting", 100),
        chain("prerouting", "prerouting", -100),
        chain("output", "output", -100),
    ]
}

fn rule(chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": chain,
        "comment": comment, "expr": expr}}})
}

/// Applies `commands` (after the table and chains) as one atomic `nft -j -f -` batch.
fn apply(what: String, commands: Vec<Value>) -> Result<(), NetError> {
    let mut all = base();
    all.extend(commands);
    let doc: Nftables<'static> =
        serde_json::from_value(json!({ "nftables": all })).map_err(|source| {
            NetError::NftSchema {
                what: what.clone(),
                source,
            }
        })?;
    helper::apply_ruleset_with_args(&doc, Some(NFT), helper::DEFAULT_ARGS.iter().copied())
        .map_err(|source| NetError::Nft { what, source })
}

/// Masquerades traffic from `source` leaving for anywhere outside `subnet`, tagged for
/// container `id`: `ip saddr SOURCE ip daddr != SUBNET masquerade`.
pub fn masquerade(id: &str, source: Net4, subnet: Net4) -> Result<(), NetError> {
    apply(
        format!("add masquerade for {}/{}", source.addr, source.len),
        vec![rule(
            "postrouting",
            &tag(id),
            vec![
                matches("ip", "saddr", "==", prefix(source)),
                matches("ip", "daddr", "!=", prefix(subnet)),
                json!({"masquerade": null}),
            ],
        )],
    )
}

/// A DNAT port forward.
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    /// TCP or UDP.
    pub proto: Proto,
    /// Host address to answer on; every local address when `None`.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
    /// The container's network: connections from it to a published port (hairpin, e.g.
    /// another container on the bridge dialling the gateway's address) are masqueraded
    /// too, so the reply goes back through the host and is un-DNATed.
    pub hairpin: Option<Net4>,
}

/// The comment of the rules of one forward: `rwasm:<id> tcp/8080`.
fn forward_tag(id: &str, f: &Forward) -> String {
    format!("{} {}/{}", tag(id), f.proto.as_str(), f.host_port)
}

/// Forwards `f.host_port` to the container, tagged for container `id`: DNAT in
/// `prerouting` (other hosts and containers) and `output` (the host's own connections),
/// to local destination addresses only (`fib daddr type local`, as Docker's
/// `ADDRTYPE --dst-type LOCAL`), and a masquerade of loopback-sourced traffic to the
/// container (a reply to 127.0.0.1 could not leave the container otherwise; the bridge
/// needs `route_localnet`), and, with `f.hairpin`, of DNATed traffic from the container's
/// own network (Docker's hairpin masquerade). Refused when some container already
/// forwards that port.
pub fn forward_port(id: &str, f: &Forward) -> Result<(), NetError> {
    let proto = f.proto.as_str();
    let taken = list()?.into_iter().any(|(_, _, comment)| {
        comment
            .split_once(' ')
            .is_some_and(|(_, p)| p == format!("{proto}/{}", f.host_port))
    });
    if taken {
        return Err(NetError::Invalid {
            what: "published port",
            value: format!("{proto}/{}", f.host_port),
            reason: "already published by another container",
        });
    }
    let comment = forward_tag(id, f);
    let mut select = Vec::new();
    match f.host_ip {
        Some(ip) => select.push(matches("ip", "daddr", "==", json!(ip.to_string()))),
        None => select.push(json!({"match": {"op": "==",
            "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}})),
    }
    select.push(matches(proto, "dport", "==", json!(f.host_port)));
    let mut dnat = select.clone();
    dnat.push(
        json!({"dnat": {"family": "ip", "addr": f.container_ip.to_string(),
        "port": f.container_port}}),
    );
    let local_masq = vec![
        matches(
            "ip",
            "saddr",
            "==",
            json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
        ),
        matches("ip", "daddr", "==", json!(f.container_ip.to_string())),
        matches(proto, "dport", "==", json!(f.container_port)),
        json!({"masquerade": null}),
    ];
    let mut rules = vec![
        rule("prerouting", &comment, dnat.clone()),
        rule("output", &comment, dnat),
        rule("postrouting", &comment, local_masq),
    ];
    if let Some(net) = f.hairpin {
        rules.push(rule(
            "postrouting",
            &comment,
            vec![
                matches("ip", "saddr", "==", prefix(net)),
                matches("ip", "daddr", "==", json!(f.container_ip.to_string())),
                matches(proto, "dport", "==", json!(f.container_port)),
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                json!({"masquerade": null}),
            ],
        ));
    }
    apply(
        format!("forward {proto}/{} to {}", f.host_port, f.container_ip),
        rules,
    )
}

/// Isolates the bridge `bridge` of a user network from rwasm's other bridges (Docker's
/// `DOCKER-ISOLATION` chains): in a `forward` filter chain of `inet rwasm`, traffic from
/// `bridge` to another link named `rwasm*` and traffic to `bridge` from another `rwasm*`
/// link are dropped; both rules carry [`tag`]`(owner)`, so [`remove_rules`]`(owner)`
/// removes them.
pub fn isolate(owner: &str, bridge: &str) -> Result<(), NetError> {
    let meta = |key: &str, op: &str, v: &str| json!({"match": {"op": op, "left": {"meta": {"key": key}}, "right": v}});
    let comment = tag(owner);
    apply(
        format!("isolate bridge {bridge}"),
        vec![
            json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": "forward",
                "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}}),
            rule(
                "forward",
                &comment,
                vec![
                    meta("iifname", "==", bridge),
                    meta("oifname", "!=", bridge),
                    meta("oifname", "==", "rwasm*"),
                    json!({"drop": null}),
                ],
            ),
            rule(
                "forward",
                &comment,
                vec![
                    meta("oifname", "==", bridge),
                    meta("iifname", "!=", bridge),
                    meta("iifname", "==", "rwasm*"),
                    json!({"drop": null}),
                ],
            ),
        ],
    )
}

/// Every rule of `inet rwasm` as (chain, handle, comment); empty when the table does not
/// exist yet.
pub fn list() -> Result<Vec<(String, u32, String)>, NetError> {
    use nftables::schema::{NfListObject, NfObject};
    let ruleset =
        match helper::get_current_ruleset_with_args(Some(NFT), ["list", "table", "inet", TABLE]) {
            Ok(r) => r,
            // `nft` fails with "No such file or directory" for a table never created.
            Err(helper::NftablesError::NftFailed { stderr, .. })
                if stderr.contains("No such file or directory") =>
            {
                return Ok(Vec::new());
            }
            Err(source) => {
                return Err(NetError::Nft {
                    what: format!("list table inet {TABLE}"),
                    source,
                });
            }
        };
    Ok(ruleset
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::ListObject(NfListObject::Rule(r)) => Some((
                r.chain.to_string(),
                r.handle?,
                r.comment.as_deref().unwrap_or_default().to_string(),
            )),
            _ => None,
        })
        .collect())
}

/// The rules of container `id` as (chain, handle).
pub fn rules_of(id: &str) -> Result<Vec<(String, u32)>, NetError> {
    let tag = tag(id);
    Ok(list()?
        .into_iter()
        .filter(|(_, _, c)| *c == tag || c.strip_prefix(&tag).is_some_and(|r| r.starts_with(' ')))
        .map(|(chain, handle, _)| (chain, handle))
        .collect())
}

/// Removes every rule tagged for container `id`; returns how many.
pub fn remove_rules(id: &str) -> Result<u32, NetError> {
    let rules = rules_of(id)?;
    if rules.is_empty() {
        return Ok(0);
    }
    let n = u32::try_from(rules.len()).unwrap_or(u32::MAX);
    let deletes = rules
        .into_iter()
        .map(|(chain, handle)| {
            // `expr` is ignored by a delete but required by the crate's `Rule`.
            json!({"delete": {"rule": {"family": "inet", "table": TABLE, "chain": chain,
                "handle": handle, "expr": []}}})
        })
        .collect();
    apply(format!("remove the rules of container {id}"), deletes)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_the_crate_schema() {
        let net = Net4 {
            addr: Ipv4Addr::new(10, 88, 0, 0),
            len: 16,
        };
        let doc = json!({"nftables": [
            rule("postrouting", "rwasm:x", vec![
                matches("ip", "saddr", "==", prefix(Net4 { addr: Ipv4Addr::new(10, 88, 0, 2), len: 32 })),
                matches("ip", "daddr", "!=", prefix(net)),
                json!({"masquerade": null}),
            ]),
        ]});
        let mut all = base();
        all.extend(doc["nftables"].as_array().unwrap().iter().cloned());
        all.push(json!({"delete": {"rule": {"family": "inet", "table": TABLE,
            "chain": "postrouting", "handle": 7, "expr": []}}}));
        let parsed: Result<Nftables<'static>, _> =
            serde_json::from_value(json!({ "nftables": all }));
        parsed.expect("schema");
    }

    #[test]
    fn tags_name_the_container_and_the_port() {
        let f = Forward {
            proto: Proto::Udp,
            host_ip: None,
            host_port: 53,
            container_ip: Ipv4Addr::new(10, 88, 0, 2),
            container_port: 5353,
            hairpin: None,
        };
        assert_eq!(forward_tag("abc", &f), "rwasm:abc udp/53");
    }
}
