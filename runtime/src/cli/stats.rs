//! Docker's `stats [-a] [--no-stream] [--no-trunc] [--format json|TEMPLATE] [CONTAINER...]`:
//! CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O and PIDS of running containers, from
//! their cgroups and network namespaces, sampled one second apart (Docker's CPU % is the
//! container's share of the host's CPU time over that interval times the CPU count).

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use rwasm::engine::record::Records;
use rwasm::engine::state::StateStore;
use rwasm::linux::cgroup::Manager;
use rwasm::linux::cgroup::usage::{
    Usage, cpu_percent, host_cpu_ns, host_memory, net_io, online_cpus,
};

use super::Cli;
use super::format::{bytes_size, columns, header, human_size, render};

/// `stats` flags, as Docker's.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Print one reading and exit instead of refreshing every second.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate the container id.
    #[arg(long)]
    pub no_trunc: bool,
    /// `table` (default), `json` (one object per line), or a template such as
    /// 'table {{.Name}}\t{{.MemUsage}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (names, ids or id prefixes); default: every running one.
    pub containers: Vec<String>,
}

/// One container being watched.
struct Watched {
    id: String,
    name: String,
    /// Cgroup and init pid while it runs.
    live: Option<(Manager, i32)>,
}

fn watched(cli: &Cli, a: &StatsArgs) -> anyhow::Result<Vec<Watched>> {
    let records = Records::new(&cli.data_root);
    let ids: Vec<String> = if a.containers.is_empty() {
        records
            .all()?
            .into_iter()
            .filter(|r| a.all || r.live().is_running())
            .map(|r| r.id)
            .collect()
    } else {
        a.containers
            .iter()
            .map(|c| records.resolve(c))
            .collect::<Result<_, _>>()?
    };
    let store = StateStore::open(&cli.root)?;
    let mut out = Vec::new();
    for id in ids {
        let r = records.load(&id)?;
        let live = if r.live().is_running() {
            let oci = store.load(&id).ok();
            oci.and_then(|o| Some((Manager::from_handle(o.cgroup.as_ref()?), o.pid?)))
        } else {
            None
        };
        out.push(Watched {
            id: r.id,
            name: r.name,
            live,
        });
    }
    Ok(out)
}

/// A container's cgroup usage and its network's (received, sent) bytes.
type Reading = (Usage, (u64, u64));

/// A reading of every watched container (`None` when not running) plus the host's CPU time.
fn sample(ws: &[Watched]) -> (Vec<Option<Reading>>, Option<u64>) {
    let u = ws
        .iter()
        .map(|w| w.live.as_ref().map(|(m, pid)| (m.usage(), net_io(*pid))))
        .collect();
    (u, host_cpu_ns())
}

#[allow(clippy::cast_precision_loss)] // percentages of byte and nanosecond counts
fn row(
    w: &Watched,
    before: Option<&Reading>,
    now: Option<&Reading>,
    host_delta: Option<u64>,
    trunc: bool,
) -> Value {
    let id = if trunc { &w.id[..12] } else { &w.id[..] };
    let Some((u, (rx, tx))) = now else {
        return json!({"ID": id, "Container": id, "Name": w.name, "CPUPerc": "0.00%",
            "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
            "BlockIO": "0B / 0B", "PIDs": "0"});
    };
    let cpu = cpu_percent(
        before.and_then(|b| b.0.cpu_ns),
        u.cpu_ns,
        host_delta,
        online_cpus(),
    );
    let limit = u.memory_limit.unwrap_or_else(host_memory);
    let mem = u.memory.unwrap_or(0);
    let mem_pct = if limit > 0 {
        mem as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "ID": id,
        "Container": id,
        "Name": w.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size(*rx), human_size(*tx)),
        "BlockIO": format!("{} / {}", human_size(u.blk_read), human_size(u.blk_write)),
        "PIDs": u.pids.unwrap_or(0).to_string(),
    })
}

/// Run `stats`.
pub fn stats(cli: &Cli, a: &StatsArgs) -> anyhow::Result<i32> {
    let ws = watched(cli, a)?;
    let template = match a.format.as_deref() {
        None | Some("table") => {
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
        }
        Some(t) => t,
    };
    let (mut before, mut host_before) = sample(&ws);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let (now, host_now) = sample(&ws);
        let host_delta = host_before.zip(host_now).map(|(a, b)| b.saturating_sub(a));
        let rows: Vec<Value> = ws
            .iter()
            .enumerate()
            .map(|(i, w)| {
                row(
                    w,
                    before[i].as_ref(),
                    now[i].as_ref(),
                    host_delta,
                    !a.no_trunc,
                )
            })
            .collect();
        let mut lines = Vec::new();
        if template == "json" {
            lines.extend(rows.iter().map(|r| r.to_string()));
        } else {
            let (table, body) = match template.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, template),
            };
            if table {
                lines.push(header(body));
            }
            for r in &rows {
                lines.push(render(body, r).context("--format")?);
            }
            if table {
                lines = columns(&lines);
            }
        }
        if !a.no_stream {
            // Docker redraws in place: clear the screen and home the cursor.
            use std::io::Write as _;
            let _ = write!(std::io::stdout().lock(), "\x1b[2J\x1b[H");
        }
        for l in lines {
            outln!("{l}");
        }
        if a.no_stream {
            return Ok(0);
        }
        (before, host_before) = (now, host_now);
    }
}
