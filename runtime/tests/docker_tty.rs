//! Docker's `run -i`, `-t`, `-it`, the detach keys and `attach`, driven through a
//! pseudo-terminal the test opens (the caller's terminal, as a person's shell would be).
//! Root only (fails, never skips, otherwise).

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A command running on a terminal of ours: we hold the master, it has the slave as its
/// stdio and controlling terminal.
struct OnPty {
    master: File,
    seen: Arc<Mutex<Vec<u8>>>,
    child: Child,
}

impl OnPty {
    fn spawn(w: &World, args: &[&str], rows: u16, cols: u16) -> OnPty {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_winsize(&pty.master, rows, cols);
        let slave: OwnedFd = pty.slave;
        let mut c = w.cmd(args);
        c.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs before exec.
        unsafe {
            c.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap();
        let master = File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut from, into) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnPty {
            master,
            seen,
            child,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Wait (at most 20 s) until `s` was shown after what we saw so far was cleared.
    fn expect(&self, s: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.text().contains(s) {
            assert!(
                Instant::now() < deadline,
                "waited for {s:?} on the terminal, saw {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    fn send(&mut self, s: &[u8]) {
        self.master.write_all(s).unwrap();
    }

    /// The exit code, waiting at most 20 s.
    fn code(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running; terminal: {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn world() -> World {
    let w = World::new();
    w.setup_image();
    w
}

#[test]
fn run_it_gives_a_shell_on_a_terminal_of_the_callers_size() {
    let w = world();
    let name = format!("tty-{}", rand_suffix());
    let mut t = OnPty::spawn(
        &w,
        &["run", "-it", "--name", &name, "busybox", "sh"],
        30,
        100,
    );
    t.expect("# ");
    t.clear();
    t.send(b"echo $((6*7)) $TERM\r");
    t.expect("echo $((6*7)) $TERM"); // typed input echoed by the terminal
    t.expect("\r\n42 xterm\r\n");
    t.clear();
    t.send(b"stty size; [ -t 0 ] && echo on-a-tty\r");
    t.expect("30 100\r\non-a-tty\r\n");
    // The window changes: the client forwards the new size.
    set_winsize(&t.master, 40, 120);
    std::thread::sleep(Duration::from_millis(300));
    t.clear();
    t.send(b"stty size\r");
    t.expect("40 120\r\n");
    t.send(b"\x04");
    assert_eq!(t.code(), 0, "ctrl-d ends the shell: {:?}", t.text());
    let ps = stdout(&w.rwasm(&["ps", "-a", "--filter", &format!("name={name}")]));
    assert!(ps.contains("Exited (0)"), "{ps}");
    // Logs hold the terminal's output, as stdout.
    let logs = w.rwasm(&["logs", &name]);
    assert!(stdout(&logs).contains("42 xterm"), "{}", stdout(&logs));
    assert_eq!(stderr(&logs), "");
    w.rwasm(&["rm", "-f", &name]);
}

#[test]
fn run_it_passes_the_exit_code_through() {
    let w = world();
    let mut t = OnPty::spawn(&w, &["run", "--rm", "-it", "busybox", "sh"], 24, 80);
    t.expect("# ");
    t.send(b"exit 3\r");
    assert_eq!(t.code(), 3, "{:?}", t.text());
}

#[test]
fn run_t_without_i_shows_output_on_a_terminal() {
    let w = world();
    let mut t = OnPty::spawn(
        &w,
        &[
            "run",
            "--rm",
            "-t",
            "busybox",
            "sh",
            "-c",
            "[ -t 1 ] && stty size",
        ],
        25,
        90,
    );
    t.expect("25 90");
    assert_eq!(t.code(), 0, "{:?}", t.text());
}

#[test]
fn run_i_streams_stdin_and_without_i_stdin_is_empty() {
    let w = world();
    let run = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        // Without -i rwasm never reads its stdin and may be gone before we write.
        if let Err(e) = child.stdin.take().unwrap().write_all(b"hi\n") {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    };
    let out = run(&["run", "--rm", "-i", "busybox", "cat"]);
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["run", "--rm", "busybox", "cat"]);
    assert_eq!(stdout(&out), "", "Docker: no stdin without -i");
}

#[test]
fn detach_keys_leave_it_running_and_attach_comes_back() {
    let w = world();
    let name = format!("det-{}", rand_suffix());
    let mut t = OnPty::spawn(
        &w,
        &["run", "-it", "--name", &name, "busybox", "sh"],
        24,
        80,
    );
    t.expect("# ");
    t.send(b"echo before\r");
    t.expect("before\r\n");
    // ctrl-p then something else is typed as it was; ctrl-p ctrl-q detaches.
    t.send(b"\x10\x11");
    assert_eq!(t.code(), 0, "{:?}", t.text());
    let ps = stdout(&w.rwasm(&["ps", "--filter", &format!("name={name}")]));
    assert!(ps.contains("Up"), "still running after detach: {ps}");

    let mut a = OnPty::spawn(&w, &["attach", &name], 24, 80);
    std::thread::sleep(Duration::from_millis(300));
    a.send(b"\r");
    a.expect("# ");
    a.send(b"echo back\r");
    a.expect("back\r\n");
    a.send(b"exit 4\r");
    assert_eq!(a.code(), 4, "{:?}", a.text());
    let ps = stdout(&w.rwasm(&["ps", "-a", "--filter", &format!("name={name}")]));
    assert!(ps.contains("Exited (4)"), "{ps}");

    // --detach-keys: another sequence.
    let name2 = format!("{name}-k");
    let mut t = OnPty::spawn(
        &w,
        &[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-x",
            "--name",
            &name2,
            "busybox",
            "sh",
        ],
        24,
        80,
    );
    t.expect("# ");
    t.send(b"\x18");
    assert_eq!(t.code(), 0, "{:?}", t.text());
    let ps = stdout(&w.rwasm(&["ps", "--filter", &format!("name={name2}")]));
    assert!(ps.contains("Up"), "{ps}");
    w.rwasm(&["rm", "-f", &name, &name2]);
}

#[test]
fn create_t_then_start_ai_attaches() {
    let w = world();
    let name = format!("cst-{}", rand_suffix());
    let out = w.rwasm(&["create", "-it", "--name", &name, "busybox", "sh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut t = OnPty::spawn(&w, &["start", "-ai", &name], 24, 80);
    t.expect("# ");
    t.send(b"exit 5\r");
    assert_eq!(t.code(), 5, "{:?}", t.text());
    w.rwasm(&["rm", "-f", &name]);
}

#[test]
fn bad_detach_keys_are_refused() {
    let w = world();
    let out = w.rwasm(&[
        "run",
        "--rm",
        "-it",
        "--detach-keys",
        "ctrl-1",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("--detach-keys"), "{}", stderr(&out));
}

/// `wait` for the container (its exit code on stdout), then `inspect` it.
fn inspect_when_exited(w: &World, name: &str) -> serde_json::Value {
    let out = w.rwasm(&["wait", name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.rwasm(&["inspect", name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    v
}

#[test]
fn an_oom_kill_is_recorded_as_oomkilled_with_137() {
    let w = world();
    let name = format!("oom-{}", rand_suffix());
    let (code, err) = w.rwasm_detached(&[
        "run",
        "-d",
        "-m",
        "16m",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "x=a; while :; do x=$x$x; done",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = inspect_when_exited(&w, &name);
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v["State"]["ExitCode"], 137, "{v}");
    // A run that ends normally is not OOMKilled.
    let ok = format!("{name}-ok");
    let (code, err) =
        w.rwasm_detached(&["run", "-d", "-m", "16m", "--name", &ok, "busybox", "true"]);
    assert_eq!(code, 0, "{err}");
    let v = inspect_when_exited(&w, &ok);
    assert_eq!(v["State"]["OOMKilled"], false, "{v}");
    assert_eq!(v["State"]["ExitCode"], 0, "{v}");
    w.rwasm(&["rm", "-f", &name, &ok]);
}

/// `tmux -S SOCKET ARGS...` (a private server for this test), its stdout.
fn tmux(sock: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("tmux")
        .arg("-S")
        .arg(sock)
        .args(args)
        .output()
        .expect("tmux (make setup installs it)");
    assert!(out.status.success(), "tmux {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The issue's check as a person does it: `run -it` in a tmux window (a real terminal
/// emulator, not our pty): a prompt, typed input, the window's size and its change, and
/// ctrl-d ending the shell with its code.
#[test]
fn run_it_under_tmux_prompts_reads_input_follows_the_window_and_ends_on_ctrl_d() {
    let w = world();
    let sock = w.path("tmux.sock");
    let code = w.path("code");
    let name = format!("tmux-{}", rand_suffix());
    let line = format!(
        "{} --root {} --data-root {} run -it --name {name} busybox sh; echo exited-$? > {}; sleep 60",
        rwasm_bin().display(),
        w.root.display(),
        w.data.display(),
        code.display()
    );
    tmux(
        &sock,
        &[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            &line,
        ],
    );
    let screen = || tmux(&sock, &["capture-pane", "-p", "-t", "t"]);
    let until = |what: &str, f: &dyn Fn(&str) -> bool| {
        let t = Instant::now();
        loop {
            let s = screen();
            if f(&s) {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "never {what}:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // capture-pane drops trailing blanks: the prompt "/ # " reads "/ #".
    until("a prompt", &|s| {
        s.lines().any(|l| l.trim_end().ends_with(" #"))
    });
    tmux(
        &sock,
        &["send-keys", "-t", "t", "echo $((6*7))-typed", "Enter"],
    );
    until("the typed line's output", &|s| {
        s.lines().any(|l| l.trim_end() == "42-typed")
    });
    tmux(&sock, &["send-keys", "-t", "t", "stty size", "Enter"]);
    until("the window's size", &|s| {
        s.lines().any(|l| l.trim_end() == "30 100")
    });
    tmux(
        &sock,
        &["resize-window", "-t", "t", "-x", "120", "-y", "40"],
    );
    // The client forwards SIGWINCH's new size; asked until the shell sees it.
    let t = Instant::now();
    while !screen().lines().any(|l| l.trim_end() == "40 120") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never resized:\n{}",
            screen()
        );
        tmux(&sock, &["send-keys", "-t", "t", "stty size", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    tmux(&sock, &["send-keys", "-t", "t", "C-d"]);
    let t = Instant::now();
    while std::fs::read_to_string(&code).unwrap_or_default().trim() != "exited-0" {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "ctrl-d did not end it:\n{}",
            screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux(&sock, &["kill-server"]);
    let ps = stdout(&w.rwasm(&["ps", "-a", "--filter", &format!("name={name}")]));
    assert!(ps.contains("Exited (0)"), "{ps}");
    w.rwasm(&["rm", "-f", &name]);
}
