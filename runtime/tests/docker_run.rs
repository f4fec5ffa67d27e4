//! `rwasm run IMAGE` the way a Docker user types it, and WASM plugins end to end. Root
//! only (they fail, never skip, otherwise).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn docker(w: &World, args: &[&str]) -> std::process::Output {
    w.rwasm(&[&["run", "--rm"], args].concat())
}

fn containers_left(w: &World) -> usize {
    std::fs::read_dir(w.data.join("containers"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn run_busybox_echo_and_exit_codes() {
    let w = World::new();
    w.setup_image();
    let out = docker(&w, &["busybox", "echo", "hello"]);
    assert_eq!(stdout(&out), "hello\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        docker(&w, &["busybox", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    let out = docker(&w, &["busybox", "no-such-cmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let out = docker(&w, &["busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    // Not in the store, and not pulled (`--pull never`): Docker's error, exit code 125.
    let out = docker(&w, &["--pull", "never", "no-such-image", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("No such image: no-such-image:latest"),
        "{}",
        stderr(&out)
    );
    assert_eq!(containers_left(&w), 0, "--rm removes every bundle");
}

#[test]
fn stdin_is_passed_through() {
    let w = World::new();
    w.setup_image();
    let mut c = w.cmd(&["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "SHOUT\n");
}

#[test]
fn docker_flags_reach_the_container() {
    let w = World::new();
    w.setup_image();
    let out = docker(
        &w,
        &[
            "-e",
            "FOO=bar",
            "--hostname",
            "web",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "busybox",
            "sh",
            "-c",
            "echo $FOO; hostname; pwd; id -u; id -g; echo $$",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["bar", "web", "/tmp", "1000", "1000", "1"]
    );
}

#[test]
fn cpus_memory_and_pids_flags_are_written_to_the_cgroup() {
    let w = World::new();
    w.setup_image();
    let out = docker(
        &w,
        &[
            "--cpus",
            "0.5",
            "-m",
            "64m",
            "--memory-reservation",
            "32m",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "20",
            "busybox",
            "cat",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            "/sys/fs/cgroup/cpu/cpu.shares",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mib = 1u64 << 20;
    let want = [
        "50000",
        "100000",
        "512",
        &(64 * mib).to_string(),
        &(128 * mib).to_string(),
        &(32 * mib).to_string(),
        "20",
    ];
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        want,
        "-m alone allows swap equal to memory"
    );
}

#[test]
fn cpuset_period_quota_and_swap_flags() {
    let w = World::new();
    w.setup_image();
    let out = docker(
        &w,
        &[
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "-m",
            "32m",
            "--memory-swap",
            "-1",
            "busybox",
            "cat",
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
            "/sys/fs/cgroup/cpuset/cpuset.mems",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(&lines[..4], ["0", "0", "50000", "25000"]);
    assert!(
        lines[4].parse::<u64>().unwrap() > 1 << 40,
        "--memory-swap -1: unlimited, got {}",
        lines[4]
    );
    // This host has no blkio.weight: Docker warns and discards the weight.
    let out = docker(&w, &["--blkio-weight", "300", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Weight discarded"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flag_values_exit_125_with_the_flag_named() {
    let w = World::new();
    w.setup_image();
    for (args, needle) in [
        (vec!["-m", "64m", "--memory-swap", "32m"], "--memory-swap"),
        (vec!["-m", "lots"], "--memory"),
        (vec!["--cpus", "-1"], "--cpus"),
        (vec!["--cpus", "0.5", "--cpu-quota", "1000"], "--cpus"),
        (vec!["-u", "ghost"], "--user"),
        (vec!["-u", "4294967295"], "--user"),
        (vec!["--name", "bad/name"], "name"),
    ] {
        let out = docker(&w, &[args.as_slice(), &["busybox", "true"]].concat());
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(containers_left(&w), 0);
}

fn plugin_manifest(w: &World, body: &str) -> std::path::PathBuf {
    let dir = plugin_dir();
    manifest(
        w,
        "plugins.toml",
        &body.replace("@DIR@", dir.to_str().unwrap()),
    )
}

#[test]
fn env_inject_adds_a_variable_seen_inside() {
    let w = World::new();
    w.setup_image();
    let m = plugin_manifest(
        &w,
        r#"
[[plugin]]
name = "env-inject"
path = "@DIR@/env_inject.wasm"
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
INJECTED = "by-a-plugin"
"#,
    );
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $INJECTED",
    ]);
    assert_eq!(stdout(&out), "by-a-plugin\n", "{}", stderr(&out));
    // The OCI path too.
    let b = w.bundle("b", &["sh", "-c", "echo $INJECTED"], json!({}));
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--bundle",
        b.to_str().unwrap(),
        &id("inj"),
    ]);
    assert_eq!(stdout(&out), "by-a-plugin\n", "{}", stderr(&out));
}

const POLICY: &str = r#"
[[plugin]]
name = "policy"
path = "@DIR@/policy.wasm"
kind = "hook"
hooks = ["pre-create"]
"#;

#[test]
fn policy_denies_with_its_reason_and_leaves_nothing_behind() {
    let w = World::new();
    w.setup_image();
    let m = plugin_manifest(&w, POLICY);
    let ms = m.to_str().unwrap();
    let out = w.rwasm(&[
        "--plugins",
        ms,
        "run",
        "--name",
        "nolimit",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("policy: container has no memory limit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(containers_left(&w), 0, "no bundle left");
    assert!(
        mounts_mentioning(w.data.to_str().unwrap()).is_empty(),
        "no overlay left"
    );
    assert!(w.rwasm(&["list", "-q"]).stdout.is_empty(), "no state left");

    // The runc path: an explicit id, so we can look for its cgroup, state dir and process.
    let b = w.bundle("b", &["sleep", "30"], json!({"process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}}, "linux": {"resources": {"memory": {"limit": 67108864}}}}));
    let c = id("denied");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        ms,
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
    assert!(!w.root.join(&c).exists(), "no state directory");
    assert!(cgroup_dirs_named(&c).is_empty(), "no cgroup");
    assert!(mounts_mentioning(&c).is_empty(), "no mount");
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(!stdout(&ps).lines().any(|l| l.contains(&c)), "no process");
    // With a limit and no CAP_SYS_ADMIN the same policy allows it.
    let out = w.rwasm(&[
        "--plugins",
        ms,
        "run",
        "--rm",
        "-m",
        "64m",
        "busybox",
        "echo",
        "allowed",
    ]);
    assert_eq!(stdout(&out), "allowed\n", "{}", stderr(&out));
}

fn misbehave(w: &World, mode: &str, extra: &str) -> std::path::PathBuf {
    plugin_manifest(
        w,
        &format!(
            r#"
[[plugin]]
name = "misbehave"
path = "@DIR@/misbehave.wasm"
kind = "hook"
hooks = ["pre-create"]
timeout-ms = 200
memory-limit = "16MiB"
{extra}
[plugin.config]
mode = "{mode}"
"#
        ),
    )
}

#[test]
fn a_plugin_that_loops_forever_is_stopped_at_its_deadline() {
    let w = World::new();
    w.setup_image();
    let m = misbehave(&w, "loop", "");
    let t = Instant::now();
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "busybox",
        "true",
    ]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("misbehave") && stderr(&out).contains("deadline of 200 ms"),
        "{}",
        stderr(&out)
    );
    assert!(
        took < Duration::from_secs(3),
        "stopped near its 200 ms deadline, took {took:?}"
    );
    assert_eq!(containers_left(&w), 0);
}

#[test]
fn a_plugin_that_allocates_without_bound_is_stopped_at_its_memory_limit() {
    let w = World::new();
    w.setup_image();
    let m = misbehave(&w, "alloc", "");
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("memory limit of 16777216 bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn on_error_ignore_lets_the_container_run_after_a_trap() {
    let w = World::new();
    w.setup_image();
    let m = misbehave(&w, "panic", "on-error = \"ignore\"");
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "busybox",
        "echo",
        "still-ran",
    ]);
    assert_eq!(stdout(&out), "still-ran\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("misbehave"),
        "the skipped failure is logged: {}",
        stderr(&out)
    );
}

#[test]
fn a_malformed_manifest_names_the_key_and_line() {
    let w = World::new();
    w.setup_image();
    let m = manifest(
        &w,
        "bad.toml",
        "[[plugin]]\nname = \"x\"\npath = \"x.wasm\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\ntimeout = 5\n",
    );
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("line 6") || err.contains(":6"),
        "names the line: {err}"
    );
    assert!(err.contains("timeout"), "names the key: {err}");
}

#[test]
fn delete_force_recovers_a_killed_docker_run() {
    let w = World::new();
    w.setup_image();
    let mut run = w
        .cmd(&["run", "--rm", "busybox", "sleep", "30"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    let id = loop {
        let out = w.rwasm(&["list", "-q"]);
        if let Some(id) = stdout(&out).lines().next() {
            break id.to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "container never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    w.wait_status(&id, "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(run.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = run.wait();
    assert!(
        !mounts_mentioning(w.data.to_str().unwrap()).is_empty(),
        "the overlay outlives a killed run"
    );
    let (code, err) = w.rwasm_detached(&["delete", "--force", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        mounts_mentioning(w.data.to_str().unwrap()).is_empty(),
        "delete --force unmounts the overlay"
    );
    assert!(cgroup_dirs_named(&id).is_empty());
}

/// `rwasm --debug run ... 2>&1 | head`: once the reader is gone, every log line fails with
/// EPIPE. That used to panic (tracing-subscriber reports its failed write with eprintln!)
/// half-way through the run and leave the container behind (exit 101).
#[test]
fn a_closed_stderr_does_not_abort_a_run() {
    let w = World::new();
    w.setup_image();
    let mut c = w.cmd(&["--debug", "run", "--name", "epipe", "busybox", "true"]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let out = w.rwasm(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        stdout(&out).starts_with("epipe Exited (0)"),
        "recorded, not left half-made: {}",
        stdout(&out)
    );
    let out = w.rwasm(&["rm", "epipe"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(containers_left(&w), 0);
}

/// A container keeps the plugin manifest it was created with: `create --plugins M` then a
/// plain `start -a` still runs M's hooks at start-container, poststart and poststop
/// (the monitor used to get only the `--plugins` of whoever ran `start`: none here).
#[test]
fn a_container_keeps_the_plugins_it_was_created_with() {
    let w = World::new();
    w.setup_image();
    let log = w.path("audit");
    std::fs::create_dir(&log).unwrap();
    let m = manifest(
        &w,
        "plugins.toml",
        &format!(
            r#"version = 1
[[plugin]]
name = "audit"
path = {:?}
kind = "hook"
hooks = ["start-container", "poststart", "poststop"]
[plugin.config]
log-dir = "/log"
[plugin.grants]
dirs = {{ {:?} = "/log:rw" }}
"#,
            plugin_wasm("audit"),
            log
        ),
    );
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "create",
        "--name",
        "kept",
        "busybox",
        "true",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.rwasm(&["start", "-a", "kept"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = Instant::now();
    let points = || -> Vec<String> {
        std::fs::read_to_string(log.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["point"].to_string())
            .collect()
    };
    // poststop runs when the monitor has recorded the exit, maybe after start returned.
    while points().len() < 3 {
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", points());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        points(),
        ["\"start-container\"", "\"poststart\"", "\"poststop\""]
    );
    let out = w.rwasm(&["rm", "kept"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
