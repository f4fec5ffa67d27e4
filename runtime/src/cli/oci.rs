//! runc-compatible commands: create, start, state, kill, delete, run --bundle, list.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use oci_spec::runtime::ContainerState;

use rwasm::engine::container::{self, ConsoleSocket, CreateOptions};
use rwasm::engine::image::ImageStore;
use rwasm::engine::state::StateStore;
use rwasm::linux::signal;

use super::{Cli, cache_dir, load_plugins};

/// The flags runc's `create` and `run` share.
#[derive(Args, Debug)]
pub struct RuncFlags {
    /// File to write the container's init pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket (a path) to which the container's terminal master is sent, with
    /// SCM_RIGHTS, when process.terminal is true (runc's console socket protocol).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3..3+N to the container process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility; rwasm never creates a session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// runc's MS_MOVE fallback for ramdisk roots; not supported.
    #[arg(long)]
    pub no_pivot: bool,
}

fn store(cli: &Cli) -> anyhow::Result<StateStore> {
    Ok(StateStore::open(&cli.root)?)
}

fn check_create_flags(f: &RuncFlags) -> anyhow::Result<()> {
    if f.no_pivot {
        bail!("--no-pivot: rwasm always uses pivot_root");
    }
    Ok(())
}

/// runc's `create [--bundle B] ID` (the bundle defaults to the current directory).
pub fn create(cli: &Cli, bundle: &Path, runc: &RuncFlags, id: &str) -> anyhow::Result<()> {
    check_create_flags(runc)?;
    let plugins = load_plugins(cli)?;
    let store = store(cli)?;
    container::create(
        &store,
        &CreateOptions {
            id,
            bundle,
            pid_file: runc.pid_file.as_deref(),
            preserve_fds: runc.preserve_fds,
            plugins: &plugins,
            console_socket: runc.console_socket.as_deref().map(ConsoleSocket::Path),
            prefetch: &container::CREATE_POINTS,
        },
    )?;
    Ok(())
}

pub fn start(cli: &Cli, id: &str) -> anyhow::Result<()> {
    let store = store(cli)?;
    let record = store.load(id)?;
    let plugins = container::plugins_of(&record, &cache_dir(cli))?;
    container::start(&store, id, &plugins)?;
    Ok(())
}

/// `state`: the runtime-spec state plus runc's extra fields (rootfs, created, owner).
pub fn state(cli: &Cli, id: &str) -> anyhow::Result<()> {
    let record = store(cli)?.load(id)?;
    let status = record.status();
    let mut v = serde_json::to_value(record.oci_state(status))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("rootfs".into(), serde_json::json!(record.rootfs));
        o.insert("created".into(), serde_json::json!(record.created));
        o.insert("owner".into(), serde_json::json!(record.owner));
        if status == ContainerState::Stopped {
            o.insert("pid".into(), serde_json::json!(0));
        }
    }
    outln!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub fn kill(cli: &Cli, id: &str, sig: &str, all: bool) -> anyhow::Result<()> {
    let sig = signal::parse(sig)?;
    container::kill_container(&store(cli)?, id, sig, all)?;
    Ok(())
}

pub fn delete(cli: &Cli, id: &str, force: bool) -> anyhow::Result<()> {
    container::delete(&store(cli)?, id, force, &cache_dir(cli), None)?;
    Ok(())
}

pub fn list(cli: &Cli, format: &str, quiet: bool) -> anyhow::Result<()> {
    let store = store(cli)?;
    let mut rows = Vec::new();
    for id in store.list()? {
        match store.load(&id) {
            Ok(r) => rows.push(r),
            Err(e) => tracing::warn!("{}", rwasm::error_chain(&e)),
        }
    }
    if quiet {
        rows.iter().for_each(|r| outln!("{}", r.id));
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = rows
                .iter()
                .map(|r| {
                    let status = r.status();
                    serde_json::json!({
                        "ociVersion": r.oci_version, "id": r.id, "pid": if status == ContainerState::Stopped { 0 } else { r.pid.unwrap_or(0) },
                        "status": status.to_string(), "bundle": r.bundle, "rootfs": r.rootfs,
                        "created": r.created, "owner": r.owner, "annotations": r.annotations,
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            outln!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID",
                "PID",
                "STATUS",
                "BUNDLE",
                "CREATED"
            );
            for r in &rows {
                let status = r.status();
                let pid = if status == ContainerState::Stopped {
                    0
                } else {
                    r.pid.unwrap_or(0)
                };
                outln!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    r.id,
                    pid,
                    status,
                    r.bundle.display(),
                    r.created,
                    r.owner
                );
            }
        }
        other => bail!("--format {other:?}: use table or json"),
    }
    Ok(())
}

/// `run --bundle DIR ID`: create, start, wait, delete; the container's exit code.
pub fn bundle_run(cli: &Cli, a: &super::run::RunArgs) -> anyhow::Result<i32> {
    check_create_flags(&a.runc)?;
    let id = a
        .positional
        .first()
        .context("run --bundle needs a container id")?;
    if a.positional.len() > 1 {
        bail!(
            "run --bundle takes one container id, got {:?}",
            a.positional
        );
    }
    let bundle = a
        .bundle
        .clone()
        .expect("bundle_run is called with --bundle");
    let plugins = load_plugins(cli)?;
    let store = store(cli)?;
    // Without --console-socket, a foreground run proxies a terminal itself (runc run).
    // (our end, the end init gets if the process has a terminal)
    let own_console = match (&a.runc.console_socket, a.detach) {
        (None, false) => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            Some((ours, std::os::fd::OwnedFd::from(theirs)))
        }
        _ => None,
    };
    let console_socket = match (&a.runc.console_socket, &own_console) {
        (Some(path), _) => Some(ConsoleSocket::Path(path)),
        (None, Some((_, theirs))) => Some(ConsoleSocket::IfTerminal(theirs)),
        (None, None) => None,
    };
    let created = container::create(
        &store,
        &CreateOptions {
            id,
            bundle: &bundle,
            pid_file: a.runc.pid_file.as_deref(),
            preserve_fds: a.runc.preserve_fds,
            plugins: &plugins,
            console_socket,
            prefetch: &container::RUN_POINTS,
        },
    )?;
    let proxy = match (own_console, created.terminal) {
        // The master was sent while init was created: it waits on our end.
        (Some((ours, _)), true) => {
            let (master, _) = rwasm::linux::console::receive(&ours)?;
            Some(rwasm::linux::tty::Proxy::start(master, true)?)
        }
        _ => None,
    };
    if a.detach {
        container::start(&store, id, &plugins)?;
        return Ok(0);
    }
    signal::forward_to(created.record.pid.unwrap_or_default())?;
    if let Some(proxy) = &proxy {
        proxy.follow_window()?;
    }
    let code = container::start(&store, id, &plugins).and_then(|r| container::wait_exit(&r));
    if let Some(proxy) = proxy {
        proxy.finish();
    }
    let deleted = container::delete(&store, id, true, &cache_dir(cli), Some(&plugins));
    // The process exits next: the kernel reclaims the plugin engine, its instance pool and
    // its threads at exit, faster than their destructors would (~0.3-0.7 ms with plugins,
    // `runtime/examples/plugin_process.rs`). Nothing of the set needs flushing.
    std::mem::forget(plugins);
    let code = code?;
    deleted?;
    Ok(code)
}

/// `setup`: the data directories and the built-in busybox image.
pub fn setup(cli: &Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.data_root)
        .with_context(|| format!("cannot create {}", cli.data_root.display()))?;
    let image = ImageStore::new(&cli.data_root).init_busybox()?;
    store(cli)?;
    outln!("busybox image: busybox:latest {}", image.id);
    Ok(())
}
