//! Real containers through the runc-compatible CLI: exit codes, namespaces, mounts,
//! cgroups, the state machine and OCI hooks. Root only (they fail, never skip, otherwise).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use serde_json::json;

fn run_bundle(w: &World, bundle: &std::path::Path, id: &str) -> std::process::Output {
    w.rwasm(&["run", "--bundle", bundle.to_str().unwrap(), id])
}

#[test]
fn echo_output_and_exit_codes_pass_through() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        json!({}),
    );
    let out = run_bundle(&w, &b, &id("exit3"));
    assert_eq!(stdout(&out), "hello\n");
    assert!(stderr(&out).contains("oops"));
    assert_eq!(out.status.code(), Some(3));

    // Killed from outside (pid 1 cannot SIGKILL itself from inside its namespace).
    let b = w.bundle("k", &["sleep", "30"], json!({}));
    let c = id("sigkill");
    let mut run = w
        .cmd(&["run", "--bundle", b.to_str().unwrap(), &c])
        .spawn()
        .unwrap();
    w.wait_status(&c, "running");
    assert_eq!(w.rwasm_detached(&["kill", &c, "9"]).0, 0);
    assert_eq!(run.wait().unwrap().code(), Some(137), "SIGKILL → 128+9");
    assert!(
        !w.root.join(&c).exists(),
        "run deletes the container after it exits"
    );
}

#[test]
fn pid_1_hostname_and_proc() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo pid=$$; hostname; head -1 /proc/self/status; ls /proc/1/ns | wc -l",
        ],
        json!({"hostname": "inside"}),
    );
    let out = run_bundle(&w, &b, &id("pid1"));
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "inside");
    assert!(lines[2].starts_with("Name:"), "/proc is mounted: {text}");
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    let w = World::new();
    // /proc/timer_list has content on the host; masked, it reads as /dev/null.
    assert!(
        !std::fs::read_to_string("/proc/timer_list")
            .unwrap()
            .is_empty()
    );
    let b = w.bundle(
        "b",
        &["sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/vm/drop_caches && echo wrote || echo refused"],
        json!({
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}
            ],
            "linux": {"maskedPaths": ["/proc/timer_list", "/sys/firmware"], "readonlyPaths": ["/proc/sys"]}
        }),
    );
    let out = run_bundle(&w, &b, &id("masked"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "refused"]
    );
}

#[test]
fn memory_limit_is_written_and_an_allocation_past_it_is_oom_killed() {
    let w = World::new();
    let limit = 32u64 << 20;
    let res = json!({"linux": {
        "resources": {"memory": {"limit": limit, "swap": limit}},
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "cgroup"}],
    }, "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "nodev", "noexec"]}
    ]});
    let b = w.bundle(
        "b",
        &[
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        ],
        res.clone(),
    );
    let out = run_bundle(&w, &b, &id("memread"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{limit}\n{limit}\n"));

    // dd's 64 MiB buffer cannot fit in 32 MiB: the kernel OOM-kills it (SIGKILL → 137).
    let b = w.bundle(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        res,
    );
    let out = run_bundle(&w, &b, &id("oom"));
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
}

#[test]
fn state_machine_and_its_errors() {
    let w = World::new();
    let b = w.bundle("b", &["sleep", "30"], json!({}));
    let c = id("sm");
    let bs = b.to_str().unwrap();
    let pidfile = w.path("pid");
    let (code, err) = w.rwasm_detached(&[
        "create",
        "--bundle",
        bs,
        "--pid-file",
        pidfile.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "create: {err}");
    let st = w.state(&c);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.as_str());
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["bundle"], b.canonicalize().unwrap().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // create and start are separate: until start, pid 1 is rwasm's init, not sleep.
    assert!(
        !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .contains("sleep")
    );

    let (code, err) = w.rwasm_detached(&["create", "--bundle", bs, &c]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");

    let (code, err) = w.rwasm_detached(&["start", &c]);
    assert_eq!(code, 0, "start: {err}");
    assert_eq!(w.state(&c)["status"], "running");
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .starts_with("sleep")
    );

    let (code, err) = w.rwasm_detached(&["start", &c]);
    assert_ne!(code, 0, "start of a running container must fail");
    assert!(err.contains("running"), "{err}");
    let (code, err) = w.rwasm_detached(&["delete", &c]);
    assert_ne!(
        code, 0,
        "delete of a running container without --force must fail"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        w.state(&c)["status"],
        "running",
        "a refused delete has no effect"
    );

    let (code, err) = w.rwasm_detached(&["kill", &c, "KILL"]);
    assert_eq!(code, 0, "kill: {err}");
    w.wait_status(&c, "stopped");
    let (code, err) = w.rwasm_detached(&["kill", &c, "TERM"]);
    assert_ne!(code, 0, "kill of a stopped container fails: {err}");
    let (code, err) = w.rwasm_detached(&["delete", &c]);
    assert_eq!(code, 0, "delete: {err}");
    let out = w.rwasm(&["state", &c]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(cgroup_dirs_named(&c).is_empty(), "cgroup removed");
    assert!(!w.root.join(&c).exists(), "state directory removed");
}

#[test]
fn delete_force_kills_a_running_container() {
    let w = World::new();
    let b = w.bundle("b", &["sleep", "30"], json!({}));
    let c = id("force");
    assert_eq!(
        w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c])
            .0,
        0
    );
    let pid = w.state(&c)["pid"].as_i64().unwrap();
    assert_eq!(w.rwasm_detached(&["start", &c]).0, 0);
    let (code, err) = w.rwasm_detached(&["delete", "--force", &c]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_millis(50));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "process gone or a zombie: {stat}"
    );
    assert!(cgroup_dirs_named(&c).is_empty());
}

#[test]
fn oci_hooks_get_the_state_on_stdin_in_the_spec_order() {
    let w = World::new();
    let log = w.path("hooks.log");
    let hook_dir = w.path("hookbin");
    std::fs::create_dir_all(&hook_dir).unwrap();
    // A hook appends "NAME STATUS PID" taken from the state JSON on its stdin.
    let script = |name: &str, log: &str| {
        format!(
            "#!/bin/sh\ns=$(cat)\nst=$(echo \"$s\" | sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p')\nid=$(echo \"$s\" | sed -n 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/p')\necho \"{name} $st $id\" >> {log}\n"
        )
    };
    let mk = |path: &std::path::Path, body: String| {
        std::fs::write(path, body).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let lg = log.to_str().unwrap();
    for n in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        mk(&hook_dir.join(n), script(n, lg));
    }
    let hp = |n: &str| hook_dir.join(n).to_str().unwrap().to_string();
    let b = w.bundle(
        "b",
        &["true"],
        json!({
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
                {"destination": "/hooklog", "type": "bind", "source": w.tmp.path().to_str().unwrap(), "options": ["rbind"]}
            ],
            "hooks": {
                "prestart": [{"path": hp("prestart")}],
                "createRuntime": [{"path": hp("createRuntime")}],
                "createContainer": [{"path": hp("createContainer")}],
                "startContainer": [{"path": "/bin/startContainer"}],
                "poststart": [{"path": hp("poststart")}],
                "poststop": [{"path": hp("poststop"), "args": ["poststop", "x"], "timeout": 5}]
            }
        }),
    );
    // startContainer runs inside the container after pivot_root: its path and log resolve there.
    mk(
        &b.join("rootfs/bin/startContainer"),
        script("startContainer", "/hooklog/hooks.log"),
    );
    let c = id("hooks");
    let out = run_bundle(&w, &b, &c);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = std::fs::read_to_string(&log).unwrap();
    let want: Vec<String> = [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ]
    .iter()
    .map(|(n, s)| format!("{n} {s} {c}"))
    .collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["true"],
        json!({"hooks": {"createRuntime": [{"path": "/bin/false"}]}}),
    );
    let c = id("hookfail");
    let (code, err) = w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c]);
    assert_ne!(code, 0);
    assert!(
        err.contains("createRuntime") && err.contains("/bin/false"),
        "{err}"
    );
    assert!(!w.root.join(&c).exists());
    assert!(cgroup_dirs_named(&c).is_empty());
}

#[test]
fn missing_command_fails_create_with_docker_wording() {
    let w = World::new();
    let b = w.bundle("b", &["no-such-command"], json!({}));
    let c = id("nocmd");
    let out = run_bundle(&w, &b, &c);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
    assert!(!w.root.join(&c).exists());
}

#[test]
fn bad_config_names_the_field() {
    let w = World::new();
    let b = w.bundle("b", &["true"], json!({"process": {"cwd": "relative"}}));
    let out = run_bundle(&w, &b, &id("badcwd"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("process.cwd"), "{}", stderr(&out));
    let b = w.bundle(
        "c",
        &["true"],
        json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}, {"type": "mount"}]}}),
    );
    let out = run_bundle(&w, &b, &id("dupns"));
    assert!(
        stderr(&out).contains("linux.namespaces"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_uid() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '; touch /tmp/x && stat -c %u /tmp/x"],
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }, "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]}),
    );
    let out = run_bundle(&w, &b, &id("userns"));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "0", "root inside");
    assert_eq!(lines[1], "0 100000 65536");
    assert_eq!(lines[2], "0");
}

#[test]
fn init_binary_cannot_be_written_through_proc_pid_exe() {
    // CVE-2019-5736: while init waits for `start`, /proc/PID/exe is rwasm's binary.
    let w = World::new();
    let b = w.bundle("b", &["true"], json!({}));
    let c = id("cve");
    let (code, err) = w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c]);
    assert_eq!(code, 0, "{err}");
    let pid = w.state(&c)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (
        std::fs::metadata(&exe).unwrap(),
        std::fs::metadata(rwasm_bin()).unwrap(),
    );
    assert_eq!(
        (a.dev(), a.ino()),
        (b.dev(), b.ino()),
        "init runs rwasm's own binary"
    );
    // The attack: hold an O_PATH handle on init's exe, wait until init is gone (no
    // ETXTBSY any more), then reopen the handle for writing.
    let handle = nix::fcntl::open(
        exe.as_str(),
        nix::fcntl::OFlag::O_PATH,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let via = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let st = nix::sys::statvfs::statvfs(via.as_str()).unwrap();
    assert!(
        st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "init's exe is on a read-only mount"
    );
    assert!(w.rwasm_detached(&["delete", "--force", &c]).0 == 0);
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&via)
        .expect_err("writing the runtime through init's exe must fail");
    // EROFS from the read-only mount; ETXTBSY only if another test runs rwasm right now.
    assert!(
        matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
        "{err}"
    );
}

#[test]
fn container_process_inherits_no_runtime_fds() {
    let w = World::new();
    let b = w.bundle("b", &["ls", "/proc/self/fd"], json!({}));
    let out = run_bundle(&w, &b, &id("fds"));
    assert!(out.status.success(), "{}", stderr(&out));
    // ls itself opens one fd for the directory: 0 1 2 and that one.
    let fds: Vec<String> = stdout(&out)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "only stdio reaches the container: {fds:?}"
    );
}

#[test]
fn pids_limit_holds_a_fork_loop() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["sh", "-c", "while true; do sleep 30 & done"],
        json!({"linux": {"resources": {"pids": {"limit": 20}}}}),
    );
    let c = id("forkloop");
    assert_eq!(
        w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c])
            .0,
        0
    );
    assert_eq!(w.rwasm_detached(&["start", &c]).0, 0);
    let dir = cgroup_dirs_named(&c)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .expect("pids cgroup");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let t = std::time::Instant::now();
    while !read("pids.events").starts_with("max ") || read("pids.events").trim() == "max 0" {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the fork loop never hit the limit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read("pids.max").trim(), "20");
    let current: u32 = read("pids.current").trim().parse().unwrap();
    assert!(current <= 20, "pids.current {current} is above the limit");
    // (busybox sh gives up once fork fails: the limit, not a kill, ends the loop.)
    assert_eq!(w.rwasm_detached(&["delete", "--force", &c]).0, 0);
    assert!(cgroup_dirs_named(&c).is_empty());
}

#[test]
fn host_block_devices_are_out_of_reach_even_with_cap_mknod() {
    // The spec lists no devices: rwasm still confines the device cgroup (as runc does).
    let w = World::new();
    let b = w.bundle(
        "b",
        &["sh", "-c", "mknod /tmp/blk b 7 0 && head -c1 /tmp/blk >/dev/null && echo reached || echo refused; head -c1 /dev/zero | wc -c"],
        json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]}),
    );
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("blk")]);
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["refused", "1"],
        "{}",
        stderr(&out)
    );
}

#[test]
fn process_attributes_are_applied() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["sh", "-c", "ulimit -n; ulimit -Hn; umask; id -u; id -G; grep -E '^(NoNewPrivs|CapBnd|CapEff)' /proc/self/status | tr -d '\\t'; cat /proc/self/oom_score_adj; pwd"],
        json!({"process": {
            "user": {"uid": 1000, "gid": 1000, "umask": 63, "additionalGids": [5, 20]},
            "cwd": "/work/dir",
            "env": ["PATH=/bin"],
            "noNewPrivileges": true,
            "oomScoreAdj": 300,
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}],
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": [], "ambient": []
            }
        }}),
    );
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("attrs")]);
    assert!(out.status.success(), "{}", stderr(&out));
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5. A non-root uid keeps no effective caps at exec
    // unless they are ambient (capabilities(7)); the bounding set is what the spec says.
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "1024",
            "2048",
            "0077",
            "1000",
            "1000 5 20",
            "CapEff:0000000000000000",
            "CapBnd:0000000000000021",
            "NoNewPrivs:1",
            "300",
            "/work/dir"
        ]
    );
}

#[test]
fn namespaces_given_by_path_are_joined() {
    let w = World::new();
    let name = format!("rwasm-{}", rand_suffix());
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success()
    );
    let path = format!("/run/netns/{name}");
    let want = std::fs::read_link("/proc/self/ns/net").ok(); // host's, to prove it differs
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&path).unwrap().ino();
    let b = w.bundle(
        "b",
        &["readlink", "/proc/self/ns/net"],
        json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": path}]}}),
    );
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("netns")]);
    let _ = std::process::Command::new("ip")
        .args(["netns", "delete", &name])
        .status();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("net:[{ino}]"));
    assert_ne!(
        want.map(|p| p.display().to_string()),
        Some(stdout(&out).trim().to_string())
    );
}

#[test]
fn a_failing_poststart_hook_is_only_logged() {
    let w = World::new();
    let b = w.bundle("b", &["sh", "-c", "echo ran"], json!({"hooks": {"poststart": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]}}));
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("poststart")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Poststart hook failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unsafe_specs_are_refused_with_the_field_named() {
    let w = World::new();
    for (name, patch, needle) in [
        (
            "uid",
            json!({"process": {"user": {"uid": 4294967295u32, "gid": 0}}}),
            "process.user.uid",
        ),
        (
            "sysctl",
            json!({"linux": {"sysctl": {"vm.swappiness": "61"}}}),
            "vm.swappiness is not namespaced",
        ),
        (
            "maps",
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "no user namespace",
        ),
    ] {
        let before = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        let b = w.bundle(name, &["true"], patch);
        let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id(name)]);
        assert!(!out.status.success(), "{name} accepted");
        assert!(stderr(&out).contains(needle), "{name}: {}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
            before
        );
    }
}

#[test]
fn namespaced_sysctls_are_set_even_with_a_read_only_proc_sys() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &["cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"],
        json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}, "readonlyPaths": ["/proc/sys"]}}),
    );
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("sysctl")]);
    assert_eq!(stdout(&out), "1\n1234\n", "{}", stderr(&out));
}

#[test]
fn proc_on_a_symlink_is_refused() {
    let w = World::new();
    let b = w.bundle("b", &["true"], json!({}));
    std::fs::remove_dir(b.join("rootfs/proc")).unwrap();
    std::os::unix::fs::symlink("/etc", b.join("rootfs/proc")).unwrap();
    let out = w.rwasm(&["run", "--bundle", b.to_str().unwrap(), &id("procsym")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("ordinary directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn runc_spec_defaults_run_unchanged() {
    // `runc spec` output: cgroup mount without a cgroup namespace, ambient caps without
    // inheritable ones, readonly /proc/sys, a terminal turned off.
    let w = World::new();
    let dir = w.path("runc");
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new("runc")
        .arg("spec")
        .current_dir(&dir)
        .status()
        .expect("runc (apt runc) is installed by make setup");
    assert!(st.success());
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!([
        "sh",
        "-c",
        "grep CapBnd /proc/self/status; ls /sys/fs/cgroup | head -3"
    ]);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    busybox_rootfs(&dir.join("rootfs"));
    let out = w.rwasm(&["run", "--bundle", dir.to_str().unwrap(), &id("runcspec")]);
    assert!(out.status.success(), "{}", stderr(&out));
    // runc's defaults: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
    assert!(
        stdout(&out).starts_with("CapBnd:\t0000000020000420"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn kill_takes_real_time_signals_and_delete_force_of_nothing_is_fine() {
    let w = World::new();
    // Bounded: without the signal the loop ends by itself after ~5 s with status 9.
    let script = format!(
        "trap 'echo got-rtmin; exit 0' {}; echo trapped; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 9",
        libc::SIGRTMIN() + 1
    );
    let b = w.bundle("b", &["sh", "-c", &script], json!({}));
    let c = id("rt");
    let log = w.path("rt.out");
    let mut run = w
        .cmd(&["run", "--bundle", b.to_str().unwrap(), &c])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // A signal sent before the trap is set would be dropped (PID 1 without a handler).
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("trapped") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the trap was never set"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, err) = w.rwasm_detached(&["kill", &c, "SIGRTMIN+1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "trapped\ngot-rtmin\n"
    );
    assert_eq!(
        w.rwasm_detached(&["delete", "--force", "never-existed"]).0,
        0,
        "as runc"
    );
}

/// Init is cloned as a vfork that borrows the runtime's memory with every signal blocked
/// (linux/launch.rs): the container's process must still start as after a plain fork and
/// exec: nothing blocked, nothing caught, the same signals ignored as through the
/// plain-copy clone a user namespace takes; and nothing blocked or caught with plugins
/// either (their engine catches SIGSEGV, SIGBUS, SIGILL and SIGFPE in the runtime).
#[test]
fn the_container_process_starts_with_no_signal_blocked() {
    let w = World::new();
    let wasm = plugin_wasm("env_inject");
    let m = manifest(
        &w,
        "plugins.toml",
        &format!(
            "version = 1\n[[plugin]]\nname = \"env-inject\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"create-runtime\", \"poststart\"]\n[plugin.config]\nGREETING = \"hello\"\n",
            wasm.display()
        ),
    );
    let args = ["grep", "-E", "^Sig(Blk|Ign|Cgt):", "/proc/self/status"];
    let userns = w.bundle(
        "userns",
        &args,
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }, "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}
        ]}),
    );
    let copied = run_bundle(&w, &userns, &id("siguserns"));
    let copied = stdout(&copied);
    let lines: Vec<&str> = copied.lines().collect();
    assert_eq!(lines.len(), 3, "{copied}");
    assert_eq!(lines[0], "SigBlk:\t0000000000000000");
    assert!(lines[1].starts_with("SigIgn:\t"), "{copied}");
    assert_eq!(lines[2], "SigCgt:\t0000000000000000");
    let plain = w.bundle("plain", &args, json!({}));
    let out = run_bundle(&w, &plain, &id("sigplain"));
    assert_eq!(stdout(&out), copied, "{}", stderr(&out));
    let b = plain.to_str().unwrap();
    let m = m.to_str().unwrap();
    // With plugins the runtime's own dispositions differ (the engine catches what the
    // harness may leave ignored), so only nothing blocked and nothing caught is asked.
    let out = w.rwasm(&["--plugins", m, "run", "--bundle", b, &id("sigplug")]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}{}", stderr(&out));
    assert_eq!(lines[0], "SigBlk:\t0000000000000000");
    assert_eq!(lines[2], "SigCgt:\t0000000000000000");
}
