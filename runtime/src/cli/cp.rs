//! `rwasm cp [-a] [-L] CONTAINER:SRC DEST` and `rwasm cp [-a] [-L] SRC CONTAINER:DEST`
//! (Docker's `cp`). A running container is reached through `/proc/PID/root`, so its volumes
//! and tmpfs mounts are seen as inside; a stopped one through its rootfs, mounted for the
//! copy under the container's record lock.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use rwasm::engine::cp::{CopyOptions, copy_in, copy_out};
use rwasm::engine::record::Live;

use super::Cli;
use super::containers::records;

/// `cp` arguments.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Keep uid/gid of the source (archive mode).
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink given as SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// `CONTAINER:SRC_PATH` or a host path.
    pub src: String,
    /// `CONTAINER:DEST_PATH` or a host path.
    pub dest: String,
}

/// `CONTAINER:PATH` split, as Docker splits it: a colon before any `/`, and the argument
/// not starting with `/` or `.` (so `./a:b` is a host path).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    (!c.contains('/') && !c.is_empty()).then_some((c, p))
}

/// A container path as Docker takes it: relative paths are relative to `/`.
fn container_path(p: &str) -> PathBuf {
    if p.is_empty() {
        PathBuf::from("/")
    } else if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        Path::new("/").join(p)
    }
}

/// `rwasm cp`; returns the exit code.
pub fn cp(cli: &Cli, a: &CpArgs) -> anyhow::Result<i32> {
    let opts = CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    if a.src == "-" || a.dest == "-" {
        bail!("cp: `-` (a tar stream on stdin or stdout) is not supported; give a host path");
    }
    let (name, out) = match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source (CONTAINER:PATH)"),
        (Some((c, _)), None) => (c, true),
        (None, Some((c, _))) => (c, false),
    };
    let rs = records(cli);
    let id = rs
        .resolve(name)
        .with_context(|| format!("no such container: {name}"))?;
    let _lock = rs.lock(&id).context("cannot lock the container's record")?;
    let r = rs.load(&id)?;
    let dir = rs.dir(&id);
    let running = matches!(r.live(), Live::Running | Live::Paused);
    let mounted_here = !running;
    let root = match (running, r.pid) {
        (true, Some(pid)) => PathBuf::from(format!("/proc/{pid}/root")),
        _ => {
            let plugins = super::load_plugins(cli)?;
            rwasm::engine::run::mount_rootfs(&r.layers, &dir, &plugins, &super::cache_dir(cli))
                .with_context(|| format!("cannot mount the rootfs of {name}"))?;
            dir.join("rootfs")
        }
    };
    let result = if out {
        let (_, p) = split(&a.src).expect("checked");
        copy_out(&root, &container_path(p), Path::new(&a.dest), opts)
    } else {
        let (_, p) = split(&a.dest).expect("checked");
        copy_in(Path::new(&a.src), &root, &container_path(p), opts)
    };
    if mounted_here {
        let _ = rwasm::engine::storage::unmount(&dir);
    }
    let done = result.with_context(|| format!("cp {} {}", a.src, a.dest))?;
    if done.skipped > 0 {
        eprintln!(
            "rwasm cp: {} device nodes, fifos or sockets left out",
            done.skipped
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_like_docker() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("web:etc"), Some(("web", "etc")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("dir/a:b"), None);
        assert_eq!(split("plain"), None);
        assert_eq!(container_path(""), PathBuf::from("/"));
        assert_eq!(container_path("etc/x"), PathBuf::from("/etc/x"));
    }
}
