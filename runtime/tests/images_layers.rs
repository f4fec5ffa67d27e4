//! Layer unpacking through `rwasm load` and a real container: whiteouts and opaque
//! directories, hard links, symlinks, device nodes, owners, modes, mtimes and xattrs; and
//! hostile layers (`..`, absolute paths, a write through a symlink the layer made) refused
//! with the entry named and nothing written outside. Root only.

mod common;
mod images_common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::*;
use images_common::*;
use serde_json::json;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Load an image of busybox plus `layers` (plain tars) tagged `name`.
fn load(w: &World, name: &str, layers: &[Vec<u8>]) -> std::process::Output {
    let bb = busybox_layer(w.tmp.path());
    let mut all = vec![bb];
    all.extend(layers.iter().cloned());
    let diffs: Vec<&[u8]> = all.iter().map(|l| &l[..]).collect();
    let cfg = config(&diffs, json!({"Cmd": ["sh"]}));
    let blobs: Vec<(&str, Vec<u8>)> = all.iter().map(|l| (TAR, l.clone())).collect();
    let (ar, _) = oci_archive(&blobs, &cfg, Some(name));
    let path = put(w, &format!("{}.tar", name.replace(':', "-")), &ar);
    w.rwasm(&["load", "-i", &path])
}

#[test]
fn whiteouts_and_opaque_directories_give_the_right_tree() {
    let w = World::new();
    let lower = layer(&[
        E::Dir("a"),
        E::File("a/gone", b"1"),
        E::File("a/kept", b"2"),
        E::Dir("d"),
        E::File("d/old", b"3"),
        E::Dir("d/sub"),
        E::File("d/sub/deep", b"4"),
        E::File("top-gone", b"5"),
    ]);
    let upper = layer(&[
        E::File("a/.wh.gone", b""),
        E::File(".wh.top-gone", b""),
        E::Dir("d"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/new", b"6"),
    ]);
    let out = load(&w, "wh:1", &[lower, upper.clone()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = ok(
        &w,
        &[
            "run",
            "--rm",
            "wh:1",
            "sh",
            "-c",
            "ls /a; echo -; ls -R /d; echo -; ls /top-gone 2>&1 || echo absent",
        ],
    );
    assert_eq!(
        run,
        "kept\n-\n/d:\nnew\n-\nls: /top-gone: No such file or directory\nabsent\n"
    );
    // On disk, the upper layer holds overlayfs' forms: a 0:0 char device, an opaque xattr.
    let dir = w.data.join("images/layers").join(&sha(&upper)[7..]);
    let wh = std::fs::symlink_metadata(dir.join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr::get(dir.join("d"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert!(!dir.join("d/.wh..wh..opq").exists() && !dir.join("a/.wh.gone").exists());
}

#[test]
fn links_devices_owners_modes_mtimes_and_xattrs_are_kept() {
    let w = World::new();
    let mut b = tar::Builder::new(Vec::new());
    let hdr = |t: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_000_000_000);
        h
    };
    b.append_data(
        &mut hdr(tar::EntryType::Directory, 0o750, 0),
        "srv",
        &[][..],
    )
    .unwrap();
    // overlayfs's own xattrs are not the image's to set: dropped, the others kept.
    b.append_pax_extensions([
        ("SCHILY.xattr.user.origin", &b"test-layer"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .unwrap();
    b.append_data(
        &mut hdr(tar::EntryType::Regular, 0o4755, 4),
        "srv/tool",
        &b"#!x\n"[..],
    )
    .unwrap();
    b.append_link(
        &mut hdr(tar::EntryType::Link, 0o644, 0),
        "srv/tool-again",
        "srv/tool",
    )
    .unwrap();
    b.append_link(
        &mut hdr(tar::EntryType::Symlink, 0o777, 0),
        "srv/link",
        "/srv/tool",
    )
    .unwrap();
    let mut dev = hdr(tar::EntryType::Char, 0o666, 0);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    b.append_data(&mut dev, "srv/null", &[][..]).unwrap();
    b.append_data(
        &mut hdr(tar::EntryType::Fifo, 0o600, 0),
        "srv/pipe",
        &[][..],
    )
    .unwrap();
    let l = b.into_inner().unwrap();
    let out = load(&w, "meta:1", std::slice::from_ref(&l));
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = w.data.join("images/layers").join(&sha(&l)[7..]);
    let m = |p: &str| std::fs::symlink_metadata(dir.join(p)).unwrap();
    let tool = m("srv/tool");
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "set-uid kept after chown"
    );
    assert_eq!((tool.uid(), tool.gid()), (1234, 5678));
    assert_eq!(tool.mtime(), 1_000_000_000);
    assert_eq!(
        m("srv/tool-again").ino(),
        tool.ino(),
        "a hard link, not a copy"
    );
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        std::fs::read_link(dir.join("srv/link")).unwrap().to_str(),
        Some("/srv/tool")
    );
    assert_eq!(
        (m("srv/link").uid(), m("srv/link").mtime()),
        (1234, 1_000_000_000)
    );
    let null = m("srv/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(m("srv/pipe").file_type().is_fifo());
    let srv = m("srv");
    assert_eq!(srv.permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        srv.mtime(),
        1_000_000_000,
        "directory mtime set after its entries"
    );
    assert_eq!(
        xattr::get(dir.join("srv/tool"), "user.origin").unwrap(),
        Some(b"test-layer".to_vec())
    );
    assert_eq!(
        xattr::get(dir.join("srv/tool"), "trusted.overlay.redirect").unwrap(),
        None,
        "an image's overlayfs xattr is dropped"
    );
    // The same tree inside a container.
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "meta:1",
                "stat",
                "-c",
                "%a %u %g %Y",
                "/srv/tool"
            ]
        ),
        "4755 1234 5678 1000000000\n"
    );
}

/// A hostile layer must fail `load` with the entry named, leave `outside` untouched, and
/// leave no image, layer or blob behind.
fn refused(w: &World, name: &str, l: Vec<u8>, entry: &str, reason: &str) {
    let out = load(w, name, &[l]);
    assert!(!out.status.success(), "{name} loaded");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "layer entry {entry:?} lands outside the layer directory: {reason}"
        )),
        "{name}: {err}"
    );
    assert!(
        !ok(w, &["images"]).contains(name.split(':').next().unwrap()),
        "{name} indexed"
    );
    let layers: Vec<_> = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(layers.is_empty(), "{name}: layers left {layers:?}");
    assert_eq!(verify_blobs(w), 0, "{name}: blobs left");
}

#[test]
fn hostile_layers_are_refused_and_nothing_lands_outside() {
    let w = World::new();
    let outside = w.path("outside");
    std::fs::create_dir(&outside).unwrap();
    refused(
        &w,
        "dotdot:1",
        raw_layer(&[E::Dir("x")], b"x/../../../escaped", b"pwned"),
        "x/../../../escaped",
        "\"..\" component",
    );
    let abs = format!("{}/abs", outside.display());
    refused(
        &w,
        "absolute:1",
        raw_layer(&[], abs.as_bytes(), b"pwned"),
        &abs,
        "absolute path",
    );
    refused(
        &w,
        "symlink:1",
        layer(&[
            E::Symlink("link", outside.to_str().unwrap()),
            E::File("link/through", b"pwned"),
        ]),
        "link/through",
        "path through the symlink link",
    );
    refused(
        &w,
        "hardlink:1",
        layer(&[E::HardLink("shadow", "../../../../etc/shadow")]),
        "shadow -> ../../../../etc/shadow",
        "\"..\" component",
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );
    assert!(!w.tmp.path().join("escaped").exists() && !w.data.join("escaped").exists());
}

#[test]
fn a_whiteout_of_the_parent_is_refused_and_the_store_keeps_its_layers() {
    // `.wh...` names `..`: applied, it would remove the layer directory's parent, which
    // for a top-level entry is the store's directory of every unpacked layer.
    let w = World::new();
    w.setup_image();
    let kept: Vec<_> = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(!kept.is_empty());
    for (name, entry) in [
        ("parent:1", ".wh..."),
        ("deeper:1", "x/.wh..."),
        ("itself:1", ".wh.."),
    ] {
        let l = layer(&[E::Dir("x"), E::File(entry, b"")]);
        let out = load(&w, name, &[l]);
        assert!(!out.status.success(), "{name} loaded");
        let hidden = entry.rsplit(".wh.").next().unwrap();
        assert!(
            stderr(&out).contains(&format!(
                "layer entry {entry:?} lands outside the layer directory: whiteout of {hidden:?}"
            )),
            "{name}: {}",
            stderr(&out)
        );
        for k in &kept {
            assert!(
                w.data.join("images/layers").join(k).exists(),
                "{name}: the store lost {k:?}"
            );
        }
        assert!(!ok(&w, &["images"]).contains(name.split(':').next().unwrap()));
    }
    assert_eq!(ok(&w, &["run", "--rm", "busybox", "echo", "ok"]), "ok\n");
}
