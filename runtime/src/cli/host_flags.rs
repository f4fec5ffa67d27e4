//! The security, device and namespace flags of `run` and `create`, spelled as Docker's
//! (`docker run --help`); the engine's `HostConfig` gives their meaning.

use anyhow::Context;
use clap::Args;

use rwasm::engine::host_config::{HostConfig, parse_ns};

/// Flattened into `run`/`create`.
#[derive(Args, Debug, Default, Clone)]
pub struct HostFlags {
    /// Add Linux capabilities (NAME or CAP_NAME, or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (NAME or CAP_NAME, or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges: all capabilities, host devices, no seccomp, no masked paths.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: seccomp=FILE|unconfined, no-new-privileges[=true|false].
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Ulimit options, NAME=SOFT[:HARD] (e.g. nofile=1024:2048).
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Add a host device, HOST[:CONTAINER[:PERMISSIONS]] (e.g. /dev/fuse:/dev/fuse:rwm).
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Limit read rate from a device, PATH:RATE (e.g. /dev/sda:1mb).
    #[arg(long, value_name = "PATH:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate to a device, PATH:RATE.
    #[arg(long, value_name = "PATH:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read operations per second from a device, PATH:N.
    #[arg(long, value_name = "PATH:N")]
    pub device_read_iops: Vec<String>,
    /// Limit write operations per second to a device, PATH:N.
    #[arg(long, value_name = "PATH:N")]
    pub device_write_iops: Vec<String>,
    /// Disable the OOM killer.
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune the host's OOM preferences (-1000 to 1000).
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// Size of /dev/shm (e.g. 128m; default 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options, KEY=VALUE (namespaced sysctls only).
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// PID namespace to use: host or container:NAME.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode: private, shareable, host or container:NAME.
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use: host.
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use: host.
    #[arg(long)]
    pub userns: Option<String>,
    /// Add additional groups to join (names from the image's /etc/group, or gids).
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Read in a file of environment variables (NAME=VALUE lines; # comments).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// GPU devices to add, through CDI specs (all, N, or device=NAME[,NAME]).
    #[arg(long)]
    pub gpus: Option<String>,
}

impl HostFlags {
    /// The engine's view of the flags; namespace values are checked here.
    pub fn host_config(&self) -> anyhow::Result<HostConfig> {
        let ns = |flag, v: &Option<String>| {
            v.as_deref()
                .map(|v| parse_ns(flag, v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(HostConfig {
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            security_opt: self.security_opt.clone(),
            ulimits: self.ulimit.clone(),
            devices: self.device.clone(),
            device_read_bps: self.device_read_bps.clone(),
            device_write_bps: self.device_write_bps.clone(),
            device_read_iops: self.device_read_iops.clone(),
            device_write_iops: self.device_write_iops.clone(),
            oom_kill_disable: self.oom_kill_disable,
            oom_score_adj: self.oom_score_adj,
            shm_size: self.shm_size.clone(),
            sysctls: self.sysctl.clone(),
            pid: ns("--pid", &self.pid)?,
            ipc: ns("--ipc", &self.ipc)?,
            uts: ns("--uts", &self.uts)?,
            userns: self.userns.clone(),
            group_add: self.group_add.clone(),
            read_only: self.read_only,
            init: self.init,
            gpus: self.gpus.clone(),
        })
    }

    /// `--env-file` entries, in file order, before `-e` (which wins, as in Docker):
    /// `NAME=VALUE` lines, blank lines and `#` comments skipped, a bare `NAME` passes the
    /// caller's value.
    pub fn env_file_entries(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("--env-file: cannot read {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let l = line.trim_start();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let name = l.split_once('=').map_or(l, |(k, _)| k);
                if name.is_empty() || name.contains(char::is_whitespace) {
                    anyhow::bail!(
                        "--env-file {} line {}: variable {name:?} contains whitespaces",
                        f.display(),
                        n + 1
                    );
                }
                out.push(l.to_string());
            }
        }
        Ok(out)
    }
}
