//! `rwasm plugin ls|inspect|validate|precompile|test`: the plugin manifest and its
//! components, for operators and plugin authors. All but `validate` use the global
//! `--plugins` manifest (or the default one).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use oci_spec::runtime::{Spec, State};
use serde_json::json;

use rwasm::plugin::{PluginError, PluginSet, parse_hook_point};

use super::{Cli, DEFAULT_MANIFEST, cache_dir};

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List the manifest's plugins: kind, hook points, grants and compile-cache state
    /// (cached, stale, corrupt or missing).
    Ls {
        /// text or json
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show a plugin's (by manifest name) or a component file's world, WIT package
    /// version, exports, imports and grants, and whether it loads. Exits 1 when it does
    /// not load, after printing what could be read.
    Inspect {
        /// A plugin name from the manifest, or a component file (a path that exists,
        /// contains `/` or ends in `.wasm`; a file needs no manifest).
        target: String,
        /// text or json
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Parse MANIFEST, then load and type-check every plugin (compile, version and world,
    /// imports against grants, link) without running a container. Exits 1 listing every
    /// error.
    Validate {
        /// The manifest to check.
        manifest: PathBuf,
    },
    /// Compile every plugin of the manifest into the compile cache; prints for each
    /// whether it was compiled or already cached, and the milliseconds it took.
    Precompile,
    /// Run one hook of one plugin offline and print, as JSON, its verdict, the adjustment
    /// it returned and whether the host accepts it. Exits 0 when the call succeeded and
    /// the host accepts its answer (a deny counts), 1 otherwise. A point the manifest
    /// does not register the plugin for is called all the same, with a warning.
    Test {
        /// The plugin's manifest name.
        name: String,
        /// The hook point to call, e.g. pre-create.
        #[arg(long)]
        hook: String,
        /// The OCI state (JSON, as `rwasm state` prints it).
        #[arg(long)]
        state: PathBuf,
        /// The container's config.json.
        #[arg(long)]
        spec: PathBuf,
    },
}

/// Output format of `ls` and `inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The manifest named by `--plugins`, or the default one; an error when there is none.
fn manifest_set(cli: &Cli) -> anyhow::Result<PluginSet> {
    let path = match &cli.plugins {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_MANIFEST).exists() => PathBuf::from(DEFAULT_MANIFEST),
        None => bail!(
            "no plugin manifest: pass --plugins FILE (or RWASM_PLUGINS), or create {DEFAULT_MANIFEST}"
        ),
    };
    Ok(PluginSet::load(&path, &cache_dir(cli))?)
}

/// Runs a `rwasm plugin` subcommand; returns the exit code.
pub fn run(cli: &Cli, command: &PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::Ls { format } => ls(cli, *format),
        PluginCommand::Inspect { target, format } => inspect(cli, target, *format),
        PluginCommand::Validate { manifest } => Ok(validate(cli, manifest)),
        PluginCommand::Precompile => precompile(cli),
        PluginCommand::Test {
            name,
            hook,
            state,
            spec,
        } => test(cli, name, hook, state, spec),
    }
}

fn ls(cli: &Cli, format: Format) -> anyhow::Result<i32> {
    let set = manifest_set(cli)?;
    let plugins = set.plugins_info()?;
    if format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&plugins)?);
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = plugins
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.kind.clone(),
                p.hooks.join(","),
                p.cache.clone(),
                p.grants.lines().join(", "),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "HOOKS", "CACHE", "GRANTS"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        outln!("{}", line.join("  "));
    }
    Ok(0)
}

/// Whether `inspect`'s target names a component file rather than a manifest plugin: a
/// path that exists, contains `/` or ends in `.wasm`.
fn is_file_target(target: &str) -> bool {
    target.contains('/') || target.ends_with(".wasm") || Path::new(target).exists()
}

/// Exits 1 when the component does not load (after printing what could be read of it).
fn inspect(cli: &Cli, target: &str, format: Format) -> anyhow::Result<i32> {
    let i = if is_file_target(target) {
        // A file needs no manifest.
        PluginSet::empty_with_cache(&cache_dir(cli)).inspect_file(Path::new(target))?
    } else {
        manifest_set(cli)?.inspect_plugin(target)?
    };
    let code = i32::from(i.load_error.is_some());
    if format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&i)?);
        return Ok(code);
    }
    let field = |label: &str, lines: &[String]| {
        let mut lines = lines.iter();
        let first = lines.next().map_or("none", String::as_str);
        outln!("{:<12} {first}", format!("{label}:"));
        for line in lines {
            outln!("{:<12} {line}", "");
        }
    };
    if let Some(name) = &i.name {
        field("name", std::slice::from_ref(name));
    }
    field("path", &[i.path.display().to_string()]);
    field(
        "world",
        &[i.world.clone().unwrap_or_else(|| "none".to_string())],
    );
    field(
        "wit version",
        &[i.wit_version
            .as_ref()
            .map_or_else(|| "none".to_string(), |v| format!("rwasm:plugin@{v}"))],
    );
    field("exports", &i.exports);
    field("imports", &i.imports);
    match &i.grants {
        Some(g) => field("grants", &g.lines()),
        None => field(
            "grants",
            &["none (not in the manifest; defaults: clock, random)".to_string()],
        ),
    }
    match &i.load_error {
        None => field("loads", &["yes".to_string()]),
        Some(e) => field("loads", &[format!("no: {e}")]),
    }
    Ok(code)
}

/// `N plugin` or `N plugins`.
fn plugins(n: usize) -> String {
    if n == 1 {
        "1 plugin".to_string()
    } else {
        format!("{n} plugins")
    }
}

fn validate(cli: &Cli, manifest: &Path) -> i32 {
    let set = match PluginSet::load(manifest, &cache_dir(cli)) {
        Ok(set) => set,
        Err(e) => {
            outln!("error: {}", rwasm::error_chain(&e));
            outln!("{}: invalid", manifest.display());
            return 1;
        }
    };
    let errors = set.validate();
    for e in &errors {
        outln!("error: {}", rwasm::error_chain(e));
    }
    let count = set.plugins_info().map_or(0, |p| p.len());
    if errors.is_empty() {
        outln!("{}: {} valid", manifest.display(), plugins(count));
        0
    } else {
        outln!(
            "{}: {} of {} invalid",
            manifest.display(),
            errors.len(),
            plugins(count)
        );
        1
    }
}

fn precompile(cli: &Cli) -> anyhow::Result<i32> {
    let set = manifest_set(cli)?;
    let mut code = 0;
    for p in set.precompile() {
        match p.result {
            Ok((how, took)) => {
                outln!("{} {how} {:.1} ms", p.name, took.as_secs_f64() * 1000.0);
            }
            Err(e) => {
                outln!("{} error: {}", p.name, rwasm::error_chain(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = super::read_capped(file, &path.display().to_string())?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid {what}", path.display()))
}

fn test(cli: &Cli, name: &str, hook: &str, state: &Path, spec: &Path) -> anyhow::Result<i32> {
    let point = parse_hook_point(hook).map_err(anyhow::Error::msg)?;
    let state: State = read_json(state, "OCI state (JSON)")?;
    let spec: Spec = read_json(spec, "OCI spec (config.json)")?;
    let set = manifest_set(cli)?;
    // Authors may call a point the manifest does not list; it runs, with a warning.
    if set
        .hooks_of(name)
        .is_some_and(|hooks| !hooks.contains(&point))
    {
        errln!(
            "warning: the manifest does not register plugin `{name}` at {}; calling it there anyway",
            point.as_str()
        );
    }
    let report = set.test_hook(name, point, &state, &spec)?;
    let (doc, code) = match report.verdict {
        Err(reason) => (
            json!({"plugin": name, "hook": point.as_str(), "verdict": "deny", "reason": reason}),
            0,
        ),
        Ok(adjustment) => {
            let mut doc = json!({
                "plugin": name,
                "hook": point.as_str(),
                "verdict": "allow",
                "adjustment": adjustment,
            });
            let code = match report.accepted {
                Some(Ok(applied)) => {
                    doc["accepted"] = json!(true);
                    doc["applied"] = json!(
                        applied
                            .iter()
                            .map(|a| a.description.clone())
                            .collect::<Vec<_>>()
                    );
                    0
                }
                Some(Err(e)) => {
                    doc["accepted"] = json!(false);
                    doc["error"] = json!(refusal(&e));
                    1
                }
                None => 0,
            };
            (doc, code)
        }
    };
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(code)
}

fn refusal(e: &PluginError) -> String {
    rwasm::error_chain(e)
}
