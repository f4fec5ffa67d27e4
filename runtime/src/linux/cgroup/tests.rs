//! Managers on fake cgroup trees in temp directories (any host, no root).

use std::fs as stdfs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::fs::fake::{self, Kind};
use super::*;

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    stdfs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mountinfo: PathBuf,
    proc_cgroup: PathBuf,
}

impl Tree {
    fn manager(&self, cgroups_path: Option<&str>, id: &str) -> Result<Manager, CgroupError> {
        Manager::for_container_in(
            &self.root,
            &self.mountinfo,
            &self.proc_cgroup,
            cgroups_path,
            id,
        )
    }
}

const UNLIMITED: &str = "9223372036854771712";

/// This project's host: separate v1 mounts (cpu and cpuacct apart), name=systemd, a
/// cgroup2 mount holding only hugetlb, the caller's memory cgroup nested, no blkio.weight.
fn fake_v1(with_blkio_weight: bool) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cgroup");
    let hier: &[(&str, &str)] = &[
        ("cpu", "cpu"),
        ("cpuacct", "cpuacct"),
        ("cpuset", "cpuset"),
        ("memory", "memory"),
        ("devices", "devices"),
        ("freezer", "freezer"),
        ("blkio", "blkio"),
        ("pids", "pids"),
        ("systemd", "xattr,name=systemd"),
    ];
    let mut mi = String::from("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
    mi += &format!(
        "31 23 0:28 / {} rw - tmpfs tmpfs rw,mode=755\n",
        root.display()
    );
    for (i, (dir, opts)) in hier.iter().enumerate() {
        let mnt = root.join(dir);
        stdfs::create_dir_all(&mnt).unwrap();
        stdfs::write(mnt.join("cgroup.procs"), "1\n").unwrap();
        mi += &format!(
            "{} 31 0:{} / {} rw,relatime - cgroup cgroup rw,{opts}\n",
            32 + i,
            29 + i,
            mnt.display()
        );
    }
    mi += &format!(
        "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
        root.join("unified").display()
    );
    stdfs::create_dir_all(root.join("unified")).unwrap();
    stdfs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    stdfs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    stdfs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    stdfs::create_dir_all(root.join("memory/process_api/6d9b")).unwrap();

    let mut blkio = vec![
        ("blkio.throttle.read_bps_device", ""),
        ("blkio.throttle.write_bps_device", ""),
        ("blkio.throttle.read_iops_device", ""),
        ("blkio.throttle.write_iops_device", ""),
    ];
    if with_blkio_weight {
        blkio.push(("blkio.weight", "100"));
    }
    let kinds: Vec<(&str, Vec<(&'static str, &'static str)>)> = vec![
        (
            "cpu",
            vec![
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "-1"),
            ],
        ),
        ("cpuset", vec![("cpuset.cpus", ""), ("cpuset.mems", "")]),
        (
            "memory",
            vec![
                ("memory.limit_in_bytes", UNLIMITED),
                ("memory.memsw.limit_in_bytes", UNLIMITED),
                ("memory.soft_limit_in_bytes", UNLIMITED),
                ("memory.swappiness", "60"),
            ],
        ),
        ("freezer", vec![("freezer.state", "THAWED")]),
        (
            "devices",
            vec![
                ("devices.allow", ""),
                ("devices.deny", ""),
                ("devices.list", "a *:* rwm"),
            ],
        ),
        ("blkio", blkio),
        ("pids", vec![("pids.max", "max")]),
    ];
    for (dir, _) in hier {
        let files = kinds
            .iter()
            .find(|(d, _)| d == dir)
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        fake::register(&root.join(dir), Kind::V1(files));
    }
    let mountinfo = tmp.path().join("mountinfo");
    stdfs::write(&mountinfo, mi).unwrap();
    let proc_cgroup = tmp.path().join("proc-cgroup");
    stdfs::write(
        &proc_cgroup,
        "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
         4:memory:/process_api/6d9b\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n",
    )
    .unwrap();
    Tree {
        _tmp: tmp,
        root,
        mountinfo,
        proc_cgroup,
    }
}

/// A v2 host: the caller in /user.slice/session-1.scope; `offered` controllers at the root.
fn fake_v2(offered: &str, io_files: bool) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cgroup");
    stdfs::create_dir_all(root.join("user.slice/session-1.scope")).unwrap();
    stdfs::write(root.join("cgroup.controllers"), offered).unwrap();
    stdfs::write(root.join("cgroup.subtree_control"), "").unwrap();
    stdfs::write(root.join("user.slice/cgroup.controllers"), offered).unwrap();
    stdfs::write(root.join("user.slice/cgroup.subtree_control"), "").unwrap();
    let mut io = vec![];
    if io_files {
        io = vec![("io.weight", "default 100"), ("io.max", "")];
    }
    fake::register(
        &root,
        Kind::V2(vec![
            ("cpuset", vec![("cpuset.cpus", ""), ("cpuset.mems", "")]),
            (
                "cpu",
                vec![("cpu.weight", "100"), ("cpu.max", "max 100000")],
            ),
            (
                "memory",
                vec![
                    ("memory.max", "max"),
                    ("memory.low", "0"),
                    ("memory.swap.max", "max"),
                ],
            ),
            ("pids", vec![("pids.max", "max")]),
            ("io", io),
        ]),
    );
    let mountinfo = tmp.path().join("mountinfo");
    stdfs::write(
        &mountinfo,
        format!(
            "30 1 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        ),
    )
    .unwrap();
    let proc_cgroup = tmp.path().join("proc-cgroup");
    stdfs::write(&proc_cgroup, "0::/user.slice/session-1.scope\n").unwrap();
    Tree {
        _tmp: tmp,
        root,
        mountinfo,
        proc_cgroup,
    }
}

fn full_v1() -> LinuxResources {
    res(json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 300}]}
    }))
}

#[test]
fn v1_default_path_nests_under_own_cgroup_per_hierarchy() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    assert!(matches!(m, Manager::V1(_)), "hybrid is managed as v1");
    assert_eq!(
        m.path("memory").unwrap(),
        t.root.join("memory/process_api/6d9b/rwasm/c1")
    );
    assert_eq!(m.path("cpu").unwrap(), t.root.join("cpu/rwasm/c1"));
    assert_eq!(m.path("cpuacct").unwrap(), t.root.join("cpuacct/rwasm/c1"));
    assert_eq!(m.path("systemd").unwrap(), t.root.join("systemd/rwasm/c1"));
    assert_eq!(
        m.path("name=systemd").unwrap(),
        t.root.join("systemd/rwasm/c1")
    );
    assert_eq!(
        m.path("hugetlb"),
        None,
        "the unified mount of a hybrid host is not joined"
    );
}

#[test]
fn v1_absolute_and_relative_cgroups_paths() {
    let t = fake_v1(false);
    let m = t.manager(Some("/kubepods/pod1/c1"), "c1").unwrap();
    assert_eq!(
        m.path("memory").unwrap(),
        t.root.join("memory/kubepods/pod1/c1")
    );
    assert_eq!(
        m.path("pids").unwrap(),
        t.root.join("pids/kubepods/pod1/c1")
    );
    let m = t.manager(Some("mine/./c1/"), "c1").unwrap();
    assert_eq!(
        m.path("memory").unwrap(),
        t.root.join("memory/process_api/6d9b/mine/c1")
    );
    assert_eq!(m.path("cpu").unwrap(), t.root.join("cpu/mine/c1"));
    let m = t.manager(Some(""), "c1").unwrap();
    assert_eq!(
        m.path("cpu").unwrap(),
        t.root.join("cpu/rwasm/c1"),
        "empty means unset"
    );
}

#[test]
fn bad_cgroups_paths_and_ids_are_refused() {
    let t = fake_v1(false);
    for p in ["../escape", "/a/../../b", "system.slice:docker:abc", "/"] {
        let e = t.manager(Some(p), "c1").unwrap_err();
        assert!(
            matches!(e, CgroupError::InvalidCgroupsPath { .. }),
            "{p}: {e}"
        );
        assert!(
            e.to_string().starts_with("invalid linux.cgroupsPath"),
            "{e}"
        );
    }
    for id in ["", ".", "..", "a/b"] {
        let e = t.manager(None, id).unwrap_err();
        assert!(matches!(e, CgroupError::InvalidId { .. }), "{id:?}: {e}");
    }
}

#[test]
fn v1_missing_own_cgroup_line_names_the_file() {
    let t = fake_v1(false);
    stdfs::write(&t.proc_cgroup, "1:cpu:/\n0::/\n").unwrap();
    let e = t.manager(None, "c1").unwrap_err();
    assert!(matches!(e, CgroupError::OwnCgroupMissing { .. }), "{e}");
    assert!(e.to_string().contains("proc-cgroup"), "{e}");
    // An absolute path does not need it.
    t.manager(Some("/x"), "c1").unwrap();
}

#[test]
fn v1_create_fills_cpuset_and_apply_writes_every_file() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    for d in [
        "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd",
    ] {
        assert!(t.root.join(d).join("rwasm/c1").is_dir(), "{d}");
    }
    assert!(t.root.join("memory/process_api/6d9b/rwasm/c1").is_dir());
    for level in ["cpuset/rwasm", "cpuset/rwasm/c1"] {
        assert_eq!(
            read(t.root.join(level).join("cpuset.cpus")),
            "0-1",
            "{level}"
        );
        assert_eq!(read(t.root.join(level).join("cpuset.mems")), "0", "{level}");
    }
    m.apply(&full_v1()).unwrap();
    let mem = m.path("memory").unwrap();
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "134217728");
    assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), "33554432");
    let cpu = m.path("cpu").unwrap();
    assert_eq!(read(cpu.join("cpu.shares")), "512");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(m.path("cpuset").unwrap().join("cpuset.cpus")), "0");
    assert_eq!(read(m.path("pids").unwrap().join("pids.max")), "20");
    let blkio = m.path("blkio").unwrap();
    assert_eq!(
        read(blkio.join("blkio.throttle.read_bps_device")),
        "254:0 1048576"
    );
    assert_eq!(
        read(blkio.join("blkio.throttle.write_iops_device")),
        "254:0 300"
    );

    // An update raising both limits (the file now holds 64 MiB: memory+swap goes first).
    m.apply(&res(
        json!({"memory": {"limit": 268435456, "swap": 536870912}}),
    ))
    .unwrap();
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "268435456");
    assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "536870912");
}

/// The writes made so far to files of `dir`, as (file name, value).
fn writes_in(dir: &Path) -> Vec<(String, String)> {
    fake::writes()
        .into_iter()
        .filter(|(p, _)| p.parent() == Some(dir))
        .map(|(p, v)| (p.file_name().unwrap().to_string_lossy().into_owned(), v))
        .collect()
}

fn device_list() -> LinuxResources {
    res(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 254, "minor": 0, "access": "r"},
        {"allow": true, "type": "c", "major": 10, "access": "rwm"}
    ]}))
}

#[test]
fn v1_apply_writes_the_device_allowlist_in_order() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let dir = m.path("devices").unwrap();
    assert_eq!(dir, t.root.join("devices/rwasm/c1"));
    m.apply(&device_list()).unwrap();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(f, l)| ((*f).to_owned(), (*l).to_owned()))
            .collect()
    };
    assert_eq!(
        writes_in(&dir),
        pairs(&[
            ("devices.deny", "a *:* rwm"),
            ("devices.allow", "b 254:0 r"),
            ("devices.allow", "c 10:* rwm"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "c 1:5 rwm"),
            ("devices.allow", "c 1:7 rwm"),
            ("devices.allow", "c 1:8 rwm"),
            ("devices.allow", "c 1:9 rwm"),
            ("devices.allow", "c 5:0 rwm"),
            ("devices.allow", "c 136:* rwm"),
            ("devices.allow", "c 5:2 rwm"),
        ])
    );
    // No list: the devices cgroup is left as it is.
    let before = fake::writes().len();
    m.apply(&res(json!({"pids": {"limit": 5}}))).unwrap();
    m.apply(&res(json!({"devices": []}))).unwrap();
    let after = fake::writes();
    assert_eq!(after.len(), before + 1);
    assert!(after[before].0.ends_with("pids.max"));
}

#[test]
fn v1_device_list_without_a_devices_hierarchy_is_refused() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    // The same container on a host whose v1 layout has no devices hierarchy.
    let mut h = serde_json::to_value(m.handle()).unwrap();
    h["hierarchies"]
        .as_array_mut()
        .unwrap()
        .retain(|d| d["controllers"] != json!(["devices"]));
    let m = Manager::from_handle(&serde_json::from_value(h).unwrap());
    assert_eq!(m.path("devices"), None);
    let e = m.apply(&device_list()).unwrap_err();
    let CgroupError::ControllerUnavailable {
        field, controller, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (*field, controller.as_str()),
        ("linux.resources.devices", "devices")
    );
    m.apply(&res(json!({"pids": {"limit": 5}}))).unwrap();
}

#[test]
fn v1_invalid_device_entry_is_refused_before_any_write() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let before = fake::writes().len();
    let e = m
        .apply(&res(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "a", "major": 8, "access": "rwm"}
        ]})))
        .unwrap_err();
    assert!(
        matches!(e, CgroupError::InvalidDeviceRule { index: 2, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("invalid linux.resources.devices[2] "),
        "{e}"
    );
    assert_eq!(fake::writes().len(), before, "nothing written");
}

#[test]
fn v1_missing_file_is_a_clear_error_naming_the_field() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    assert!(!m.supports("blkio", "blkio.weight"));
    assert!(m.supports("blkio", "blkio.throttle.read_bps_device"));
    assert!(m.supports("memory", "memory.memsw.limit_in_bytes"));
    assert!(!m.supports("hugetlb", "hugetlb.2MB.limit_in_bytes"));
    let e = m
        .apply(&res(json!({"blockIO": {"weight": 500}})))
        .unwrap_err();
    let CgroupError::FileUnavailable { field, path } = &e else {
        panic!("{e}")
    };
    assert_eq!(*field, "linux.resources.blockIO.weight");
    assert_eq!(*path, t.root.join("blkio/rwasm/c1/blkio.weight"));
    assert!(e.to_string().contains("this host lacks"), "{e}");

    // The same request works where the file exists.
    let t = fake_v1(true);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    assert!(m.supports("blkio", "blkio.weight"));
    m.apply(&res(json!({"blockIO": {"weight": 500}}))).unwrap();
    assert_eq!(read(m.path("blkio").unwrap().join("blkio.weight")), "500");
}

#[test]
fn v1_supports_before_create_looks_at_ancestors() {
    let t = fake_v1(false);
    stdfs::write(t.root.join("memory/memory.memsw.limit_in_bytes"), UNLIMITED).unwrap();
    let m = t.manager(Some("/deep/er/c1"), "c1").unwrap();
    assert!(m.supports("memory", "memory.memsw.limit_in_bytes"));
    assert!(!m.supports("blkio", "blkio.weight"));
}

#[test]
fn invalid_resource_is_refused_before_any_write() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let e = m
        .apply(&res(json!({"pids": {"limit": 5}, "cpu": {"period": 5}})))
        .unwrap_err();
    assert!(e.to_string().contains("linux.resources.cpu.period"), "{e}");
    assert_eq!(
        read(m.path("pids").unwrap().join("pids.max")),
        "max",
        "nothing written"
    );
}

#[test]
fn apply_before_create_names_the_file() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    let e = m.apply(&res(json!({"pids": {"limit": 5}}))).unwrap_err();
    assert!(matches!(e, CgroupError::Apply { .. }), "{e}");
    assert!(e.to_string().contains("pids/rwasm/c1/pids.max"), "{e}");
    let e = m.add_task(4242).unwrap_err();
    assert!(
        e.to_string().starts_with("failed to add pid 4242 to "),
        "{e}"
    );
    assert!(e.to_string().ends_with("cgroup.procs"), "{e}");
}

#[test]
fn v1_add_task_pids_and_destroy() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let me = i32::try_from(std::process::id()).unwrap();
    m.add_task(me).unwrap();
    assert_eq!(
        read(m.path("freezer").unwrap().join("cgroup.procs")),
        me.to_string()
    );
    assert_eq!(m.pids().unwrap(), [me]);

    // destroy never kills its caller: the cgroup stays populated and the error says so.
    let Manager::V1(v1) = &m else { unreachable!() };
    let e = v1.destroy_within(Duration::from_millis(50)).unwrap_err();
    let CgroupError::NotEmpty { pids, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(*pids, [me]);
    assert_eq!(
        read(m.path("freezer").unwrap().join("freezer.state")),
        "THAWED",
        "thawed again"
    );

    // A sub-cgroup the container made, then an empty cgroup: everything of ours goes.
    for d in v1.dirs() {
        stdfs::write(d.dir.join("cgroup.procs"), "").unwrap();
    }
    fs::mkdir(&m.path("memory").unwrap().join("inner")).unwrap();
    m.destroy().unwrap();
    for d in [
        "cpu",
        "cpuset",
        "freezer",
        "systemd",
        "memory/process_api/6d9b",
    ] {
        assert!(!t.root.join(d).join("rwasm/c1").exists(), "{d}");
        assert!(
            t.root.join(d).join("rwasm").is_dir(),
            "shared parent {d}/rwasm stays"
        );
    }
    assert!(t.root.join("memory/process_api/6d9b").is_dir());
    m.destroy().unwrap();
    t.manager(None, "never-created").unwrap().destroy().unwrap();
}

#[test]
fn v1_destroy_freezes_kills_and_thaws() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    m.add_task(pid).unwrap();
    let Manager::V1(v1) = &m else { unreachable!() };
    // A fake tree keeps listing the pid, so destroy ends in NotEmpty; the kill is real.
    let e = v1.destroy_within(Duration::from_millis(100)).unwrap_err();
    assert!(matches!(e, CgroupError::NotEmpty { .. }), "{e}");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    assert_eq!(
        read(m.path("freezer").unwrap().join("freezer.state")),
        "THAWED"
    );
}

#[test]
fn set_frozen_writes_the_freezer_files() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    m.set_frozen(true).unwrap();
    assert_eq!(
        read(m.path("freezer").unwrap().join("freezer.state")),
        "FROZEN"
    );
    m.set_frozen(false).unwrap();
    assert_eq!(
        read(m.path("freezer").unwrap().join("freezer.state")),
        "THAWED"
    );

    let t = fake_v2("cpu memory", true);
    let m = t.manager(None, "c2").unwrap();
    m.create().unwrap();
    // The kernel's interface files exist in every v2 cgroup; the fake tree needs them made.
    let dir = m.path("memory").unwrap();
    stdfs::write(dir.join("cgroup.freeze"), "0").unwrap();
    m.set_frozen(true).unwrap();
    assert_eq!(read(m.path("memory").unwrap().join("cgroup.freeze")), "1");
    m.set_frozen(false).unwrap();
    assert_eq!(read(m.path("memory").unwrap().join("cgroup.freeze")), "0");
}

#[test]
fn handle_round_trips_through_json() {
    let t = fake_v1(false);
    let m = t.manager(None, "c1").unwrap();
    let json = serde_json::to_string(&m.handle()).unwrap();
    assert!(
        json.starts_with(r#"{"version":"v1","hierarchies":[{"controllers":["cpu"]"#),
        "{json}"
    );
    let back: CgroupHandle = serde_json::from_str(&json).unwrap();
    assert_eq!(Manager::from_handle(&back), m);

    let t = fake_v2("cpu memory", true);
    let m = t.manager(None, "c1").unwrap();
    let json = serde_json::to_string(&m.handle()).unwrap();
    assert!(
        json.starts_with(r#"{"version":"v2","mount_point":"#),
        "{json}"
    );
    let back: CgroupHandle = serde_json::from_str(&json).unwrap();
    assert_eq!(Manager::from_handle(&back), m);
    assert!(serde_json::from_str::<CgroupHandle>(r#"{"version":"v3"}"#).is_err());
}

#[test]
fn v2_default_path_is_below_the_parent_of_own_cgroup() {
    let t = fake_v2("cpuset cpu io memory pids", true);
    let m = t.manager(None, "c1").unwrap();
    assert!(matches!(m, Manager::V2(_)));
    assert_eq!(
        m.path("memory").unwrap(),
        t.root.join("user.slice/rwasm/c1")
    );
    assert_eq!(
        m.path("anything").unwrap(),
        t.root.join("user.slice/rwasm/c1")
    );
    let m = t.manager(Some("/machine/c1"), "c1").unwrap();
    assert_eq!(m.path("cpu").unwrap(), t.root.join("machine/c1"));
    stdfs::write(&t.proc_cgroup, "0::/\n").unwrap();
    let m = t.manager(None, "c1").unwrap();
    assert_eq!(m.path("cpu").unwrap(), t.root.join("rwasm/c1"));
}

#[test]
fn v2_create_enables_controllers_and_apply_writes_every_file() {
    let t = fake_v2("cpuset cpu io memory pids", true);
    // Before create, below the root: only the root's cgroup.controllers is known.
    let fresh = t.manager(Some("/new/c1"), "c1").unwrap();
    assert!(
        fresh.supports("memory", "memory.max"),
        "the root offers memory"
    );
    assert!(!fresh.supports("hugetlb", "hugetlb.2MB.max"));
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    for level in ["", "user.slice", "user.slice/rwasm"] {
        assert_eq!(
            read(t.root.join(level).join("cgroup.subtree_control")),
            "+cpuset +cpu +io +memory +pids",
            "{level}"
        );
    }
    let dir = t.root.join("user.slice/rwasm/c1");
    assert!(m.supports("memory", "memory.max"));
    m.apply(&full_v1()).unwrap();
    assert_eq!(read(dir.join("memory.max")), "67108864");
    assert_eq!(
        read(dir.join("memory.swap.max")),
        "67108864",
        "swap = memory+swap - memory"
    );
    assert_eq!(read(dir.join("memory.low")), "33554432");
    assert_eq!(read(dir.join("cpu.weight")), "20");
    assert_eq!(read(dir.join("cpu.max")), "50000 100000");
    assert_eq!(read(dir.join("cpuset.cpus")), "0");
    assert_eq!(read(dir.join("pids.max")), "20");
    assert_eq!(read(dir.join("io.max")), "254:0 rbps=1048576 wiops=300");
    m.apply(&res(json!({"blockIO": {"weight": 1000}}))).unwrap();
    assert_eq!(read(dir.join("io.weight")), "default 10000");
}

#[test]
fn v2_unavailable_controller_and_file_name_the_field() {
    let t = fake_v2("cpu memory pids", false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let e = m
        .apply(&res(json!({"blockIO": {"weight": 100}})))
        .unwrap_err();
    let CgroupError::ControllerUnavailable {
        field, controller, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (*field, controller.as_str()),
        ("linux.resources.blockIO.weight", "io")
    );
    assert!(e.to_string().contains("cgroup.controllers"), "{e}");

    let t = fake_v2("cpu io memory pids", false);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let e = m
        .apply(&res(json!({"blockIO": {"weight": 100}})))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::FileUnavailable {
                field: "linux.resources.blockIO.weight",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn v2_device_list_is_validated_but_not_written() {
    let t = fake_v2("cpu memory pids", true);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let before = fake::writes().len();
    // Warned about (not enforced on v2 yet), not an error: engines always send a list.
    m.apply(&device_list()).unwrap();
    assert_eq!(fake::writes().len(), before, "nothing written");
    assert!(!t.root.join("user.slice/rwasm/c1/devices.allow").exists());
    let e = m
        .apply(&res(
            json!({"devices": [{"allow": true, "type": "c", "major": 1, "access": "x"}]}),
        ))
        .unwrap_err();
    assert!(
        matches!(e, CgroupError::InvalidDeviceRule { index: 0, .. }),
        "{e}"
    );
}

#[test]
fn v2_destroy_uses_cgroup_kill_and_keeps_parents() {
    let t = fake_v2("cpu memory pids", true);
    let m = t.manager(None, "c1").unwrap();
    m.create().unwrap();
    let me = i32::try_from(std::process::id()).unwrap();
    m.add_task(me).unwrap();
    assert_eq!(m.pids().unwrap(), [me]);
    let Manager::V2(v2) = &m else { unreachable!() };
    let e = v2.destroy_within(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, CgroupError::NotEmpty { .. }), "{e}");
    let dir = t.root.join("user.slice/rwasm/c1");
    assert_eq!(read(dir.join("cgroup.kill")), "1");
    stdfs::write(dir.join("cgroup.procs"), "").unwrap();
    m.destroy().unwrap();
    assert!(!dir.exists());
    assert!(t.root.join("user.slice/rwasm").is_dir());
    m.destroy().unwrap();
}
