//! Docker's container commands over the records under the data root: `ps`, `logs`,
//! `stop`, `kill`, `rm`, `inspect`, `wait`, `start`, `restart`, `rename`, `top` and
//! `container prune`. Every command takes a name, a full id or a unique id prefix.
//!
//! `start` and `kill` also exist in runc's grammar for engines; which one applies is
//! decided by [`is_oci_only`]: an argument that is exactly the id of an OCI container
//! under `--root` *and* has no Docker record is runc's; anything else is Docker's.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use rwasm::engine::lifecycle::Lifecycle;
use rwasm::engine::logs::{LogReader, parse_since, select};
use rwasm::engine::record::{ContainerRecord, Live, Records};
use rwasm::engine::state::StateStore;
use rwasm::linux::signal;

use super::format::{columns, header, human_duration, human_size, render, since, status};
use super::{Cli, cache_dir};

/// How long `start` waits for a container's previous monitor to finish (it lingers up to
/// 2 s for attached clients to read the exit code) before calling the container busy.
const MONITOR_SETTLE: Duration = Duration::from_secs(5);

/// Whether `arg` names an OCI container under `--root` by its exact id and no Docker
/// record: then `start`/`kill` follow runc's grammar (what engines call).
pub fn is_oci_only(cli: &Cli, arg: &str) -> bool {
    rwasm::engine::state::check_id(arg).is_ok()
        && cli.root.join(arg).join("state.json").exists()
        && !Records::new(&cli.data_root).exists(arg)
}

pub(super) fn records(cli: &Cli) -> Records {
    Records::new(&cli.data_root)
}

pub(super) fn with_lifecycle<T>(
    cli: &Cli,
    f: impl FnOnce(&Lifecycle<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let store = StateStore::open(&cli.root)?;
    let records = records(cli);
    let cache = cache_dir(cli);
    f(&Lifecycle {
        store: &store,
        records: &records,
        cache_dir: &cache,
    })
}

/// Run `f` on each named container, printing the argument on success as Docker does;
/// errors are printed and make the exit code 1, the other containers still go on.
fn each(
    cli: &Cli,
    names: &[String],
    print: bool,
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    let rs = records(cli);
    let mut code = 0;
    for n in names {
        match rs
            .resolve(n)
            .map_err(anyhow::Error::from)
            .and_then(|id| f(&id))
        {
            Ok(()) if print => outln!("{n}"),
            Ok(()) => {}
            Err(e) => {
                errln!("Error response from daemon: {}", crate::error_line(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

// ---- ps ----

/// `ps` flags, as Docker's.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the N last created containers (includes all states).
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output: status=STATE, name=SUBSTRING, label=KEY[=VALUE], id=PREFIX, exited=CODE.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// `json` (one object per line), `table`, or a template such as `{{.Names}}\t{{.Status}}`.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes: the writable layer, and virtual (with the image's layers).
    #[arg(short, long)]
    pub size: bool,
}

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn go_time(stamp: &str) -> String {
    // Docker prints Go's time.String(): "2026-12-02 01:35:59 +0000 UTC".
    let secs = humantime::parse_rfc3339_weak(stamp.trim_end_matches('Z'))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|_| stamp.to_string());
    format!("{} +0000 UTC", secs.trim_end_matches('Z').replace('T', " "))
}

/// Docker's SIZE of `ps -s`: the writable layer's bytes, and with the image's layers
/// (`2B (virtual 1.24MB)`); the writable layer alone when there are no image bytes.
fn size_column(rw: u64, virtual_bytes: u64) -> String {
    if virtual_bytes > 0 {
        format!("{} (virtual {})", human_size(rw), human_size(virtual_bytes))
    } else {
        human_size(rw)
    }
}

/// `(writable, virtual)` bytes of container `r`: its writable layer as its storage driver
/// counts it (as `system df` does), plus its image's unpacked layers for the virtual size.
fn container_sizes(cli: &Cli, rs: &Records, r: &ContainerRecord) -> (u64, u64) {
    let rw = writable_bytes(cli, rs, &r.id);
    (
        rw,
        rw + rwasm::engine::image::usage::layer_dirs_bytes(&r.layers),
    )
}

/// The `ps --format json` object of a record (Docker's field names); `sizes` are the
/// `(writable, virtual)` bytes when `-s` asked for them.
fn ps_value(r: &ContainerRecord, trunc: bool, now: SystemTime, sizes: Option<(u64, u64)>) -> Value {
    let cmd = r.command.join(" ");
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "Command": format!("\"{}\"", if trunc { ellipsis(&cmd, 20) } else { cmd }),
        "CreatedAt": go_time(&r.created),
        "ID": if trunc { r.id[..12.min(r.id.len())].to_string() } else { r.id.clone() },
        "Image": r.image,
        "Labels": labels.join(","),
        "LocalVolumes": "0",
        "Mounts": r.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
        "Names": r.name,
        "Networks": "",
        // Docker shows a stopped container's ports as none.
        "Ports": if r.live().is_running() { r.ports.join(", ") } else { String::new() },
        "RunningFor": format!("{} ago", human_duration(since(Some(&r.created), now))),
        "Size": sizes.map_or_else(|| "0B".to_string(), |(rw, v)| size_column(rw, v)),
        "State": r.live().word(),
        "Status": status(r, now),
    })
}

/// Whether `r` passes every filter (same key: any value matches; different keys: all).
fn matches_filters(r: &ContainerRecord, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        vals.iter().any(|v| match k.as_str() {
            "status" => r.live().word() == v,
            "name" => r.name.contains(v.trim_start_matches('/')),
            "id" => r.id.starts_with(v.as_str()),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => r.labels.get(lk).is_some_and(|x| x == lv),
                None => r.labels.contains_key(v),
            },
            "exited" => matches!(r.live(), Live::Exited(Some(c)) if c.to_string() == *v),
            _ => false,
        })
    })
}

fn parse_filters(raw: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in raw {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        match k {
            "status" => {
                const STATES: [&str; 7] = [
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ];
                if !STATES.contains(&v) {
                    bail!(
                        "invalid filter 'status={v}': use one of {}",
                        STATES.join(", ")
                    );
                }
            }
            "name" | "label" | "id" | "exited" => {}
            other => bail!("invalid filter '{other}': use status, name, label, id or exited"),
        }
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(m)
}

/// `ps`: Docker's columns CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES.
pub fn ps(cli: &Cli, a: &PsArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&a.filter)?;
    let now = SystemTime::now();
    let last = if a.latest { Some(1) } else { a.last };
    let all =
        a.all || last.is_some() || filters.contains_key("status") || filters.contains_key("exited");
    let rs = records(cli);
    let mut rows: Vec<ContainerRecord> = rs
        .all()?
        .into_iter()
        // One that has just exited is shown as its monitor records it (gone if `--rm`).
        .filter_map(|r| {
            if r.exit_unrecorded() {
                rs.load_settled(&r.id).ok()
            } else {
                Some(r)
            }
        })
        .filter(|r| all || matches!(r.live(), Live::Running | Live::Paused | Live::Restarting))
        .filter(|r| matches_filters(r, &filters))
        .collect();
    if let Some(n) = last {
        rows.truncate(n);
    }
    let trunc = !a.no_trunc;
    if a.quiet {
        for r in &rows {
            outln!(
                "{}",
                if trunc {
                    &r.id[..12.min(r.id.len())]
                } else {
                    &r.id
                }
            );
        }
        return Ok(0);
    }
    // Docker: `-s`, or a template that shows `.Size`, has the sizes computed.
    let sized = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let sizes = |r: &ContainerRecord| sized.then(|| container_sizes(cli, &rs, r));
    let template = match a.format.as_deref() {
        None | Some("table") if a.size => {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
        }
        None | Some("table") => {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
        }
        Some("json") => {
            for r in &rows {
                outln!("{}", ps_value(r, trunc, now, sizes(r)));
            }
            return Ok(0);
        }
        Some(t) => t,
    };
    let (table, body) = match template.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, template),
    };
    let mut lines = Vec::new();
    if table {
        lines.push(header(body));
    }
    for r in &rows {
        lines.push(render(body, &ps_value(r, trunc, now, sizes(r)))?);
    }
    let lines = if table { columns(&lines) } else { lines };
    for l in lines {
        outln!("{l}");
    }
    Ok(0)
}

// ---- logs ----

/// `logs` flags, as Docker's.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs, or `all`.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since a timestamp (2026-12-02T01:00:00Z) or relative (42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container.
    pub container: String,
}

fn print_entries(entries: &[rwasm::engine::logs::Entry], timestamps: bool) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        let _ = if timestamps {
            write!(w, "{} {}", e.time, e.log)
        } else {
            write!(w, "{}", e.log)
        };
    }
    let _ = out.flush();
    let _ = err.flush();
}

/// `logs`: the container's stdout on stdout and its stderr on stderr.
pub fn logs(cli: &Cli, a: &LogsArgs) -> anyhow::Result<i32> {
    let rs = records(cli);
    let id = rs.resolve(&a.container)?;
    let r = rs.load(&id)?;
    if !r.detached {
        bail!(
            "container {} was run attached: its output went to the terminal and no log was kept",
            r.name
        );
    }
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("invalid value {n:?} for --tail: use a number or all"))?,
        ),
    };
    let since_t = a
        .since
        .as_deref()
        .map(|s| parse_since(s, SystemTime::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut reader = LogReader::new(&rs.log_path(&id));
    print_entries(&select(reader.next_batch()?, since_t, tail), a.timestamps);
    if a.follow {
        follow(&rs, &id, &mut reader, a.timestamps)?;
    }
    Ok(0)
}

/// Print new entries until the container is not running and its monitor is gone.
fn follow(rs: &Records, id: &str, reader: &mut LogReader, timestamps: bool) -> anyhow::Result<()> {
    loop {
        let done = match rs.load(id) {
            Ok(r) => !r.monitor_alive() && !matches!(r.live(), Live::Running | Live::Paused),
            Err(_) => true,
        };
        print_entries(&reader.next_batch()?, timestamps);
        if done {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- stop, kill, rm, wait, start, restart ----

/// `stop [-t SECONDS] [-s SIGNAL] CONTAINER...`.
pub fn stop(
    cli: &Cli,
    time: Option<u32>,
    sig: Option<&str>,
    names: &[String],
) -> anyhow::Result<i32> {
    with_lifecycle(cli, |l| {
        each(cli, names, true, |id| {
            if let Some(s) = sig {
                signal::parse(s)?;
                l.records
                    .update(id, |r| r.stop_signal = Some(s.to_string()))?;
            }
            Ok(l.stop(id, time)?)
        })
    })
}

/// Docker's `kill [-s SIGNAL] CONTAINER...` (default SIGKILL).
pub fn kill(cli: &Cli, sig: Option<&str>, names: &[String]) -> anyhow::Result<i32> {
    let sig = signal::parse(sig.unwrap_or("KILL"))?;
    with_lifecycle(cli, |l| each(cli, names, true, |id| Ok(l.kill(id, sig)?)))
}

/// `rm [-f] [-v] CONTAINER...` (`-v`: rwasm has no anonymous volumes yet, nothing more to remove).
pub fn rm(cli: &Cli, force: bool, volumes: bool, names: &[String]) -> anyhow::Result<i32> {
    with_lifecycle(cli, |l| {
        each(cli, names, true, |id| Ok(l.remove(id, force, volumes)?))
    })
}

/// `pause CONTAINER...` (`frozen`) or `unpause CONTAINER...`.
pub fn pause(cli: &Cli, frozen: bool, names: &[String]) -> anyhow::Result<i32> {
    with_lifecycle(cli, |l| {
        each(cli, names, true, |id| Ok(l.pause(id, frozen)?))
    })
}

/// `wait CONTAINER...`: each one's exit code, one per line.
pub fn wait(cli: &Cli, names: &[String]) -> anyhow::Result<i32> {
    with_lifecycle(cli, |l| {
        each(cli, names, false, |id| {
            let code = l.wait(id)?;
            outln!("{code}");
            Ok(())
        })
    })
}

/// Start container `id` (created or exited) through a new monitor; a running one is left alone.
fn start_one(cli: &Cli, id: &str) -> anyhow::Result<()> {
    start_attached(cli, id, false).map(|_| ())
}

/// Start container `id` with its monitor; with `attach`, connected to its attach socket
/// before it starts (None when it already ran).
fn start_attached(
    cli: &Cli,
    id: &str,
    attach: bool,
) -> anyhow::Result<Option<std::os::unix::net::UnixStream>> {
    let rs = records(cli);
    // A monitor that has recorded the end of its run still lingers a moment (its clients
    // read the exit code, `--rm` removes); one being launched by another `start` soon
    // records the run. Either way, wait for it rather than fail (`stop` then `start`).
    let settle = Instant::now();
    let r = loop {
        let r = rs.load(id)?;
        if matches!(r.live(), Live::Running | Live::Paused | Live::Restarting) {
            return Ok(None);
        }
        if !r.monitor_alive() {
            break r;
        }
        if settle.elapsed() > MONITOR_SETTLE {
            bail!(
                "container {} is being started or stopped; try again",
                r.name
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !r.detached {
        rs.update(id, |r| r.detached = true)?;
    }
    super::monitor::launch(cli, id, attach)
}

/// Docker's `start [-a [-i]] CONTAINER...`: with `-a`, one container, connected to its
/// monitor's attach socket before it starts: its stdout and stderr followed (kept apart;
/// a terminal's output is all stdout), our stdin sent to it with `-i` (when it was
/// created with `-i`), signals proxied to it (without a terminal), and its exit code
/// returned.
pub fn start(
    cli: &Cli,
    attach: bool,
    interactive: bool,
    detach_keys: &str,
    names: &[String],
) -> anyhow::Result<i32> {
    if attach {
        let [name] = names else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let rs = records(cli);
        let id = rs.resolve(name)?;
        let terminal = rwasm::engine::attach::has_terminal(&rs.dir(&id));
        super::attach::check_tty(interactive, terminal)?;
        rwasm::engine::attach::parse_detach_keys(detach_keys)?;
        let Some(stream) = start_attached(cli, &id, true)? else {
            bail!("container {name} is already running: use `rwasm attach {name}`");
        };
        let r = rs.load(&id)?;
        if !terminal {
            super::attach::proxy_signals(r.pid);
        }
        let stdin = interactive && r.open_stdin;
        return super::attach::follow(cli, &id, stream, stdin, terminal, detach_keys);
    }
    each(cli, names, true, |id| start_one(cli, id))
}

/// `restart [-t SECONDS] CONTAINER...`: stop, then start.
pub fn restart(cli: &Cli, time: Option<u32>, names: &[String]) -> anyhow::Result<i32> {
    with_lifecycle(cli, |l| {
        each(cli, names, true, |id| {
            l.stop(id, time)?;
            start_one(cli, id)
        })
    })
}

/// `rename CONTAINER NEW_NAME`.
pub fn rename(cli: &Cli, old: &str, new: &str) -> anyhow::Result<i32> {
    rwasm::engine::run::check_name(new)?;
    let rs = records(cli);
    let id = rs.resolve(old)?;
    rs.rename(&id, new)?;
    Ok(0)
}

/// `container prune [-f]`: remove every container that does not run.
pub fn prune(cli: &Cli, force: bool) -> anyhow::Result<i32> {
    if !force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let (deleted, reclaimed) = remove_stopped(cli)?;
    if !deleted.is_empty() {
        outln!("Deleted Containers:");
        for id in &deleted {
            outln!("{id}");
        }
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

/// Docker's prompt of `prune` commands: `warning`, then "Are you sure ...? [y/N]"; true
/// only for `y` typed on a terminal.
pub(super) fn confirm(warning: &str) -> bool {
    errout!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin().is_terminal()
        && std::io::stdin().lock().read_line(&mut line).is_ok()
        && line.trim().eq_ignore_ascii_case("y")
}

/// The writable layer of a container's rootfs (Docker's container SIZE), in bytes: its
/// storage driver's `usage`, or for the native overlay the bundle's `upper` directory.
pub(super) fn writable_bytes(cli: &Cli, rs: &Records, id: &str) -> u64 {
    let dir = rs.dir(id);
    rwasm::engine::storage::usage(&dir, &cache_dir(cli)).map_or_else(
        || rwasm::engine::disk_usage::tree_bytes(&dir.join("upper")),
        |(bytes, _)| bytes,
    )
}

/// Remove every container that is not running, paused or restarting and has no live
/// monitor; returns their ids and the bytes of their writable layers.
pub(super) fn remove_stopped(cli: &Cli) -> anyhow::Result<(Vec<String>, u64)> {
    let rs = records(cli);
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    with_lifecycle(cli, |l| {
        for r in rs.all()? {
            if !matches!(r.live(), Live::Running | Live::Paused | Live::Restarting)
                && !r.monitor_alive()
            {
                let bytes = writable_bytes(cli, &rs, &r.id);
                l.remove(&r.id, false, false)?;
                reclaimed += bytes;
                deleted.push(r.id);
            }
        }
        Ok(())
    })?;
    Ok((deleted, reclaimed))
}

// ---- inspect, top ----

fn zero_time(t: &Option<String>) -> String {
    t.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Docker's `inspect` object for a container.
fn inspect_value(rs: &Records, r: &ContainerRecord) -> Value {
    let dir = rs.dir(&r.id);
    let spec = oci_spec::runtime::Spec::load(dir.join("config.json")).ok();
    let process = spec.as_ref().and_then(|s| s.process().clone());
    let live = r.live();
    let (path, args) = r
        .command
        .split_first()
        .map_or((String::new(), vec![]), |(p, a)| (p.clone(), a.to_vec()));
    let user = process.as_ref().map(|p| {
        let u = p.user();
        format!("{}:{}", u.uid(), u.gid())
    });
    let max_retry = match r.restart {
        rwasm::engine::record::RestartPolicy::OnFailure { max } => max,
        _ => 0,
    };
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": live.word(),
            "Running": live.is_running(),
            "Paused": live == Live::Paused,
            "Restarting": live == Live::Restarting,
            "OOMKilled": r.oom_killed,
            "Dead": false,
            "Pid": if live.is_running() { r.pid.unwrap_or(0) } else { 0 },
            "ExitCode": match live { Live::Exited(c) => c.unwrap_or(-1), _ => r.exit_code.unwrap_or(0) },
            "Error": match (live, &r.error) {
                (_, Some(e)) => e.clone(),
                (Live::Exited(None), None) if r.monitor_alive() => "the container's monitor has not recorded its exit yet".into(),
                (Live::Exited(None), None) => "the container's monitor went away; its exit code is unknown".into(),
                _ => String::new(),
            },
            "StartedAt": zero_time(&r.started_at),
            "FinishedAt": zero_time(&r.finished_at),
        },
        "Image": r.image,
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": if r.detached { json!(rs.log_path(&r.id)) } else { json!("") },
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "AutoRemove": r.auto_remove,
            "RestartPolicy": {"Name": r.restart.name(), "MaximumRetryCount": max_retry},
            "PortBindings": {},
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": r.layers.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("rootfs"),
            },
        },
        "Mounts": r.mounts.iter().map(|m| json!({
            "Type": m.typ, "Source": m.source, "Destination": m.destination, "RW": m.rw,
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()).unwrap_or_default(),
            "User": user.unwrap_or_default(),
            "Env": process.as_ref().and_then(|p| p.env().clone()).unwrap_or_default(),
            "Cmd": r.command,
            "Image": r.image,
            "WorkingDir": process.as_ref().map(|p| p.cwd().display().to_string()).unwrap_or_default(),
            "Entrypoint": null,
            "Labels": r.labels,
            "Tty": process.as_ref().and_then(|p| p.terminal()).unwrap_or(false),
            "OpenStdin": r.open_stdin,
            "StopSignal": r.stop_signal(),
            "StopTimeout": r.stop_timeout,
        },
        "NetworkSettings": {"Ports": {}},
    })
}

/// `inspect [-f TEMPLATE] CONTAINER...`: a JSON array, or the template per container.
pub fn inspect(cli: &Cli, format: Option<&str>, names: &[String]) -> anyhow::Result<i32> {
    let rs = records(cli);
    let mut values = Vec::new();
    let mut code = 0;
    for n in names {
        match rs.resolve(n).and_then(|id| rs.load_settled(&id)) {
            Ok(r) => values.push(inspect_value(&rs, &r)),
            Err(e) => {
                errln!("Error: {}", rwasm::error_chain(&e));
                code = 1;
            }
        }
    }
    match format {
        Some(t) if t != "json" => {
            for v in &values {
                outln!("{}", render(t, v)?);
            }
        }
        _ => outln!("{}", serde_json::to_string_pretty(&Value::Array(values))?),
    }
    Ok(code)
}

/// `top CONTAINER`: the processes in the container's cgroup (UID, PID, PPID, CMD).
pub fn top(cli: &Cli, name: &str) -> anyhow::Result<i32> {
    use rwasm::linux::cgroup::{CgroupManager, Manager};
    let rs = records(cli);
    let id = rs.resolve(name)?;
    let r = rs.load(&id)?;
    if !r.live().is_running() {
        bail!("container {} is not running", r.name);
    }
    let oci = StateStore::open(&cli.root)?.load(&id)?;
    let handle = oci
        .cgroup
        .with_context(|| format!("container {} has no cgroup", r.name))?;
    let mut lines = vec!["UID\tPID\tPPID\tCMD".to_string()];
    for pid in Manager::from_handle(&handle).pids()? {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("?")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> = cmd
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        lines.push(format!(
            "{}\t{pid}\t{}\t{}",
            field("Uid:"),
            field("PPid:"),
            cmd.join(" ")
        ));
    }
    for l in columns(&lines) {
        outln!("{l}");
    }
    Ok(0)
}
