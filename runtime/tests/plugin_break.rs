//! Hostile plugins and careless operators (root): each test is a way someone tried to get
//! a plugin past its grants or the runtime past its rules, found to work before its fix.
//!
//! The plugin is `scripted.wasm` (plugins/scripted), which answers each hook point with the
//! adjustment JSON in its config; `$RWASM_PLUGIN_DIR` must hold it (`make plugins`).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// A manifest with one scripted plugin answering `json` at pre-create, plus `extra` lines
/// after `[plugin.config]` (e.g. a `[plugin.grants]` table).
fn one(w: &World, json: &str, extra: &str) -> PathBuf {
    manifest(
        w,
        &format!("plugins-{}.toml", rand_suffix()),
        &format!(
            "[[plugin]]\nname = \"script\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\n[plugin.config]\npre-create = '{json}'\n{extra}\n",
            plugin_wasm("scripted").display()
        ),
    )
}

/// `rwasm --plugins M run --bundle B ID`.
fn run_with(w: &World, m: &Path, b: &Path, id: &str) -> std::process::Output {
    w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--bundle",
        b.to_str().unwrap(),
        id,
    ])
}

/// A run of `true` that must fail: returns stderr, after checking nothing is left behind.
fn refused(w: &World, m: &Path) -> String {
    let b = w.bundle(&format!("b-{}", rand_suffix()), &["true"], json!({}));
    let c = id("refused");
    let out = run_with(w, m, &b, &c);
    assert!(
        !out.status.success(),
        "expected a refusal: {}",
        stdout(&out)
    );
    assert!(!w.root.join(&c).exists(), "no state directory of {c}");
    assert!(cgroup_dirs_named(&c).is_empty(), "no cgroup of {c}");
    stderr(&out)
}

#[test]
fn an_oci_hook_is_a_host_process_and_needs_the_hooks_grant() {
    // A create-runtime hook runs as root on the host: without a grant, any plugin could run
    // any host command, although the manifest says "no host processes".
    let w = World::new();
    let mark = w.path("pwned");
    let json = format!(
        r#"{{"hooks": [{{"stage": "create-runtime", "path": "/bin/sh", "args": ["sh", "-c", "echo host > {}"], "timeout": 5}}]}}"#,
        mark.display()
    );
    let err = refused(&w, &one(&w, &json, ""));
    assert!(!mark.exists(), "the ungranted hook ran on the host");
    assert!(
        err.contains("plugin `script`")
            && err.contains("hooks[0]")
            && err.contains("`hooks = true`"),
        "{err}"
    );
    let granted = one(&w, &json, "[plugin.grants]\nhooks = true\n");
    let b = w.bundle("b", &["true"], json!({}));
    let out = run_with(&w, &granted, &b, &id("hooked"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "host\n");
}

#[test]
fn a_host_block_device_needs_the_devices_grant() {
    // Without a grant a plugin could hand the container the host's disks (block 8:0, or
    // /dev/mem 1:1) with read-write access: far more than a mount from an ungranted dir.
    let w = World::new();
    let json = r#"{"devices": [{"path": "/dev/mymem", "type": "c", "major": 1, "minor": 1, "permissions": "rw"}]}"#;
    let err = refused(&w, &one(&w, json, ""));
    assert!(
        err.contains("plugin `script`")
            && err.contains("devices[0]")
            && err.contains("`devices = true`"),
        "{err}"
    );
    let granted = one(&w, json, "[plugin.grants]\ndevices = true\n");
    let b = w.bundle("b", &["sh", "-c", "stat -c '%t:%T' /dev/mymem"], json!({}));
    let out = run_with(&w, &granted, &b, &id("dev"));
    assert_eq!(stdout(&out), "1:1\n", "{}", stderr(&out));
}
