//! Docker's `version [--format json]` and `info [--format json]`: what rwasm is built from
//! and what this host gives it (cgroup layout, storage and network drivers, plugins,
//! security options, containers and images).

use std::path::Path;

use clap::Args;
use serde_json::{Value, json};

use rwasm::engine::image::ImageStore;
use rwasm::engine::record::{Live, Records};
use rwasm::linux::cgroup::Layout;

use super::{Cli, load_plugins};

/// `version`/`info` flags.
#[derive(Args, Debug)]
pub struct FormatArgs {
    /// `json`, or the default text.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// The newest plugin WIT package this build hosts (0.1 and 0.2 plugins load too).
const PLUGIN_API: &str = "rwasm:plugin@0.3.0";

fn os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn libseccomp() -> String {
    rwasm::linux::seccomp::library_version().unwrap_or_else(|| "unknown".into())
}

/// Print `v` as JSON, or its `(label, key)` rows as Docker's indented text.
fn print(format: Option<&str>, v: &Value, rows: &[(&str, &str)]) -> anyhow::Result<i32> {
    match format {
        Some("json") => outln!("{v}"),
        None => {
            for (label, key) in rows {
                let val = match &v[*key] {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(" "),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                outln!(" {label}: {val}");
            }
        }
        Some(other) => anyhow::bail!("--format: {other:?} is not supported (use json)"),
    }
    Ok(0)
}

/// `rwasm version`.
pub fn version(a: &FormatArgs) -> anyhow::Result<i32> {
    let v = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "OciVersion": rwasm::engine::state::OCI_VERSION,
        "PluginApi": PLUGIN_API,
        "Wasmtime": "48.0.8",
        "Libseccomp": libseccomp(),
        "Os": "linux",
        "Arch": os_arch(),
        "OsArch": format!("linux/{}", os_arch()),
        "KernelVersion": kernel(),
    });
    if a.format.is_none() {
        outln!("rwasm:");
    }
    print(
        a.format.as_deref(),
        &v,
        &[
            ("Version", "Version"),
            ("OCI runtime spec", "OciVersion"),
            ("Plugin API", "PluginApi"),
            ("wasmtime", "Wasmtime"),
            ("libseccomp", "Libseccomp"),
            ("OS/Arch", "OsArch"),
            ("Kernel Version", "KernelVersion"),
        ],
    )
}

/// `rwasm info`.
pub fn info(cli: &Cli, a: &FormatArgs) -> anyhow::Result<i32> {
    let records = Records::new(&cli.data_root).all().unwrap_or_default();
    let count = |l: Live| records.iter().filter(|r| r.live() == l).count();
    let images = ImageStore::new(&cli.data_root)
        .list()
        .map_or(0, |l| l.len());
    let layout = Layout::detect(
        Path::new("/sys/fs/cgroup"),
        Path::new("/proc/self/mountinfo"),
    );
    let (cgroup_version, layout_name) = match &layout {
        Ok(Layout::V1 { .. }) => ("1", "v1"),
        Ok(Layout::Hybrid { .. }) => ("1", "hybrid (v1 controllers, cgroup2 mounted)"),
        Ok(Layout::V2 { .. }) => ("2", "v2"),
        Err(_) => ("unknown", "unknown"),
    };
    let plugins = load_plugins(cli)?;
    let names: Vec<String> = plugins.names().iter().map(|s| s.to_string()).collect();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    let mem = rwasm::linux::cgroup::usage::host_memory();
    // Docker lists its drivers under "Plugins"; here the built-in ones, then the manifest's.
    let storage = cli
        .storage_driver
        .clone()
        .unwrap_or_else(|| rwasm::engine::storage::DEFAULT_DRIVER.to_string());
    let with_plugins = |builtin: &[&str], kind: &str| -> Vec<String> {
        let mut v: Vec<String> = builtin.iter().map(|s| (*s).to_string()).collect();
        for n in plugins.names_of_kind(kind) {
            if !v.iter().any(|b| b == n) {
                v.push(n.to_string());
            }
        }
        v
    };
    let storage_drivers = with_plugins(
        &[
            rwasm::engine::storage::DEFAULT_DRIVER,
            "vfs",
            rwasm::engine::storage::NATIVE_DRIVER,
        ],
        "storage-driver",
    );
    let network_drivers = with_plugins(&["none", "host", "bridge"], "network-driver");
    let volume_drivers = with_plugins(&["local"], "volume-driver");
    let v = json!({
        "Containers": records.len(),
        "ContainersRunning": count(Live::Running),
        "ContainersPaused": count(Live::Paused),
        "ContainersStopped": records.len() - count(Live::Running) - count(Live::Paused),
        "Images": images,
        "Driver": storage,
        "StorageDrivers": storage_drivers,
        "NetworkDrivers": network_drivers,
        "VolumeDrivers": volume_drivers,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "CgroupLayout": layout_name,
        "Plugins": names,
        "PluginManifest": plugins.manifest_path().map(|p| p.display().to_string()),
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "Runtimes": ["rwasm (OCI runtime, runc-compatible)"],
        "KernelVersion": kernel(),
        "OperatingSystem": os,
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem,
        "DataRoot": cli.data_root.display().to_string(),
        "StateRoot": cli.root.display().to_string(),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    });
    print(
        a.format.as_deref(),
        &v,
        &[
            ("Containers", "Containers"),
            ("  Running", "ContainersRunning"),
            ("  Paused", "ContainersPaused"),
            ("  Stopped", "ContainersStopped"),
            ("Images", "Images"),
            ("Server Version", "ServerVersion"),
            ("Storage Driver", "Driver"),
            ("Storage Drivers", "StorageDrivers"),
            ("Network Drivers", "NetworkDrivers"),
            ("Volume Drivers", "VolumeDrivers"),
            ("Cgroup Driver", "CgroupDriver"),
            ("Cgroup Version", "CgroupVersion"),
            ("Cgroup Layout", "CgroupLayout"),
            ("Plugins", "Plugins"),
            ("Plugin Manifest", "PluginManifest"),
            ("Security Options", "SecurityOptions"),
            ("Kernel Version", "KernelVersion"),
            ("Operating System", "OperatingSystem"),
            ("OSType", "OSType"),
            ("Architecture", "Architecture"),
            ("CPUs", "NCPU"),
            ("Total Memory", "MemTotal"),
            ("Data Root Dir", "DataRoot"),
            ("State Root Dir", "StateRoot"),
        ],
    )
}
