//! Every kind of plugin adjustment, seen from inside real containers (root), plus the
//! refusals, conflicts, ordering, chaining and selection of plugins, and pre-update
//! clamping through the library API.
//!
//! The plugin is `scripted.wasm` (plugins/scripted): its `[plugin.config]` holds the
//! adjustment each hook point returns, as JSON. `$RWASM_PLUGIN_DIR` must hold it (the
//! Makefile builds it and sets the variable).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// The built scripted plugin.
fn scripted() -> PathBuf {
    let p = plugin_dir().join("scripted.wasm");
    assert!(
        p.is_file(),
        "{} is missing: run `make plugins`",
        p.display()
    );
    p
}

/// One `[[plugin]]` entry of the scripted plugin: `name`, then extra TOML lines (keys of
/// the plugin table first, then tables such as `[plugin.config]`).
fn entry(name: &str, body: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"pre-create\"]\n{body}\n",
        scripted().display()
    )
}

/// A manifest file holding `top` (top-level keys) and the entries.
fn write_manifest(w: &World, top: &str, entries: &[String]) -> PathBuf {
    let name = format!("plugins-{}.toml", rand_suffix());
    manifest(w, &name, &format!("{top}\n{}", entries.concat()))
}

/// A manifest with one scripted plugin answering `json` at pre-create, plus `extra` lines
/// after `[plugin.config]` (e.g. a `[plugin.grants]` table).
fn one(w: &World, json: &str, extra: &str) -> PathBuf {
    write_manifest(
        w,
        "",
        &[entry(
            "script",
            &format!("[plugin.config]\npre-create = '{json}'\n{extra}"),
        )],
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

/// Runs `sh -c script` in a busybox bundle (with `patch`) under the manifest and returns
/// its stdout, failing the test when the run fails.
fn inside(w: &World, m: &Path, patch: serde_json::Value, script: &str) -> String {
    let b = w.bundle(
        &format!("b-{}", rand_suffix()),
        &["sh", "-c", script],
        patch,
    );
    let out = run_with(w, m, &b, &id("adj"));
    assert!(out.status.success(), "run failed: {}", stderr(&out));
    stdout(&out)
}

/// A run that must fail: returns stderr, after checking that nothing is left behind.
fn refused(w: &World, m: &Path, patch: serde_json::Value) -> String {
    let b = w.bundle(&format!("b-{}", rand_suffix()), &["true"], patch);
    let c = id("refused");
    let out = run_with(w, m, &b, &c);
    assert!(
        !out.status.success(),
        "expected a refusal: {}",
        stdout(&out)
    );
    assert_nothing_left(w, &c);
    stderr(&out)
}

fn assert_nothing_left(w: &World, c: &str) {
    assert!(!w.root.join(c).exists(), "no state directory of {c}");
    assert!(cgroup_dirs_named(c).is_empty(), "no cgroup of {c}");
    assert!(mounts_mentioning(c).is_empty(), "no mount of {c}");
    assert!(
        w.rwasm(&["list", "-q"]).stdout.is_empty(),
        "no container listed"
    );
}

/// `rwasm create` a `sleep` container, hand its id to `check`, then delete it.
fn created(w: &World, m: &Path, patch: serde_json::Value, check: impl FnOnce(&str)) {
    let b = w.bundle(&format!("b-{}", rand_suffix()), &["sleep", "30"], patch);
    let c = id("adjc");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        m.to_str().unwrap(),
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "create: {err}");
    check(&c);
    let out = w.rwasm(&["delete", "--force", &c]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
}

/// The one cgroup directory of controller `controller` named `name`.
fn cgroup_file(controller: &str, name: &str, file: &str) -> String {
    let dirs: Vec<PathBuf> = cgroup_dirs_named(name)
        .into_iter()
        .filter(|d| d.starts_with(format!("/sys/fs/cgroup/{controller}")))
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one {controller} cgroup named {name}: {dirs:?}"
    );
    std::fs::read_to_string(dirs[0].join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dirs[0].display()))
        .trim()
        .to_string()
}

#[test]
fn env_is_set_and_removed_inside() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"env": [["ADDED", "yes"], ["PATH", "/bin:/sbin"]], "remove-env": ["TERM"]}"#,
        "",
    );
    let out = inside(&w, &m, json!({}), "echo \"$ADDED|${TERM-unset}|$PATH\"");
    assert_eq!(out, "yes|unset|/bin:/sbin\n");
}

#[test]
fn annotations_are_added_and_removed_in_the_state() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"annotations": [["org.example.added", "1"]], "remove-annotations": ["org.example.gone"]}"#,
        "",
    );
    created(
        &w,
        &m,
        json!({"annotations": {"org.example.gone": "x", "org.example.kept": "k"}}),
        |c| {
            let a = &w.state(c)["annotations"];
            assert_eq!(a["org.example.added"], "1", "{a}");
            assert_eq!(a["org.example.kept"], "k", "{a}");
            assert!(a.get("org.example.gone").is_none(), "{a}");
        },
    );
}

#[test]
fn a_granted_bind_mount_is_readable_and_a_mount_is_removed_by_destination() {
    let w = World::new();
    let share = w.path("share");
    std::fs::create_dir_all(share.join("data")).unwrap();
    std::fs::write(share.join("data/hello.txt"), "from the host\n").unwrap();
    let json = format!(
        r#"{{"mounts": [{{"destination": "/share", "source": "{}", "type": "bind", "options": ["ro"]}}], "remove-mounts": ["/scratch"]}}"#,
        share.join("data").display()
    );
    let grant = format!(
        "[plugin.grants]\ndirs = {{ \"{}\" = \"/g\" }}\n",
        share.display()
    );
    let m = one(&w, &json, &grant);
    let patch = json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}
    ]});
    let out = inside(
        &w,
        &m,
        patch,
        "cat /share/hello.txt; grep -c ' /scratch ' /proc/mounts; touch /share/x 2>/dev/null && echo writable || echo read-only",
    );
    assert_eq!(out, "from the host\n0\nread-only\n");
}

#[test]
fn a_mount_from_an_ungranted_host_path_is_refused_naming_plugin_and_field() {
    let w = World::new();
    let granted = w.path("granted");
    std::fs::create_dir_all(&granted).unwrap();
    let grant = format!(
        "[plugin.grants]\ndirs = {{ \"{}\" = \"/g:rw\" }}\n",
        granted.display()
    );
    let m = one(
        &w,
        r#"{"mounts": [{"destination": "/etc-host", "source": "/etc", "type": "bind"}]}"#,
        &grant,
    );
    let err = refused(&w, &m, json!({}));
    assert!(
        err.contains("plugin `script`")
            && err.contains("mounts[0].source")
            && err.contains("outside the plugin's granted directories"),
        "{err}"
    );
}

#[test]
fn a_device_node_is_created_with_its_numbers_and_usable() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"devices": [{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "file-mode": 438, "permissions": "rwm"}]}"#,
        "[plugin.grants]\ndevices = true\n",
    );
    let out = inside(
        &w,
        &m,
        json!({}),
        "stat -c '%F %t:%T %a' /dev/myzero; head -c 4 /dev/myzero | od -An -tx1",
    );
    assert_eq!(out, "character special file 1:5 666\n 00 00 00 00\n");
}

#[test]
fn a_device_outside_its_cgroup_rule_cannot_be_read() {
    // 1:11 is /dev/kmsg, which no default rule allows: access `w` (plus the `m` rwasm adds) denies reading.
    let w = World::new();
    let m = one(
        &w,
        r#"{"devices": [{"path": "/dev/mykmsg", "type": "c", "major": 1, "minor": 11, "permissions": "w"}]}"#,
        "[plugin.grants]\ndevices = true\n",
    );
    let out = inside(
        &w,
        &m,
        json!({}),
        "head -c 1 /dev/mykmsg >/dev/null 2>&1 && echo readable || echo denied",
    );
    assert_eq!(out, "denied\n");
}

#[test]
fn a_cdi_device_is_injected_from_a_spec_file() {
    let w = World::new();
    let cdi = w.path("cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let lib = w.path("vendor-lib");
    std::fs::write(&lib, "vendor library\n").unwrap();
    std::fs::write(
        cdi.join("example.yaml"),
        format!(
            "cdiVersion: \"0.6.0\"\nkind: example.com/test\ncontainerEdits:\n  env: [\"CDI_VENDOR=example\"]\ndevices:\n  - name: zero\n    containerEdits:\n      env: [\"CDI_DEVICE=zero\"]\n      deviceNodes:\n        - path: /dev/cdizero\n          hostPath: /dev/zero\n      mounts:\n        - hostPath: {}\n          containerPath: /opt/vendor.txt\n          options: [ro, bind]\n",
            lib.display()
        ),
    )
    .unwrap();
    let m = write_manifest(
        &w,
        &format!("cdi-spec-dirs = [\"{}\"]", cdi.display()),
        &[entry(
            "gpu",
            "[plugin.config]\npre-create = '{\"cdi-devices\": [\"example.com/test=zero\"]}'\n",
        )],
    );
    let out = inside(
        &w,
        &m,
        json!({}),
        "echo $CDI_VENDOR $CDI_DEVICE; stat -c '%t:%T' /dev/cdizero; head -c 2 /dev/cdizero | od -An -tx1; cat /opt/vendor.txt",
    );
    assert_eq!(out, "example zero\n1:5\n 00 00\nvendor library\n");
    // An unknown device is refused, naming the plugin and the entry.
    let m = write_manifest(
        &w,
        &format!("cdi-spec-dirs = [\"{}\"]", cdi.display()),
        &[entry(
            "gpu",
            "[plugin.config]\npre-create = '{\"cdi-devices\": [\"example.com/test=one\"]}'\n",
        )],
    );
    let err = refused(&w, &m, json!({}));
    assert!(
        err.contains("plugin `gpu`")
            && err.contains("cdi-devices[0]")
            && err.contains("defines example.com/test=one"),
        "{err}"
    );
}

#[test]
fn resources_are_set_in_the_containers_cgroup() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"resources": {"memory": {"limit": 67108864}, "pids-limit": 50, "cpu": {"shares": 512}}}"#,
        "",
    );
    created(&w, &m, json!({}), |c| {
        assert_eq!(
            cgroup_file("memory", c, "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(cgroup_file("pids", c, "pids.max"), "50");
        assert_eq!(cgroup_file("cpu", c, "cpu.shares"), "512");
    });
}

#[test]
fn cpu_quota_cpuset_swap_and_blkio_throttles_reach_the_cgroup() {
    let w = World::new();
    let dev = std::fs::read_to_string("/sys/block/vda/dev").expect("this host's disk vda");
    let (major, minor) = dev.trim().split_once(':').unwrap();
    let json = format!(
        r#"{{"resources": {{"memory": {{"limit": 67108864, "swap": 100663296}}, "cpu": {{"quota": 50000, "period": 100000, "cpus": "0"}}, "block-io": {{"throttle-read-bps": [{{"major": {major}, "minor": {minor}, "rate": 1048576}}]}}}}}}"#
    );
    let m = one(&w, &json, "");
    created(&w, &m, json!({}), |c| {
        assert_eq!(
            cgroup_file("memory", c, "memory.memsw.limit_in_bytes"),
            "100663296"
        );
        assert_eq!(cgroup_file("cpu", c, "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_file("cpu", c, "cpu.cfs_period_us"), "100000");
        assert_eq!(cgroup_file("cpuset", c, "cpuset.cpus"), "0");
        assert_eq!(
            cgroup_file("blkio", c, "blkio.throttle.read_bps_device"),
            format!("{major}:{minor} 1048576")
        );
    });
}

#[test]
fn the_adjusted_spec_is_the_one_saved_in_the_state_directory() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"resources": {"pids-limit": 77}, "env": [["SAVED", "1"]]}"#,
        "",
    );
    created(&w, &m, json!({}), |c| {
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(w.root.join(c).join("config.json")).unwrap())
                .unwrap();
        assert_eq!(saved["linux"]["resources"]["pids"], json!({"limit": 77}));
        assert!(
            saved["process"]["env"]
                .as_array()
                .unwrap()
                .contains(&json!("SAVED=1")),
            "{}",
            saved["process"]["env"]
        );
    });
}

/// Whether this host has a cgroup v1 hierarchy holding `hugetlb` in our mount namespace.
fn hugetlb_v1_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .any(|(_, fs)| {
            let f: Vec<&str> = fs.split_whitespace().collect();
            f.first() == Some(&"cgroup")
                && f.get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "hugetlb"))
        })
}

#[test]
fn hugepage_limits_reach_the_hugetlb_cgroup() {
    assert!(
        Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").is_dir(),
        "this test needs a kernel with 2 MB huge pages"
    );
    let w = World::new();
    let m = one(
        &w,
        r#"{"resources": {"hugepage-limits": [{"page-size": "2MB", "limit": 4194304}]}}"#,
        "",
    );
    // v1: hugetlb.2MB.limit_in_bytes in the container's hugetlb hierarchy; v2: .max.
    let b = w.bundle(
        &format!("b-{}", rand_suffix()),
        &[
            "sh",
            "-c",
            "for f in /sys/fs/cgroup/*/hugetlb.2MB.limit_in_bytes /sys/fs/cgroup/hugetlb.2MB.max; do [ -e $f ] && cat $f; done; true",
        ],
        json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ]}),
    );
    let c = id("huge");
    let mut argv: Vec<std::ffi::OsString> = vec![
        rwasm_bin().into(),
        "--root".into(),
        w.root.clone().into(),
        "--data-root".into(),
        w.data.clone().into(),
        "--plugins".into(),
        m.clone().into(),
        "run".into(),
        "--bundle".into(),
        b.into(),
        c.clone().into(),
    ];
    let v2_only = !Path::new("/sys/fs/cgroup/memory").exists();
    // This project's hybrid hosts keep hugetlb, unused, on the cgroup2 mount, where the
    // v1-layout manager writes nothing (it refuses the limit there, as runc does). Bind it
    // to a v1 hierarchy as crun's hybrid step does (bench/lib/crun-hybrid.sh), but mounted
    // only in a private mount namespace that ends with the run: other tests never see it.
    let point = PathBuf::from(format!(
        "/sys/fs/cgroup/rwasm-test-hugetlb-{}",
        rand_suffix()
    ));
    let private = !v2_only && !hugetlb_v1_mounted();
    if private {
        let mut wrapped: Vec<std::ffi::OsString> = vec![
            "-m".into(),
            "sh".into(),
            "-c".into(),
            // After the run, the parent cgroup rwasm made (`rwasm/`) is removed too: the
            // hierarchy then holds nothing. (The kernel may keep hugetlb bound to it, off
            // cgroup2, after the mount is gone; no rwasm layout uses it there.)
            r#"mkdir "$0" && mount -t cgroup -o hugetlb cgroup "$0" || exit 99
"$@"; rc=$?
find "$0" -mindepth 1 -depth -type d -exec rmdir {} +
exit $rc"#
                .into(),
            point.clone().into(),
        ];
        wrapped.append(&mut argv);
        argv = std::iter::once("unshare".into()).chain(wrapped).collect();
    }
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    if private {
        // The mount ended with its namespace; the directory is on the shared tmpfs.
        let _ = std::fs::remove_dir(&point);
    }
    assert!(out.status.success(), "run failed: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "4194304", "stderr: {}", stderr(&out));
    assert_nothing_left(&w, &c);
}

#[test]
fn a_resource_is_tightened_but_loosening_needs_the_grant() {
    let w = World::new();
    let limited = json!({"linux": {"resources": {"memory": {"limit": 134217728}}}});
    let tighter = one(&w, r#"{"resources": {"memory": {"limit": 67108864}}}"#, "");
    created(&w, &tighter, limited.clone(), |c| {
        assert_eq!(
            cgroup_file("memory", c, "memory.limit_in_bytes"),
            "67108864"
        );
    });
    let looser = r#"{"resources": {"memory": {"limit": 268435456}}}"#;
    let err = refused(&w, &one(&w, looser, ""), limited.clone());
    assert!(
        err.contains("plugin `script`")
            && err.contains("resources.memory.limit")
            && err.contains("loosen-resources"),
        "{err}"
    );
    let unlimited = r#"{"resources": {"pids-limit": -1}}"#;
    let err = refused(
        &w,
        &one(&w, unlimited, ""),
        json!({"linux": {"resources": {"pids": {"limit": 20}}}}),
    );
    assert!(err.contains("resources.pids.limit"), "{err}");
    let granted = one(&w, looser, "[plugin.grants]\nloosen-resources = true\n");
    created(&w, &granted, limited, |c| {
        assert_eq!(
            cgroup_file("memory", c, "memory.limit_in_bytes"),
            "268435456"
        );
    });
}

#[test]
fn an_rlimit_is_seen_by_ulimit_and_cannot_be_raised() {
    let w = World::new();
    let m = one(
        &w,
        r#"{"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]}"#,
        "",
    );
    assert_eq!(
        inside(&w, &m, json!({}), "ulimit -n; ulimit -Hn"),
        "512\n1024\n"
    );
    let raise = one(
        &w,
        r#"{"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 4096}]}"#,
        "",
    );
    let err = refused(
        &w,
        &raise,
        json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]}}),
    );
    assert!(
        err.contains("plugin `script`") && err.contains("rlimits[0].hard"),
        "{err}"
    );
}

#[test]
fn the_cgroups_path_is_used() {
    let w = World::new();
    let name = format!("rwasm-adjust-{}", rand_suffix());
    let m = one(&w, &format!(r#"{{"cgroups-path": "{name}"}}"#), "");
    created(&w, &m, json!({}), |_| {
        assert!(
            !cgroup_dirs_named(&name).is_empty(),
            "a cgroup named {name}"
        );
    });
    assert!(cgroup_dirs_named(&name).is_empty(), "removed at delete");
}

#[test]
fn an_added_oci_hook_runs() {
    let w = World::new();
    let mark = w.path("hook-ran");
    let json = format!(
        r#"{{"hooks": [{{"stage": "create-runtime", "path": "/bin/sh", "args": ["sh", "-c", "cat > {}"], "timeout": 5}}]}}"#,
        mark.display()
    );
    let m = one(&w, &json, "[plugin.grants]\nhooks = true\n");
    let c = id("hooked");
    let b = w.bundle("b", &["true"], json!({}));
    let out = run_with(&w, &m, &b, &c);
    assert!(out.status.success(), "{}", stderr(&out));
    // The hook got the state on stdin, as the spec says.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mark).unwrap()).unwrap();
    assert_eq!(state["id"], c.as_str());
    let bad = one(
        &w,
        r#"{"hooks": [{"stage": "poststart", "path": "/bin/true", "timeout": 0}]}"#,
        "[plugin.grants]\nhooks = true\n",
    );
    let err = refused(&w, &bad, json!({}));
    assert!(err.contains("hooks[0].timeout"), "{err}");
}

#[test]
fn args_are_replaced_only_with_the_grant() {
    let w = World::new();
    let json = r#"{"args": ["/bin/echo", "replaced"]}"#;
    let granted = one(&w, json, "[plugin.grants]\nargs = true\n");
    let b = w.bundle("b", &["echo", "original"], json!({}));
    let out = run_with(&w, &granted, &b, &id("args"));
    assert_eq!(stdout(&out), "replaced\n", "{}", stderr(&out));
    let err = refused(&w, &one(&w, json, ""), json!({}));
    assert!(
        err.contains("plugin `script`") && err.contains("args") && err.contains("`args = true`"),
        "{err}"
    );
}

#[test]
fn two_plugins_setting_one_field_conflict_naming_both() {
    let w = World::new();
    let cases = [
        (
            r#"{"env": [["X", "1"]]}"#,
            r#"{"env": [["X", "2"]]}"#,
            "process.env X",
        ),
        (
            r#"{"env": [["X", "1"]]}"#,
            r#"{"remove-env": ["X"]}"#,
            "removes what `first` set",
        ),
        (
            r#"{"resources": {"memory": {"limit": 67108864}}}"#,
            r#"{"resources": {"memory": {"limit": 33554432}}}"#,
            "linux.resources.memory.limit",
        ),
        (
            r#"{"devices": [{"path": "/dev/a", "type": "c", "major": 1, "minor": 5}]}"#,
            r#"{"devices": [{"path": "/dev/a", "type": "c", "major": 1, "minor": 3}]}"#,
            "linux.devices /dev/a",
        ),
    ];
    for (a, b, field) in cases {
        let m = write_manifest(
            &w,
            "",
            &[
                entry(
                    "first",
                    &format!(
                        "[plugin.config]\npre-create = '{a}'\n[plugin.grants]\ndevices = true\n"
                    ),
                ),
                entry(
                    "second",
                    &format!(
                        "[plugin.config]\npre-create = '{b}'\n[plugin.grants]\ndevices = true\n"
                    ),
                ),
            ],
        );
        let err = refused(&w, &m, json!({}));
        assert!(
            err.contains("`first`") && err.contains("`second`") && err.contains(field),
            "{field}: {err}"
        );
    }
}

#[test]
fn three_plugins_run_by_order_and_each_sees_what_the_ones_before_did() {
    let w = World::new();
    // Manifest position: echo, a, b; `order` makes it b (-1), a (0), echo (5).
    let m = write_manifest(
        &w,
        "",
        &[
            entry(
                "echo",
                "order = 5\n[plugin.config]\necho-env = [\"A\", \"B\"]\n",
            ),
            entry(
                "a",
                "[plugin.config]\necho-env = [\"B\"]\npre-create = '{\"env\": [[\"A\", \"1\"]]}'\n",
            )
            .replace("echo-env = [\"B\"]\n", ""),
            entry(
                "b",
                "order = -1\n[plugin.config]\npre-create = '{\"env\": [[\"B\", \"2\"]], \"annotations\": [[\"chain\", \"b\"]]}'\n",
            ),
        ],
    );
    let out = inside(&w, &m, json!({}), "echo \"$A $B $SEEN\"");
    assert_eq!(out, "1 2 A=1,B=2\n");
    // If `echo` ran first (order 0, position first) it would see neither.
    let m = write_manifest(
        &w,
        "",
        &[
            entry("echo", "order = -10\n[plugin.config]\necho-env = [\"A\"]\n"),
            entry(
                "a",
                "[plugin.config]\npre-create = '{\"env\": [[\"A\", \"1\"]]}'\n",
            ),
        ],
    );
    assert_eq!(inside(&w, &m, json!({}), "echo \"$A $SEEN\""), "1 A\n");
}

#[test]
fn plugins_apply_only_to_matching_containers() {
    let w = World::new();
    let m = write_manifest(
        &w,
        "",
        &[
            entry(
                "by-annotation",
                "[plugin.config]\npre-create = '{\"env\": [[\"BY_ANNOTATION\", \"1\"]]}'\n[plugin.match]\nannotations = { \"team\" = \"*\", \"tier\" = \"gold\" }\n",
            ),
            entry(
                "by-image",
                "[plugin.config]\npre-create = '{\"env\": [[\"BY_IMAGE\", \"1\"]]}'\n[plugin.match]\nimages = [\"docker.io/library/busy*\"]\n",
            ),
        ],
    );
    let script = "echo \"${BY_ANNOTATION-no} ${BY_IMAGE-no}\"";
    assert_eq!(inside(&w, &m, json!({}), script), "no no\n");
    assert_eq!(
        inside(
            &w,
            &m,
            json!({"annotations": {"team": "a", "tier": "gold"}}),
            script
        ),
        "1 no\n"
    );
    assert_eq!(
        inside(
            &w,
            &m,
            json!({"annotations": {"team": "a", "tier": "iron"}}),
            script
        ),
        "no no\n"
    );
    assert_eq!(
        inside(
            &w,
            &m,
            json!({"annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox:1.36"}}),
            script
        ),
        "no 1\n"
    );
}

mod pre_update {
    use super::*;
    use oci_spec::runtime::{
        ContainerState, LinuxMemory, LinuxResources, Spec, State, StateBuilder,
    };
    use rwasm::plugin::{PluginError, PluginSet};

    fn set(w: &World, config: &str) -> PluginSet {
        let m = manifest(
            w,
            "update.toml",
            &format!(
                "[[plugin]]\nname = \"clamp\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"pre-update\"]\n[plugin.config]\n{config}\n",
                scripted().display()
            ),
        );
        PluginSet::load(&m, &w.path("cache")).unwrap()
    }

    fn state() -> State {
        StateBuilder::default()
            .version("1.2.0")
            .id("c1")
            .status(ContainerState::Running)
            .bundle("/tmp")
            .build()
            .unwrap()
    }

    fn memory(limit: i64) -> LinuxResources {
        let mut m = LinuxMemory::default();
        m.set_limit(Some(limit));
        let mut r = LinuxResources::default();
        r.set_memory(Some(m));
        r
    }

    #[test]
    fn a_plugin_clamps_an_update_but_cannot_loosen_it() {
        let w = World::new();
        let s = set(
            &w,
            "pre-update = '{\"resources\": {\"memory\": {\"limit\": 134217728}, \"pids-limit\": 100}}'",
        );
        let mut update = memory(256 << 20);
        let applied = s
            .pre_update(&state(), &Spec::default(), &mut update)
            .unwrap();
        assert_eq!(update.memory().unwrap().limit(), Some(128 << 20));
        assert_eq!(update.pids().as_ref().map(|p| p.limit()), Some(100));
        let what: Vec<String> = applied.iter().map(|a| format!("{a}")).collect();
        assert_eq!(
            what,
            [
                "clamp: tightened resources.memory.limit from 268435456 to 134217728",
                "clamp: set resources.pids.limit to 100"
            ]
        );
        // The update is already tighter: the plugin's value would loosen it.
        let mut update = memory(64 << 20);
        match s.pre_update(&state(), &Spec::default(), &mut update) {
            Err(PluginError::InvalidAdjustment { plugin, field, .. }) => {
                assert_eq!(
                    (plugin.as_str(), field.as_str()),
                    ("clamp", "resources.memory.limit")
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            update.memory().unwrap().limit(),
            Some(64 << 20),
            "unchanged on error"
        );
    }

    #[test]
    fn a_plugin_denies_an_update_and_may_return_only_resources() {
        let w = World::new();
        let s = set(&w, "deny = \"no updates on fridays\"");
        let mut update = memory(1 << 30);
        match s.pre_update(&state(), &Spec::default(), &mut update) {
            Err(PluginError::Denied { plugin, reason, .. }) => {
                assert_eq!(
                    (plugin.as_str(), reason.as_str()),
                    ("clamp", "no updates on fridays")
                );
            }
            other => panic!("expected a denial, got {other:?}"),
        }
        let w = World::new();
        let s = set(&w, "pre-update = '{\"env\": [[\"A\", \"1\"]]}'");
        match s.pre_update(&state(), &Spec::default(), &mut update) {
            Err(PluginError::InvalidAdjustment { field, .. }) => assert_eq!(field, "adjustment"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn a_create_that_fails_after_the_adjustment_removes_the_adjusted_cgroup() {
    // The plugin moves the cgroup and asks for an rlimit above this host's hard limit of
    // 20000 open files (no CAP_SYS_RESOURCE): init fails at setrlimit, after the cgroup at
    // the plugin's path was made; rollback must remove that one.
    let w = World::new();
    let name = format!("rwasm-adjust-fail-{}", rand_suffix());
    let m = one(
        &w,
        &format!(
            r#"{{"cgroups-path": "{name}", "rlimits": [{{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}}]}}"#
        ),
        "",
    );
    let err = refused(&w, &m, json!({}));
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(
        cgroup_dirs_named(&name).is_empty(),
        "no cgroup left at {name}"
    );
}
