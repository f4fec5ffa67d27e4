//! The plugin sandbox with real containers (root only; they fail, never skip, otherwise):
//! hostile plugins fail only their call and a failed create leaves nothing behind; an
//! import that is not granted, a wrong package version or world are refused at load with
//! clear errors; a 0.1.0 plugin still works; the env, rootfs, clock and random grants work
//! and their absence is enforced; a corrupt compile-cache entry is rebuilt.

mod common;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::json;

/// A manifest with one `[[plugin]]` entry for fixture `wasm`; `body` holds the rest.
fn one_plugin(w: &World, name: &str, wasm: &str, body: &str) -> PathBuf {
    manifest(
        w,
        &format!("{name}.toml"),
        &format!(
            "[[plugin]]\nname = \"{name}\"\npath = {:?}\nkind = \"hook\"\n{body}\n",
            plugin_wasm(wasm).to_str().unwrap()
        ),
    )
}

/// `rwasm --plugins M run --bundle B ID` with output captured.
fn run_with(w: &World, plugins: &Path, bundle: &Path, id: &str) -> std::process::Output {
    w.rwasm(&[
        "--plugins",
        plugins.to_str().unwrap(),
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        id,
    ])
}

/// Asserts that nothing of container `id` (bundle `bundle`) is left: no state
/// directory, no cgroup, no mount, no listed container.
fn assert_nothing_left(w: &World, id: &str, bundle: &Path) {
    assert!(
        !w.root.join(id).exists(),
        "state dir of {id} left behind: {:?}",
        std::fs::read_dir(w.root.join(id)).map(|d| d.count())
    );
    assert_eq!(
        cgroup_dirs_named(id),
        Vec::<PathBuf>::new(),
        "cgroups of {id}"
    );
    assert_eq!(
        mounts_mentioning(bundle.to_str().unwrap()),
        Vec::<String>::new(),
        "mounts of {id}"
    );
    let listed = w.rwasm(&["list", "-q"]);
    assert!(
        !stdout(&listed).lines().any(|l| l == id),
        "{id} still listed"
    );
}

/// The hostile modes of misbehave with the manifest lines they need and what the error
/// must say.
const HOSTILE: &[(&str, &str, &str)] = &[
    (
        "loop",
        "timeout-ms = 100",
        "exceeded its deadline of 100 ms",
    ),
    (
        "alloc",
        "memory-limit = \"16MiB\"",
        "exceeded its memory limit of 16777216 bytes",
    ),
    ("panic", "", "misbehave: panicking on purpose"),
    (
        "huge-answer",
        "memory-limit = \"512MiB\"\ntimeout-ms = 10000",
        "answered 104857614 bytes of strings, more than its max-answer of 1048576 bytes",
    ),
];

#[test]
fn hostile_plugins_fail_the_create_and_leave_nothing_behind() {
    let w = World::new();
    let bundle = w.bundle("b", &["sh", "-c", "echo ran"], json!({}));
    for (mode, limits, expected) in HOSTILE {
        // create-runtime: the cgroup, the state dir and the init process exist by then.
        let m = one_plugin(
            &w,
            &format!("hostile-{mode}"),
            "misbehave",
            &format!(
                "hooks = [\"create-runtime\"]\non-error = \"fail\"\n{limits}\n[plugin.config]\nmode = \"{mode}\"\nsize-mib = 100"
            ),
        );
        let c = id(&format!("hostile-{mode}"));
        let (code, err) = w.rwasm_detached(&[
            "--plugins",
            m.to_str().unwrap(),
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            &c,
        ]);
        assert_ne!(code, 0, "{mode}: create must fail");
        assert!(
            err.contains(&format!("plugin `hostile-{mode}` failed at create-runtime"))
                && err.contains(expected),
            "{mode}: {err}"
        );
        assert_nothing_left(&w, &c, &bundle);
    }
}

#[test]
fn hostile_plugins_with_on_error_ignore_let_the_container_run() {
    let w = World::new();
    let bundle = w.bundle("b", &["sh", "-c", "echo ran"], json!({}));
    for (mode, limits, _) in HOSTILE {
        let m = one_plugin(
            &w,
            &format!("hostile-{mode}"),
            "misbehave",
            &format!(
                "hooks = [\"pre-create\", \"create-runtime\"]\non-error = \"ignore\"\n{limits}\n[plugin.config]\nmode = \"{mode}\""
            ),
        );
        let c = id(&format!("ignored-{mode}"));
        let out = run_with(&w, &m, &bundle, &c);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_eq!(stdout(&out), "ran\n", "{mode}");
        assert!(
            stderr(&out).contains("plugin failure ignored"),
            "{mode}: the failure is logged: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_plugin_importing_sockets_is_refused_at_load() {
    let w = World::new();
    let bundle = w.bundle("b", &["true"], json!({}));
    let m = one_plugin(&w, "sockets", "socket_user", "hooks = [\"pre-create\"]");
    let c = id("sockets");
    let out = run_with(&w, &m, &bundle, &c);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("plugin `sockets` failed at pre-create in its load phase")
            && err.contains("imports `wasi:sockets/")
            && err.contains("which is not granted: plugins get no sockets"),
        "{err}"
    );
    assert_nothing_left(&w, &c, &bundle);
}

#[test]
fn wrong_version_and_wrong_world_are_clear_load_errors() {
    let w = World::new();
    let bundle = w.bundle("b", &["true"], json!({}));
    for (wasm, expected) in [
        (
            "wrong_major",
            "built for rwasm:plugin 1.0.0, this rwasm hosts 0.1.0, 0.2.0 and 0.3.0",
        ),
        (
            "net_sketch",
            "listed as kind `hook`, but the component exports `rwasm:plugin/network@0.2.0` \
             (world network-driver), not `rwasm:plugin/hooks@0.3.0`",
        ),
    ] {
        let m = one_plugin(&w, "odd", wasm, "hooks = [\"pre-create\"]");
        let c = id("odd");
        let out = run_with(&w, &m, &bundle, &c);
        assert!(!out.status.success(), "{wasm}");
        let err = stderr(&out);
        assert!(
            err.contains("in its load phase") && err.contains(expected),
            "{wasm}: {err}"
        );
        assert_nothing_left(&w, &c, &bundle);
    }
}

#[test]
fn a_legacy_0_1_plugin_loads_and_its_env_reaches_the_container() {
    let w = World::new();
    let bundle = w.bundle("b", &["sh", "-c", "echo LEGACY=$LEGACY"], json!({}));
    let m = one_plugin(
        &w,
        "legacy",
        "legacy_v0_1",
        "hooks = [\"pre-create\", \"poststop\"]",
    );
    let out = run_with(&w, &m, &bundle, &id("legacy"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "LEGACY=1\n");
}

/// Runs the probe (misbehave `probe`) at pre-create with `grants` and returns the
/// PROBE_* variables the container sees, plus the bundle.
fn probe(w: &World, name: &str, grants: &str) -> (Vec<(String, String)>, PathBuf) {
    let bundle = w.bundle(
        name,
        &[
            "sh",
            "-c",
            "for v in PROBE_ENV PROBE_ROOTFS PROBE_ROOTFS_WRITE PROBE_CLOCK PROBE_RANDOM; do eval echo \"$v=\\$$v\"; done",
        ],
        json!({}),
    );
    std::fs::write(
        bundle.join("rootfs/etc/probe.txt"),
        "hello from the rootfs\n",
    )
    .unwrap();
    let m = one_plugin(
        w,
        name,
        "misbehave",
        &format!(
            "hooks = [\"pre-create\"]\n[plugin.config]\nmode = \"probe\"\n[plugin.grants]\n{grants}"
        ),
    );
    let out = w
        .cmd(&[
            "--plugins",
            m.to_str().unwrap(),
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            &id(name),
        ])
        .env("RWASM_TEST_PROXY", "http://proxy.test:3128")
        .env("RWASM_TEST_SECRET", "not granted")
        .env_remove("RWASM_TEST_UNSET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    let vars = stdout(&out)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("NAME=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    (vars, bundle)
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} missing in {vars:?}"))
}

#[test]
fn env_and_rootfs_grants_show_exactly_what_is_granted() {
    let w = World::new();

    // Nothing granted: no variables, no /rootfs; clock and random work by default.
    let (vars, bundle) = probe(&w, "none", "");
    assert_eq!(var(&vars, "PROBE_ENV"), "");
    assert!(var(&vars, "PROBE_ROOTFS").starts_with("error:"), "{vars:?}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock: u64 = var(&vars, "PROBE_CLOCK").parse().unwrap();
    assert!(now.abs_diff(clock) < 60, "wall clock {clock} vs {now}");
    let random = var(&vars, "PROBE_RANDOM");
    assert!(
        random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "{random}"
    );
    assert!(!bundle.join("rootfs/tmp/probe-write").exists());

    // env: only the granted variables that are set; rootfs read-only.
    let (vars, bundle) = probe(
        &w,
        "ro",
        "env = [\"RWASM_TEST_PROXY\", \"RWASM_TEST_UNSET\"]\nrootfs = \"ro\"",
    );
    assert_eq!(
        var(&vars, "PROBE_ENV"),
        "RWASM_TEST_PROXY=http://proxy.test:3128"
    );
    assert_eq!(var(&vars, "PROBE_ROOTFS"), "hello from the rootfs");
    assert!(
        var(&vars, "PROBE_ROOTFS_WRITE").starts_with("error:"),
        "read-only rootfs: {vars:?}"
    );
    assert!(!bundle.join("rootfs/tmp/probe-write").exists());

    // rootfs read-write: the write lands in the container's rootfs.
    let (vars, bundle) = probe(&w, "rw", "rootfs = \"rw\"");
    assert_eq!(var(&vars, "PROBE_ROOTFS_WRITE"), "ok");
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/tmp/probe-write")).unwrap(),
        "written by misbehave\n"
    );
    // Two instances draw different random seeds.
    let (again, _) = probe(&w, "rw2", "rootfs = \"rw\"");
    assert_ne!(var(&vars, "PROBE_RANDOM"), var(&again, "PROBE_RANDOM"));
}

#[test]
fn clock_and_random_refused_when_not_granted() {
    let w = World::new();
    let bundle = w.bundle("b", &["sh", "-c", "echo GREETING=$GREETING"], json!({}));
    // misbehave imports wasi:clocks and wasi:random (std's sleep, time and hash seeds).
    for (grants, expected) in [
        (
            "clock = false",
            "imports `wasi:clocks/monotonic-clock@0.2.6`, which is not granted: clock is not granted",
        ),
        (
            "random = false",
            "imports `wasi:random/insecure-seed@0.2.6`, which is not granted: random is not granted",
        ),
    ] {
        let m = one_plugin(
            &w,
            "timed",
            "misbehave",
            &format!("hooks = [\"pre-create\"]\n[plugin.grants]\n{grants}"),
        );
        let c = id("timed");
        let out = run_with(&w, &m, &bundle, &c);
        assert!(!out.status.success(), "{grants}");
        assert!(
            stderr(&out).contains(expected),
            "{grants}: {}",
            stderr(&out)
        );
        assert_nothing_left(&w, &c, &bundle);
    }
    // env-inject imports neither, so it runs without them.
    let m = one_plugin(
        &w,
        "inject",
        "env_inject",
        "hooks = [\"pre-create\"]\n[plugin.config]\nGREETING = \"hi\"\n[plugin.grants]\nclock = false\nrandom = false",
    );
    let out = run_with(&w, &m, &bundle, &id("inject"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "GREETING=hi\n");
}

/// The `.cwasm` artifacts of a world's compile cache.
fn artifacts(w: &World) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(w.data.join("plugin-cache"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_corrupt_cache_entry_is_rebuilt_and_a_stale_one_recompiled() {
    let w = World::new();
    let wasm = w.path("inject.wasm");
    std::fs::copy(plugin_wasm("env_inject"), &wasm).unwrap();
    // The cache indexes a source file only once it is older than 2 s (its "racy" rule);
    // the stale check below needs the index.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let m = manifest(
        &w,
        "plugins.toml",
        "[[plugin]]\nname = \"inject\"\npath = \"inject.wasm\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\n[plugin.config]\nGREETING = \"hi\"\n",
    );
    let plugins = m.to_str().unwrap();
    let ls = |w: &World| {
        let out = w.rwasm(&["--plugins", plugins, "plugin", "ls", "--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["cache"].as_str().unwrap().to_string()
    };
    let bundle = w.bundle("b", &["sh", "-c", "echo GREETING=$GREETING"], json!({}));

    assert_eq!(ls(&w), "missing");
    let out = run_with(&w, &m, &bundle, &id("first"));
    assert_eq!(stdout(&out), "GREETING=hi\n", "{}", stderr(&out));
    assert_eq!(ls(&w), "cached");
    let files = artifacts(&w);
    assert_eq!(files.len(), 1, "{files:?}");
    let good = std::fs::read(&files[0]).unwrap();

    // Flip one bit in the middle (code, which wasmtime does not checksum), replacing the
    // file the way a writer must (a mapped artifact is never changed in place).
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x10;
    let tmp = files[0].with_extension("tmp");
    std::fs::write(&tmp, &bad).unwrap();
    std::fs::rename(&tmp, &files[0]).unwrap();
    assert_eq!(ls(&w), "corrupt");

    let out = run_with(&w, &m, &bundle, &id("rebuilt"));
    assert_eq!(stdout(&out), "GREETING=hi\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cached compilation is corrupt; recompiling"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        good,
        "rebuilt and replaced"
    );
    assert_eq!(ls(&w), "cached");

    // Stale: the component changes in place (same inode), the cache has the old one.
    let other = std::fs::read(plugin_wasm("legacy_v0_1")).unwrap();
    std::fs::write(&wasm, &other).unwrap();
    assert_eq!(ls(&w), "stale");
    let out = w.rwasm(&["--plugins", plugins, "plugin", "precompile"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("inject compiled "),
        "{}",
        stdout(&out)
    );
    assert_eq!(ls(&w), "cached");
    assert_eq!(artifacts(&w).len(), 2);
}
