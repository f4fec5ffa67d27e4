//! WASM plugins at the OCI lifecycle points, end to end through the built binary (root):
//! which failures are fatal (create-container) and which only logged (poststart,
//! poststop, as the OCI runtime-spec has it), and that a process loads only the plugins
//! its own points need.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::{Value, json};

/// A manifest entry for misbehave in mode `error` at `hooks`, with `on-error = "fail"`.
fn failing(name: &str, hooks: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [{hooks}]\non-error = \"fail\"\n[plugin.config]\nmode = \"error\"\n",
        plugin_wasm("misbehave").display()
    )
}

/// `rwasm --plugins M ARGS...`.
fn with(w: &World, m: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--plugins", m.to_str().unwrap()];
    all.extend_from_slice(args);
    w.rwasm(&all)
}

#[test]
fn a_failing_plugin_at_poststart_and_poststop_is_only_logged() {
    let w = World::new();
    let m = manifest(
        &w,
        "plugins.toml",
        &failing("bad", "\"poststart\", \"poststop\""),
    );
    let b = w.bundle("b", &["sh", "-c", "echo ran"], json!({}));
    let out = with(
        &w,
        &m,
        &["run", "--bundle", b.to_str().unwrap(), &id("post")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&out), "ran\n", "{err}");
    for point in ["poststart", "poststop"] {
        assert!(
            err.lines()
                .any(|l| l.contains("plugin `bad` failed at") && l.contains(point)),
            "no warning naming `bad` and {point}:\n{err}"
        );
    }
}

/// The `point` of each line audit wrote into `dir`.
fn audited_points(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["point"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn create_container_calls_its_plugins_and_a_failure_there_fails_the_create() {
    let w = World::new();
    let log = w.path("audit");
    std::fs::create_dir_all(&log).unwrap();
    let audit = manifest(
        &w,
        "audit.toml",
        &format!(
            "[[plugin]]\nname = \"audit\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"create-runtime\", \"create-container\", \"start-container\"]\n[plugin.grants]\ndirs = {{ {:?} = \"/log:rw\" }}\n",
            plugin_wasm("audit").display(),
            log.to_str().unwrap()
        ),
    );
    let b = w.bundle("b", &["true"], json!({}));
    let out = with(
        &w,
        &audit,
        &["run", "--bundle", b.to_str().unwrap(), &id("cc")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        audited_points(&log),
        ["create-runtime", "create-container", "start-container"]
    );

    let bad = manifest(&w, "bad.toml", &failing("bad", "\"create-container\""));
    let c = id("ccfail");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        bad.to_str().unwrap(),
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_ne!(code, 0, "the create must fail: {err}");
    assert!(
        err.contains("createContainer failed: plugin `bad`"),
        "{err}"
    );
    assert!(!w.root.join(&c).exists(), "no state directory of {c}");
    assert!(cgroup_dirs_named(&c).is_empty(), "no cgroup of {c}");
}

/// A file that is not a component (nor any wasm).
fn junk(w: &World) -> PathBuf {
    let p = w.path("junk.wasm");
    std::fs::write(&p, b"this is not a component").unwrap();
    p
}

#[test]
fn a_process_loads_only_the_plugins_of_its_points() {
    let w = World::new();
    let m = manifest(
        &w,
        "plugins.toml",
        &format!(
            "[[plugin]]\nname = \"junk\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"poststop\"]\non-error = \"fail\"\n",
            junk(&w).display()
        ),
    );
    let m = m.to_str().unwrap();
    let b = w.bundle("b", &["true"], json!({}));
    let c = id("lazy");
    // Every open of junk, by any process, is an event here.
    let opens = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    opens
        .add_watch(&w.path("junk.wasm"), AddWatchFlags::IN_OPEN)
        .unwrap();
    let opened = || match opens.read_events() {
        Ok(events) => !events.is_empty(),
        Err(nix::errno::Errno::EAGAIN) => false,
        Err(e) => panic!("inotify: {e}"),
    };
    // create runs pre-create .. create-container: nothing of junk is read.
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        m,
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("junk"), "create touched junk:\n{err}");
    let (code, err) = w.rwasm_detached(&["--plugins", m, "start", &c]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("junk"), "start touched junk:\n{err}");
    w.wait_status(&c, "stopped");
    assert!(!opened(), "create or start opened junk.wasm");
    // delete runs poststop: there junk fails to load, which is logged, not fatal.
    let (code, err) = w.rwasm_detached(&["--plugins", m, "delete", &c]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("plugin `junk`") && l.contains("poststop")),
        "no warning naming junk at poststop:\n{err}"
    );
    assert!(!w.root.join(&c).exists(), "{c} is deleted");
    assert!(opened(), "delete read junk.wasm for poststop");
}
