//! Docker's `system df [-v] [--format json]` and `system prune [-a] [-f]`: what images and
//! containers take on disk, and removing what nothing uses.

use clap::{Args, Subcommand};
use serde_json::json;

use rwasm::engine::record::Live;

use super::Cli;
use super::containers::{confirm, records, remove_stopped, writable_bytes};
use super::format::human_size;
use super::image::{images, tabwrite, users};

/// `rwasm system ...`.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage: images, containers (TYPE TOTAL ACTIVE SIZE RECLAIMABLE).
    Df(DfArgs),
    /// Remove stopped containers and dangling images (with -a every unused image).
    Prune {
        /// Remove every image no container uses, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// `system df` flags.
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show each image and container.
    #[arg(short, long)]
    pub verbose: bool,
    /// `json` (one object per TYPE, as `docker system df --format json`), or the table.
    #[arg(long)]
    pub format: Option<String>,
}

/// `rwasm system SUBCOMMAND`; returns the exit code.
pub fn run(cli: &Cli, c: &SystemCommand) -> anyhow::Result<i32> {
    match c {
        SystemCommand::Df(a) => df(cli, a),
        SystemCommand::Prune { all, force } => prune(cli, *all, *force),
    }
}

/// Docker's RECLAIMABLE column: `SIZE (PCT%)`.
fn reclaimable(bytes: u64, of: u64) -> String {
    let pct = (bytes * 100).checked_div(of).unwrap_or(0);
    format!("{} ({pct}%)", human_size(bytes))
}

fn df(cli: &Cli, a: &DfArgs) -> anyhow::Result<i32> {
    let img = images(cli).usage(&users(cli))?;
    let rs = records(cli);
    let recs = rs.all()?;
    let sizes: Vec<(bool, u64)> = recs
        .iter()
        .map(|r| {
            let active = matches!(r.live(), Live::Running | Live::Paused | Live::Restarting)
                || r.monitor_alive();
            (active, writable_bytes(cli, &rs, &r.id))
        })
        .collect();
    let c_active = sizes.iter().filter(|(a, _)| *a).count();
    let c_size: u64 = sizes.iter().map(|(_, b)| b).sum();
    let c_free: u64 = sizes.iter().filter(|(a, _)| !a).map(|(_, b)| b).sum();
    let rows = [
        (
            "Images",
            img.total,
            img.active,
            img.size,
            reclaimable(img.reclaimable, img.size),
        ),
        (
            "Containers",
            recs.len() as u64,
            c_active as u64,
            c_size,
            reclaimable(c_free, c_size),
        ),
    ];
    match a.format.as_deref() {
        Some("json" | "{{json .}}") => {
            for (t, total, active, size, recl) in &rows {
                outln!(
                    "{}",
                    json!({"Type": t, "TotalCount": total.to_string(), "Active": active.to_string(),
                           "Size": human_size(*size), "Reclaimable": recl})
                );
            }
            return Ok(0);
        }
        Some(other) => anyhow::bail!("--format {other:?}: use json, or no --format for the table"),
        None => {}
    }
    let mut table = vec![vec![
        "TYPE".to_string(),
        "TOTAL".into(),
        "ACTIVE".into(),
        "SIZE".into(),
        "RECLAIMABLE".into(),
    ]];
    for (t, total, active, size, recl) in &rows {
        table.push(vec![
            t.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(*size),
            recl.clone(),
        ]);
    }
    for line in tabwrite(&table) {
        outln!("{line}");
    }
    if a.verbose {
        outln!("\nImages space usage:\n");
        let mut t = vec![vec![
            "IMAGE ID".to_string(),
            "SIZE".into(),
            "CONTAINERS".into(),
        ]];
        for (id, (bytes, n)) in &img.per_image {
            t.push(vec![
                rwasm::engine::image::manage::short_id(id),
                human_size(*bytes),
                n.to_string(),
            ]);
        }
        for line in tabwrite(&t) {
            outln!("{line}");
        }
        outln!("\nContainers space usage:\n");
        let mut t = vec![vec![
            "CONTAINER ID".to_string(),
            "IMAGE".into(),
            "SIZE".into(),
            "NAMES".into(),
        ]];
        for (r, (_, bytes)) in recs.iter().zip(&sizes) {
            t.push(vec![
                r.id.chars().take(12).collect(),
                r.image.clone(),
                human_size(*bytes),
                r.name.clone(),
            ]);
        }
        for line in tabwrite(&t) {
            outln!("{line}");
        }
    }
    Ok(0)
}

fn prune(cli: &Cli, all: bool, force: bool) -> anyhow::Result<i32> {
    let images_line = if all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    };
    if !force
        && !confirm(&format!(
            "WARNING! This will remove:\n  - all stopped containers\n{images_line}"
        ))
    {
        return Ok(0);
    }
    let (deleted, c_bytes) = remove_stopped(cli)?;
    if !deleted.is_empty() {
        outln!("Deleted Containers:");
        for id in &deleted {
            outln!("{id}");
        }
        outln!();
    }
    let pruned = images(cli).prune(all, &users(cli))?;
    if !pruned.removed.is_empty() {
        outln!("Deleted Images:");
        for r in &pruned.removed {
            match r {
                rwasm::engine::image::manage::Removed::Untagged(t) => outln!("untagged: {t}"),
                rwasm::engine::image::manage::Removed::Deleted(id) => outln!("deleted: {id}"),
            }
        }
        outln!();
    }
    outln!(
        "Total reclaimed space: {}",
        human_size(c_bytes + pruned.reclaimed)
    );
    Ok(0)
}
