//! Network sysctls (`/proc/sys/net/...`, Documentation/networking/ip-sysctl.rst), in the
//! namespace rwasm runs in.

use std::fs;
use std::path::PathBuf;

use super::NetError;

/// The file of the sysctl `name` (`net.ipv4.ip_forward` is
/// `/proc/sys/net/ipv4/ip_forward`). Only `net.` names whose parts are non-empty and
/// free of `/` are accepted (an interface name may not hold `/` either).
pub fn path_of(name: &str) -> Result<PathBuf, NetError> {
    let bad = |reason| NetError::Invalid {
        what: "sysctl",
        value: name.to_string(),
        reason,
    };
    if !name.starts_with("net.") {
        return Err(bad("only net.* sysctls are network sysctls"));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains('/') || *p == "..")
    {
        return Err(bad("a part is empty or holds `/`"));
    }
    Ok(PathBuf::from("/proc/sys").join(parts.join("/")))
}

/// Writes `value` to the sysctl `name`.
pub fn set(name: &str, value: &str) -> Result<(), NetError> {
    let path = path_of(name)?;
    fs::write(&path, value).map_err(|source| NetError::File {
        what: "write",
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_proc_sys() {
        assert_eq!(
            path_of("net.ipv4.conf.rwasm0.route_localnet").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/rwasm0/route_localnet")
        );
        for bad in ["kernel.panic", "net..x", "net.ipv4/../x"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }
}
