//! Checks of a config.json that the kernel would not make, or would make too late:
//! each error names the field and the reason (runtime-spec `config.md`,
//! `config-linux.md`; runc's `libcontainer/configs/validate`).

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Largest uid or gid a container may use (runc: ids must be in 0-2147483647).
pub const MAX_ID: u32 = i32::MAX as u32;

/// IPC-namespaced sysctls (ipc_namespaces(7), runc's list).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Validate `spec`; the error text starts with the offending field.
pub fn check_spec(spec: &Spec) -> Result<(), String> {
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    if let Some(p) = spec.process() {
        let u = p.user();
        for (field, id) in [("uid", u.uid()), ("gid", u.gid())] {
            if id > MAX_ID {
                return Err(format!(
                    "process.user.{field}: {id} is out of range 0-{MAX_ID}"
                ));
            }
        }
        if let Some(g) = u.additional_gids().iter().flatten().find(|g| **g > MAX_ID) {
            return Err(format!(
                "process.user.additionalGids: {g} is out of range 0-{MAX_ID}"
            ));
        }
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if maps && !has(LinuxNamespaceType::User) {
        return Err(
            "linux.uidMappings: mappings are given but linux.namespaces has no user namespace"
                .into(),
        );
    }
    if new_user && !maps {
        return Err(
            "linux.uidMappings: a new user namespace needs uidMappings and gidMappings".into(),
        );
    }
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        let ok = if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            has(LinuxNamespaceType::Ipc)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            has(LinuxNamespaceType::Uts)
        } else if key.starts_with("net.") {
            namespaces
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
                || namespaces.iter().any(|n| {
                    n.typ() == LinuxNamespaceType::Network
                        && n.path()
                            .as_ref()
                            .is_some_and(|p| !same_file(p, "/proc/1/ns/net"))
                })
        } else {
            return Err(format!(
                "linux.sysctl: {key} is not namespaced: setting it would change the host"
            ));
        };
        if !ok {
            return Err(format!(
                "linux.sysctl: {key} needs its own kernel namespace, which linux.namespaces does not create"
            ));
        }
    }
    Ok(())
}

fn same_file(a: &std::path::Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(patch: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "ipc"}, {"type": "network"}]}
        });
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ids_past_i32_max_are_refused() {
        let s = spec(
            serde_json::json!({"process": {"user": {"uid": 4294967295u32, "gid": 0}, "args": ["true"], "cwd": "/"}}),
        );
        assert_eq!(
            check_spec(&s).unwrap_err(),
            "process.user.uid: 4294967295 is out of range 0-2147483647"
        );
    }

    #[test]
    fn only_namespaced_sysctls_pass() {
        let ok = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "ipc"}, {"type": "network"}],
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "10"}}}),
        );
        check_spec(&ok).unwrap();
        let host = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}], "sysctl": {"vm.swappiness": "61"}}}),
        );
        assert!(
            check_spec(&host)
                .unwrap_err()
                .contains("vm.swappiness is not namespaced")
        );
        let no_net = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}], "sysctl": {"net.ipv4.ip_forward": "1"}}}),
        );
        assert!(
            check_spec(&no_net)
                .unwrap_err()
                .starts_with("linux.sysctl: net.ipv4.ip_forward needs its own")
        );
    }

    #[test]
    fn mappings_and_user_namespaces_go_together() {
        let maps = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
        );
        assert!(check_spec(&maps).unwrap_err().contains("no user namespace"));
        let bare = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}}),
        );
        assert!(check_spec(&bare).unwrap_err().contains("needs uidMappings"));
    }
}
