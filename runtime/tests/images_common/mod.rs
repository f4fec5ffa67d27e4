//! Test images built by the tests themselves: layer tars entry by entry (including the
//! malformed ones a hostile archive would hold), OCI archives and `docker save` archives.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `sha256:HEX` of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// One entry of a test layer.
pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// A tar of `entries` (mode 0755 dirs, 0644 files, owner 0, mtime 1e9).
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, to) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, to).unwrap();
            }
            E::HardLink(p, to) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, to).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A tar whose one regular file has the raw name `name` (which tar-rs would refuse to
/// write: `..` components, absolute paths), after the entries of `before`.
pub fn raw_layer(before: &[E], name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = layer(before);
    out.truncate(out.len() - 1024); // drop the two end-of-archive blocks
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_000_000_000);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A tar of a directory tree on the host (symlinks kept as symlinks).
pub fn layer_of_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// A layer of busybox-static with its applet links and /etc/passwd, /etc/group.
pub fn busybox_layer(tmp: &Path) -> Vec<u8> {
    let root = tmp.join("bb-rootfs");
    crate::common::busybox_rootfs(&root);
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    layer_of_dir(&root)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

/// An image config for uncompressed layers `diff` (tars, bottom first) and `config`.
pub fn config(diff: &[&[u8]], config: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff.iter().map(|d| sha(d)).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// An OCI archive (image layout as a tar) of one image: `blobs` are the layer blobs as
/// stored (compressed or not), `config` its config; named `name` (`io.containerd.image.name`).
/// Returns the archive and the manifest digest.
pub fn oci_archive(
    layers: &[(&str, Vec<u8>)],
    config: &[u8],
    name: Option<&str>,
) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut descs = Vec::new();
    for (media, blob) in layers {
        add(&mut b, &format!("blobs/sha256/{}", &sha(blob)[7..]), blob);
        descs.push(json!({"mediaType": media, "digest": sha(blob), "size": blob.len()}));
    }
    add(
        &mut b,
        &format!("blobs/sha256/{}", &sha(config)[7..]),
        config,
    );
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    add(
        &mut b,
        &format!("blobs/sha256/{}", &sha(&manifest)[7..]),
        &manifest,
    );
    let mut d = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len()});
    if let Some(n) = name {
        d["annotations"] = json!({"io.containerd.image.name": n});
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [d]})).unwrap();
    add(&mut b, "index.json", &index);
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    (b.into_inner().unwrap(), sha(&manifest))
}

/// A `docker save` archive (legacy layout: `HEX.json`, `N/layer.tar`, manifest.json).
pub fn docker_archive(layers: &[Vec<u8>], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let cfg = format!("{}.json", &sha(config)[7..]);
    add(&mut b, &cfg, config);
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("{i}/layer.tar");
        add(&mut b, &p, l);
        paths.push(p);
    }
    let m =
        serde_json::to_vec(&json!([{"Config": cfg, "RepoTags": tags, "Layers": paths}])).unwrap();
    add(&mut b, "manifest.json", &m);
    b.into_inner().unwrap()
}

/// Write `bytes` to the world's file `name`; returns its path as a string.
pub fn put(w: &crate::common::World, name: &str, bytes: &[u8]) -> String {
    let p = w.path(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// `rwasm ARGS` must succeed; returns its stdout.
pub fn ok(w: &crate::common::World, args: &[&str]) -> String {
    let out = w.rwasm(args);
    assert!(
        out.status.success(),
        "rwasm {args:?} failed: {}{}",
        crate::common::stderr(&out),
        crate::common::stdout(&out)
    );
    crate::common::stdout(&out)
}

/// `rwasm ARGS` must fail; returns its stderr.
pub fn fails(w: &crate::common::World, args: &[&str]) -> String {
    let out = w.rwasm(args);
    assert!(
        !out.status.success(),
        "rwasm {args:?} succeeded: {}",
        crate::common::stdout(&out)
    );
    crate::common::stderr(&out)
}

/// Every file under the store's `blobs/sha256` hashes to its name; returns how many.
pub fn verify_blobs(w: &crate::common::World) -> usize {
    let dir = w.data.join("images/blobs/sha256");
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "temp file {name} left in the blob store"
        );
        assert_eq!(
            sha(&std::fs::read(e.path()).unwrap()),
            format!("sha256:{name}")
        );
        n += 1;
    }
    n
}

/// The index.json of the store.
pub fn index(w: &crate::common::World) -> Value {
    match std::fs::read(w.data.join("images/index.json")) {
        Ok(b) => serde_json::from_slice(&b).unwrap(),
        Err(_) => json!({"manifests": []}),
    }
}
