//! `rwasm cp [-a] [-L] CONTAINER:SRC DEST` and `rwasm cp [-a] [-L] SRC CONTAINER:DEST`
//! (Docker's `cp`); `-` as DEST writes a tar stream of SRC to stdout, `-` as SRC extracts
//! a tar stream read from stdin into the directory DEST. A running container is reached through `/proc/PID/root`, so its volumes
//! and tmpfs mounts are seen as inside; a stopped one through its rootfs, mounted for the
//! copy under the container's record lock.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use rwasm::engine::cp::{CopyOptions, CpError, copy_in, copy_out};
use rwasm::engine::cp_tar::{tar_in, tar_out};
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
    /// `CONTAINER:SRC_PATH`, a host path, or `-` (a tar stream on stdin, extracted into
    /// the directory DEST_PATH).
    pub src: String,
    /// `CONTAINER:DEST_PATH`, a host path, or `-` (SRC_PATH written to stdout as a tar
    /// stream).
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
    if a.src == "-" && a.dest == "-" {
        bail!("must specify at least one container source (CONTAINER:PATH)");
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
    let result = match (out, a.src.as_str(), a.dest.as_str()) {
        (true, _, "-") => {
            let (_, p) = split(&a.src).expect("checked");
            let stdout = std::io::stdout().lock();
            tar_out(
                &root,
                &container_path(p),
                std::io::BufWriter::new(stdout),
                opts,
            )
        }
        (true, _, dest) => {
            let (_, p) = split(&a.src).expect("checked");
            copy_out(&root, &container_path(p), Path::new(dest), opts)
        }
        (false, "-", _) => {
            let (_, p) = split(&a.dest).expect("checked");
            spool_stdin(&dir).and_then(|mut f| tar_in(&mut f, &root, &container_path(p), opts))
        }
        (false, src, _) => {
            let (_, p) = split(&a.dest).expect("checked");
            copy_in(Path::new(src), &root, &container_path(p), opts)
        }
    };
    if mounted_here {
        let _ = rwasm::engine::storage::unmount(&dir);
    }
    if let Err(CpError::NotADirectory(_)) = &result {
        // Docker's words.
        bail!("destination \"{}\" must be a directory", a.dest);
    }
    let done = result.with_context(|| format!("cp {} {}", a.src, a.dest))?;
    if done.skipped > 0 {
        errln!(
            "rwasm cp: {} device nodes, fifos or sockets left out",
            done.skipped
        );
    }
    Ok(0)
}

/// Our stdin copied into an unnamed file in the container's directory (`O_TMPFILE`, gone
/// when closed), so the archive can be checked whole before anything is extracted.
fn spool_stdin(dir: &Path) -> Result<std::fs::File, CpError> {
    use std::io::Seek;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_TMPFILE | nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| CpError::Host {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let mut f = std::fs::File::from(fd);
    std::io::copy(&mut std::io::stdin().lock(), &mut f)
        .and_then(|_| f.rewind())
        .map_err(|e| CpError::Tar("read", e))?;
    Ok(f)
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
