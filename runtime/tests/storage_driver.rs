//! Storage driver plugins (world `storage-driver`): the first-party `overlay` and `vfs`
//! drivers give the same tree for a multi-layer image with whiteouts, an opaque
//! directory, symlinks, hard links, a device node, owners and set-id modes; `rm` releases
//! the rootfs (no mount, no driver directory left); a driver asking for a mount outside
//! its directory, through a symlink out of it, of a source it was not given or with a
//! lowerdir it was not given is refused with the field named, and what its call mounted
//! is unmounted; no driver gets a writable view of a layer. Root only.

mod common;
mod images_common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::*;
use images_common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A layer with entries a plain `layer()` cannot spell: an owned set-uid file, a
/// character device, a fifo and a symlink with an owner.
fn special_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_100_000_000);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4750);
    h.set_size(5);
    b.append_data(&mut h, "owned", &b"owned"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_100_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Char);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_size(0);
    b.append_data(&mut h, "null", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_100_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Fifo);
    h.set_mode(0o640);
    h.set_size(0);
    b.append_data(&mut h, "fifo", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_100_000_000);
    h.set_uid(42);
    h.set_gid(43);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, "owned-link", "owned").unwrap();
    b.into_inner().unwrap()
}

/// Loads busybox + a lower layer + an upper one with whiteouts and an opaque directory
/// + the special layer, as `st:1`.
fn load_image(w: &World) {
    let lower = layer(&[
        E::Dir("a"),
        E::File("a/gone", b"1"),
        E::File("a/kept", b"2"),
        E::Dir("d"),
        E::File("d/old", b"3"),
        E::Dir("d/sub"),
        E::File("d/sub/deep", b"4"),
        E::File("top-gone", b"5"),
        E::File("hl-src", b"hard"),
        E::HardLink("hl-dst", "hl-src"),
        E::Symlink("rel-link", "a/kept"),
    ]);
    let upper = layer(&[
        E::File("a/.wh.gone", b""),
        E::File(".wh.top-gone", b""),
        E::Dir("d"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/new", b"6"),
        E::File("a/kept", b"2 changed"),
    ]);
    let all = [busybox_layer(w.tmp.path()), lower, upper, special_layer()];
    let diffs: Vec<&[u8]> = all.iter().map(|l| &l[..]).collect();
    let cfg = config(&diffs, json!({"Cmd": ["sh"]}));
    let blobs: Vec<(&str, Vec<u8>)> = all.iter().map(|l| (TAR, l.clone())).collect();
    let (ar, _) = oci_archive(&blobs, &cfg, Some("st:1"));
    let path = put(w, "st.tar", &ar);
    ok(w, &["load", "-i", &path]);
}

/// Everything `ls -lR --full-time` and `sha256sum` would show of a tree, keyed by path.
fn walk(root: &Path) -> BTreeMap<String, String> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let what = if ft.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap();
                format!("file {:x} nlink {}", Sha256::digest(&data), m.nlink())
            } else if ft.is_dir() {
                "dir".to_string()
            } else if ft.is_char_device() || ft.is_block_device() {
                format!("dev {:x}", m.rdev())
            } else {
                "fifo".to_string()
            };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            // Directory times move with every entry the runtime adds; /etc/hostname and
            // /etc/hosts are mount points the runtime creates at each container's start.
            let made_by_runtime = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];
            let mtime = if ft.is_dir() || made_by_runtime.contains(&rel.as_str()) {
                0
            } else {
                m.mtime()
            };
            out.insert(
                rel,
                format!(
                    "{what} mode {:o} {}:{} mtime {mtime}",
                    m.mode(),
                    m.uid(),
                    m.gid()
                ),
            );
            if ft.is_dir() {
                go(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

/// `run -d --storage-driver DRIVER st:1 sleep 600`; the id.
fn start(w: &World, driver: &str) -> String {
    let out = ok(
        w,
        &[
            "run",
            "-d",
            "--storage-driver",
            driver,
            "st:1",
            "sleep",
            "600",
        ],
    );
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "{out}");
    id
}

#[test]
fn overlay_and_vfs_give_identical_trees_and_rm_releases_both() {
    let w = World::new();
    load_image(&w);
    let data = w.data.display().to_string();
    let mut trees = Vec::new();
    let mut ids = Vec::new();
    for driver in ["overlay", "vfs"] {
        let id = start(&w, driver);
        let rootfs = w.data.join("containers").join(&id).join("rootfs");
        let mounts = mounts_mentioning(&format!("{data}/storage/{driver}/{id}"));
        assert!(
            !mounts.is_empty(),
            "the {driver} driver's mount is under its directory"
        );
        trees.push(walk(&rootfs));
        ids.push((driver, id));
    }
    let (overlay, vfs) = (&trees[0], &trees[1]);
    // Whiteouts and the opaque directory applied, the upper file won.
    assert!(!overlay.contains_key("a/gone") && !overlay.contains_key("top-gone"));
    assert!(!overlay.contains_key("d/old") && !overlay.contains_key("d/sub"));
    assert!(overlay.contains_key("d/new"));
    assert_eq!(
        overlay["a/kept"],
        format!(
            "file {:x} nlink 1 mode 100644 0:0 mtime 1000000000",
            Sha256::digest(b"2 changed")
        )
    );
    assert_eq!(
        overlay["owned"].split(" mode ").nth(1),
        Some("104750 1234:5678 mtime 1100000000")
    );
    assert_eq!(overlay["null"], "dev 103 mode 20666 0:0 mtime 1100000000");
    assert_eq!(
        overlay["owned-link"],
        "link -> owned mode 120777 42:43 mtime 1100000000"
    );
    assert!(
        overlay["hl-src"].contains("nlink 2"),
        "{}",
        overlay["hl-src"]
    );
    assert!(
        overlay.len() > 100,
        "busybox's applets are there: {}",
        overlay.len()
    );
    let differ: Vec<_> = overlay
        .iter()
        .filter(|(k, v)| vfs.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: overlay {v} / vfs {:?}", vfs.get(k)))
        .chain(
            vfs.keys()
                .filter(|k| !overlay.contains_key(*k))
                .map(|k| format!("{k}: only in vfs")),
        )
        .collect();
    assert!(differ.is_empty(), "trees differ:\n{}", differ.join("\n"));
    // The container sees the tree too.
    let (_, id) = &ids[1];
    let seen = ok(&w, &["exec", id, "cat", "/a/kept"]);
    assert_eq!(seen, "2 changed");
    for (driver, id) in &ids {
        ok(&w, &["rm", "-f", id]);
        assert_eq!(
            mounts_mentioning(&format!("{data}/storage/{driver}/{id}")),
            Vec::<String>::new()
        );
        assert_eq!(
            mounts_mentioning(&format!("{data}/containers/{id}")),
            Vec::<String>::new()
        );
        let dir = w.data.join("storage").join(driver).join(id);
        assert!(!dir.exists(), "{} is left after rm", dir.display());
        assert!(!w.data.join("containers").join(id).exists());
    }
}

#[test]
fn run_rm_with_either_driver_leaves_nothing() {
    let w = World::new();
    w.setup_image();
    let data = w.data.display().to_string();
    for driver in ["overlay", "vfs", "native-overlay"] {
        let out = ok(
            &w,
            &[
                "--storage-driver",
                driver,
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo hi > /f; cat /f",
            ],
        );
        assert_eq!(out, "hi\n", "{driver}");
        assert_eq!(mounts_mentioning(&data), Vec::<String>::new(), "{driver}");
        let left: Vec<_> = std::fs::read_dir(w.data.join("containers"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{driver}: {left:?}");
    }
    let err = fails(
        &w,
        &[
            "run",
            "--rm",
            "--storage-driver",
            "nosuch",
            "busybox",
            "true",
        ],
    );
    assert!(err.contains("no storage driver named `nosuch`"), "{err}");
    assert_eq!(mounts_mentioning(&data), Vec::<String>::new());
}

/// A manifest `file` in `w` naming the first-party vfs driver `name`, owning `state`
/// (made here).
fn vfs_driver_manifest(w: &World, file: &str, name: &str, state: &Path) -> PathBuf {
    std::fs::create_dir_all(state).unwrap();
    manifest(
        w,
        file,
        &format!(
            r#"[[plugin]]
name = "{name}"
path = {wasm:?}
kind = "storage-driver"
[plugin.grants.storage]
state-dir = {state:?}
"#,
            wasm = plugin_wasm("storage_vfs"),
        ),
    )
}

/// `run --rm busybox true` with the storage-hostile driver in `mode` (and `target`),
/// owning `state`: it must fail; its error.
fn hostile_run(w: &World, state: &Path, mode: &str, target: &str) -> String {
    let m = manifest(
        w,
        &format!("hostile-{mode}-{}.toml", rand_suffix()),
        &format!(
            r#"[[plugin]]
name = "hostile"
path = {wasm:?}
kind = "storage-driver"
[plugin.config]
mode = "{mode}"
target = "{target}"
[plugin.grants.storage]
state-dir = {state:?}
"#,
            wasm = plugin_wasm("storage_hostile"),
        ),
    );
    fails(
        w,
        &[
            "--plugins",
            m.to_str().unwrap(),
            "run",
            "--rm",
            "--storage-driver",
            "hostile",
            "busybox",
            "true",
        ],
    )
}

#[test]
fn a_hostile_driver_is_refused_and_its_mounts_are_undone() {
    let w = World::new();
    w.setup_image();
    let state = w.path("hostile-state");
    let outside = w.path("outside");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, state.join("escape")).unwrap();
    let cases = [
        ("outside", outside.display().to_string(), "target"),
        (
            "outside",
            state.join("escape").display().to_string(),
            "target",
        ),
        (
            "outside",
            format!("{}/../outside", state.display()),
            "target",
        ),
        ("source", String::new(), "source `/etc` is neither a layer"),
        (
            "lowerdir",
            String::new(),
            "lowerdir[0] `/etc` is neither a layer",
        ),
    ];
    for (i, (mode, target, field)) in cases.iter().enumerate() {
        let err = hostile_run(&w, &state, mode, target);
        assert!(err.contains(field), "case {i}: {err}");
        assert!(!err.contains("the host let"), "case {i}: {err}");
        for needle in [state.display().to_string(), outside.display().to_string()] {
            assert_eq!(mounts_mentioning(&needle), Vec::<String>::new(), "case {i}");
        }
        assert_eq!(
            mounts_mentioning(&w.data.display().to_string()),
            Vec::<String>::new()
        );
    }
}

/// Every file below `dir` named `name`.
fn files_named(dir: &Path, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if e.file_name() == name {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_driver_never_gets_a_writable_view_of_a_layer() {
    // Layers are shared by every container and image: a driver's bind of one is
    // read-only (an explicit `rw` refused), also when it binds again a read-only bind it
    // made, and its write through its own read-write directory fails.
    let w = World::new();
    w.setup_image();
    let state = w.path("hostile-state");
    std::fs::create_dir_all(&state).unwrap();
    // The write's error is the guest's (WASI's), whatever words it has for EROFS.
    let cases = [
        ("layer-rw", "/l/hostile-was-here: "),
        (
            "layer-explicit-rw",
            "options[0] `rw` is not allowed: source",
        ),
        ("rebind", "/m/hostile-was-here: "),
    ];
    for (mode, expected) in cases {
        let err = hostile_run(&w, &state, mode, "");
        assert!(!err.contains("the host let"), "{mode}: {err}");
        assert!(err.contains(expected), "{mode}: {err}");
        assert_eq!(
            files_named(&w.data.join("images/layers"), "hostile-was-here"),
            Vec::<String>::new(),
            "{mode}: the driver wrote into a layer"
        );
        assert_eq!(
            mounts_mentioning(&state.display().to_string()),
            Vec::<String>::new(),
            "{mode}"
        );
    }
    // The layer is intact: a container of the image still runs from it.
    assert_eq!(ok(&w, &["run", "--rm", "busybox", "echo", "ok"]), "ok\n");
}

#[test]
fn a_manifest_driver_serves_detached_and_created_containers() {
    // `run -d` and `create` prepare the container in the calling process and hand it to a
    // monitor: both must find a driver that only the manifest names, also where preparing
    // mounts the rootfs (a user name looked up in /etc/passwd, an anonymous volume seeded
    // with the image's content).
    let w = World::new();
    w.setup_image();
    let state = w.path("myvfs-state");
    let m = vfs_driver_manifest(&w, "myvfs.toml", "myvfs", &state);
    let m = m.to_str().unwrap();
    let base = ["--plugins", m, "--storage-driver", "myvfs"];
    let run = |rest: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(rest);
        ok(&w, &a)
    };
    let id = run(&[
        "run", "-d", "-u", "root", "-v", "/etc", "busybox", "sleep", "600",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let out = run(&[
        "exec",
        id,
        "sh",
        "-c",
        "echo hi > /f; cat /f; test -s /etc/passwd && id -u",
    ]);
    assert_eq!(out, "hi\n0\n");
    let storage: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.data.join("containers").join(id).join("storage.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(storage["driver"], "myvfs", "{storage}");
    let created = run(&["create", "-u", "root", "busybox", "cat", "/etc/hostname"]);
    let created = created.trim();
    assert_eq!(created.len(), 64, "{created}");
    let out = run(&["start", "-a", created]);
    assert_eq!(out.trim(), &created[..12]);
    run(&["rm", "-f", "-v", id, created]);
    assert_eq!(
        mounts_mentioning(&state.display().to_string()),
        Vec::<String>::new()
    );
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "the driver's state directory still holds a container's tree"
    );
}

#[test]
fn a_manifest_driver_named_overlay_replaces_the_default() {
    // The manifest chooses the default driver: its `storage-driver` plugin named
    // `overlay` is used for containers without --storage-driver.
    let w = World::new();
    w.setup_image();
    let state = w.path("vendor-state");
    let m = vfs_driver_manifest(&w, "vendor-overlay.toml", "overlay", &state);
    let m = m.to_str().unwrap();
    // Given relative to the caller's directory; `start` runs elsewhere, without --plugins,
    // and twice (a restart is prepared again by the same driver).
    let script = "cat /etc/hostname; cat /kept 2>/dev/null; echo kept > /kept";
    let out = w
        .cmd(&[
            "--plugins",
            "vendor-overlay.toml",
            "create",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .current_dir(w.tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out);
    let id = id.trim();
    let start = || {
        let out = w
            .cmd(&["start", "-a", id])
            .current_dir("/")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(start(), format!("{}\n", &id[..12]));
    assert_eq!(
        start(),
        format!("{}\nkept\n", &id[..12]),
        "the writable layer is kept"
    );
    let storage: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.data.join("containers").join(id).join("storage.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(storage["driver"], "overlay", "{storage}");
    assert_eq!(storage["manifest"], m, "{storage}");
    assert!(
        state.join(id).join("tree/bin/busybox").is_file(),
        "the manifest's driver (a copying one) made the rootfs"
    );
    assert!(
        !w.data.join("storage/overlay").join(id).exists(),
        "the built-in overlay driver was not used"
    );
    // `rm` finds the driver through the recorded manifest, without --plugins.
    let out = w.cmd(&["rm", id]).current_dir("/").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!state.join(id).exists());
    assert_eq!(
        mounts_mentioning(&state.display().to_string()),
        Vec::<String>::new()
    );
}

#[test]
fn storage_opt_is_refused_by_name_and_leaves_nothing() {
    let w = World::new();
    w.setup_image();
    for driver in ["overlay", "vfs", "native-overlay"] {
        for cmd in ["run", "create"] {
            let err = fails(
                &w,
                &[
                    "--storage-driver",
                    driver,
                    cmd,
                    "--storage-opt",
                    "size=10G",
                    "busybox",
                    "true",
                ],
            );
            assert!(
                err.contains(&format!(
                    "invalid --storage-opt \"size=10G\": storage driver `{driver}` takes no option `size`"
                )),
                "{driver} {cmd}: {err}"
            );
        }
    }
    let err = fails(
        &w,
        &["run", "--rm", "--storage-opt", "size", "busybox", "true"],
    );
    assert!(
        err.contains("invalid --storage-opt \"size\": expected KEY=VALUE"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(w.data.join("containers")).map_or(true, |mut d| d.next().is_none()),
        "no bundle is left"
    );
    assert!(
        ok(&w, &["ps", "-aq"]).trim().is_empty(),
        "no container is left"
    );
}
