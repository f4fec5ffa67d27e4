//! Docker's volume commands: `volume create|ls|inspect|rm|prune`. Output follows
//! Docker's: `ls` as a table with DRIVER and VOLUME NAME (or names only with `-q`, one
//! JSON object per line with `--format json`), `inspect` as a JSON array. `ls` lists what
//! the volume drivers' `list` reports, `inspect` takes the mountpoint from `get`.

use clap::{Args, Subcommand};

use rwasm::engine::volume::{CreateRequest, VolumeStore, parse_pair};

use super::Cli;

/// `rwasm volume create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Volume driver: `local` (default) or a `volume-driver` plugin of the manifest.
    #[arg(short, long)]
    pub driver: Option<String>,
    /// Driver option KEY=VALUE (local: type=tmpfs, device=tmpfs, o=size=64m).
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Label KEY=VALUE.
    #[arg(long)]
    pub label: Vec<String>,
    /// Volume name; a random one when omitted.
    pub name: Option<String>,
}

/// `rwasm volume SUBCOMMAND`.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only volume names.
        #[arg(short, long)]
        quiet: bool,
        /// `table` (default) or `json` (one object per line).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes (never one a container uses).
    #[command(alias = "remove")]
    Rm {
        /// No error for volumes that do not exist.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused anonymous volumes (with -a, every unused volume).
    Prune {
        /// Every unused volume, not only anonymous ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

fn store(cli: &Cli) -> VolumeStore {
    VolumeStore::new(&cli.data_root, &super::cache_dir(cli))
}

/// Runs one `volume` subcommand; returns the exit code.
pub fn run(cli: &Cli, command: &VolumeCommand) -> anyhow::Result<i32> {
    let store = store(cli);
    match command {
        VolumeCommand::Create(a) => {
            let plugins = super::load_plugins(cli)?;
            let options = a
                .opt
                .iter()
                .map(|o| parse_pair("--opt", o))
                .collect::<Result<Vec<_>, _>>()?;
            let labels = a
                .label
                .iter()
                .map(|o| parse_pair("--label", o))
                .collect::<Result<_, _>>()?;
            let r = store.create(
                &plugins,
                CreateRequest {
                    name: a.name.clone(),
                    driver: a.driver.clone(),
                    options,
                    labels,
                    anonymous: false,
                },
            )?;
            outln!("{}", r.name);
            Ok(0)
        }
        VolumeCommand::Ls { quiet, format } => {
            // Each driver's `list`, merged with the records (Docker's /VolumeDriver.List).
            let plugins = super::load_plugins(cli)?;
            let listing = store.list_all(&plugins)?;
            for w in &listing.warnings {
                errln!("WARNING: {w}");
            }
            let all = listing.volumes;
            match (format.as_str(), quiet) {
                (_, true) => all.iter().for_each(|r| outln!("{}", r.name)),
                ("json" | "{{json .}}", false) => {
                    for r in &all {
                        outln!("{}", serde_json::to_string(r)?);
                    }
                }
                ("table", false) => {
                    let mut rows = vec!["DRIVER\tVOLUME NAME".to_string()];
                    rows.extend(all.iter().map(|r| format!("{}\t{}", r.driver, r.name)));
                    for line in super::format::columns(&rows) {
                        outln!("{line}");
                    }
                }
                (other, false) => anyhow::bail!("--format {other:?}: use table or json"),
            }
            Ok(0)
        }
        VolumeCommand::Inspect { volumes } => {
            // The driver's `get` gives the mountpoint (Docker's /VolumeDriver.Get).
            let plugins = super::load_plugins(cli)?;
            let mut out = Vec::new();
            let mut failed = false;
            for v in volumes {
                match store.inspect(&plugins, v) {
                    Ok(found) => {
                        for w in &found.warnings {
                            errln!("WARNING: {w}");
                        }
                        out.extend(found.volumes);
                    }
                    Err(e) => {
                        errln!("rwasm: {}", rwasm::error_chain(&e));
                        failed = true;
                    }
                }
            }
            outln!("{}", serde_json::to_string_pretty(&out)?);
            Ok(i32::from(failed))
        }
        VolumeCommand::Rm { force, volumes } => {
            let plugins = super::load_plugins(cli)?;
            let mut failed = false;
            for v in volumes {
                match store.remove(&plugins, v, *force) {
                    Ok(()) => outln!("{v}"),
                    Err(e) => {
                        errln!("rwasm: {}", rwasm::error_chain(&e));
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        VolumeCommand::Prune { all, force } => {
            if !force {
                use std::io::IsTerminal;
                if std::io::stdin().is_terminal() {
                    errout!(
                        "WARNING! This will remove {} volumes not used by at least one \
                         container.\nAre you sure you want to continue? [y/N] ",
                        if *all { "all local" } else { "anonymous local" }
                    );
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    if !matches!(line.trim(), "y" | "Y" | "yes") {
                        return Ok(0);
                    }
                }
            }
            let plugins = super::load_plugins(cli)?;
            let removed = store.prune(&plugins, *all)?;
            if !removed.is_empty() {
                outln!("Deleted Volumes:");
                for n in &removed {
                    outln!("{n}");
                }
            }
            Ok(0)
        }
    }
}
