//! Docker's network commands: `network create|ls|inspect|rm|prune` over the user
//! networks of the data root (`rwasm::engine::networks`), and `port CONTAINER
//! [PRIVATE_PORT[/PROTO]]`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use rwasm::engine::networks::{CreateOptions, NetworkRecord, Networks};
use rwasm::engine::peers;

use rwasm::engine::ports::{parse_ps_form, port_line, proto_str};
use rwasm::engine::record::Records;

use super::Cli;

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`, as Docker prints it: every published port as
/// `80/tcp -> 0.0.0.0:32768`, or with a private port only its host addresses
/// (`0.0.0.0:32768`); nothing for a container that is not running. A private port that
/// is not published is an error naming it.
pub fn port(cli: &Cli, container: &str, private: Option<&str>) -> anyhow::Result<i32> {
    let records = Records::new(&cli.data_root);
    let r = records.load(&records.resolve(container)?)?;
    let wanted = match private {
        None => None,
        Some(p) => {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                bail!("invalid port {p:?}: use PRIVATE_PORT[/tcp|udp]");
            };
            if proto != "tcp" && proto != "udp" {
                bail!("invalid protocol {proto:?} in {p:?}: use tcp or udp");
            }
            Some((port, proto.to_string()))
        }
    };
    let mappings = if r.live().is_running() {
        r.ports
            .iter()
            .map(|p| parse_ps_form(p))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    match wanted {
        None => {
            for m in &mappings {
                outln!("{}", port_line(m));
            }
        }
        Some((port, proto)) => {
            let hits: Vec<_> = mappings
                .iter()
                .filter(|m| m.container_port == port && proto_str(m.protocol) == proto)
                .collect();
            if hits.is_empty() {
                bail!("No public port '{port}/{proto}' published for {}", r.name);
            }
            for m in hits {
                outln!(
                    "{}:{}",
                    m.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                    m.host_port
                );
            }
        }
    }
    Ok(0)
}

/// `network` subcommands, as Docker's.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network: its own bridge and subnet (default the next free 10.89.N.0/24).
    Create {
        /// Driver to manage the network (bridge).
        #[arg(short, long)]
        driver: Option<String>,
        /// Subnet in CIDR format, e.g. 10.89.7.0/24.
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 gateway for the subnet (default its first address).
        #[arg(long)]
        gateway: Option<String>,
        /// Set metadata on a network (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// `json` (one object per line) or a template such as `{{.Name}}\t{{.ID}}`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on networks, as JSON.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while containers are connected).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all networks no container is connected to.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a `network` subcommand.
pub fn run(cli: &Cli, c: &NetworkCommand) -> anyhow::Result<i32> {
    let nets = Networks::new(&cli.data_root);
    match c {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            label,
            name,
        } => {
            let r = nets.create(&CreateOptions {
                name: name.clone(),
                driver: driver.clone(),
                subnet: subnet.clone(),
                gateway: gateway.clone(),
                labels: label.clone(),
            })?;
            outln!("{}", r.id);
            Ok(0)
        }
        NetworkCommand::Ls { quiet, format } => ls(cli, &nets, *quiet, format.as_deref()),
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in networks {
                match nets.load(n) {
                    Ok(r) => out.push(inspect_value(cli, &r)?),
                    Err(e) => {
                        errln!("Error response from daemon: {e}");
                        code = 1;
                    }
                }
            }
            outln!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
            Ok(code)
        }
        NetworkCommand::Rm { networks } => {
            let mut code = 0;
            for n in networks {
                match nets.remove(n, |name| users(cli, name)) {
                    Ok(_) => outln!("{n}"),
                    Err(e) => {
                        errln!(
                            "Error response from daemon: {}",
                            crate::error_line(&e.into())
                        );
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Prune { force } => {
            if !force
                && !super::containers::confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.",
                )
            {
                return Ok(0);
            }
            let mut deleted = Vec::new();
            for r in nets.list()? {
                if users(cli, &r.name).is_empty() {
                    nets.remove(&r.name, |name| users(cli, name))?;
                    deleted.push(r.name);
                }
            }
            if !deleted.is_empty() {
                outln!("Deleted Networks:");
                for n in &deleted {
                    outln!("{n}");
                }
            }
            Ok(0)
        }
    }
}

/// The names of the containers connected to network `name`.
fn users(cli: &Cli, name: &str) -> Vec<String> {
    peers::connected(&cli.data_root, name)
        .unwrap_or_default()
        .into_iter()
        .map(|p| if p.name.is_empty() { p.id } else { p.name })
        .collect()
}

fn ls_value(r: &NetworkRecord) -> Value {
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "CreatedAt": r.created,
        "Driver": r.driver,
        "ID": &r.id[..12],
        "IPv6": "false",
        "Internal": "false",
        "Labels": labels.join(","),
        "Name": r.name,
        "Scope": "local",
    })
}

fn ls(cli: &Cli, nets: &Networks, quiet: bool, format: Option<&str>) -> anyhow::Result<i32> {
    let _ = cli;
    let list = nets.list()?;
    if quiet {
        for r in &list {
            outln!("{}", &r.id[..12]);
        }
        return Ok(0);
    }
    match format {
        Some("json") => {
            for r in &list {
                outln!("{}", ls_value(r));
            }
        }
        Some(t) if t != "table" => {
            for r in &list {
                outln!("{}", super::format::render(t, &ls_value(r))?);
            }
        }
        _ => {
            let mut rows = vec!["NETWORK ID\tNAME\tDRIVER\tSCOPE".to_string()];
            rows.extend(
                list.iter()
                    .map(|r| format!("{}\t{}\t{}\tlocal", &r.id[..12], r.name, r.driver)),
            );
            for l in super::format::columns(&rows) {
                outln!("{l}");
            }
        }
    }
    Ok(0)
}

/// Docker's `network inspect` object.
fn inspect_value(cli: &Cli, r: &NetworkRecord) -> anyhow::Result<Value> {
    let mut containers = serde_json::Map::new();
    for p in peers::connected(&cli.data_root, &r.name)? {
        containers.insert(
            p.id.clone(),
            json!({
                "Name": p.name,
                "EndpointID": "",
                "MacAddress": "",
                "IPv4Address": format!("{}/{}", p.ip, p.len),
                "IPv6Address": "",
            }),
        );
    }
    Ok(json!({
        "Name": r.name,
        "Id": r.id,
        "Created": r.created,
        "Scope": "local",
        "Driver": r.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": r.subnet, "Gateway": r.gateway}],
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": r.bridge},
        "Labels": r.labels,
    }))
}
