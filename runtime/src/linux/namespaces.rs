//! Which namespaces a container gets, from config.json's `linux.namespaces`
//! (runtime-spec `config-linux.md`, "Namespaces").

use std::fs::{self, File};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};

/// A namespace list that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// A namespace type appears twice in `linux.namespaces`; carries its spec name.
    #[error("linux.namespaces: {0} is listed twice")]
    Duplicate(&'static str),
    /// A namespace type rwasm does not implement yet (`time`).
    #[error("linux.namespaces: the {0} namespace is not supported")]
    Unsupported(&'static str),
    /// `linux.namespaces` has no `mount` entry; rwasm never builds a rootfs in the host's.
    #[error("linux.namespaces: a mount namespace is required")]
    NoMountNamespace,
    /// A namespace to join (an entry with `path`) cannot be opened.
    #[error("linux.namespaces: cannot open {kind} namespace {path}")]
    Open {
        /// The namespace kind as `/proc/PID/ns` names it: `net`, `ipc`, `user`, ...
        kind: &'static str,
        /// The entry's `path`, e.g. `/proc/1234/ns/net`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A new user namespace without both `linux.uidMappings` and `linux.gidMappings`.
    #[error("linux.uidMappings/gidMappings: a new user namespace needs both")]
    MissingMappings,
    /// Writing init's `/proc/PID/uid_map` or `gid_map` failed (user_namespaces(7) rules).
    #[error("linux.uidMappings/gidMappings: the kernel refused {path}")]
    WriteMap {
        /// The map file, `/proc/PID/uid_map` or `/proc/PID/gid_map`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The namespaces to create and to join.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces created when init is cloned (never `CLONE_NEWCGROUP`: see `new_cgroup`).
    pub clone_flags: CloneFlags,
    /// Unshare a cgroup namespace after init joined the container's cgroup, so that the
    /// namespace's root is the container's cgroup.
    pub new_cgroup: bool,
    /// The pid namespace to join (the runtime joins it around the clone).
    pub pid_path: Option<PathBuf>,
    /// Namespaces init joins with setns, the user namespace first.
    pub joins: Vec<(CloneFlags, PathBuf)>,
}

/// Kernel spelling of a namespace type, as in `/proc/PID/ns/NAME`.
pub fn kind_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn flag(t: LinuxNamespaceType) -> Result<CloneFlags, NamespaceError> {
    Ok(match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => return Err(NamespaceError::Unsupported("time")),
    })
}

impl NamespacePlan {
    /// Build the plan; errors name the offending entry.
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            pid_path: None,
            joins: Vec::new(),
        };
        let mut seen = CloneFlags::empty();
        for ns in namespaces {
            let f = flag(ns.typ())?;
            if seen.contains(f) {
                return Err(NamespaceError::Duplicate(kind_name(ns.typ())));
            }
            seen |= f;
            match (ns.path(), ns.typ()) {
                (Some(p), LinuxNamespaceType::Pid) => plan.pid_path = Some(p.clone()),
                (Some(p), _) => plan.joins.push((f, p.clone())),
                (None, LinuxNamespaceType::Cgroup) => plan.new_cgroup = true,
                (None, _) => plan.clone_flags |= f,
            }
        }
        if !seen.contains(CloneFlags::CLONE_NEWNS) {
            return Err(NamespaceError::NoMountNamespace);
        }
        // setns into a user namespace must come before the others it owns.
        plan.joins
            .sort_by_key(|(f, _)| *f != CloneFlags::CLONE_NEWUSER);
        Ok(plan)
    }

    /// Whether init creates a user namespace.
    pub fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Whether init creates a network namespace.
    pub fn new_net(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWNET)
    }

    /// Open every namespace to join (fails early, before anything is created).
    pub fn open_joins(&self) -> Result<Vec<(CloneFlags, File)>, NamespaceError> {
        self.joins
            .iter()
            .map(|(f, p)| {
                File::open(p)
                    .map(|file| (*f, file))
                    .map_err(|source| NamespaceError::Open {
                        kind: flag_name(*f),
                        path: p.clone(),
                        source,
                    })
            })
            .collect()
    }
}

fn flag_name(f: CloneFlags) -> &'static str {
    [
        (CloneFlags::CLONE_NEWNS, "mnt"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNET, "net"),
    ]
    .into_iter()
    .find(|(x, _)| *x == f)
    .map_or("unknown", |(_, n)| n)
}

/// Write `/proc/PID/uid_map` and `gid_map` (user_namespaces(7)); the runtime does this
/// for a newly cloned init before it sends the config.
pub fn write_id_maps(
    pid: i32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    if uid.is_empty() || gid.is_empty() {
        return Err(NamespaceError::MissingMappings);
    }
    for (name, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let text: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        fs::write(&path, text).map_err(|source| NamespaceError::WriteMap { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn plan_splits_new_joined_pid_and_cgroup() {
        let plan = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Cgroup, None),
        ])
        .unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(plan.new_cgroup);
        assert_eq!(
            plan.joins[0].0,
            CloneFlags::CLONE_NEWUSER,
            "user namespace joined first"
        );
        assert_eq!(plan.joins[1].1, PathBuf::from("/run/netns/x"));
    }

    #[test]
    fn duplicates_and_missing_mount_namespace_are_errors() {
        let dup = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Mount, None),
        ]);
        assert_eq!(
            dup.unwrap_err().to_string(),
            "linux.namespaces: mnt is listed twice"
        );
        let none = NamespacePlan::from_spec(&[ns(LinuxNamespaceType::Pid, None)]);
        assert!(matches!(none, Err(NamespaceError::NoMountNamespace)));
    }
}
