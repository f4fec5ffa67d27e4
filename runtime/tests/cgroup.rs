//! Real-cgroup tests: they create cgroups on this host, so they need root and fail (never
//! skip) without it. Each test uses its own random container id; cargo-nextest runs each
//! in its own process.
//!
//! They read back what the kernel kept, so they check the v1 file names on a v1 or hybrid
//! host and the v2 names on a v2 host; this project's hosts are hybrid.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oci_spec::runtime::LinuxResources;
use rwasm::linux::cgroup::{CgroupError, CgroupHandle, CgroupManager, Manager};
use serde_json::json;

const MIB: i64 = 1024 * 1024;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/cgroup.rs creates real cgroups under /sys/fs/cgroup and must run as root \
         (e.g. `sudo -E cargo nextest run --release -p rwasm --test cgroup`); refusing to skip"
    );
}

fn unique_id(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("it-{tag}-{}-{nanos:08x}", std::process::id())
}

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    let p = p.as_ref();
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

/// The whole disk holding `/` (throttles apply to disks, not partitions), as (major, minor).
fn root_disk() -> (u64, u64) {
    let st = nix::sys::stat::stat("/").expect("stat /");
    let (major, minor) = (
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev),
    );
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    assert!(
        sys.exists(),
        "/ is on device {major}:{minor}, which is not a block device ({} missing): \
         this test needs / on a disk",
        sys.display()
    );
    if !sys.join("partition").exists() {
        return (major, minor);
    }
    let disk = fs::canonicalize(&sys)
        .unwrap()
        .parent()
        .unwrap()
        .join("dev");
    let text = read(&disk);
    let (a, b) = text.split_once(':').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Kills the child and removes the cgroup even when an assertion failed midway.
struct Cleanup {
    manager: Manager,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.manager.destroy();
    }
}

fn spawn_sleep() -> Child {
    Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn sleep")
}

fn pid_of(c: &Child) -> i32 {
    i32::try_from(c.id()).unwrap()
}

/// Waits (bounded) for the child to end and returns the signal that ended it.
fn wait_signal(c: &mut Child) -> Option<i32> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            return status.signal();
        }
        assert!(
            Instant::now() < until,
            "pid {} still running after destroy",
            c.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every directory the manager may have made, for the "gone after destroy" check.
fn all_dirs(m: &Manager) -> Vec<PathBuf> {
    let controllers = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        "io",
    ];
    let mut dirs: Vec<PathBuf> = controllers.iter().filter_map(|c| m.path(c)).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

#[test]
fn real_cgroup_limits_a_process_and_destroy_kills_it() {
    require_root();
    let id = unique_id("limits");
    let m = Manager::for_container(None, &id).unwrap();
    let mut guard = Cleanup {
        manager: m.clone(),
        children: Vec::new(),
    };
    m.create().unwrap();
    let (major, minor) = root_disk();
    m.apply(&res(json!({
        "memory": {"limit": 64 * MIB, "swap": 128 * MIB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 20},
        "blockIO": {
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 10 * MIB}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 500}]
        }
    })))
    .unwrap();

    guard.children.push(spawn_sleep());
    let pid = pid_of(&guard.children[0]);
    m.add_task(pid).unwrap();
    assert_eq!(m.pids().unwrap(), [pid]);

    let dev = format!("{major}:{minor}");
    match &m {
        Manager::V1(_) => {
            let mem = m.path("memory").unwrap();
            assert!(mem.ends_with(format!("rwasm/{id}")), "{}", mem.display());
            assert_eq!(
                read(mem.join("memory.limit_in_bytes")),
                (64 * MIB).to_string()
            );
            assert_eq!(
                read(mem.join("memory.memsw.limit_in_bytes")),
                (128 * MIB).to_string()
            );
            let cpu = m.path("cpu").unwrap();
            assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(cpu.join("cpu.shares")), "512");
            assert_eq!(read(m.path("pids").unwrap().join("pids.max")), "20");
            assert_eq!(read(m.path("cpuset").unwrap().join("cpuset.cpus")), "0");
            let blkio = m.path("blkio").unwrap();
            let rbps = read(blkio.join("blkio.throttle.read_bps_device"));
            assert!(
                rbps.lines().any(|l| l == format!("{dev} {}", 10 * MIB)),
                "{rbps:?}"
            );
            let wiops = read(blkio.join("blkio.throttle.write_iops_device"));
            assert!(
                wiops.lines().any(|l| l == format!("{dev} 500")),
                "{wiops:?}"
            );
            // The process really is in the container's cgroups.
            let own = read(format!("/proc/{pid}/cgroup"));
            let line = own
                .lines()
                .find(|l| l.split(':').nth(1) == Some("memory"))
                .unwrap();
            assert!(line.ends_with(&format!("/rwasm/{id}")), "{line}");
        }
        Manager::V2(_) => {
            let dir = m.path("memory").unwrap();
            assert_eq!(read(dir.join("memory.max")), (64 * MIB).to_string());
            assert_eq!(read(dir.join("memory.swap.max")), (64 * MIB).to_string());
            assert_eq!(read(dir.join("cpu.max")), "50000 100000");
            assert_eq!(read(dir.join("cpu.weight")), "20");
            assert_eq!(read(dir.join("pids.max")), "20");
            assert_eq!(read(dir.join("cpuset.cpus")), "0");
            let io = read(dir.join("io.max"));
            assert!(
                io.contains(&format!("{dev} rbps={}", 10 * MIB)) && io.contains("wiops=500"),
                "{io:?}"
            );
        }
    }

    // Destroy through a handle, as a later `rwasm delete` would.
    let dirs = all_dirs(&m);
    assert!(dirs.iter().all(|d| d.is_dir()));
    let handle: CgroupHandle =
        serde_json::from_str(&serde_json::to_string(&m.handle()).unwrap()).unwrap();
    Manager::from_handle(&handle).destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} still exists after destroy", d.display());
        assert!(
            d.parent().unwrap().is_dir(),
            "the shared parent of {} was removed",
            d.display()
        );
    }
    assert_eq!(
        wait_signal(&mut guard.children[0]),
        Some(9),
        "the process was SIGKILLed"
    );
    m.destroy().expect("destroy is idempotent");
}

#[test]
fn real_memory_updates_raise_and_lower_in_a_valid_order() {
    require_root();
    let m = Manager::for_container(None, &unique_id("memupd")).unwrap();
    let _guard = Cleanup {
        manager: m.clone(),
        children: Vec::new(),
    };
    m.create().unwrap();
    let steps = [(64, 128), (256, 512), (32, 48), (512, 1024), (16, 16)];
    for (mem, swap) in steps {
        m.apply(&res(
            json!({"memory": {"limit": mem * MIB, "swap": swap * MIB}}),
        ))
        .unwrap_or_else(|e| panic!("memory {mem} MiB, memory+swap {swap} MiB: {e}"));
        let dir = m.path("memory").unwrap();
        match &m {
            Manager::V1(_) => {
                assert_eq!(
                    read(dir.join("memory.limit_in_bytes")),
                    (mem * MIB).to_string()
                );
                assert_eq!(
                    read(dir.join("memory.memsw.limit_in_bytes")),
                    (swap * MIB).to_string()
                );
            }
            Manager::V2(_) => {
                assert_eq!(read(dir.join("memory.max")), (mem * MIB).to_string());
                assert_eq!(
                    read(dir.join("memory.swap.max")),
                    ((swap - mem) * MIB).to_string()
                );
            }
        }
    }
    // Back to unlimited: memory+swap follows.
    m.apply(&res(json!({"memory": {"limit": -1}}))).unwrap();
    m.destroy().unwrap();
}

#[test]
fn real_blkio_weight_without_the_file_is_a_clear_error() {
    require_root();
    let m = Manager::for_container(None, &unique_id("weight")).unwrap();
    let _guard = Cleanup {
        manager: m.clone(),
        children: Vec::new(),
    };
    m.create().unwrap();
    let (controller, file) = match &m {
        Manager::V1(_) => ("blkio", "blkio.weight"),
        Manager::V2(_) => ("io", "io.weight"),
    };
    let result = m.apply(&res(json!({"blockIO": {"weight": 500}})));
    if m.supports(controller, file) {
        // Not this project's hosts (no BFQ/CFQ there), but then the weight must be honoured.
        result.unwrap();
        eprintln!("this host has {file}; checked that the weight is applied instead");
    } else {
        let e = result.unwrap_err();
        let CgroupError::FileUnavailable { field, path } = &e else {
            panic!("unexpected error: {e}")
        };
        assert_eq!(*field, "linux.resources.blockIO.weight");
        assert!(path.ends_with(file), "{}", path.display());
        let msg = e.to_string();
        assert!(
            msg.contains("linux.resources.blockIO.weight") && msg.contains("this host lacks"),
            "{msg}"
        );
    }
    m.destroy().unwrap();
}

#[test]
fn real_destroy_kills_forked_children_too() {
    require_root();
    let m = Manager::for_container(None, &unique_id("forks")).unwrap();
    let mut guard = Cleanup {
        manager: m.clone(),
        children: Vec::new(),
    };
    m.create().unwrap();
    // Joins the cgroup itself before forking, so the children are born inside it.
    guard.children.push(spawn_sleep());
    let parent_pid = pid_of(&guard.children[0]);
    m.add_task(parent_pid).unwrap();
    let sh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs; sleep 1000 & sleep 1000 & wait",
            m.path("pids").unwrap().display()
        ))
        .spawn()
        .unwrap();
    guard.children.push(sh);
    let until = Instant::now() + Duration::from_secs(5);
    let pids = loop {
        let pids = m.pids().unwrap();
        if pids.len() >= 4 {
            break pids;
        }
        assert!(Instant::now() < until, "forks did not show up: {pids:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Manager::V1(_) = &m {
        // On v1 the sh joined only the pids hierarchy; join the rest through the manager.
        for &p in &pids {
            m.add_task(p).unwrap();
        }
    }
    m.destroy().unwrap();
    for p in pids {
        // Gone, or a zombie waiting for its parent to reap it.
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        assert!(
            stat.is_empty() || state == Some('Z'),
            "pid {p} survived destroy: {stat}"
        );
    }
    for c in &mut guard.children {
        assert_eq!(wait_signal(c), Some(9));
    }
}

#[test]
fn real_destroy_of_a_cgroup_never_created_is_ok() {
    require_root();
    let m = Manager::for_container(None, &unique_id("never")).unwrap();
    m.destroy().unwrap();
    assert!(all_dirs(&m).iter().all(|d| !d.exists()));
}

/// A host block device that root can open outside any device cgroup, as (node, major,
/// minor). The disk holding `/` is no use: this project's hosts refuse to open it even to
/// root (EPERM with the devices cgroup allowing all); a loop device opens.
fn host_block_device() -> (PathBuf, u64, u64) {
    let node = PathBuf::from("/dev/loop0");
    let st = nix::sys::stat::stat(&node).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this test needs a host block device that root can open",
            node.display()
        )
    });
    assert_eq!(
        st.st_mode & libc::S_IFMT,
        libc::S_IFBLK,
        "{} is not a block device",
        node.display()
    );
    let (major, minor) = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    (node, major, minor)
}

/// Runs the probe script in `sh`, first moving it into `m`'s cgroup when given, and only
/// then (a line on its stdin) letting it open devices. Returns its stdout and stderr.
fn device_probe(m: Option<&Manager>, blk: &Path, mknod_at: &Path, blk_dev: (u64, u64)) -> String {
    // Each command opens the device itself (no pipeline hiding its exit status).
    let script = format!(
        "read _; \
         head -c1 /dev/null; echo null=$?; \
         head -c1 /dev/zero >/dev/null; echo zero=$?; \
         head -c1 {blk} >/dev/null; echo block=$?; \
         mknod {node} b {maj} {min}; echo mknod=$?",
        blk = blk.display(),
        node = mknod_at.display(),
        maj = blk_dev.0,
        min = blk_dev.1,
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let pid = pid_of(&child);
    let placed = m.map(|m| m.add_task(pid));
    let mut stdin = child.stdin.take().unwrap();
    // Let it go even when placing failed, so it ends; then report the failure.
    let _ = stdin.write_all(b"go\n");
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    if let Some(placed) = placed {
        placed.unwrap_or_else(|e| panic!("cannot move the probe into the cgroup: {e}"));
    }
    format!("{out}{err}")
}

#[test]
fn real_cgroup_device_allowlist_denies_what_it_does_not_list() {
    require_root();
    let m = Manager::for_container(None, &unique_id("devices")).unwrap();
    let _guard = Cleanup {
        manager: m.clone(),
        children: Vec::new(),
    };
    assert!(
        matches!(m, Manager::V1(_)),
        "linux.resources.devices is not enforced on cgroup v2 yet (needs a BPF_CGROUP_DEVICE \
         program); this test checks enforcement and cannot pass on a v2 host"
    );
    let (blk, major, minor) = host_block_device();
    let tmp = tempfile::tempdir().unwrap();

    // Unconfined, the same root process reads the device and makes a block node: what the
    // cgroup refuses below is the cgroup's doing.
    let free = device_probe(None, &blk, &tmp.path().join("free"), (major, minor));
    for want in ["null=0", "zero=0", "block=0", "mknod=0"] {
        assert!(
            free.lines().any(|l| l == want),
            "unconfined: want {want}:\n{free}"
        );
    }

    m.create().unwrap();
    m.apply(&res(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]})))
    .unwrap();
    let list = read(m.path("devices").unwrap().join("devices.list"));
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        [
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
        ],
        "devices.list after deny-all, c 1:3 and rwasm's defaults"
    );

    let caged = tmp.path().join("caged");
    let out = device_probe(Some(&m), &blk, &caged, (major, minor));
    // /dev/null: the spec's entry; /dev/zero: one of rwasm's default devices.
    for want in ["null=0", "zero=0"] {
        assert!(out.lines().any(|l| l == want), "want {want}:\n{out}");
    }
    // The host block device: not listed, so neither opened nor created.
    for refused in ["block", "mknod"] {
        let status = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{refused}=")))
            .unwrap_or_else(|| panic!("no {refused}= line:\n{out}"));
        assert_ne!(status, "0", "{refused} was allowed in the cgroup:\n{out}");
    }
    let eperm = out
        .lines()
        .filter(|l| l.contains("Operation not permitted"))
        .collect::<Vec<_>>();
    assert!(
        eperm.iter().any(|l| l.contains(&*blk.to_string_lossy())),
        "opening {} must fail with EPERM:\n{out}",
        blk.display()
    );
    assert!(
        eperm.iter().any(|l| l.contains(&*caged.to_string_lossy())),
        "mknod of a block device must fail with EPERM:\n{out}"
    );
    assert!(!caged.exists());
    m.destroy().unwrap();
}
