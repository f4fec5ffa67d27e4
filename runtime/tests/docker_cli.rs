//! Docker-style container management, as a person types it: `run -d`, `ps`, `logs`,
//! `stop`, `kill`, `rm`, `wait`, `inspect`, `start`, `restart`, `rename`, `top`,
//! `container prune`, and the monitor behind detached containers. Root only (they
//! fail, never skip, otherwise).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A world whose Docker-style containers are all removed (`rm -f`) when it is dropped.
struct Docker {
    w: World,
}

impl Docker {
    fn new() -> Self {
        let w = World::new();
        w.setup_image();
        Docker { w }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.w.rwasm(args)
    }

    /// `rwasm ARGS` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rwasm {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `run -d ARGS...`; the full id it prints.
    fn detach(&self, args: &[&str]) -> String {
        let out = self.ok(&[&["run", "-d"], args].concat());
        let id = out.trim().to_string();
        assert_eq!(id.len(), 64, "run -d prints the full id: {out:?}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{out:?}");
        id
    }

    fn inspect(&self, c: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", c])).unwrap();
        v[0].clone()
    }

    fn field(&self, c: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, c]).trim().to_string()
    }

    /// The record file of container `id`, as the monitor wrote it.
    fn record(&self, id: &str) -> Value {
        let p = self
            .w
            .data
            .join("containers")
            .join(id)
            .join("container.json");
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }

    /// Poll (bounded at 20 s) until `f` holds.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(20), "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn containers_left(&self) -> usize {
        std::fs::read_dir(self.w.data.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Ok(out) = self.w.cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.w.cmd(&["rm", "-f", id]).output();
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn run_d_prints_the_id_and_the_container_outlives_its_caller_with_logs_kept_apart() {
    let d = Docker::new();
    // The caller is a shell that exits right after `run -d`.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} --data-root {} run -d --name web busybox sh -c 'echo out; echo err >&2; exec sleep 60'",
            rwasm_bin().display(),
            d.w.root.display(),
            d.w.data.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "{id:?}");
    assert_eq!(d.field("web", "{{.State.Status}}"), "running");
    assert_eq!(d.field("web", "{{.Id}}"), id);
    let ps = d.ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.ends_with("web"))
        .expect("ps lists web");
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains("Up "), "{ps}");
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");

    // The monitor is init's parent, in its own session, not the caller's.
    let rec = d.record(&id);
    let monitor = i32::try_from(rec["monitorPid"].as_i64().unwrap()).unwrap();
    let init = i32::try_from(rec["pid"].as_i64().unwrap()).unwrap();
    assert!(alive(monitor));
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(monitor))).unwrap();
    assert_eq!(sid.as_raw(), monitor, "the monitor leads its own session");
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, monitor, "the monitor reaps init");

    d.until("both lines logged", || {
        let o = d.run(&["logs", "web"]);
        stdout(&o) == "out\n" && stderr(&o) == "err\n"
    });
    let log = std::fs::read_to_string(
        d.w.data
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut streams: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().into(),
                e["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    streams.sort();
    assert_eq!(
        streams,
        vec![
            ("stderr".into(), "err\n".into()),
            ("stdout".into(), "out\n".into())
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e["time"].as_str().unwrap().ends_with('Z')),
        "{log}"
    );
}

#[test]
fn exit_codes_are_recorded_0_3_and_137_after_kill() {
    let d = Docker::new();
    d.detach(&["--name", "zero", "busybox", "true"]);
    d.detach(&["--name", "three", "busybox", "sh", "-c", "exit 3"]);
    d.detach(&["--name", "killed", "busybox", "sleep", "60"]);
    assert_eq!(d.ok(&["wait", "zero"]), "0\n");
    assert_eq!(d.ok(&["wait", "three"]), "3\n");
    assert_eq!(d.ok(&["kill", "killed"]), "killed\n");
    assert_eq!(d.ok(&["wait", "killed"]), "137\n");
    assert_eq!(
        d.field(
            "killed",
            "{{.State.ExitCode}} {{.State.Status}} {{.State.Running}}"
        ),
        "137 exited false"
    );
    let v = d.inspect("three");
    assert_eq!(v["Name"], "/three");
    assert_eq!(v["Path"], "sh");
    assert_eq!(v["Args"], serde_json::json!(["-c", "exit 3"]));
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]);
    for (name, code) in [("zero", 0), ("three", 3), ("killed", 137)] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .expect(name);
        assert!(
            line.starts_with(&format!("{name}\tExited ({code}) ")) && line.ends_with(" ago"),
            "{line}"
        );
    }
    assert_eq!(
        d.ok(&["ps", "-q"]),
        "",
        "ps without -a shows only running ones"
    );
    let out = d.run(&["kill", "zero"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

/// Between a detached container's exit and its monitor's record of it, `inspect` and `ps`
/// used to say "exited, code unknown" (ExitCode -1, "Exited (unknown)"): they now wait
/// for the monitor's record, so every reading is running or the recorded exit.
#[test]
fn inspect_and_ps_right_after_an_exit_report_the_recorded_code() {
    let d = Docker::new();
    for i in 0..5 {
        let name = format!("quick{i}");
        d.detach(&["--name", &name, "busybox", "sh", "-c", "exit 3"]);
        let t = Instant::now();
        loop {
            let s = d.field(
                &name,
                "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
            );
            assert!(s == "running 0" || s == "exited 3", "{name}: {s:?}");
            let ps = d.ok(&[
                "ps",
                "-a",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Status}}",
            ]);
            assert!(
                ps.starts_with("Up ") || ps.starts_with("Exited (3) "),
                "{name}: {ps:?}"
            );
            if s == "exited 3" && ps.starts_with("Exited") {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{name} never exited");
        }
    }
}

#[test]
fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let d = Docker::new();
    d.detach(&[
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    d.detach(&[
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 5' TERM; touch /trapped; while true; do sleep 0.1; done",
    ]);
    // A signal that comes before the trap is set is dropped by the shell (PID 1 of its
    // namespace, no handler yet), which then ends as 137 after the timeout.
    let trapped = |c: &str| {
        d.run(&["exec", c, "test", "-e", "/trapped"])
            .status
            .success()
    };
    d.until("polite set its trap", || trapped("polite"));
    let t = Instant::now();
    assert_eq!(d.ok(&["stop", "-t", "1", "stubborn"]), "stubborn\n");
    // Well under the 10 s default: the 1 s given was the one waited (no bound on speed).
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(
        d.field("stubborn", "{{.State.ExitCode}}"),
        "137",
        "SIGKILL after the timeout"
    );
    // --stop-timeout is the default of a plain `stop`.
    d.detach(&[
        "--name",
        "stubborn1",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(d.field("stubborn1", "{{.Config.StopTimeout}}"), "1");
    let t = Instant::now();
    d.ok(&["stop", "stubborn1"]);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(d.field("stubborn1", "{{.State.ExitCode}}"), "137");
    assert_eq!(d.ok(&["stop", "-t", "5", "polite"]), "polite\n");
    assert_eq!(
        d.field("polite", "{{.State.ExitCode}}"),
        "5",
        "SIGTERM ran its trap"
    );
    assert_eq!(
        d.ok(&["stop", "polite"]),
        "polite\n",
        "stopping a stopped container is fine"
    );
    // --stop-signal is recorded and used.
    d.detach(&[
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; touch /trapped; while true; do sleep 0.1; done",
    ]);
    assert_eq!(d.field("usr1", "{{.Config.StopSignal}}"), "USR1");
    d.until("usr1 set its trap", || trapped("usr1"));
    d.ok(&["stop", "usr1"]);
    assert_eq!(d.field("usr1", "{{.State.ExitCode}}"), "7");
}

#[test]
fn names_are_unique_and_every_command_takes_a_name_an_id_or_a_prefix() {
    let d = Docker::new();
    let id = d.detach(&["--name", "web", "busybox", "sleep", "60"]);
    let out = d.run(&["run", "-d", "--name", "web", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\""
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.containers_left(), 1, "the refused run left nothing");
    for how in [&id[..], &id[..7], "web", "/web"] {
        assert_eq!(d.field(how, "{{.Id}}"), id, "resolving {how}");
    }
    let out = d.run(&["inspect", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
    d.ok(&["rename", "web", "site"]);
    assert_eq!(d.field("site", "{{.Name}}"), "/site");
    assert!(
        !d.run(&["inspect", "web"]).status.success(),
        "the old name is free"
    );
    d.detach(&["--name", "web", "busybox", "true"]);
    assert_eq!(
        d.ok(&["ps", "-a", "--filter", "name=site", "-q", "--no-trunc"])
            .trim(),
        id
    );
    let out = d.run(&["rename", "site", "bad/name"]);
    assert!(!out.status.success());
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_leaves_nothing_behind() {
    let d = Docker::new();
    let id = d.detach(&["--name", "busy", "busybox", "sleep", "60"]);
    assert!(!cgroup_dirs_named(&id).is_empty());
    let out = d.run(&["rm", "busy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot remove container \"/busy\": container is running: stop the container before removing or force remove"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.field("busy", "{{.State.Status}}"), "running");
    assert_eq!(d.ok(&["rm", "-f", "busy"]), "busy\n");
    assert!(cgroup_dirs_named(&id).is_empty(), "no cgroup");
    assert!(
        mounts_mentioning(d.w.data.to_str().unwrap()).is_empty(),
        "no mount"
    );
    assert!(!d.w.root.join(&id).exists(), "no OCI state");
    assert_eq!(d.containers_left(), 0, "no bundle or record");
    assert!(!d.w.data.join("names/busy").exists(), "no name");
    d.detach(&["--name", "busy", "busybox", "true"]);
    // A stopped one is removed without -f.
    d.ok(&["wait", "busy"]);
    assert_eq!(d.ok(&["rm", "busy"]), "busy\n");
    assert_eq!(d.containers_left(), 0);
}

#[test]
fn rm_flag_removes_everything_when_the_container_exits() {
    let d = Docker::new();
    let id = d.detach(&["--rm", "busybox", "sh", "-c", "echo bye"]);
    d.until("the container removed itself", || d.containers_left() == 0);
    assert!(cgroup_dirs_named(&id).is_empty());
    assert!(mounts_mentioning(d.w.data.to_str().unwrap()).is_empty());
    assert!(!d.w.root.join(&id).exists());
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let out = d.run(&[
        "run",
        "-d",
        "--rm",
        "--restart",
        "always",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("Conflicting options: --restart and --rm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn restart_on_failure_2_restarts_twice_then_stops() {
    let d = Docker::new();
    d.detach(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    d.until("restarted twice and gave up", || {
        let rec = d.record(&d.field("flaky", "{{.Id}}"));
        let monitor = rec["monitorPid"]
            .as_i64()
            .map(|p| i32::try_from(p).unwrap());
        rec["restartCount"] == 2 && rec["state"] == "exited" && !monitor.is_some_and(alive)
    });
    assert_eq!(
        d.ok(&["logs", "flaky"]),
        "run\nrun\nrun\n",
        "one run and two restarts"
    );
    assert_eq!(d.field("flaky", "{{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"), "2 1 on-failure 2");
    // A stop ends an `always` container for good.
    d.detach(&[
        "--name",
        "forever",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]);
    d.until("restarted at least once", || {
        d.record(&d.field("forever", "{{.Id}}"))["restartCount"].as_u64() >= Some(1)
    });
    d.ok(&["stop", "-t", "1", "forever"]);
    let rec = d.record(&d.field("forever", "{{.Id}}"));
    assert_eq!(rec["state"], "exited", "{rec}");
    let n = rec["restartCount"].clone();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.record(&d.field("forever", "{{.Id}}"))["restartCount"],
        n,
        "no restart after stop"
    );
    assert_eq!(d.field("forever", "{{.State.Status}}"), "exited");
}

#[test]
fn a_killed_monitor_never_leaves_a_dead_container_reported_running() {
    let d = Docker::new();
    let id = d.detach(&["--name", "orphan", "busybox", "sleep", "60"]);
    let rec = d.record(&id);
    let monitor = i32::try_from(rec["monitorPid"].as_i64().unwrap()).unwrap();
    let init = i32::try_from(rec["pid"].as_i64().unwrap()).unwrap();
    let kill9 = |pid| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    kill9(monitor);
    d.until("the monitor is gone", || !alive(monitor));
    assert_eq!(
        d.field("orphan", "{{.State.Status}}"),
        "running",
        "init still runs: that is the truth"
    );
    kill9(init);
    d.until("init is gone", || !alive(init));
    let ps = d.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}\t{{.Status}}\t{{.State}}",
    ]);
    assert_eq!(ps, "orphan\tExited (unknown)\texited\n");
    assert_eq!(d.ok(&["ps", "-q"]), "", "not listed as running");
    let v = d.inspect("orphan");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["ExitCode"], -1);
    let out = d.run(&["wait", "orphan"]);
    assert!(stderr(&out).contains("unknown"), "{}", stderr(&out));
    assert_eq!(d.ok(&["rm", "orphan"]), "orphan\n");
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "rm cleaned up after the dead monitor"
    );
    assert!(!d.w.root.join(&id).exists());
    assert!(mounts_mentioning(d.w.data.to_str().unwrap()).is_empty());
}

#[test]
fn logs_follow_tail_since_and_timestamps() {
    let d = Docker::new();
    d.detach(&[
        "--name",
        "count",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done",
    ]);
    assert_eq!(
        d.ok(&["logs", "-f", "count"]),
        "1\n2\n3\n4\n5\n",
        "-f follows to the end"
    );
    assert_eq!(d.ok(&["logs", "--tail", "2", "count"]), "4\n5\n");
    assert_eq!(d.ok(&["logs", "--since", "1h", "count"]), "1\n2\n3\n4\n5\n");
    assert_eq!(
        d.ok(&[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--tail",
            "1",
            "count"
        ]),
        "5\n"
    );
    let future =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(3600))
            .to_string();
    assert_eq!(d.ok(&["logs", "--since", &future, "count"]), "");
    let ts = d.ok(&["logs", "-t", "count"]);
    for (i, line) in ts.lines().enumerate() {
        let (t, text) = line.split_once(' ').unwrap();
        assert!(humantime::parse_rfc3339(t).is_ok(), "{line}");
        assert_eq!(text, (i + 1).to_string());
    }
    let out = d.run(&["logs", "--tail", "x", "count"]);
    assert!(
        !out.status.success() && stderr(&out).contains("--tail"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ps_filters_limits_and_formats() {
    let d = Docker::new();
    let a = d.detach(&[
        "--name", "a", "-l", "tier=web", "-l", "solo", "busybox", "sleep", "60",
    ]);
    d.detach(&["--name", "b", "-l", "tier=db", "busybox", "true"]);
    d.ok(&["wait", "b"]);
    let c = d.detach(&["--name", "c", "busybox", "sleep", "60"]);
    let q = |args: &[&str]| d.ok(&[&["ps"], args].concat());
    assert_eq!(
        q(&["-q"]),
        format!("{}\n{}\n", &c[..12], &a[..12]),
        "running ones, newest first"
    );
    assert_eq!(q(&["-aq", "-n", "1"]), format!("{}\n", &c[..12]));
    assert_eq!(q(&["-q", "-l", "--no-trunc"]), format!("{c}\n"));
    assert_eq!(
        q(&["--filter", "status=exited", "--format", "{{.Names}}"]),
        "b\n"
    );
    assert_eq!(
        q(&["-a", "--filter", "label=tier=web", "--format", "{{.Names}}"]),
        "a\n"
    );
    assert_eq!(
        q(&["-a", "--filter", "label=tier", "--format", "{{.Names}}"]),
        "b\na\n"
    );
    assert_eq!(
        q(&[
            "-a",
            "--filter",
            "label=solo",
            "--filter",
            "name=a",
            "--format",
            "{{.Names}}"
        ]),
        "a\n"
    );
    assert_eq!(
        q(&[
            "-a",
            "--filter",
            "status=running",
            "--filter",
            "status=exited",
            "-q"
        ])
        .lines()
        .count(),
        3
    );
    let json: Vec<Value> = q(&["-a", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), 3);
    let jb = json.iter().find(|v| v["Names"] == "b").unwrap();
    assert_eq!(jb["State"], "exited");
    assert_eq!(jb["Command"], "\"true\"");
    assert_eq!(jb["Labels"], "tier=db");
    assert!(jb["Status"].as_str().unwrap().starts_with("Exited (0) "));
    let table = q(&["-a", "--format", "table {{.Names}}\\t{{.State}}"]);
    assert_eq!(table.lines().next().unwrap(), "NAMES   STATE");
    let out = d.run(&["ps", "--filter", "status=sleeping"]);
    assert!(
        !out.status.success() && stderr(&out).contains("status=sleeping"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn start_attach_restart_and_prune() {
    let d = Docker::new();
    let id = d.detach(&[
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo hello; exit 4",
    ]);
    assert_eq!(d.ok(&["wait", "once"]), "4\n");
    let out = d.run(&["start", "-a", "once"]);
    assert_eq!(stdout(&out), "hello\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(4), "start -a returns the exit code");
    assert_eq!(
        d.ok(&["logs", "once"]),
        "hello\nhello\n",
        "logs keep both runs"
    );
    d.detach(&["--name", "svc", "busybox", "sleep", "60"]);
    let pid1 = d.field("svc", "{{.State.Pid}}");
    assert_eq!(d.ok(&["restart", "-t", "0", "svc"]), "svc\n");
    assert_eq!(d.field("svc", "{{.State.Status}}"), "running");
    assert_ne!(d.field("svc", "{{.State.Pid}}"), pid1, "a new init");
    let top = d.ok(&["top", "svc"]);
    assert!(top.starts_with("UID") && top.contains("sleep 60"), "{top}");
    let out = d.ok(&["container", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Containers:\n") && out.contains(&id),
        "{out}"
    );
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "svc\n",
        "the running one stays"
    );
    assert!(!d.w.data.join("containers").join(&id).exists());
}

#[test]
fn foreground_runs_are_recorded_and_removable() {
    let d = Docker::new();
    let out = d.run(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo hi; exit 4",
    ]);
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(out.status.code(), Some(4));
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("fg Exited (4) "), "{ps}");
    let out = d.run(&["logs", "fg"]);
    assert!(stderr(&out).contains("run attached"), "{}", stderr(&out));
    d.ok(&["rm", "fg"]);
    assert_eq!(d.containers_left(), 0);
}

#[test]
fn runc_grammar_still_drives_oci_containers_named_by_id() {
    let w = World::new();
    let b = w.bundle("b", &["sleep", "60"], serde_json::json!({}));
    let c = id("oci");
    let (code, err) = w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = w.rwasm_detached(&["start", &c]);
    assert_eq!(code, 0, "{err}");
    w.wait_status(&c, "running");
    let out = w.rwasm(&["kill", &c, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    w.wait_status(&c, "stopped");
    assert!(w.rwasm(&["delete", &c]).status.success());
}

#[test]
fn fifty_detached_containers_started_in_parallel_all_run_and_are_listed() {
    let d = Docker::new();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let d = &d;
                s.spawn(move || d.detach(&["--name", &format!("p{i}"), "busybox", "sleep", "120"]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut listed: Vec<String> = d
        .ok(&["ps", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want, "all 50 run and are listed");
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(names.lines().count(), 50);
    let args: Vec<&str> = ["rm", "-f"]
        .into_iter()
        .chain(ids.iter().map(String::as_str))
        .collect();
    d.ok(&args);
    assert_eq!(d.containers_left(), 0);
    assert!(ids.iter().all(|id| cgroup_dirs_named(id).is_empty()));
}

#[test]
fn pause_freezes_a_counter_and_unpause_lets_it_go_on() {
    let d = Docker::new();
    let id = d.detach(&[
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.02; done",
    ]);
    let counter = d.w.data.join("containers").join(&id).join("rootfs/tmp/n");
    let read = || {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    d.until("the counter runs", || read().is_some_and(|n| n > 2));
    assert_eq!(d.ok(&["pause", "ctr"]), "ctr\n");
    assert_eq!(d.ok(&["ps", "--format", "{{.State}}"]), "paused\n");
    assert!(
        d.ok(&["ps", "--format", "{{.Status}}"])
            .trim_end()
            .ends_with("(Paused)")
    );
    let frozen = read().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read().unwrap(), frozen, "nothing runs while paused");
    let out = d.run(&["pause", "ctr"]);
    assert!(
        stderr(&out).contains("container ctr is already paused"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.ok(&["unpause", "ctr"]), "ctr\n");
    d.until("the counter moves again", || {
        read().is_some_and(|n| n > frozen)
    });
    let out = d.run(&["unpause", "ctr"]);
    assert!(
        stderr(&out).contains("container ctr is not paused"),
        "{}",
        stderr(&out)
    );
    // A paused container can still be removed with -f, leaving nothing.
    d.ok(&["pause", "ctr"]);
    d.ok(&["rm", "-f", "ctr"]);
    assert!(cgroup_dirs_named(&id).is_empty());
    assert_eq!(d.containers_left(), 0);
}

#[test]
fn create_makes_a_created_container_that_start_runs() {
    let d = Docker::new();
    let id = d
        .ok(&[
            "create",
            "--name",
            "later",
            "-l",
            "k=v",
            "busybox",
            "sh",
            "-c",
            "echo started",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id:?}");
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Labels}}"]),
        "later Created k=v\n"
    );
    assert_eq!(
        d.ok(&["ps", "-q"]),
        "",
        "a created container is not running"
    );
    assert!(!d.w.root.join(&id).exists(), "nothing runs yet");
    let out = d.run(&["start", "-a", "later"]);
    assert_eq!(stdout(&out), "started\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        d.field("later", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    // A command that is not there: start fails, the container stays created with the error.
    d.ok(&["create", "--name", "broken", "busybox", "no-such-cmd"]);
    let out = d.run(&["start", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-cmd"), "{}", stderr(&out));
    assert_eq!(
        d.field("broken", "{{.State.Status}} {{.State.ExitCode}}"),
        "created 127"
    );
    let out = d.run(&["run", "-d", "busybox", "no-such-cmd"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "run -d follows Docker's exit codes"
    );
    assert!(
        mounts_mentioning(d.w.data.to_str().unwrap()).is_empty(),
        "failed starts leave no mount"
    );
}

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    let d = Docker::new();
    let id = d.detach(&["--name", "ex", "-h", "boxy", "busybox", "sleep", "60"]);
    assert_eq!(d.ok(&["exec", "ex", "hostname"]), "boxy\n", "uts namespace");
    let ps = d.ok(&["exec", "ex", "ps", "-o", "pid,args"]);
    assert!(
        ps.lines().any(|l| l.trim() == "1 sleep 60"),
        "pid namespace: init is pid 1: {ps}"
    );
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-u",
            "65534:65534",
            "ex",
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; id -g"
        ]),
        "bar\n/tmp\n65534\n65534\n"
    );
    assert_eq!(
        d.ok(&["exec", "ex", "sh", "-c", "echo $HOSTNAME"]),
        "boxy\n",
        "the container's environment"
    );
    let out = d.run(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let out = d.run(&["exec", "ex", "no-such-cmd"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    // -i streams stdin; without it the command reads nothing.
    let mut c = d.w.cmd(&["exec", "-i", "ex", "cat"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "typed\n");
    // -d returns at once; the process runs in the container's cgroup.
    d.ok(&["exec", "-d", "ex", "sleep", "30"]);
    let top = d.ok(&["top", "ex"]);
    assert!(top.contains("sleep 30"), "{top}");
    let procs: Vec<String> = cgroup_dirs_named(&id)
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .collect();
    assert!(
        procs.iter().all(|p| p.lines().count() == 2),
        "init and the exec'd sleep in every hierarchy: {procs:?}"
    );
    d.ok(&["stop", "-t", "0", "ex"]);
    let out = d.run(&["exec", "ex", "true"]);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "the exec'd process went with the container"
    );
}

#[test]
fn exec_s_caller_stays_out_of_the_cgroup_and_reports_137_when_the_container_ends() {
    let d = Docker::new();
    let id = d.detach(&[
        "--name",
        "exo",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.05; done",
    ]);
    let mut c = d.w.cmd(&["exec", "exo", "sleep", "60"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let caller = child.id().to_string();
    let procs = || -> Vec<String> {
        cgroup_dirs_named(&id)
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !procs().iter().all(|p| p.lines().count() == 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the exec'd sleep never joined: {:?}",
            procs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        procs().iter().all(|p| !p.lines().any(|l| l == caller)),
        "init and the exec'd sleep only, not `rwasm exec` {caller}: {:?}",
        procs()
    );
    let own = std::fs::read_to_string(format!("/proc/{caller}/cgroup")).unwrap();
    assert!(!own.contains(&id), "{own}");
    // The container ends: its pid namespace and cgroup are killed, the exec'd sleep with
    // them; the caller is not, and reports the kill as Docker does (128 + 9).
    d.ok(&["exec", "-d", "exo", "touch", "/tmp/go"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
}
