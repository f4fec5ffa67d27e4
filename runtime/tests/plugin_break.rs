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

/// A manifest running misbehave `probe` at pre-create with `body` appended to the entry.
fn probe_manifest(w: &World, body: &str) -> PathBuf {
    manifest(
        w,
        &format!("plugins-{}.toml", rand_suffix()),
        &format!(
            "[[plugin]]\nname = \"probe\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\n{body}\n[plugin.config]\nmode = \"probe\"\n[plugin.grants]\nrootfs = \"ro\"\n",
            plugin_wasm("misbehave").display()
        ),
    )
}

#[test]
fn a_rootfs_symlink_out_of_the_rootfs_does_not_reach_the_host() {
    let w = World::new();
    let host = w.path("host-etc");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("probe.txt"), "HOST SECRET\n").unwrap();
    let m = probe_manifest(&w, "");
    for (name, target) in [
        ("abs", host.to_str().unwrap().to_string()),
        ("rel", format!("../../../../../../..{}", host.display())),
    ] {
        let b = w.bundle(name, &["sh", "-c", "echo \"$PROBE_ROOTFS\""], json!({}));
        let etc = b.join("rootfs/etc");
        std::fs::remove_dir_all(&etc).unwrap();
        std::os::unix::fs::symlink(&target, &etc).unwrap();
        let out = run_with(&w, &m, &b, &id(name));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !text.contains("HOST SECRET"),
            "{name}: the plugin read the host: {text}"
        );
    }
}

#[test]
fn a_fifo_in_the_rootfs_cannot_hold_the_create_past_its_deadline() {
    let w = World::new();
    let m = probe_manifest(&w, "timeout-ms = 300");
    let b = w.bundle("fifo", &["true"], json!({}));
    let fifo = b.join("rootfs/etc/probe.txt");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let c = id("fifo");
    let started = std::time::Instant::now();
    let out = run_with(&w, &m, &b, &c);
    let took = started.elapsed();
    assert!(
        !out.status.success(),
        "a blocked plugin must fail the create"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "the create took {took:?} (deadline 300 ms)"
    );
    let err = stderr(&out);
    assert!(err.contains("plugin `probe`"), "{err}");
    assert!(!w.root.join(&c).exists(), "no state directory of {c}");
}

#[test]
fn cli_input_files_are_read_up_to_a_limit() {
    // `--state /dev/zero` grew rwasm to 15 GB before it was killed; a file over the limit
    // is now refused without reading it all. A sparse file stands in for /dev/zero, so a
    // regression cannot exhaust the machine's memory.
    let w = World::new();
    let big = w.path("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((16 << 20) + 1)
        .unwrap();
    let small = w.path("state.json");
    std::fs::write(&small, "{}").unwrap();
    let m = probe_manifest(&w, "");
    let (b, s) = (big.to_str().unwrap(), small.to_str().unwrap());
    let m = m.to_str().unwrap();
    for args in [
        vec![
            "--plugins",
            m,
            "plugin",
            "test",
            "probe",
            "--hook",
            "pre-create",
            "--state",
            b,
            "--spec",
            s,
        ],
        vec![
            "--plugins",
            m,
            "plugin",
            "test",
            "probe",
            "--hook",
            "pre-create",
            "--state",
            s,
            "--spec",
            b,
        ],
        vec!["update", "-r", b, "nosuch"],
    ] {
        let out = w.rwasm(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(b) && err.contains("more than 16777216 bytes"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_plugin_cannot_put_the_container_in_an_existing_host_cgroup() {
    // Deleting a container (or rolling back a failed create) kills every process of its
    // cgroup: a plugin naming a host service's cgroup as cgroups-path killed the service.
    let w = World::new();
    let victim = format!("victim-{}", rand_suffix());
    let dir = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup").join(&victim)
    } else {
        PathBuf::from("/sys/fs/cgroup/pids").join(&victim)
    };
    std::fs::create_dir(&dir).unwrap();
    let mut service = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), service.id().to_string()).unwrap();
    let json = format!(r#"{{"cgroups-path": "/{victim}"}}"#);
    let b = w.bundle("b", &["true"], json!({}));
    let out = run_with(&w, &one(&w, &json, ""), &b, &id("cg"));
    let alive = service.try_wait().unwrap().is_none();
    let _ = service.kill();
    let _ = service.wait();
    let _ = std::fs::remove_dir(&dir);
    assert!(alive, "the host process in /{victim} was killed");
    assert!(!out.status.success(), "an existing cgroup must be refused");
    let err = stderr(&out);
    assert!(
        err.contains("plugin `script`") && err.contains("cgroups-path") && err.contains("exists"),
        "{err}"
    );
}

#[test]
fn a_read_only_grant_stays_read_only_below_its_submounts() {
    // `rbind` + `ro` remounted only the top mount read-only: a tmpfs (or any mount) below
    // a read-only granted directory stayed writable inside the container.
    let w = World::new();
    let grant = w.path("ro-grant");
    let sub = grant.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(sub.clone());
    let json = format!(
        r#"{{"mounts": [{{"destination": "/data", "source": "{}", "type": "bind", "options": ["rbind", "ro"]}}]}}"#,
        grant.display()
    );
    let m = one(
        &w,
        &json,
        &format!(
            "[plugin.grants]\ndirs = {{ \"{}\" = \"/g\" }}\n",
            grant.display()
        ),
    );
    let b = w.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo x > /data/sub/f 2>/dev/null && echo wrote || echo refused",
        ],
        json!({}),
    );
    let out = run_with(&w, &m, &b, &id("rbind"));
    assert!(
        !sub.join("f").exists(),
        "the container wrote below a read-only grant"
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        (out.status.success() && stdout(&out) == "refused\n")
            || (!out.status.success() && text.contains("mounts[0].options")),
        "{text}"
    );
}

#[test]
fn an_earlier_plugin_cannot_unselect_a_later_policy_plugin() {
    // Selection read the spec as adjusted by the plugins before: one removing the
    // annotation a policy is selected by (or renaming the image) switched the policy off.
    let w = World::new();
    let entry = |name: &str, order: i64, body: &str| {
        format!(
            "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\norder = {order}\n{body}\n",
            plugin_wasm("scripted").display()
        )
    };
    let policy = entry(
        "policy",
        10,
        "[plugin.config]\ndeny = \"gpu containers need a quota\"\n[plugin.match]\nannotations = { \"team\" = \"gpu\" }\nimages = [\"docker.io/library/untrusted*\"]\n",
    );
    for (case, sneaky) in [
        ("remove", r#"{"remove-annotations": ["team"]}"#),
        ("change", r#"{"annotations": [["team", "cpu"]]}"#),
        (
            "image",
            r#"{"annotations": [["org.opencontainers.image.ref.name", "docker.io/library/busybox"]]}"#,
        ),
    ] {
        let m = manifest(
            &w,
            &format!("plugins-{case}.toml"),
            &format!(
                "{}{policy}",
                entry(
                    "sneaky",
                    0,
                    &format!("[plugin.config]\npre-create = '{sneaky}'\n")
                )
            ),
        );
        let b = w.bundle(
            &format!("b-{case}"),
            &["echo", "ran"],
            json!({"annotations": {"team": "gpu", "org.opencontainers.image.ref.name": "docker.io/library/untrusted:1"}}),
        );
        let out = run_with(&w, &m, &b, &id(case));
        let err = stderr(&out);
        assert!(
            !out.status.success() && stdout(&out).is_empty(),
            "{case}: the policy was switched off: {err}"
        );
        assert!(
            err.contains("plugin `sneaky`") && err.contains("[plugin.match]"),
            "{case}: {err}"
        );
    }
}
