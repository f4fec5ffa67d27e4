//! `process.terminal` through runc's console socket protocol: the caller's socket gets the
//! pty master, the process runs with the slave as its stdio and controlling terminal, at
//! `process.consoleSize`. Root only (fails, never skips, otherwise).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::json;

/// Everything readable from a terminal master until the slave side is closed (EIO).
fn read_all(master: &mut std::fs::File) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read the terminal: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the terminal master yields until its output ends with `end` (or the slave closes).
fn read_until(master: &mut std::fs::File, end: &str) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(end.as_bytes()) {
        match master.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_console_socket_gets_the_terminal_the_process_runs_on() {
    let w = World::new();
    let b = w.bundle(
        "t",
        &[
            "sh",
            "-c",
            "tty; stty size; [ -t 0 ] && echo stdin-tty; read line; echo got $line",
        ],
        json!({
            "process": {"terminal": true, "consoleSize": {"height": 40, "width": 132}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
            ]
        }),
    );
    let sock = w.path("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        rwasm::linux::console::receive(&conn).unwrap()
    });
    let c = id("tty");
    let (code, err) = w.rwasm_detached(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "{err}");
    let (mut master, name) = receiver.join().unwrap();
    assert_eq!(name, "/dev/pts/0");
    let (code, err) = w.rwasm_detached(&["start", &c]);
    assert_eq!(code, 0, "{err}");
    // Type only once the shell waits in `read`: the terminal echoes input when it arrives.
    let mut out = read_until(&mut master, "stdin-tty\r\n");
    master.write_all(b"typed\n").unwrap();
    out += &read_all(&mut master);
    // The terminal echoes what was typed, and turns \n into \r\n.
    assert_eq!(
        out, "/dev/pts/0\r\n40 132\r\nstdin-tty\r\ntyped\r\ngot typed\r\n",
        "{out:?}"
    );
    w.wait_status(&c, "stopped");
    assert_eq!(w.rwasm_detached(&["delete", &c]).0, 0);
}

#[test]
fn a_terminal_needs_a_console_socket_and_a_socket_needs_a_terminal() {
    let w = World::new();
    let b = w.bundle("t", &["true"], json!({"process": {"terminal": true}}));
    let c = id("notty");
    let out = w.rwasm(&["create", "--bundle", b.to_str().unwrap(), &c]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("process.terminal: true needs a console socket (--console-socket)"),
        "{}",
        stderr(&out)
    );
    assert!(!w.root.join(&c).exists(), "no state left behind");

    let plain = w.bundle("p", &["true"], json!({}));
    let sock = w.path("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let out = w.rwasm(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        plain.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--console-socket is given but the process has no terminal"),
        "{}",
        stderr(&out)
    );

    let gone = w.path("nobody.sock");
    let out = w.rwasm(&[
        "create",
        "--console-socket",
        gone.to_str().unwrap(),
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("console socket {}", gone.display())),
        "{}",
        stderr(&out)
    );
    assert!(!w.root.join(&c).exists(), "no state left behind");
    assert!(cgroup_dirs_named(&c).is_empty(), "no cgroup left behind");
}

#[test]
fn exec_t_runs_the_command_on_a_new_terminal_of_the_container() {
    let w = World::new();
    w.setup_image();
    let name = id("exect");
    let (code, err) = w.rwasm_detached(&["run", "-d", "--name", &name, "busybox", "sleep", "60"]);
    assert_eq!(code, 0, "{err}");
    let out = w.rwasm(&[
        "exec",
        "-t",
        &name,
        "sh",
        "-c",
        "tty; [ -t 1 ] && echo on-tty; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // The container's devpts has no other terminal; the line discipline turns \n into \r\n.
    assert_eq!(stdout(&out), "/dev/pts/0\r\non-tty\r\n");

    let out = w.rwasm(&["exec", "-d", "-t", &name, "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a detached exec has no terminal to attach to"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.rwasm_detached(&["rm", "-f", &name]).0, 0);
}
