//! Docker's `-i` without `-t`: `run -di` and `create -i` keep the container's stdin open
//! in its monitor, `attach` and `start -a[i]` stream stdin in and stdout/stderr out (kept
//! apart), the exit code reaches the client even with `--rm`; and `cp` with `-` (a tar
//! stream on stdout or stdin), hostile archives refused. Root only (fails, never skips).

mod common;

use std::io::{Read, Write};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One entry of a test tar: kind ('d', 'f', 'l'), name, content or link target.
type TarEntry<'a> = (char, &'a str, &'a str);

fn world() -> World {
    let w = World::new();
    w.setup_image();
    w
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

/// `rwasm ARGS` with `input` on its stdin (then end of file), output captured.
fn with_input(w: &World, args: &[&str], input: &[u8]) -> Output {
    let mut c = w.cmd(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait_output(child)
}

/// The child's output, failing the test if it runs for more than 30 s.
fn wait_output(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after 30 s: {}{}", stdout(&out), stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn inspect(w: &World, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(&w.rwasm(&["inspect", name]))).unwrap();
    if v.is_array() { v[0].clone() } else { v }
}

fn detached(w: &World, args: &[&str]) {
    let (code, err) = w.rwasm_detached(args);
    assert_eq!(code, 0, "{args:?}: {err}");
}

#[test]
fn run_di_then_attach_streams_stdin_and_its_end_closes_the_containers() {
    let w = world();
    let name = format!("cat-{}", rand_suffix());
    detached(&w, &["run", "-di", "--name", &name, "busybox", "cat"]);
    let v = inspect(&w, &name);
    assert_eq!(v["Config"]["OpenStdin"], true, "{v}");
    assert_eq!(v["Config"]["Tty"], false, "{v}");
    let out = with_input(&w, &["attach", &name], b"hello\nworld\n");
    assert_eq!(stdout(&out), "hello\nworld\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The end of our stdin ended cat: exited 0, recorded; the log has what it echoed.
    assert_eq!(ok(&w.rwasm(&["wait", &name])).trim(), "0");
    let v = inspect(&w, &name);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 0, "{v}");
    assert_eq!(ok(&w.rwasm(&["logs", &name])), "hello\nworld\n");
    ok(&w.rwasm(&["rm", &name]));
}

#[test]
fn attach_keeps_stdout_and_stderr_apart_and_returns_the_exit_code() {
    let w = world();
    let name = format!("split-{}", rand_suffix());
    detached(
        &w,
        &[
            "run",
            "-di",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "read x; echo out $x; echo err $x >&2; exit 3",
        ],
    );
    let out = with_input(&w, &["attach", &name], b"abc\n");
    assert_eq!(stdout(&out), "out abc\n");
    assert_eq!(stderr(&out), "err abc\n");
    assert_eq!(out.status.code(), Some(3));
    let logs = w.rwasm(&["logs", &name]);
    assert_eq!(stdout(&logs), "out abc\n");
    assert_eq!(stderr(&logs), "err abc\n");
    ok(&w.rwasm(&["rm", &name]));
}

#[test]
fn without_a_terminal_the_detach_keys_are_input_as_docker_has_it() {
    let w = world();
    let name = format!("keys-{}", rand_suffix());
    detached(&w, &["run", "-di", "--name", &name, "busybox", "cat"]);
    let out = with_input(&w, &["attach", &name], b"a\x10\x11b\n");
    assert_eq!(out.stdout, b"a\x10\x11b\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    ok(&w.rwasm(&["rm", &name]));
}

#[test]
fn attach_to_a_container_without_i_gets_its_output_only() {
    let w = world();
    let name = format!("noi-{}", rand_suffix());
    detached(
        &w,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo tick; cat; echo end >&2; exit 2",
        ],
    );
    let v = inspect(&w, &name);
    assert_eq!(v["Config"]["OpenStdin"], false, "{v}");
    let mut c = w.cmd(&["attach", &name]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"not for the container\n").unwrap();
    // Once attached (its socket is in the monitor's list), the container goes on.
    std::thread::sleep(Duration::from_millis(500));
    // Detached: the container exits as soon as it sees the file, and its pid namespace's
    // end kills a `touch` that has not exited yet (137, the CI failure of stop 13).
    ok(&w.rwasm(&["exec", "-d", &name, "touch", "/tmp/go"]));
    let out = wait_output(child);
    drop(input);
    assert_eq!(stdout(&out), "tick\n", "cat read /dev/null, not our stdin");
    assert_eq!(stderr(&out), "end\n");
    assert_eq!(out.status.code(), Some(2));
    ok(&w.rwasm(&["rm", &name]));
}

/// Docker's client refuses to attach a stdin that is not a terminal to a container's
/// terminal: "the input device is not a TTY" (`attach`, `run -it`, `exec -it`, `start
/// -ai`), unless stdin is left out (`attach --no-stdin`).
#[test]
fn attaching_stdin_that_is_not_a_tty_to_a_t_container_is_refused_unless_no_stdin() {
    let w = world();
    let name = format!("ntty-{}", rand_suffix());
    detached(
        &w,
        &[
            "run",
            "-d",
            "-t",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo tick; exit 3",
        ],
    );
    // Our stdin is /dev/null here. Docker's client refuses before anything is asked of the
    // daemon: its own exit code 1, for run and attach too (not their 125).
    let refused = |args: &[&str], code: i32| {
        let mut c = w.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = &wait_output(c.spawn().unwrap());
        assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
        assert!(
            stderr(out).contains("the input device is not a TTY"),
            "{}",
            stderr(out)
        );
    };
    refused(&["attach", &name], 1);
    refused(&["exec", "-it", &name, "true"], 1);
    refused(
        &["run", "--rm", "-it", "--name", "never", "busybox", "true"],
        1,
    );
    assert!(
        !w.rwasm(&["inspect", "never"]).status.success(),
        "a refused run -it leaves no container"
    );
    ok(&w.rwasm(&["exec", "-t", &name, "true"]));
    let mut c = w.cmd(&["attach", "--no-stdin", &name]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Detached: the container's end would kill a `touch` still in its cgroup.
    ok(&w.rwasm(&["exec", "-d", &name, "touch", "/tmp/go"]));
    let out = wait_output(child);
    assert_eq!(stdout(&out), "tick\r\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(3));
    ok(&w.rwasm(&["rm", &name]));
}

#[test]
fn create_i_then_start_ai_streams_stdin_and_start_a_streams_output() {
    let w = world();
    let name = format!("cai-{}", rand_suffix());
    ok(&w.rwasm(&[
        "create",
        "-i",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "cat; echo done >&2; exit 4",
    ]));
    let out = with_input(&w, &["start", "-ai", &name], b"typed\n");
    assert_eq!(stdout(&out), "typed\n", "{}", stderr(&out));
    assert_eq!(stderr(&out), "done\n");
    assert_eq!(out.status.code(), Some(4));

    // start -a without -i: output only, kept apart, its code; with --rm, gone after.
    let other = format!("{name}-a");
    ok(&w.rwasm(&[
        "create",
        "--rm",
        "--name",
        &other,
        "busybox",
        "sh",
        "-c",
        "echo o; echo e >&2; exit 6",
    ]));
    let out = w.rwasm(&["start", "-a", &other]);
    assert_eq!(stdout(&out), "o\n");
    assert_eq!(stderr(&out), "e\n");
    assert_eq!(out.status.code(), Some(6));
    let t = Instant::now();
    while w.rwasm(&["inspect", &other]).status.success() {
        assert!(t.elapsed() < Duration::from_secs(10), "--rm left it behind");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&w.rwasm(&["rm", &name]));
}

/// The old monitor removed a `--rm` container 2 s after its end whether or not its
/// client had read the exit code; a client that was slow (here: stopped) then got 0.
#[test]
fn the_exit_code_reaches_a_slow_client_before_rm_removes_the_container() {
    let w = world();
    for args in [
        &[
            "run",
            "--rm",
            "-t",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 1; exit 3",
        ][..],
        &[
            "run",
            "--rm",
            "-i",
            "-d",
            "busybox",
            "sh",
            "-c",
            "read x; echo ready; sleep 1; exit 3",
        ][..],
    ] {
        let detach = args.contains(&"-d");
        let name = format!("slow-{}", rand_suffix());
        let mut args = args.to_vec();
        args.splice(1..1, ["--name", name.as_str()]);
        let mut child = if detach {
            detached(&w, &args);
            let mut c = w.cmd(&["attach", &name]);
            c.stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = c.spawn().unwrap();
            child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
            child
        } else {
            let mut c = w.cmd(&args);
            c.stdout(Stdio::piped());
            c.spawn().unwrap()
        };
        let mut out = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let n = out.read(&mut buf).unwrap();
            assert!(n > 0, "no output: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        // The container exits meanwhile and --rm removes it.
        let t = Instant::now();
        while w.rwasm(&["inspect", &name]).status.success() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "--rm never removed it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{args:?}");
    }
}

/// `restart` (stop, then start) while a client that has not read the exit code keeps the
/// old monitor lingering: `start` waits for that monitor instead of calling the container
/// busy (CI saw "is being started or stopped" from `restart -t 0`).
#[test]
fn restart_waits_for_the_old_monitor_a_slow_client_keeps() {
    let w = world();
    detached(
        &w,
        &["run", "-d", "--name", "svc", "busybox", "sleep", "60"],
    );
    let pid1 = inspect(&w, "svc")["State"]["Pid"].clone();
    let mut c = w.cmd(&["attach", "svc"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut client = c.spawn().unwrap();
    // Attached once the monitor counts it: give it a moment, then stop it reading.
    std::thread::sleep(Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(client.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let out = w.rwasm(&["restart", "-t", "0", "svc"]);
    assert_eq!(ok(&out), "svc\n", "{}", stderr(&out));
    let after = inspect(&w, "svc");
    assert_eq!(after["State"]["Status"], "running");
    assert_ne!(after["State"]["Pid"], pid1, "a new init");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let status = client.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(137),
        "the client got the old run's code"
    );
    ok(&w.rwasm(&["rm", "-f", "svc"]));
}

// ---- cp with `-` ----

/// A tar holding `d/` (0750), `d/f` (0640, "file body\n") and `d/l -> f`.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_size(0);
    b.append_data(&mut h, "d", std::io::empty()).unwrap();
    let body = b"file body\n";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o640);
    h.set_size(body.len() as u64);
    b.append_data(&mut h, "d/f", &body[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, "d/l", "f").unwrap();
    b.into_inner().unwrap()
}

/// (path, kind, content or link target, mode) of every entry in `tar`.
fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, String, u32)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            let mode = e.header().mode().unwrap();
            let mut body = String::new();
            if kind == tar::EntryType::Symlink {
                body = e.link_name().unwrap().unwrap().display().to_string();
            } else {
                e.read_to_string(&mut body).unwrap();
            }
            (path, kind, body, mode)
        })
        .collect()
}

#[test]
fn cp_dash_extracts_a_tar_into_a_directory_and_writes_one_back() {
    let w = world();
    let name = format!("cpt-{}", rand_suffix());
    detached(
        &w,
        &["run", "-d", "--name", &name, "busybox", "sleep", "300"],
    );
    let out = with_input(&w, &["cp", "-", &format!("{name}:/tmp")], &sample_tar());
    ok(&out);
    let exec = |cmd: &[&str]| {
        let mut a = vec!["exec", name.as_str()];
        a.extend_from_slice(cmd);
        ok(&w.rwasm(&a))
    };
    assert_eq!(exec(&["cat", "/tmp/d/l"]), "file body\n");
    assert_eq!(exec(&["readlink", "/tmp/d/l"]), "f\n");
    assert_eq!(
        exec(&["stat", "-c", "%a %u", "/tmp/d/f", "/tmp/d"]),
        "640 0\n750 0\n"
    );

    // And back out as a tar stream on stdout, named from the path's last name.
    let out = w.rwasm(&["cp", &format!("{name}:/tmp/d"), "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Names in order: rwasm lists a directory sorted.
    let got = entries(&out.stdout);
    assert_eq!(
        got,
        vec![
            ("d".into(), tar::EntryType::Directory, String::new(), 0o750),
            (
                "d/f".into(),
                tar::EntryType::Regular,
                "file body\n".into(),
                0o640
            ),
            ("d/l".into(), tar::EntryType::Symlink, "f".into(), 0o777),
        ]
    );
    // A single file; -L follows a link.
    let out = w.rwasm(&["cp", "-L", &format!("{name}:/tmp/d/l"), "-"]);
    assert_eq!(
        entries(&out.stdout),
        vec![(
            "l".into(),
            tar::EntryType::Regular,
            "file body\n".into(),
            0o640
        )]
    );

    // A stopped container: its rootfs is mounted for the copy.
    let stopped = format!("{name}-s");
    ok(&w.rwasm(&["create", "--name", &stopped, "busybox", "cat", "/tmp/d/l"]));
    ok(&with_input(
        &w,
        &["cp", "-", &format!("{stopped}:/tmp")],
        &sample_tar(),
    ));
    assert_eq!(ok(&w.rwasm(&["start", "-a", &stopped])), "file body\n");
    ok(&w.rwasm(&["rm", "-f", &name, &stopped]));
}

/// A tar of `(kind, path, body or link target)` entries: `f` file, `l` symlink, `h` hard link.
fn tar_of(entries: &[(char, &str, &str)]) -> Vec<u8> {
    // Raw headers: the tar crate refuses to write `..` and absolute names.
    let mut out = Vec::new();
    for (kind, path, body) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_mode(0o644);
        let data: &[u8] = match kind {
            'f' => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(body.len() as u64);
                body.as_bytes()
            }
            k => {
                h.set_entry_type(if *k == 'l' {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.as_old_mut().linkname[..body.len()].copy_from_slice(body.as_bytes());
                h.set_size(0);
                b""
            }
        };
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn cp_dash_refuses_a_hostile_tar_and_writes_nothing() {
    let w = world();
    let name = format!("cph-{}", rand_suffix());
    detached(
        &w,
        &["run", "-d", "--name", &name, "busybox", "sleep", "300"],
    );
    let outside = w.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let out_s = outside.to_str().unwrap();
    let dotdot = format!("../../../../../..{out_s}/dotdot");
    let abs = format!("{out_s}/abs");
    let cases: Vec<(Vec<TarEntry>, String)> = vec![
        (
            vec![('f', "first", "x"), ('f', &dotdot, "evil")],
            format!("tar entry {dotdot:?} is refused: \"..\" component"),
        ),
        (
            vec![('f', "first", "x"), ('f', &abs, "evil")],
            format!("tar entry {abs:?} is refused: absolute path"),
        ),
        (
            vec![
                ('f', "first", "x"),
                ('l', "esc", out_s),
                ('f', "esc/through", "evil"),
            ],
            "tar entry \"esc/through\" is refused: path through the symlink esc".to_string(),
        ),
        (
            vec![('l', "esc", "/etc"), ('h', "hard", "esc/passwd")],
            "tar entry \"hard -> esc/passwd\" is refused: path through the symlink esc".to_string(),
        ),
    ];
    for (entries, message) in cases {
        let out = with_input(&w, &["cp", "-", &format!("{name}:/tmp")], &tar_of(&entries));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(&message), "{}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing lands outside the rootfs"
    );
    let ls = ok(&w.rwasm(&["exec", &name, "ls", "-A", "/tmp"]));
    assert_eq!(ls, "", "nothing written from a refused archive");

    // The destination must be an existing directory (Docker's words).
    for dest in ["/etc/passwd", "/no/such/dir"] {
        let target = format!("{name}:{dest}");
        let out = with_input(&w, &["cp", "-", &target], &sample_tar());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(&format!("destination \"{target}\" must be a directory")),
            "{}",
            stderr(&out)
        );
    }
    ok(&w.rwasm(&["rm", "-f", &name]));
}
