//! Docker's image commands (`pull` is in [`super::pull`]): `load`, `save`, `import`, `tag`, `images`, `rmi`,
//! `image inspect|ls|rm|prune`. Output follows Docker's: `images` as a table with
//! REPOSITORY, TAG, IMAGE ID, CREATED, SIZE (go-units' human durations and decimal sizes),
//! or one JSON object per line with `--format json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use rwasm::engine::image::ImageStore;
use rwasm::engine::image::manage::{ContainerUse, Removed, container_uses, short_id};
use rwasm::engine::state::StateStore;

use super::Cli;

/// How an archive read from standard input is named in errors and history.
const STDIN: &str = "standard input";

/// `rwasm load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from this tar archive (a `docker save` archive or an OCI archive; gzip or zstd
    /// allowed) instead of standard input.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rwasm save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Images to save (name, name:tag or ID).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `rwasm images` / `rwasm image ls`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// `table` (default) or `json` (one object per line, as Docker's `--format json`).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the images of this repository (of this tag, when one is given), as Docker's
    /// `docker images [REPOSITORY[:TAG]]`.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `rwasm rmi` / `rwasm image rm`.
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove even when a stopped container uses it, or other images depend on it.
    #[arg(short, long)]
    pub force: bool,
    /// Images to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `rwasm image SUBCOMMAND`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show images as JSON (Docker's image inspect).
    Inspect {
        /// Images to inspect.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove dangling images (with -a, every image no container uses).
    Prune {
        /// Every unused image, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not ask (rwasm never asks; accepted for Docker's scripts).
        #[arg(short, long)]
        force: bool,
    },
    /// Download an image from a registry.
    Pull(super::pull::PullArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// Tag an image.
    Tag {
        /// Existing image.
        source: String,
        /// New name[:tag].
        target: String,
    },
    /// Make an image from a rootfs tarball.
    Import {
        /// The tarball.
        tarball: PathBuf,
        /// NAME[:TAG].
        name: Option<String>,
    },
}

pub(super) fn images(cli: &Cli) -> ImageStore {
    ImageStore::new(&cli.data_root)
}

/// Containers and their images, running ones marked through the state store.
pub(super) fn users(cli: &Cli) -> Vec<ContainerUse> {
    let store = StateStore::open(&cli.root).ok();
    container_uses(&cli.data_root, &|id| {
        store.as_ref().is_some_and(|s| {
            s.load(id)
                .is_ok_and(|r| r.status() == oci_spec::runtime::ContainerState::Running)
        })
    })
}

/// `rwasm load -i FILE`.
pub fn load(cli: &Cli, a: &LoadArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let loaded = match &a.input {
        Some(f) => images(cli).load(f)?,
        None if std::io::stdin().is_terminal() => {
            anyhow::bail!("requested load from stdin, but stdin is empty")
        }
        None => images(cli).load_from(std::io::stdin().lock(), Path::new(STDIN))?,
    };
    if !a.quiet {
        for img in loaded {
            if img.tags.is_empty() {
                outln!("Loaded image ID: {}", img.id);
            }
            for t in &img.tags {
                outln!("Loaded image: {t}");
            }
        }
    }
    Ok(())
}

/// `rwasm save -o FILE IMAGE...`.
pub fn save(cli: &Cli, a: &SaveArgs) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    match &a.output {
        Some(f) => images(cli).save(&a.images, f)?,
        None if std::io::stdout().is_terminal() => {
            anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        None => {
            let out = std::io::stdout().lock();
            let mut out = images(cli).save_to(&a.images, out, Path::new("standard output"))?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `rwasm import TARBALL [NAME[:TAG]]`: prints the new image ID, as Docker does.
pub fn import(cli: &Cli, tarball: &Path, name: Option<&str>) -> anyhow::Result<()> {
    let img = if tarball == Path::new("-") {
        images(cli).import_from(std::io::stdin().lock(), Path::new(STDIN), name)?
    } else {
        images(cli).import(tarball, name)?
    };
    outln!("{}", img.id);
    Ok(())
}

/// `rwasm tag SOURCE TARGET`.
pub fn tag(cli: &Cli, source: &str, target: &str) -> anyhow::Result<()> {
    images(cli).tag(source, target)?;
    Ok(())
}

/// `rwasm rmi [-f] IMAGE...`: every image is tried; the exit status is 1 if any failed.
pub fn rmi(cli: &Cli, a: &RmiArgs) -> anyhow::Result<i32> {
    let store = images(cli);
    let users = users(cli);
    let mut code = 0;
    for name in &a.images {
        match store.remove(name, a.force, &users) {
            Ok(lines) => print_removed(&lines),
            Err(e) => {
                errln!("Error response from daemon: {}", rwasm::error_chain(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_removed(lines: &[Removed]) {
    for l in lines {
        match l {
            Removed::Untagged(t) => outln!("Untagged: {t}"),
            Removed::Deleted(id) => outln!("Deleted: {id}"),
        }
    }
}

/// `rwasm images` / `rwasm image ls`.
pub fn list(cli: &Cli, a: &ListArgs) -> anyhow::Result<()> {
    let mut rows = images(cli).list()?;
    if let Some(r) = &a.reference {
        let want = rwasm::engine::image::reference::Reference::parse(r)?;
        // `Reference` says `latest` for no tag; a tag is given when the last path
        // component has a `:` (a registry's port is in an earlier one).
        let tagged = r.rsplit('/').next().is_some_and(|n| n.contains(':'));
        rows.retain(|row| {
            row.repository == want.repository && (!tagged || want.tag.as_ref() == Some(&row.tag))
        });
    }
    let now = std::time::SystemTime::now();
    if a.quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = short_id(&r.id);
            if !seen.contains(&id) {
                outln!("{id}");
                seen.push(id);
            }
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" | "{{json .}}" => {
            for r in &rows {
                let created = r.created.as_deref().and_then(parse_time);
                let obj = serde_json::json!({
                    "Containers": "N/A",
                    "CreatedAt": created.map(docker_time).unwrap_or_default(),
                    "CreatedSince": created.map(|c| since(now, c)).unwrap_or_else(|| "N/A".into()),
                    "Digest": r.digest.as_deref().unwrap_or("<none>"),
                    "ID": short_id(&r.id),
                    "Repository": r.repository,
                    "SharedSize": "N/A",
                    "Size": human_size(r.size),
                    "Tag": r.tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(r.size),
                });
                outln!("{obj}");
            }
        }
        "table" => {
            let mut table = vec![vec![
                "REPOSITORY".to_string(),
                "TAG".into(),
                "IMAGE ID".into(),
                "CREATED".into(),
                "SIZE".into(),
            ]];
            for r in &rows {
                let created = r.created.as_deref().and_then(parse_time);
                table.push(vec![
                    r.repository.clone(),
                    r.tag.clone(),
                    short_id(&r.id),
                    created
                        .map(|c| since(now, c))
                        .unwrap_or_else(|| "N/A".into()),
                    human_size(r.size),
                ]);
            }
            for line in tabwrite(&table) {
                outln!("{line}");
            }
        }
        other => anyhow::bail!("--format {other:?}: use table or json"),
    }
    Ok(())
}

/// `rwasm image inspect IMAGE...`: a JSON array, as Docker prints it.
pub fn inspect(cli: &Cli, names: &[String]) -> anyhow::Result<()> {
    let store = images(cli);
    let mut out = Vec::new();
    for n in names {
        out.push(store.inspect(n)?);
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&out).context("inspect output")?
    );
    Ok(())
}

/// `rwasm image prune [-a]`, with Docker's output.
pub fn prune(cli: &Cli, all: bool) -> anyhow::Result<()> {
    let store = images(cli);
    let pruned = store.prune(all, &users(cli))?;
    let removed = &pruned.removed;
    if !removed.is_empty() {
        outln!("Deleted Images:");
        for r in removed {
            match r {
                Removed::Untagged(t) => outln!("untagged: {t}"),
                Removed::Deleted(id) => outln!("deleted: {id}"),
            }
        }
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(pruned.reclaimed));
    Ok(())
}

/// `rwasm image SUBCOMMAND`; returns the exit code.
pub fn run(cli: &Cli, c: &ImageCommand) -> anyhow::Result<i32> {
    match c {
        ImageCommand::Inspect { images } => inspect(cli, images).map(|()| 0),
        ImageCommand::Ls(a) => list(cli, a).map(|()| 0),
        ImageCommand::Rm(a) => rmi(cli, a),
        ImageCommand::Prune { all, .. } => prune(cli, *all).map(|()| 0),
        ImageCommand::Pull(a) => super::pull::pull(cli, a).map(|()| 0),
        ImageCommand::Load(a) => load(cli, a).map(|()| 0),
        ImageCommand::Save(a) => save(cli, a).map(|()| 0),
        ImageCommand::Tag { source, target } => tag(cli, source, target).map(|()| 0),
        ImageCommand::Import { tarball, name } => import(cli, tarball, name.as_deref()).map(|()| 0),
    }
}

/// Columns as Go's tabwriter lays out Docker's tables (minwidth 10, padding 3).
pub(super) fn tabwrite(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == cols {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}", w = widths[c]));
                }
            }
            line
        })
        .collect()
}

/// An RFC 3339 time (any offset written as `Z` or `+00:00`).
fn parse_time(s: &str) -> Option<std::time::SystemTime> {
    let s = s
        .strip_suffix("+00:00")
        .map_or(s.to_string(), |b| format!("{b}Z"));
    humantime::parse_rfc3339_weak(&s).ok()
}

/// Docker's `CreatedAt`: `2006-01-02 15:04:05 +0000 UTC`.
fn docker_time(t: std::time::SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string(); // 2006-01-02T15:04:05Z
    format!(
        "{} +0000 UTC",
        s.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// go-units' `HumanDuration` of `now - then`, plus ` ago`.
fn since(now: std::time::SystemTime, then: std::time::SystemTime) -> String {
    let d = now.duration_since(then).unwrap_or_default();
    format!("{} ago", human_duration(d))
}

/// go-units' `HumanDuration`.
fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let minutes = secs / 60;
    // Go: int(d.Hours() + 0.5); a duration's hours fit easily.
    let hours = (secs + 1800) / 3600;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    }
}

use super::format::human_size;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_and_durations_read_as_dockers() {
        assert_eq!(
            human_duration(Duration::from_millis(10)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(20 * 86400)), "2 weeks");
        let t = humantime::parse_rfc3339("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(docker_time(t), "2024-01-02 03:04:05 +0000 UTC");
        assert_eq!(
            parse_time("2024-01-02T03:04:05.123+00:00"),
            Some(t + Duration::from_millis(123))
        );
    }

    #[test]
    fn tables_are_padded_like_gos_tabwriter() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4.26MB".into()],
        ];
        assert_eq!(
            tabwrite(&rows),
            [
                "REPOSITORY   TAG       SIZE",
                "busybox      latest    4.26MB"
            ]
        );
    }
}
