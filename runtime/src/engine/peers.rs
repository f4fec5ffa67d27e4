//! Name resolution between the containers of one user network, as Docker gives it (its
//! embedded DNS answers container names; rwasm writes `/etc/hosts` entries): a container
//! joining gets `ADDRESS\tNAME` lines for the network's other containers and each of them
//! gets its line; leaving removes its line from the others. The bundles' `hosts` files are
//! bind-mounted at /etc/hosts, so they are rewritten in place, under the network's
//! `hosts.lock` (joins and leaves of one network are serialised).

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// A failed update of a user network's hosts files.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// A hosts file, the lock or the containers directory failed.
    #[error("cannot {what} {path}")]
    Io {
        /// `read`, `write`, `lock`, `list`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PeersError {
    let path = path.to_path_buf();
    move |source| PeersError::Io { what, path, source }
}

/// A container connected to a user network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its full id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its address on the network.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub len: u8,
    /// Its bundle (`<data-root>/containers/<id>`).
    pub bundle: PathBuf,
}

/// The containers of `data_root` connected to `network` (their bundle's network.json
/// names it and holds an address), by name.
pub fn connected(data_root: &Path, network: &str) -> Result<Vec<Peer>, PeersError> {
    let dir = data_root.join("containers");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", &dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let bundle = e.path();
        let Some((net, Some(result))) = super::network::connection(&bundle) else {
            continue;
        };
        if net != network {
            continue;
        }
        let Some(ip) = result.first_address() else {
            continue;
        };
        let len = result
            .ips
            .first()
            .and_then(|i| i.address.split_once('/')?.1.parse().ok())
            .unwrap_or(32);
        let name = fs::read_to_string(bundle.join("name"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        out.push(Peer {
            id: e.file_name().to_string_lossy().to_string(),
            name,
            ip,
            len,
            bundle,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn lock(data_root: &Path, network: &str) -> Result<Flock<fs::File>, PeersError> {
    let dir = super::networks::Networks::new(data_root).state_dir(network);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let path = dir.join("hosts.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| PeersError::Io {
        what: "lock",
        path,
        source: e.into(),
    })
}

fn line(ip: Ipv4Addr, name: &str) -> String {
    format!("{ip}\t{name}")
}

/// Rewrites `hosts` in place (the bind mount follows the inode) with `edit` applied to
/// its lines; a missing file is left alone.
fn edit_hosts(hosts: &Path, edit: impl FnOnce(&mut Vec<String>)) -> Result<(), PeersError> {
    let text = match fs::read_to_string(hosts) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read", hosts)(e)),
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let before = lines.clone();
    edit(&mut lines);
    if lines == before {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(hosts)
        .map_err(io_err("write", hosts))?;
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    f.write_all(body.as_bytes()).map_err(io_err("write", hosts))
}

/// Container `id` (bundle `bundle`, address `ip`) joined `network`: its hosts file gets
/// the other containers' lines, theirs get its line.
pub fn join(
    data_root: &Path,
    network: &str,
    id: &str,
    bundle: &Path,
    ip: Ipv4Addr,
) -> Result<(), PeersError> {
    let _lock = lock(data_root, network)?;
    let me = fs::read_to_string(bundle.join("name"))
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let others: Vec<Peer> = connected(data_root, network)?
        .into_iter()
        .filter(|p| p.id != id && !p.name.is_empty())
        .collect();
    edit_hosts(&bundle.join("hosts"), |lines| {
        for p in &others {
            let l = line(p.ip, &p.name);
            if !lines.contains(&l) {
                lines.push(l);
            }
        }
    })?;
    if me.is_empty() {
        return Ok(());
    }
    let mine = line(ip, &me);
    for p in &others {
        edit_hosts(&p.bundle.join("hosts"), |lines| {
            if !lines.contains(&mine) {
                lines.push(mine.clone());
            }
        })?;
    }
    Ok(())
}

/// Container `id` (address `ip`) left `network`: its line goes from the others' hosts
/// files (every file is tried; the first failure is returned).
pub fn leave(
    data_root: &Path,
    network: &str,
    id: &str,
    bundle: &Path,
    ip: Ipv4Addr,
) -> Result<(), PeersError> {
    let _lock = lock(data_root, network)?;
    let me = fs::read_to_string(bundle.join("name"))
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let mine = line(ip, &me);
    let mut first = Ok(());
    for p in connected(data_root, network)?
        .into_iter()
        .filter(|p| p.id != id)
    {
        let r = edit_hosts(&p.bundle.join("hosts"), |lines| {
            lines.retain(|l| *l != mine)
        });
        if first.is_ok() {
            first = r;
        }
    }
    first
}
