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
    #[command(flatten)]
    pub limits: super::resource_flags::ResourceFlags,
    pub id: String,
}

impl UpdateArgs {
    fn flags(&self) -> UpdateFlags {
        let r = &self.limits;
        UpdateFlags {
            memory: r.memory.clone(),
            memory_reservation: r.memory_reservation.clone(),
            memory_swap: r.memory_swap.clone(),
            cpu_shares: r.cpu_shares,
            cpu_quota: r.cpu_quota,
            cpu_period: r.cpu_period,
            cpuset_cpus: r.cpuset_cpus.clone(),
            cpuset_mems: r.cpuset_mems.clone(),
            pids_limit: r.pids_limit,
            blkio_weight: r.blkio_weight,
        }
    }

    /// The flags given on the command line, by their `linux.resources` field.
    fn given(&self) -> Vec<(&'static str, &'static str)> {
        let set = [
            self.limits.memory.is_some(),
            self.limits.memory_reservation.is_some(),
            self.limits.memory_swap.is_some(),
            self.limits.cpu_shares.is_some(),
            self.limits.cpu_quota.is_some(),
            self.limits.cpu_period.is_some(),
            self.limits.cpuset_cpus.is_some(),
            self.limits.cpuset_mems.is_some(),
            self.limits.pids_limit.is_some(),
            self.limits.blkio_weight.is_some(),
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
        errln!("rwasm: update {}: clamped by {c}", a.id);
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
