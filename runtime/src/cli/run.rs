//! `rwasm run`: with `--bundle`, runc's grammar (`run --bundle DIR ID`); without it,
//! Docker's (`run [OPTIONS] IMAGE [CMD...]`), flags named and valued as Docker's.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use rwasm::engine::docker::RunFlags;
use rwasm::engine::record::RestartPolicy;
use rwasm::engine::run::{RecordOptions, RunRequest, prepare, run_image};
use rwasm::engine::state::StateStore;

use super::{Cli, cache_dir, load_plugins};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// OCI bundle directory: selects runc's grammar (the positional argument is the id).
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Run in the background and print the container id (runc: start and return without waiting).
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub runc: super::oci::RuncFlags,
    /// runc: accepted, no effect (rwasm run never needs a subreaper).
    #[arg(long)]
    pub no_subreaper: bool,

    /// Keep stdin open and stream it to the container (Docker's -i).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal for the container (Docker's -t).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Key sequence that detaches from a -it container: ctrl-X or characters, comma-separated.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,

    /// Remove the container's files when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (NAME=VALUE, or NAME to pass the caller's).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Container hostname.
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub resources: super::resource_flags::ResourceFlags,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,

    /// Overwrite the image's default ENTRYPOINT ("" clears it; the image's CMD is dropped).
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Set metadata on a container (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped (carried out by the monitor, with -d).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container (default SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long)]
    pub stop_timeout: Option<u32>,
    #[command(flatten)]
    pub host: super::host_flags::HostFlags,
    /// Connect to a network: none (default), host, bridge, or a network driver's name.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Publish a port: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp] (on a driver's network;
    /// no HOST_PORT: a free one from the ephemeral range).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all the image's exposed ports, each on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Storage driver option KEY=VALUE (refused by rwasm's drivers, which take none: no
    /// size quotas here; passed to a manifest's storage driver plugin).
    #[arg(long = "storage-opt", value_name = "KEY=VALUE")]
    pub storage_opt: Vec<String>,
    /// Mount a volume or bind: NAME:/path[:ro], /host/path:/path[:ro], or /path (anonymous).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: /path[:OPTIONS] (e.g. /run:size=64m,mode=1777).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Attach a mount: type=volume|bind|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..].
    #[arg(long)]
    pub mount: Vec<String>,

    /// Pull image before running: always, missing (when it is not in the store), never.
    #[arg(long, default_value = "missing", value_name = "always|missing|never")]
    pub pull: String,

    /// IMAGE [CMD...] (Docker) or ID (runc, with --bundle).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub positional: Vec<String>,
}

/// Whether `create` follows runc's grammar: with `--bundle`, or with one argument and a
/// `config.json` in the current directory (runc's default bundle) — engines always pass
/// `--bundle`. Anything else is Docker's `create IMAGE [CMD...]`.
pub fn is_runc_create(a: &RunArgs) -> bool {
    a.bundle.is_some() || (a.positional.len() == 1 && std::path::Path::new("config.json").is_file())
}

/// Docker's `create [OPTIONS] IMAGE [CMD...]`: prepare the container and its record
/// (state `created`) and print its full id; `start` runs it later.
pub fn docker_create(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    if a.detach {
        anyhow::bail!("unknown flag: --detach (create never starts the container)");
    }
    docker_run_inner(cli, a, false)
}

pub fn docker_run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    docker_run_inner(cli, a, true)
}

fn docker_run_inner(cli: &Cli, a: &RunArgs, start: bool) -> anyhow::Result<i32> {
    let (image, args) = a
        .positional
        .split_first()
        .context("run: an IMAGE is required")?;
    let restart = RestartPolicy::parse(&a.restart).map_err(|reason| {
        anyhow::anyhow!("invalid value {:?} for --restart: {reason}", a.restart)
    })?;
    if restart != RestartPolicy::No && a.rm {
        anyhow::bail!("Conflicting options: --restart and --rm");
    }
    if let Some(s) = &a.stop_signal {
        rwasm::linux::signal::parse(s)?;
    }
    ensure_image(cli, image, &a.pull)?;
    let record = RecordOptions {
        labels: a.label.clone(),
        restart,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        detached: a.detach || !start,
        open_stdin: a.interactive,
        plugins: cli
            .plugins
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("--plugins")?,
    };
    if a.detach || !start {
        return docker_run_detached(cli, a, image, args, record, start);
    }
    if a.tty {
        return docker_run_terminal(cli, a, image, args, record);
    }
    if !a.interactive {
        // Docker: without -i the container's stdin is empty.
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        nix::unistd::dup2_stdin(&null).context("cannot redirect stdin")?;
    }
    let plugins = load_plugins(cli)?;
    let store = StateStore::open(&cli.root)?;
    let flags = run_flags(cli, a)?;
    let forward = |pid: i32| {
        if let Err(e) = rwasm::linux::signal::forward_to(pid) {
            tracing::warn!("cannot forward signals: {e}");
        }
    };
    let code = run_image(
        &store,
        RunRequest {
            image,
            args: args.to_vec(),
            name: a.name.clone(),
            rm: a.rm,
            flags,
            plugins: &plugins,
            data_root: &cli.data_root,
            cache_dir: &cache_dir(cli),
            on_start: &forward,
            record,
        },
    )?;
    Ok(code)
}

/// Docker's `--pull` before `run` and `create`: with `missing` (the default) an image that
/// is not in the store is pulled first, after "Unable to find image 'REF' locally", the
/// pull reported on stderr as `docker run` reports it; `always` pulls every time; `never`
/// refuses a missing image with Docker's "No such image". A rootfs directory given by path
/// is never pulled.
fn ensure_image(cli: &Cli, image: &str, policy: &str) -> anyhow::Result<()> {
    use rwasm::engine::image::ImageError;
    use rwasm::engine::image::pull::PullOptions;
    use rwasm::engine::image::reference::Reference;
    use rwasm::engine::image::registry::{Insecure, default_auth_file};
    if !matches!(policy, "always" | "missing" | "never") {
        anyhow::bail!(
            "invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\""
        );
    }
    if image.starts_with('/') || image.starts_with('.') {
        return Ok(());
    }
    let present = match super::image::images(cli).find(image) {
        Ok(_) => true,
        Err(ImageError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if present && policy != "always" {
        return Ok(());
    }
    // Docker's familiar form, tag defaulted: `busybox:latest`, `localhost:5000/x:1`.
    let shown = Reference::parse(image)?.to_string();
    match policy {
        "never" => anyhow::bail!("No such image: {shown}"),
        "missing" => errln!("Unable to find image '{shown}' locally"),
        _ => {}
    }
    let options = PullOptions {
        platform: None,
        insecure: Insecure::load(&cli.data_root, &[])?,
        auth_file: default_auth_file(),
    };
    super::pull::fetch(cli, image, &options, super::pull::Sink::Stderr)?;
    Ok(())
}

/// Prepare the container of `run -d`, `create` or `run -t` for a monitor to start: bundle,
/// config.json and record kept; returns its id.
fn prepare_kept(
    cli: &Cli,
    a: &RunArgs,
    image: &str,
    args: &[String],
    record: RecordOptions,
) -> anyhow::Result<String> {
    // The manifest's storage and volume drivers prepare the rootfs and the volumes here.
    let plugins = load_plugins(cli)?;
    let prepared = prepare(&RunRequest {
        image,
        args: args.to_vec(),
        name: a.name.clone(),
        rm: a.rm,
        flags: run_flags(cli, a)?,
        plugins: &plugins,
        data_root: &cli.data_root,
        cache_dir: &cache_dir(cli),
        on_start: &|_| {},
        record,
    })?;
    let id = prepared.id.clone();
    prepared.keep();
    Ok(id)
}

/// `run -t` in the foreground: the container owned by a monitor that holds its terminal
/// (so that the detach keys leave it running), this process attached to it until it
/// exits (its exit code) or is detached from (0).
fn docker_run_terminal(
    cli: &Cli,
    a: &RunArgs,
    image: &str,
    args: &[String],
    mut record: RecordOptions,
) -> anyhow::Result<i32> {
    rwasm::engine::attach::parse_detach_keys(&a.detach_keys)?;
    // Checked before anything exists, as Docker's client does.
    super::attach::check_tty(a.interactive, true)?;
    record.detached = true;
    let id = prepare_kept(cli, a, image, args, record)?;
    let stream = super::monitor::launch(cli, &id, true)?
        .context("the monitor did not open the container's attach socket")?;
    super::attach::follow(cli, &id, stream, a.interactive, true, &a.detach_keys)
}

/// `run -d` (and Docker's `create` with `start = false`): prepare the container, then
/// hand it to a monitor; prints the full id once it runs.
fn docker_run_detached(
    cli: &Cli,
    a: &RunArgs,
    image: &str,
    args: &[String],
    record: RecordOptions,
    start: bool,
) -> anyhow::Result<i32> {
    let id = prepare_kept(cli, a, image, args, record)?;
    if start {
        super::monitor::launch(cli, &id, false)?;
    }
    outln!("{id}");
    Ok(0)
}

/// The config.json flags of `run`, with Docker's warning for an unsupported blkio weight.
fn run_flags(cli: &Cli, a: &RunArgs) -> anyhow::Result<RunFlags> {
    if let Some(n) = &a.network {
        rwasm::engine::network::Mode::parse(n)?;
    }
    let publish = a
        .publish
        .iter()
        .map(|p| rwasm::engine::network::parse_publish(p))
        .collect::<Result<Vec<_>, _>>()?;
    // Docker: --env-file entries first, -e entries after them (and winning).
    let mut env = a.host.env_file_entries()?;
    env.extend(a.env.iter().cloned());
    if let Some(d) = &cli.storage_driver {
        rwasm::engine::storage::check_name(d)?;
    }
    for v in &a.volume {
        rwasm::engine::volume_mounts::parse_volume(v)?;
    }
    for t in &a.tmpfs {
        rwasm::engine::volume_mounts::parse_tmpfs(t)?;
    }
    for m in &a.mount {
        rwasm::engine::volume_mounts::parse_mount(m)?;
    }
    let mut flags = RunFlags {
        storage_driver: cli.storage_driver.clone(),
        storage_opts: a.storage_opt.clone(),
        network: a.network.clone(),
        publish,
        publish_all: a.publish_all,
        volumes: a.volume.clone(),
        tmpfs: a.tmpfs.clone(),
        mounts: a.mount.clone(),
        env,
        hostname: a.hostname.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        memory: a.resources.memory.clone(),
        memory_swap: a.resources.memory_swap.clone(),
        memory_reservation: a.resources.memory_reservation.clone(),
        cpus: a.cpus.clone(),
        cpu_shares: a.resources.cpu_shares,
        cpu_period: a.resources.cpu_period,
        cpu_quota: a.resources.cpu_quota,
        cpuset_cpus: a.resources.cpuset_cpus.clone(),
        cpuset_mems: a.resources.cpuset_mems.clone(),
        pids_limit: a.resources.pids_limit,
        blkio_weight: a.resources.blkio_weight,
        entrypoint: a.entrypoint.clone(),
        host: a.host.host_config()?,
        terminal: a.tty,
    };
    if flags.blkio_weight.is_some_and(|w| w != 0) && !blkio_weight_supported() {
        // Docker's behaviour on such kernels: warn and discard the weight.
        errln!(
            "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
        );
        flags.blkio_weight = None;
    }
    Ok(flags)
}

/// Whether this host's cgroups can honour a block I/O weight.
fn blkio_weight_supported() -> bool {
    [
        "/sys/fs/cgroup/blkio/blkio.weight",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight",
        "/sys/fs/cgroup/io.weight",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("io"))
}
