//! `rwasm run` security, device and namespace flags as a Docker user types them, checked
//! from inside real containers (and in their cgroups). Root only (they fail, never skip,
//! otherwise).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::*;
use serde_json::json;

fn world() -> World {
    let w = World::new();
    w.setup_image();
    w
}

/// `run --rm FLAGS... busybox sh -c SCRIPT`: (exit code, stdout, stderr).
fn sh(w: &World, flags: &[&str], script: &str) -> (i32, String, String) {
    let out = w.rwasm(&[&["run", "--rm"], flags, &["busybox", "sh", "-c", script]].concat());
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// `run -d --name NAME FLAGS... busybox ARGS...`; returns the name.
fn detach(w: &World, flags: &[&str], args: &[&str]) -> String {
    let name = format!("df-{}", rand_suffix());
    let out = w.rwasm(&[&["run", "-d", "--name", &name], flags, &["busybox"], args].concat());
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    name
}

fn rm(w: &World, name: &str) {
    let out = w.rwasm(&["rm", "-f", name]);
    assert!(out.status.success(), "rm -f: {}", stderr(&out));
}

fn exec(w: &World, name: &str, script: &str) -> (String, String) {
    let out = w.rwasm(&["exec", name, "sh", "-c", script]);
    (stdout(&out), stderr(&out))
}

#[test]
fn cap_drop_all_makes_privileged_operations_fail() {
    let w = world();
    let script = "chown 1:1 /tmp && echo chown=ok; mknod /tmp/n c 1 3 && echo mknod=ok; grep CapEff /proc/self/status";
    let (code, o, e) = sh(&w, &[], script);
    assert_eq!(code, 0, "{e}");
    assert!(
        o.contains("chown=ok") && o.contains("mknod=ok"),
        "Docker's defaults allow both: {o}{e}"
    );
    let (_, o, e) = sh(&w, &["--cap-drop", "ALL"], script);
    assert!(!o.contains("chown=ok") && !o.contains("mknod=ok"), "{o}");
    assert!(o.contains("CapEff:\t0000000000000000"), "{o}");
    assert!(e.contains("Operation not permitted"), "{e}");
    // Adds win over ALL: only CAP_CHOWN (bit 0).
    let (_, o, _) = sh(&w, &["--cap-drop", "all", "--cap-add", "chown"], script);
    assert!(o.contains("chown=ok") && !o.contains("mknod=ok"), "{o}");
    assert!(o.contains("CapEff:\t0000000000000001"), "{o}");
    let (code, _, e) = sh(&w, &["--cap-add", "CAP_FLYING"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("--cap-add") && e.contains("CAP_FLYING"), "{e}");
}

#[test]
fn the_default_seccomp_profile_blocks_unshare_and_mount_unless_unconfined() {
    let w = world();
    let script = "unshare -m true; echo unshare=$?; mkdir -p /m; mount -t tmpfs t /m; echo mount=$?; grep Seccomp: /proc/self/status";
    let (_, o, e) = sh(&w, &[], script);
    assert!(
        o.contains("unshare=1") && o.contains("mount=") && !o.contains("mount=0"),
        "{o}{e}"
    );
    assert!(o.contains("Seccomp:\t2"), "{o}");
    assert!(
        e.contains("unshare(0x20000): Operation not permitted"),
        "{e}"
    );
    // Even with CAP_SYS_ADMIN added the profile lifts only its own group: mount works then.
    let (_, o, e) = sh(&w, &["--cap-add", "SYS_ADMIN"], script);
    assert!(o.contains("unshare=0") && o.contains("mount=0"), "{o}{e}");
    let (_, o, e) = sh(
        &w,
        &["--privileged", "--security-opt", "seccomp=unconfined"],
        script,
    );
    assert!(o.contains("unshare=0") && o.contains("mount=0"), "{o}{e}");
    assert!(o.contains("Seccomp:\t0"), "{o}");
    // Unconfined alone keeps Docker's capabilities: unshare then fails on CAP_SYS_ADMIN.
    let (_, o, _) = sh(&w, &["--security-opt", "seccomp=unconfined"], script);
    assert!(o.contains("Seccomp:\t0") && o.contains("unshare=1"), "{o}");
    // personality(PER_LINUX32) is one of Linux's own personas: allowed (the refused
    // ones are covered by the profile's unit tests; busybox has no tool to ask for them).
    let (_, o, e) = sh(&w, &[], "linux32 uname -m");
    assert!(o.trim() == "i686" || o.trim() == "armv8l", "{o}{e}");
}

#[test]
fn security_opt_profile_file_applies_to_exec_and_no_new_privileges() {
    let w = world();
    let profile = w.path("p.json");
    std::fs::write(
        &profile,
        serde_json::to_vec(&json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        }))
        .unwrap(),
    )
    .unwrap();
    let name = detach(
        &w,
        &[
            "--security-opt",
            &format!("seccomp={}", profile.display()),
            "--security-opt",
            "no-new-privileges",
        ],
        &["sleep", "30"],
    );
    let (o, e) = exec(
        &w,
        &name,
        "mkdir /x; echo rc=$?; grep NoNewPrivs /proc/self/status",
    );
    assert!(o.contains("rc=1") && o.contains("NoNewPrivs:\t1"), "{o}{e}");
    assert!(e.contains("Permission denied"), "{e}");
    rm(&w, &name);
    let (code, _, e) = sh(&w, &["--security-opt", "seccomp=/nonexistent.json"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("/nonexistent.json"), "{e}");
    let (code, _, e) = sh(&w, &["--security-opt", "selinux"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("--security-opt"), "{e}");
}

/// The block device holding `/` and its "MAJOR:MINOR".
fn root_block_device() -> (String, String) {
    let dev = std::fs::metadata("/").unwrap().dev();
    let want = format!(
        "{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    for e in std::fs::read_dir("/dev").unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.file_type().is_block_device()
            && format!(
                "{}:{}",
                nix::sys::stat::major(m.rdev()),
                nix::sys::stat::minor(m.rdev())
            ) == want
        {
            return (e.path().to_string_lossy().into_owned(), want);
        }
    }
    panic!("no /dev node for the root filesystem's device {want}");
}

#[test]
fn device_throttles_and_oom_kill_disable_land_in_the_containers_cgroup() {
    let w = world();
    let (dev, majmin) = root_block_device();
    let name = detach(
        &w,
        &[
            "--device-read-bps",
            &format!("{dev}:1mb"),
            "--device-write-iops",
            &format!("{dev}:300"),
            "--device-write-bps",
            &format!("{dev}:2mb"),
            "--device-read-iops",
            &format!("{dev}:400"),
            "-m",
            "64m",
            "--oom-kill-disable",
        ],
        &["sleep", "30"],
    );
    let out = w.rwasm(&["inspect", "-f", "{{.Id}}", &name]);
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "{}", stderr(&out));
    let dirs = cgroup_dirs_named(&id);
    let read = |file: &str| {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .or_else(|| {
                dirs.iter()
                    .find_map(|d| std::fs::read_to_string(d.join("io.max")).ok())
            })
            .unwrap_or_else(|| panic!("no {file} in {dirs:?}"))
    };
    let bps = read("blkio.throttle.read_bps_device");
    assert!(
        bps.contains(&format!("{majmin} 1048576")) || bps.contains("rbps=1048576"),
        "{bps}"
    );
    let iops = read("blkio.throttle.write_iops_device");
    assert!(
        iops.contains(&format!("{majmin} 300")) || iops.contains("wiops=300"),
        "{iops}"
    );
    let wbps = read("blkio.throttle.write_bps_device");
    assert!(
        wbps.contains(&format!("{majmin} 2097152")) || wbps.contains("wbps=2097152"),
        "{wbps}"
    );
    let riops = read("blkio.throttle.read_iops_device");
    assert!(
        riops.contains(&format!("{majmin} 400")) || riops.contains("riops=400"),
        "{riops}"
    );
    // cgroup v1 only (v2 has no switch for the OOM killer; the runtime warns there).
    if let Some(oom) = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("memory.oom_control")).ok())
    {
        assert!(oom.contains("oom_kill_disable 1"), "{oom}");
    }
    rm(&w, &name);
    let (code, _, e) = sh(&w, &["--device-read-bps", "/etc/passwd:1mb"], "true");
    assert_eq!(code, 125);
    assert!(
        e.contains("--device-read-bps") && e.contains("not a device"),
        "{e}"
    );
}

#[test]
fn ulimit_sysctl_oom_score_group_add_and_env_file_are_seen_inside() {
    let w = world();
    let env = w.path("env");
    std::fs::write(&env, "# comment\nA=from-file\nB=file\n\n").unwrap();
    let (code, o, e) = sh(
        &w,
        &[
            "--ulimit",
            "nofile=100:200",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--oom-score-adj",
            "500",
            "--group-add",
            "10",
            "--group-add",
            "tty",
            "--env-file",
            env.to_str().unwrap(),
            "-e",
            "B=flag",
        ],
        "echo n=$(ulimit -n) h=$(ulimit -Hn); echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo oom=$(cat /proc/1/oom_score_adj); id; echo A=$A B=$B",
    );
    assert_eq!(code, 0, "{e}");
    assert!(o.contains("n=100 h=200"), "{o}");
    assert!(o.contains("fwd=1"), "{o}");
    assert!(o.contains("oom=500"), "{o}");
    assert!(
        o.contains("groups=5(tty),10") || o.contains("groups=10,5(tty)"),
        "{o}"
    );
    assert!(
        o.contains("A=from-file B=flag"),
        "-e wins over --env-file: {o}"
    );
    let (code, _, e) = sh(&w, &["--ulimit", "nofile=200:100"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("--ulimit"), "{e}");
}

#[test]
fn init_reaps_zombies_that_a_plain_pid_1_leaves() {
    let w = world();
    let zombies = |name: &str| {
        let (o, _) = exec(&w, name, "cat /proc/[0-9]*/stat");
        o.lines().filter(|l| l.contains(") Z ")).count()
    };
    // A subshell's background sleep is orphaned to PID 1; `exec sleep` never reaps it.
    let script = "(sleep 0.1 &); exec sleep 30";
    let plain = detach(&w, &[], &["sh", "-c", script]);
    let init = detach(&w, &["--init"], &["sh", "-c", script]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        zombies(&plain),
        1,
        "without --init the orphan stays a zombie"
    );
    assert_eq!(zombies(&init), 0, "--init reaps it");
    let (o, _) = exec(&w, &init, "cat /proc/1/comm");
    assert_eq!(o.trim(), "rwasm", "PID 1 is rwasm's init");
    // The host's binary cannot be reached through PID 1, even privileged.
    for flags in [&[][..], &["--privileged"][..]] {
        let (_, o, e) = sh(
            &w,
            &[&["--init"], flags].concat(),
            "echo x >> /proc/1/exe; echo rc=$?",
        );
        assert!(o.contains("rc=1"), "{flags:?}: {o}{e}");
    }
    // Signals are forwarded: stop's SIGTERM ends sleep (not PID 1) at once: 128+15.
    let out = w.rwasm(&["stop", "-t", "20", &init]);
    assert!(out.status.success(), "{}", stderr(&out));
    let code = stdout(&w.rwasm(&["inspect", "-f", "{{.State.ExitCode}}", &init]));
    assert_eq!(code.trim(), "143");
    rm(&w, &plain);
    rm(&w, &init);
    let (code, _, _) = sh(&w, &["--init"], "exit 3");
    assert_eq!(code, 3, "the user process's exit code passes through");
}

#[test]
fn read_only_root_keeps_only_dev_and_shm_writable() {
    let w = world();
    let (_, o, e) = sh(
        &w,
        &["--read-only"],
        "touch /x; echo root=$?; touch /tmp/x; echo tmp=$?; touch /dev/shm/x; echo shm=$?",
    );
    assert!(
        o.contains("root=1") && o.contains("tmp=1") && o.contains("shm=0"),
        "{o}{e}"
    );
    assert!(e.contains("Read-only file system"), "{e}");
    let (_, o, _) = sh(&w, &["--shm-size", "10m"], "df -k /dev/shm | tail -1");
    assert!(o.split_whitespace().nth(1) == Some("10240"), "{o}");
}

#[test]
fn read_only_keeps_hostname_hosts_and_resolv_conf_read_only_as_docker() {
    let w = world();
    // On the bridge all three are the bundle's files bind-mounted; each write fails
    // with EROFS (busybox sh: "Read-only file system"), as in Docker.
    let script = "for f in hostname hosts resolv.conf; do grep -q . /etc/$f && echo $f=seen; \
        (echo x >> /etc/$f) 2>/dev/null; echo $f=$?; done; echo x >> /etc/hosts";
    let (_, o, e) = sh(&w, &["--read-only", "--network", "bridge"], script);
    for f in ["hostname", "hosts", "resolv.conf"] {
        assert!(
            o.contains(&format!("{f}=seen")) && o.contains(&format!("{f}=1")),
            "/etc/{f} is read-only: {o}{e}"
        );
    }
    assert!(e.contains("Read-only file system"), "{e}");
    // Without --read-only they stay writable (Docker's default).
    let (_, o, e) = sh(&w, &["--network", "bridge"], script);
    for f in ["hostname", "hosts", "resolv.conf"] {
        assert!(
            o.contains(&format!("{f}=0")),
            "/etc/{f} is writable: {o}{e}"
        );
    }
}

#[test]
fn pid_host_and_pid_container_share_pid_namespaces() {
    let w = world();
    let me = std::process::id().to_string();
    let (_, o, e) = sh(
        &w,
        &["--pid", "host"],
        &format!("test -d /proc/{me} && echo seen"),
    );
    assert!(
        o.contains("seen"),
        "the host's pids are visible with --pid host: {o}{e}"
    );
    let (_, o, _) = sh(
        &w,
        &[],
        &format!("test -d /proc/{me} && echo seen; echo $$"),
    );
    assert!(!o.contains("seen"), "{o}");
    let a = detach(&w, &[], &["sleep", "31"]);
    let (_, o, e) = sh(
        &w,
        &[
            "--pid",
            &format!("container:{a}"),
            "--ipc",
            &format!("container:{a}"),
        ],
        "ps -o pid,args; readlink /proc/self/ns/ipc",
    );
    assert!(o.contains("sleep 31"), "joins {a}'s pid namespace: {o}{e}");
    let (ipc, _) = exec(&w, &a, "readlink /proc/self/ns/ipc");
    assert!(
        ipc.starts_with("ipc:[") && o.contains(ipc.trim()),
        "joins {a}'s ipc namespace: {o} vs {ipc}"
    );
    rm(&w, &a);
    let (code, _, e) = sh(&w, &["--pid", "container:no-such"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("no-such"), "{e}");
    let (code, _, e) = sh(&w, &["--userns", "remap"], "true");
    assert_eq!(code, 125);
    assert!(e.contains("--userns"), "{e}");
}

#[test]
fn ipc_container_shares_the_others_dev_shm_both_ways() {
    let w = world();
    let a = detach(&w, &[], &["sleep", "60"]);
    let (_, e) = exec(&w, &a, "echo from-a > /dev/shm/a");
    assert_eq!(e, "");
    let (code, o, e) = sh(
        &w,
        &["--ipc", &format!("container:{a}")],
        "cat /dev/shm/a && echo from-b > /dev/shm/b",
    );
    assert_eq!((code, o.as_str()), (0, "from-a\n"), "{e}");
    let (o, e) = exec(&w, &a, "cat /dev/shm/b");
    assert_eq!(o, "from-b\n", "{e}");
    // A container of its own IPC namespace has its own, empty /dev/shm.
    let (_, o, e) = sh(&w, &[], "ls -A /dev/shm");
    assert_eq!(o, "", "{e}");
    rm(&w, &a);
}

#[test]
fn uts_host_and_ipc_host_share_the_hosts_namespaces_and_dev_shm() {
    let w = world();
    let ns = |k: &str| {
        std::fs::read_link(format!("/proc/self/ns/{k}"))
            .unwrap()
            .display()
            .to_string()
    };
    let (uts, ipc) = (ns("uts"), ns("ipc"));
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let f = format!("/dev/shm/rwasm-test-{}", rand_suffix());
    std::fs::write(&f, "from-host").unwrap();
    let script =
        format!("readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; hostname; cat {f}");
    let (code, o, e) = sh(&w, &["--uts", "host", "--ipc", "host"], &script);
    let _ = std::fs::remove_file(&f);
    assert_eq!(code, 0, "{e}");
    assert_eq!(o, format!("{uts}\n{ipc}\n{host}\nfrom-host"), "{e}");
    // Without them the container has its own of each, and its own /dev/shm.
    let (_, o, e) = sh(&w, &[], &script);
    assert!(
        !o.contains(&uts) && !o.contains(&ipc) && !o.contains("from-host"),
        "{o}{e}"
    );
}

#[test]
fn privileged_gets_host_devices_all_caps_and_no_seccomp() {
    let w = world();
    let (code, o, e) = sh(
        &w,
        &["--privileged"],
        "grep -E 'Seccomp:|CapBnd' /proc/self/status; ls /dev/loop0 && echo loop; mkdir -p /m; mount -t tmpfs t /m && echo mounted",
    );
    assert_eq!(code, 0, "{e}");
    assert!(o.contains("Seccomp:\t0") && o.contains("mounted"), "{o}{e}");
    let (_, o, _) = sh(
        &w,
        &["--device", "/dev/null:/dev/xnull:rw"],
        "echo hi > /dev/xnull && echo wrote; ls -l /dev/xnull",
    );
    assert!(o.contains("wrote") && o.contains("1,   3"), "{o}");
}

#[test]
fn gpus_without_a_cdi_spec_names_the_missing_spec() {
    let w = world();
    let (code, _, e) = sh(&w, &["--gpus", "all"], "true");
    assert_eq!(code, 125);
    assert!(
        e.contains("--gpus") && e.contains("nvidia.com/gpu") && e.contains("/etc/cdi"),
        "{e}"
    );
}
