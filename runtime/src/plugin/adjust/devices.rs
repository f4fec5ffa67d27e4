//! `devices`: device nodes in `linux.devices`, each with its rule in
//! `linux.resources.devices` (runtime-spec `config-linux.md`, "Devices" and "Device
//! allowlist").
//!
//! Rules: the plugin needs the grant `devices = true` in `[plugin.grants]` (a device node
//! with its allow rule can hand the container any host device, a disk or `/dev/mem`; CDI
//! devices come from the operator's spec files and need no grant); at most
//! [`MAX_LIST`](super::MAX_LIST) devices; `path` absolute without `.`/`..`,
//! strictly under `/dev`, not one of the devices every container gets (`/dev/null`,
//! `zero`, `full`, `random`, `urandom`, `tty`, `console`, `ptmx`, `/dev/pts/...`) and not
//! already in `linux.devices`; `type` one of `c`, `b`, `u` (unbuffered char) or `p`
//! (FIFO); for `c`/`b`/`u` a major in 0..=4095 and a minor in 0..=1048575 (Linux's 12 and
//! 20 bits of `dev_t`), for `p` both 0; `file-mode` only permission bits (≤ 0o777); `uid`
//! and `gid` any; `permissions` a combination of `r`, `w`, `m`, each at most once (empty means
//! `rwm`); `m` is always added to the rule, since rwasm makes the node inside the
//! container's device cgroup and mknod needs it.
//!
//! Applying appends the node to `linux.devices` and, for `c`/`u`/`b`, an allow rule
//! `TYPE MAJOR:MINOR PERMISSIONS` (`u` is a char device to the cgroup) to
//! `linux.resources.devices`; when that list was absent or empty it starts with the deny-all
//! rule, so that adding a device never opens the container to every other device.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Spec};

use super::{DeviceRequest, Edit, MAX_LIST, PluginError};
use crate::plugin::manifest::{clean_absolute, normal_absolute};

/// Largest major number (12 bits of Linux's `dev_t`).
const MAX_MAJOR: i64 = (1 << 12) - 1;
/// Largest minor number (20 bits of Linux's `dev_t`).
const MAX_MINOR: i64 = (1 << 20) - 1;

/// Paths the runtime creates itself (runtime-spec "Default Devices", `/dev/ptmx` and
/// `/dev/pts`); a plugin may not shadow them.
const RESERVED: [&str; 8] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
];

/// Applies one plugin's `devices`.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    devices: Vec<DeviceRequest>,
) -> Result<(), PluginError> {
    if devices.is_empty() {
        return Ok(());
    }
    if !e.rules.plugin.grant_devices {
        return Err(e.invalid(
            "devices[0]",
            "adding device nodes needs the grant `devices = true` in [plugin.grants]",
        ));
    }
    e.count("devices", devices.len(), MAX_LIST)?;
    for (i, d) in devices.into_iter().enumerate() {
        add(e, spec, &format!("devices[{i}]"), d)?;
    }
    Ok(())
}

/// Checks one device request named `entry` (e.g. `devices[0]`) and adds it.
pub(super) fn add(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    entry: &str,
    d: DeviceRequest,
) -> Result<(), PluginError> {
    let f = |name: &str| format!("{entry}.{name}");
    e.text(|| f("path"), &d.path)?;
    e.text(|| f("type"), &d.typ)?;
    e.text(|| f("permissions"), &d.permissions)?;
    let path = Path::new(&d.path);
    if !clean_absolute(path) || !path.starts_with("/dev") || path == Path::new("/dev") {
        return Err(e.invalid(
            f("path"),
            format!(
                "`{}` is not an absolute path under /dev without `.` and `..`",
                d.path
            ),
        ));
    }
    // `/dev//null` and `/dev/null/` name /dev/null too.
    let normal = normal_absolute(path);
    let mut d = d;
    d.path = normal;
    let path = Path::new(&d.path);
    if RESERVED.contains(&d.path.as_str()) || path.starts_with("/dev/pts") {
        return Err(e.invalid(
            f("path"),
            format!(
                "`{}` is one of the devices the runtime creates itself",
                d.path
            ),
        ));
    }
    let typ = match d.typ.as_str() {
        "c" => LinuxDeviceType::C,
        "b" => LinuxDeviceType::B,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        t => {
            return Err(e.invalid(
                f("type"),
                format!("`{t}` is not a device type: use c, b, u or p"),
            ));
        }
    };
    if typ == LinuxDeviceType::P {
        if d.major != 0 || d.minor != 0 {
            return Err(e.invalid(f("major"), "a FIFO (type p) takes major and minor 0"));
        }
    } else {
        if !(0..=MAX_MAJOR).contains(&d.major) {
            return Err(e.invalid(
                f("major"),
                format!("{} is out of range 0..={MAX_MAJOR}", d.major),
            ));
        }
        if !(0..=MAX_MINOR).contains(&d.minor) {
            return Err(e.invalid(
                f("minor"),
                format!("{} is out of range 0..={MAX_MINOR}", d.minor),
            ));
        }
    }
    if let Some(mode) = d.file_mode
        && mode > 0o777
    {
        return Err(e.invalid(
            f("file-mode"),
            format!("{mode:#o} has bits other than the permission bits 0o777"),
        ));
    }
    let access = if d.permissions.is_empty() {
        "rwm".to_string()
    } else {
        d.permissions.clone()
    };
    let mut seen = String::new();
    for c in access.chars() {
        if !"rwm".contains(c) || seen.contains(c) {
            return Err(e.invalid(
                f("permissions"),
                format!(
                    "`{}` is not a combination of r, w and m, each at most once",
                    d.permissions
                ),
            ));
        }
        seen.push(c);
    }
    // rwasm makes the node inside the container's device cgroup: mknod needs `m`.
    let access = if seen.contains('m') {
        seen
    } else {
        format!("{seen}m")
    };
    e.claim(format!("linux.devices {}", d.path), &f("path"), false)?;
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .is_some_and(|list| list.iter().any(|x| x.path() == path))
    {
        return Err(e.invalid(
            f("path"),
            format!("`{}` is already in linux.devices", d.path),
        ));
    }

    let mut node = LinuxDevice::default();
    node.set_path(PathBuf::from(&d.path));
    node.set_typ(typ);
    node.set_major(d.major);
    node.set_minor(d.minor);
    node.set_file_mode(d.file_mode);
    node.set_uid(d.uid);
    node.set_gid(d.gid);
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut nodes = linux.devices().clone().unwrap_or_default();
    nodes.push(node);
    linux.set_devices(Some(nodes));
    let rule_type = match typ {
        LinuxDeviceType::B => Some(LinuxDeviceType::B),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(LinuxDeviceType::C),
        _ => None,
    };
    if let Some(rule_type) = rule_type {
        let mut resources = linux.resources().clone().unwrap_or_default();
        let mut rules = resources.devices().clone().unwrap_or_default();
        if rules.is_empty() {
            let mut deny_all = LinuxDeviceCgroup::default();
            deny_all.set_allow(false);
            deny_all.set_access(Some("rwm".to_string()));
            rules.push(deny_all);
        }
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(rule_type));
        rule.set_major(Some(d.major));
        rule.set_minor(Some(d.minor));
        rule.set_access(Some(access.clone()));
        rules.push(rule);
        resources.set_devices(Some(rules));
        linux.set_resources(Some(resources));
    }
    e.did(format!(
        "added device {} ({} {}:{}, {access})",
        d.path, d.typ, d.major, d.minor
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{field, plugin, run};
    use super::super::{Adjustment, DeviceRequest};
    use oci_spec::runtime::{LinuxDeviceType, Spec};

    fn dev(path: &str, typ: &str, major: i64, minor: i64, perms: &str) -> Adjustment {
        Adjustment {
            devices: vec![DeviceRequest {
                path: path.into(),
                typ: typ.into(),
                major,
                minor,
                file_mode: Some(0o666),
                uid: None,
                gid: None,
                permissions: perms.into(),
            }],
            ..Adjustment::default()
        }
    }

    /// A plugin granted `devices = true`.
    fn granted() -> crate::plugin::manifest::PluginSpec {
        let mut p = plugin("a", vec![]);
        p.grant_devices = true;
        p
    }

    #[test]
    fn devices_need_the_grant() {
        let err = run(
            &plugin("a", vec![]),
            dev("/dev/mymem", "c", 1, 1, "rw"),
            &Spec::default(),
        );
        assert_eq!(field(err.unwrap_err()), "devices[0]");
    }

    #[test]
    fn a_device_adds_its_node_and_an_allow_rule_after_deny_all() {
        let out = run(
            &granted(),
            dev("/dev/myzero", "c", 1, 5, "rwm"),
            &Spec::default(),
        )
        .unwrap();
        let linux = out.spec.linux().clone().unwrap();
        let node = &linux.devices().clone().unwrap()[0];
        assert_eq!(
            (node.typ(), node.major(), node.minor()),
            (LinuxDeviceType::C, 1, 5)
        );
        let rules = linux
            .resources()
            .clone()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), 2);
        assert!(!rules[0].allow());
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
        assert!(rules[1].allow());
        assert_eq!(
            (rules[1].typ(), rules[1].major(), rules[1].minor()),
            (Some(LinuxDeviceType::C), Some(1), Some(5))
        );
        assert_eq!(rules[1].access().as_deref(), Some("rwm"));
    }

    #[test]
    fn rules() {
        let p = granted();
        let s = Spec::default();
        let bad = |a: Adjustment| field(run(&p, a, &s).unwrap_err());
        assert_eq!(bad(dev("/tmp/x", "c", 1, 5, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev", "c", 1, 5, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev/../etc/x", "c", 1, 5, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev/null", "c", 8, 0, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev//null", "c", 1, 1, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev/null/", "c", 1, 1, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev/pts/9", "c", 136, 9, "")), "devices[0].path");
        assert_eq!(bad(dev("/dev/x", "a", 1, 5, "")), "devices[0].type");
        assert_eq!(bad(dev("/dev/x", "c", -1, 5, "")), "devices[0].major");
        assert_eq!(bad(dev("/dev/x", "c", 4096, 5, "")), "devices[0].major");
        assert_eq!(bad(dev("/dev/x", "b", 8, 1 << 20, "")), "devices[0].minor");
        assert_eq!(bad(dev("/dev/x", "p", 1, 0, "")), "devices[0].major");
        assert_eq!(
            bad(dev("/dev/x", "c", 1, 5, "rx")),
            "devices[0].permissions"
        );
        assert_eq!(
            bad(dev("/dev/x", "c", 1, 5, "rr")),
            "devices[0].permissions"
        );
        let rw = run(&p, dev("/dev/x", "c", 1, 5, "rw"), &s).unwrap();
        let rules = rw
            .spec
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules[1].access().as_deref(), Some("rwm"), "m is added");
        let mut setuid = dev("/dev/x", "c", 1, 5, "");
        setuid.devices[0].file_mode = Some(0o4666);
        assert_eq!(bad(setuid), "devices[0].file-mode");
        let mut twice = dev("/dev/x", "c", 1, 5, "");
        twice.devices.push(twice.devices[0].clone());
        assert_eq!(bad(twice), "devices[1].path");
        let fifo = run(&p, dev("/dev/fifo", "p", 0, 0, ""), &s).unwrap();
        let rules = fifo
            .spec
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .and_then(|r| r.devices().clone());
        assert!(
            rules.unwrap_or_default().is_empty(),
            "a FIFO needs no cgroup rule"
        );
    }
}
