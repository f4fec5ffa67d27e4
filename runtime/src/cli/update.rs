//! `rwasm update`: runc's grammar (`runc update --help`) for changing the cgroup resources
//! of a created or running container.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use oci_spec::runtime::LinuxResources;

use rwasm::engine::container::{self, EngineError};
use rwasm::engine::state::StateStore;
use rwasm::engine::update::{self, FLAG_FIELDS, UpdateFlags};
use rwasm::linux::cgroup::CgroupError;

use super::{Cli, cache_dir};

/// `update` flags, as runc spells them. With `-r`, the file's `linux.resources` is read
/// first and the other flags are written over it.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A file holding a linux.resources JSON object, or `-` for stdin.
    #[arg(short, long, value_name = "FILE|-")]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes or a size such as 256m, 1g; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit (size, or -1).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (size, or -1 for unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight, 2 to 262144).
    #[arg(long, visible_alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (-1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (0 or less: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

impl UpdateArgs {
    fn flags(&self) -> UpdateFlags {
        UpdateFlags {
            memory: self.memory.clone(),
            memory_reservation: self.memory_reservation.clone(),
            memory_swap: self.memory_swap.clone(),
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
        }
    }

    /// The flags given on the command line, by their `linux.resources` field.
    fn given(&self) -> Vec<(&'static str, &'static str)> {
        let set = [
            self.memory.is_some(),
            self.memory_reservation.is_some(),
            self.memory_swap.is_some(),
            self.cpu_shares.is_some(),
            self.cpu_quota.is_some(),
            self.cpu_period.is_some(),
            self.cpuset_cpus.is_some(),
            self.cpuset_mems.is_some(),
            self.pids_limit.is_some(),
            self.blkio_weight.is_some(),
        ];
        FLAG_FIELDS
            .iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|(pair, _)| *pair)
            .collect()
    }
}

fn read_resources(path: &std::path::Path) -> anyhow::Result<LinuxResources> {
    let (source, bytes) = if path.as_os_str() == "-" {
        let b = super::read_capped(std::io::stdin(), "--resources - (stdin)")?;
        ("stdin".to_string(), b)
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("--resources: cannot read {}", path.display()))?;
        let b = super::read_capped(file, &format!("--resources {}", path.display()))?;
        (path.display().to_string(), b)
    };
    Ok(update::parse_resources(&source, &bytes)?)
}

pub fn update(cli: &Cli, a: &UpdateArgs) -> anyhow::Result<()> {
    let base = match &a.resources {
        Some(p) => read_resources(p)?,
        None => LinuxResources::default(),
    };
    let resources = update::resources_from_flags(base, &a.flags())?;
    if update::is_empty(&resources) {
        bail!(
            "update {}: nothing to change (give -r FILE or a resource flag such as --memory)",
            a.id
        );
    }
    let store = StateStore::open(&cli.root)?;
    let record = store.load(&a.id)?;
    let plugins = container::plugins_of(&record, &cache_dir(cli))?;
    let updated = update::update(&store, &a.id, resources, &plugins).map_err(|e| {
        // Name the flag the user typed for a field the kernel or host refused.
        let field = match &e {
            EngineError::Cgroup(c) => cgroup_field(c),
            EngineError::InvalidUpdate { field, .. } => Some(*field),
            _ => None,
        };
        let flag = field.and_then(|f| a.given().into_iter().find(|(_, g)| *g == f));
        let e = anyhow::Error::new(e);
        match flag {
            Some((flag, _)) => e.context(flag),
            None => e,
        }
    })?;
    for c in &updated.clamped {
        eprintln!("rwasm: update {}: clamped by {c}", a.id);
    }
    Ok(())
}

/// The `linux.resources` field a cgroup error is about, if any.
fn cgroup_field(e: &CgroupError) -> Option<&'static str> {
    match e {
        CgroupError::InvalidResource { field, .. }
        | CgroupError::ControllerUnavailable { field, .. }
        | CgroupError::FileUnavailable { field, .. }
        | CgroupError::Apply { field, .. } => Some(field),
        _ => None,
    }
}
