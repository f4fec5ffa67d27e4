//! The command line: runc's grammar for engines, Docker's for people. Parses, loads,
//! calls the engine, maps errors to exit codes; nothing else.

/// `println!` for command output that a closed pipe (`rwasm list | head -1`) does not
/// turn into a panic: Rust ignores SIGPIPE, so the write fails with EPIPE, which we drop.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `eprintln!` that a closed stderr (`rwasm ... 2>&1 | head`) does not turn into a panic
/// half-way through an operation (which would leave its container behind): the EPIPE is
/// dropped, as `outln!` drops it for stdout.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

/// `eprint!` (no newline) with the EPIPE dropped, as `errln!`.
macro_rules! errout {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut e = std::io::stderr().lock();
        let _ = write!(e, $($t)*);
        let _ = e.flush();
    }};
}

mod attach;
mod containers;
mod cp;
mod docs;
mod exec;
mod format;
mod host_flags;
mod image;
mod monitor;
mod network;
mod oci;
mod plugin;
mod pull;
mod resource_flags;
mod run;
mod stats;
mod system;
mod system_disk;
mod update;
mod volume;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use rwasm::plugin::PluginSet;

/// Default location of the plugin manifest.
pub const DEFAULT_MANIFEST: &str = "/etc/rwasm/plugins.toml";

#[derive(Parser, Debug)]
#[command(
    name = "rwasm",
    version,
    about = "A container runtime with WebAssembly plugins",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// State directory of containers (runc's --root).
    #[arg(long, global = true, env = "RWASM_ROOT", default_value = "/run/rwasm")]
    pub root: PathBuf,
    /// Data directory: images, Docker-style container bundles, the plugin cache.
    #[arg(
        long,
        global = true,
        env = "RWASM_DATA_ROOT",
        default_value = "/var/lib/rwasm"
    )]
    pub data_root: PathBuf,
    /// Plugin manifest (TOML); default /etc/rwasm/plugins.toml when it exists.
    #[arg(long, global = true, env = "RWASM_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Storage driver of new containers (Docker's --storage-driver): overlay (default),
    /// vfs, native-overlay, or a storage-driver plugin of the manifest; also after run/create.
    #[arg(long, global = true, env = "RWASM_STORAGE_DRIVER")]
    pub storage_driver: Option<String>,
    /// Write logs to this file instead of stderr (runc's --log).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format (runc's --log-format).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log at debug level.
    #[arg(long, global = true)]
    pub debug: bool,
    /// runc's systemd cgroup driver; rwasm only has the cgroupfs driver.
    #[arg(long, global = true, hide = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: runc's `create --bundle B ID`, or Docker's `create IMAGE [CMD...]`
    ///
    /// runc's grammar applies with `--bundle`, or with one argument and a `config.json` in
    /// the current directory; anything else is Docker's (run's flags, no -d).
    Create(Box<run::RunArgs>),
    /// Start containers: runc's `start ID`, or Docker's `start [-a] CONTAINER...`
    ///
    /// runc's grammar applies when the one argument is exactly the id of an OCI container
    /// under --root that has no Docker record (what engines create), and -a is not given.
    Start {
        /// Docker: attach to the container's stdout and stderr and return its exit code.
        #[arg(short, long)]
        attach: bool,
        /// Docker: with -a, attach stdin too (a container created with -i).
        #[arg(short, long)]
        interactive: bool,
        /// Docker: the key sequence that detaches (with -a -i on a terminal).
        #[arg(long, default_value = "ctrl-p,ctrl-q")]
        detach_keys: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach stdin, stdout and stderr to a running container (detach from a terminal: ctrl-p ctrl-q)
    ///
    /// Example: `rwasm run -dit --name box busybox sh; rwasm attach box`
    Attach(attach::AttachArgs),
    /// Print a container's state as JSON (OCI "state").
    State { id: String },
    /// Send a signal: runc's `kill ID [SIGNAL]` or Docker's `kill [-s SIGNAL] CONTAINER...`
    ///
    /// runc's grammar (default SIGTERM) applies when the first argument is exactly the id
    /// of an OCI container under --root that has no Docker record and -s is not given;
    /// otherwise Docker's (default SIGKILL).
    Kill {
        /// runc: signal every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
        /// Docker: the signal to send (name or number).
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// List Docker-style containers (`rwasm ps -a`).
    Ps(containers::PsArgs),
    /// Fetch a container's logs (stdout and stderr kept apart).
    Logs(containers::LogsArgs),
    /// Stop containers: the stop signal, then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before killing the container.
        #[arg(short, long)]
        time: Option<u32>,
        /// Signal to send instead of the container's stop signal.
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart containers.
    Restart {
        /// Seconds to wait before killing the container.
        #[arg(short, long)]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers (with -f also running ones).
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// Also remove the container's anonymous volumes.
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Low-level information on containers, as JSON.
    Inspect {
        /// Format the output with a template, e.g. '{{.State.ExitCode}}'.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Pause all processes within containers (cgroup freezer).
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Display the processes of a container.
    Top { container: String },
    /// Manage networks (create, ls, inspect, rm, prune).
    Network {
        #[command(subcommand)]
        command: network::NetworkCommand,
    },
    /// List a container's published ports, or the host addresses of one private port.
    Port {
        container: String,
        /// PRIVATE_PORT[/tcp|udp].
        private_port: Option<String>,
    },
    /// Live resource usage of containers (CPU %, memory, network and block I/O, pids).
    Stats(stats::StatsArgs),
    /// Show the rwasm version and what it is built with.
    Version(system::FormatArgs),
    /// Display system-wide information (cgroups, drivers, plugins, containers, images).
    Info(system::FormatArgs),
    /// Manage containers (`container prune`).
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// The monitor of a detached container (internal: started by `run -d` and `start`).
    #[command(hide = true)]
    Monitor {
        /// Wait for a client on the attach socket before starting.
        #[arg(long)]
        attach: bool,
        id: String,
    },
    /// Delete a container (OCI "delete").
    Delete {
        /// Kill the container first if it is not stopped.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Change the cgroup resources of a created or running container (runc's "update").
    Update(update::UpdateArgs),
    /// Run a container: `run --bundle DIR ID` (runc) or `run IMAGE [CMD...]` (Docker).
    Run(Box<run::RunArgs>),
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Prepare this machine: data directories and the built-in busybox image.
    Setup,
    /// Manage images (inspect, ls, rm, prune, pull, load, save, tag, import).
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// List images (REPOSITORY TAG IMAGE ID CREATED SIZE).
    Images(image::ListArgs),
    /// Download an image from a registry: `pull NAME[:TAG|@DIGEST]`.
    Pull(pull::PullArgs),
    /// Load images from a `docker save` or OCI archive.
    Load(image::LoadArgs),
    /// Save images to an archive (OCI layout + docker save manifest).
    Save(image::SaveArgs),
    /// Make an image from a rootfs tarball (`docker import`).
    Import {
        /// The tarball (plain, gzip or zstd); `-` reads it from standard input.
        tarball: PathBuf,
        /// NAME[:TAG].
        name: Option<String>,
    },
    /// Give an image another name: `tag SOURCE TARGET`.
    Tag { source: String, target: String },
    /// Remove images.
    Rmi(image::RmiArgs),
    /// Manage volumes (create, ls, inspect, rm, prune).
    Volume {
        #[command(subcommand)]
        command: volume::VolumeCommand,
    },
    /// Inspect, validate, precompile and test the plugins of a manifest.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Disk usage and clean-up (`system df`, `system prune`).
    System {
        #[command(subcommand)]
        command: system_disk::SystemCommand,
    },
    /// Copy files between a container and the host: `cp CONTAINER:SRC DEST`, `cp SRC CONTAINER:DEST`.
    Cp(cp::CpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion { shell: clap_complete::Shell },
    /// Write the man pages, one per command, into DIR (used by `make man`).
    #[command(hide = true)]
    GenerateMan { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Set up tracing as `--log`, `--log-format`, `--debug` and RUST_LOG say.
fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // Its own report of a failed write is an eprintln!, which panics on a closed
        // stderr and would abort the operation half-way: a log line lost is all it is.
        .log_internal_errors(false);
    match (&cli.log, cli.log_format) {
        (Some(path), fmt) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let b = builder
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false);
            match fmt {
                LogFormat::Json => b.json().init(),
                LogFormat::Text => b.init(),
            }
        }
        (None, LogFormat::Json) => builder.with_writer(std::io::stderr).json().init(),
        (None, LogFormat::Text) => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Most bytes an input file of the CLI (`--state`, `--spec`, `--resources`) may hold
/// (16 MiB): more is an error, so that `/dev/zero` or a huge file cannot exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads all of `reader` (named `what` in errors), at most [`MAX_INPUT_BYTES`].
pub fn read_capped(reader: impl std::io::Read, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        bail!("{what} holds more than {MAX_INPUT_BYTES} bytes, the most rwasm reads");
    }
    Ok(bytes)
}

/// The plugin cache directory under the data root.
pub fn cache_dir(cli: &Cli) -> PathBuf {
    cli.data_root.join("plugin-cache")
}

/// Load the plugin manifest named by `--plugins`/RWASM_PLUGINS, else the default one if
/// it exists, else no plugins.
pub fn load_plugins(cli: &Cli) -> anyhow::Result<PluginSet> {
    let cache = cache_dir(cli);
    match &cli.plugins {
        Some(p) => Ok(PluginSet::load(p, &cache)?),
        None if Path::new(DEFAULT_MANIFEST).exists() => {
            Ok(PluginSet::load(Path::new(DEFAULT_MANIFEST), &cache)?)
        }
        None => Ok(PluginSet::empty()),
    }
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match docs::command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let docker_run = matches!(&cli.command, Command::Run(r) if r.bundle.is_none())
        || matches!(&cli.command, Command::Create(r) if !run::is_runc_create(r))
        || matches!(&cli.command, Command::Start { attach: true, .. })
        || matches!(&cli.command, Command::Attach(_));
    if let Err(e) = init_logging(&cli) {
        errln!("rwasm: {e:#}");
        return if docker_run { 125 } else { 1 };
    }
    let result = (|| -> anyhow::Result<i32> {
        if cli.systemd_cgroup {
            bail!("--systemd-cgroup: rwasm has only the cgroupfs driver");
        }
        match &cli.command {
            Command::Run(args) if args.bundle.is_none() => run::docker_run(&cli, args),
            Command::Run(args) => oci::bundle_run(&cli, args),
            Command::Create(a) if run::is_runc_create(a) => oci::create(
                &cli,
                a.bundle.as_deref().unwrap_or(Path::new(".")),
                &a.runc,
                &a.positional[0],
            )
            .map(|()| 0),
            Command::Create(a) => run::docker_create(&cli, a),
            Command::Start {
                attach,
                containers: c,
                ..
            } if !attach && c.len() == 1 && containers::is_oci_only(&cli, &c[0]) => {
                oci::start(&cli, &c[0]).map(|()| 0)
            }
            Command::Start {
                attach,
                interactive,
                detach_keys,
                containers: c,
            } => containers::start(&cli, *attach, *interactive, detach_keys, c),
            Command::Attach(a) => attach::attach(&cli, a),
            Command::State { id } => oci::state(&cli, id).map(|()| 0),
            Command::Kill {
                all,
                signal: None,
                args,
            } if args.len() <= 2 && containers::is_oci_only(&cli, &args[0]) => {
                let sig = args.get(1).map_or("TERM", String::as_str);
                oci::kill(&cli, &args[0], sig, *all).map(|()| 0)
            }
            Command::Kill { all: true, .. } => {
                bail!("kill --all: only for runc-style containers (Docker's kill has no --all)")
            }
            Command::Kill { signal, args, .. } => containers::kill(&cli, signal.as_deref(), args),
            Command::Ps(a) => containers::ps(&cli, a),
            Command::Logs(a) => containers::logs(&cli, a),
            Command::Stop {
                time,
                signal,
                containers: c,
            } => containers::stop(&cli, *time, signal.as_deref(), c),
            Command::Restart {
                time,
                containers: c,
            } => containers::restart(&cli, *time, c),
            Command::Rm {
                force,
                volumes,
                containers: c,
            } => containers::rm(&cli, *force, *volumes, c),
            Command::Wait { containers: c } => containers::wait(&cli, c),
            Command::Exec(a) => exec::exec(&cli, a),
            Command::Pause { containers: c } => containers::pause(&cli, true, c),
            Command::Unpause { containers: c } => containers::pause(&cli, false, c),
            Command::Inspect {
                format,
                containers: c,
            } => containers::inspect(&cli, format.as_deref(), c),
            Command::Rename {
                container,
                new_name,
            } => containers::rename(&cli, container, new_name),
            Command::Top { container } => containers::top(&cli, container),
            Command::Network { command } => network::run(&cli, command),
            Command::Port {
                container,
                private_port,
            } => network::port(&cli, container, private_port.as_deref()),
            Command::Stats(a) => stats::stats(&cli, a),
            Command::Version(a) => system::version(a),
            Command::Info(a) => system::info(&cli, a),
            Command::Container {
                command: ContainerCommand::Prune { force },
            } => containers::prune(&cli, *force),
            Command::Monitor { id, attach } => monitor::monitor(&cli, id, *attach),
            Command::Delete { force, id } => oci::delete(&cli, id, *force).map(|()| 0),
            Command::Update(a) => update::update(&cli, a).map(|()| 0),
            Command::List { format, quiet } => oci::list(&cli, format, *quiet).map(|()| 0),
            Command::Setup => oci::setup(&cli).map(|()| 0),
            Command::System { command } => system_disk::run(&cli, command),
            Command::Cp(a) => cp::cp(&cli, a),
            Command::Completion { shell } => {
                docs::completion(*shell);
                Ok(0)
            }
            Command::GenerateMan { dir } => {
                let n = docs::generate_man(dir)?;
                outln!("{n} man pages in {}", dir.display());
                Ok(0)
            }
            Command::Plugin { command } => plugin::run(&cli, command),
            Command::Image { command } => image::run(&cli, command),
            Command::Images(a) => image::list(&cli, a).map(|()| 0),
            Command::Pull(a) => pull::pull(&cli, a).map(|()| 0),
            Command::Load(a) => image::load(&cli, a).map(|()| 0),
            Command::Save(a) => image::save(&cli, a).map(|()| 0),
            Command::Import { tarball, name } => {
                image::import(&cli, tarball, name.as_deref()).map(|()| 0)
            }
            Command::Tag { source, target } => image::tag(&cli, source, target).map(|()| 0),
            Command::Rmi(a) => image::rmi(&cli, a),
            Command::Volume { command } => volume::run(&cli, command),
        }
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("rwasm: {}", crate::error_line(&e));
            exit_code_for(&e, docker_run)
        }
    }
}

/// Docker's convention for `run IMAGE`: 125 for a failure of rwasm itself, 126 when the
/// command cannot be executed, 127 when it is not found. runc's: 1.
fn exit_code_for(e: &anyhow::Error, docker: bool) -> i32 {
    use rwasm::linux::sync::FailureKind;
    if e.chain().any(|c| c.is::<attach::NotATty>()) {
        return 1;
    }
    if let Some(f) = e
        .chain()
        .find_map(|c| c.downcast_ref::<monitor::StartFailed>())
    {
        return f.code;
    }
    let kind = e.chain().find_map(|c| {
        c.downcast_ref::<rwasm::engine::container::EngineError>()
            .and_then(|x| x.failure_kind())
            .or_else(|| {
                c.downcast_ref::<rwasm::engine::run::RunError>()
                    .and_then(|x| x.failure_kind())
            })
    });
    match (docker, kind) {
        (false, _) => 1,
        (true, Some(FailureKind::NotFound)) => 127,
        (true, Some(FailureKind::CannotExecute)) => 126,
        (true, _) => 125,
    }
}
