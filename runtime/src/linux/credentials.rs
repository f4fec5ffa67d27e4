//! The user process's identity and limits: rlimits, user and groups, capabilities,
//! `noNewPrivileges`, umask, OOM score (runtime-spec `config.md` "Process",
//! `config-linux.md`; capabilities(7), setrlimit(2)).

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, Process};

/// A credential or limit the kernel refused; names the spec field.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A `process.rlimits[].type` that is not one of the Linux `RLIMIT_*` names.
    #[error("process.rlimits: unknown rlimit {0}")]
    UnknownRlimit(String),
    /// `setrlimit(2)` refused a limit (e.g. raising a hard limit without CAP_SYS_RESOURCE).
    #[error("process.rlimits: cannot set {name} to soft {soft} hard {hard}")]
    Rlimit {
        /// The rlimit, e.g. `RLIMIT_NOFILE`.
        name: String,
        /// The soft limit, in the rlimit's own unit (bytes, seconds, a count).
        soft: u64,
        /// The hard limit, in the same unit.
        hard: u64,
        /// The errno from `setrlimit(2)`.
        #[source]
        source: nix::Error,
    },
    /// `setresgid(2)`, `setresuid(2)` or `PR_SET_KEEPCAPS` failed while switching to `process.user`.
    #[error("process.user: cannot switch to uid {uid} gid {gid}")]
    User {
        /// `process.user.uid`, in the container's user namespace.
        uid: u32,
        /// `process.user.gid`, in the container's user namespace.
        gid: u32,
        /// The errno of the failing call.
        #[source]
        source: nix::Error,
    },
    /// `setgroups(2)` refused `process.user.additionalGids` (carried, with the errno).
    #[error("process.user.additionalGids: cannot set groups {0:?}")]
    Groups(Vec<u32>, #[source] nix::Error),
    /// Dropping, setting or raising a capability set failed (capabilities(7)).
    #[error("process.capabilities.{set}: cannot set {caps}")]
    Caps {
        /// The set: `bounding`, `effective`, `permitted`, `inheritable` or `ambient`.
        set: &'static str,
        /// The capabilities involved, comma-separated (empty when clearing ambient).
        caps: String,
        /// The error from the caps crate.
        #[source]
        source: caps::errors::CapsError,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed for `process.noNewPrivileges: true`.
    #[error("process.noNewPrivileges: prctl failed")]
    NoNewPrivs(#[source] nix::Error),
    /// Writing `process.oomScoreAdj` to `/proc/self/oom_score_adj` failed.
    #[error("process.oomScoreAdj: cannot write /proc/self/oom_score_adj")]
    OomScore(#[source] std::io::Error),
}

fn spec_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The `setrlimit(2)` resource of a runtime-spec rlimit name (`RLIMIT_NOFILE`).
pub(crate) fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// Apply `process.rlimits` (soft and hard, in the rlimit's own unit).
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), CredentialError> {
    for r in rlimits {
        let name = spec_name(&r.typ());
        let res = resource(&name).ok_or_else(|| CredentialError::UnknownRlimit(name.clone()))?;
        setrlimit(res, r.soft(), r.hard()).map_err(|source| CredentialError::Rlimit {
            name,
            soft: r.soft(),
            hard: r.hard(),
            source,
        })?;
    }
    Ok(())
}

/// Write `process.oomScoreAdj` for this process.
pub fn set_oom_score_adj(adj: i32) -> Result<(), CredentialError> {
    std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(CredentialError::OomScore)
}

fn to_caps(
    set: &Option<HashSet<oci_spec::runtime::Capability>>,
    known: &CapsHashSet,
) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| Capability::from_str(&spec_name(c)).ok())
        // A capability this kernel does not know is ignored, as runc does.
        .filter(|c| known.contains(c))
        .collect()
}

fn names(set: &CapsHashSet) -> String {
    let mut v: Vec<String> = set.iter().map(|c| c.to_string()).collect();
    v.sort();
    v.join(",")
}

/// Switch to `process.user` and set the capability sets, in the order capabilities(7)
/// requires: drop the bounding set while still privileged, keep the permitted set across
/// setuid, then set permitted, inheritable, effective and ambient.
pub fn switch_user_and_caps(process: &Process) -> Result<(), CredentialError> {
    let user = process.user();
    let (uid, gid) = (user.uid(), user.gid());
    let known = caps::runtime::thread_all_supported();
    let wanted = process.capabilities().as_ref();
    let empty = LinuxCapabilities::default();
    let c = wanted.unwrap_or(&empty);
    let bounding = to_caps(c.bounding(), &known);
    let capset = |set, name, value: &CapsHashSet| {
        caps::set(None, set, value).map_err(|source| CredentialError::Caps {
            set: name,
            caps: names(value),
            source,
        })
    };

    if wanted.is_some() {
        for cap in known.difference(&bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|source| CredentialError::Caps {
                set: "bounding",
                caps: cap.to_string(),
                source,
            })?;
        }
    }
    let groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    let gids: Vec<Gid> = groups.iter().copied().map(Gid::from_raw).collect();
    setgroups(&gids).map_err(|e| CredentialError::Groups(groups.clone(), e))?;
    nix::sys::prctl::set_keepcaps(true).map_err(|source| CredentialError::User {
        uid,
        gid,
        source,
    })?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
        .map_err(|source| CredentialError::User { uid, gid, source })?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
        .map_err(|source| CredentialError::User { uid, gid, source })?;
    nix::sys::prctl::set_keepcaps(false).map_err(|source| CredentialError::User {
        uid,
        gid,
        source,
    })?;

    if wanted.is_some() {
        // The kernel keeps effective ⊆ permitted at every capset: shrink effective first.
        capset(
            CapSet::Effective,
            "effective",
            &to_caps(c.effective(), &known),
        )?;
        capset(
            CapSet::Permitted,
            "permitted",
            &to_caps(c.permitted(), &known),
        )?;
        capset(
            CapSet::Inheritable,
            "inheritable",
            &to_caps(c.inheritable(), &known),
        )?;
        // The kernel raises an ambient capability only if it is both permitted and
        // inheritable; runc ignores the others, and so do we.
        let permitted = to_caps(c.permitted(), &known);
        let inheritable = to_caps(c.inheritable(), &known);
        let ambient: CapsHashSet = to_caps(c.ambient(), &known)
            .into_iter()
            .filter(|cap| permitted.contains(cap) && inheritable.contains(cap))
            .collect();
        caps::clear(None, CapSet::Ambient).map_err(|source| CredentialError::Caps {
            set: "ambient",
            caps: String::new(),
            source,
        })?;
        for cap in &ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|source| CredentialError::Caps {
                set: "ambient",
                caps: cap.to_string(),
                source,
            })?;
        }
    }
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(CredentialError::NoNewPrivs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_names_follow_the_spec_spelling() {
        let r: PosixRlimit =
            serde_json::from_str(r#"{"type":"RLIMIT_NOFILE","soft":1024,"hard":2048}"#).unwrap();
        assert_eq!(spec_name(&r.typ()), "RLIMIT_NOFILE");
        assert!(resource("RLIMIT_NOFILE").is_some());
        assert!(resource("RLIMIT_BOGUS").is_none());
    }

    #[test]
    fn capability_names_map_to_the_kernel_set() {
        let set: HashSet<oci_spec::runtime::Capability> =
            serde_json::from_str(r#"["CAP_CHOWN","CAP_NET_RAW"]"#).unwrap();
        let got = to_caps(&Some(set), &caps::all());
        assert_eq!(names(&got), "CAP_CHOWN,CAP_NET_RAW");
    }
}
