//! Images made here rather than loaded: `rwasm import TARBALL NAME[:TAG]` (a rootfs
//! tarball as one layer, as `docker import` makes it) and the built-in `busybox` image
//! that `rwasm setup` makes from Debian's busybox-static (config `Cmd ["sh"]`, `Env PATH`).

use std::fs;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

use super::layer::decompress;
use super::reference::Reference;
use super::{BUSYBOX, Image, ImageError, ImageStore, io};

/// The OCI architecture name of this machine (`amd64`, `arm64`, ...).
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// An image config (image-spec `config.md`) with one layer `diff_id`, `config` as its
/// `config` object and a history line saying how it was made.
pub fn single_layer_config(diff_id: &str, config: Value, created_by: &str) -> Value {
    let created = crate::engine::state::now_rfc3339();
    json!({
        "created": created,
        "architecture": arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": created_by}],
    })
}

impl ImageStore {
    /// Store the tar stream in `tarball` (plain, gzip or zstd) uncompressed as a layer,
    /// with `config`, tagged `tags`; returns the image.
    pub fn import_layer(
        &self,
        tarball: &Path,
        config: Value,
        created_by: &str,
        tags: &[String],
    ) -> Result<Image, ImageError> {
        let f = fs::File::open(tarball).map_err(io("open", tarball))?;
        let r = self.import_locked(f, tarball, config, created_by, tags);
        if r.is_err() {
            self.collect_after_failure();
        }
        r
    }

    fn import_locked(
        &self,
        r: impl Read,
        tarball: &Path,
        config: Value,
        created_by: &str,
        tags: &[String],
    ) -> Result<Image, ImageError> {
        self.init()?;
        let _l = self.gc_lock(false)?;
        let dec = decompress(BufReader::new(r)).map_err(io("read", tarball))?;
        let (diff_id, size) = self.blobs().write(dec, None)?;
        let cfg = single_layer_config(&diff_id, config, created_by);
        let cfg_bytes = serde_json::to_vec(&cfg).expect("config serializes");
        let cfg_digest = self.blobs().write_bytes(&cfg_bytes)?;
        let layer = Descriptor::new(
            MediaType::ImageLayer,
            size,
            diff_id
                .parse::<oci_spec::image::Digest>()
                .map_err(|_| ImageError::BadDigest(diff_id.clone()))?,
        );
        self.commit(&cfg_digest, cfg_bytes.len() as u64, &[layer], tags)
    }

    /// `rwasm import TARBALL [NAME[:TAG]]`: a rootfs tarball as a one-layer image with an
    /// empty config, as `docker import` makes it.
    pub fn import(&self, tarball: &Path, name: Option<&str>) -> Result<Image, ImageError> {
        let f = fs::File::open(tarball).map_err(io("open", tarball))?;
        self.import_from(f, tarball, name)
    }

    /// [`ImageStore::import`] of the tarball read from `r` (standard input, for
    /// `rwasm import -`); `tarball` names it in errors and in the image's history.
    pub fn import_from(
        &self,
        r: impl Read,
        tarball: &Path,
        name: Option<&str>,
    ) -> Result<Image, ImageError> {
        let tags = match name {
            Some(n) => {
                let r = Reference::parse(n)?;
                vec![r.tagged().ok_or_else(|| ImageError::BadReference {
                    reference: n.to_string(),
                    reason: "a digest cannot be assigned, give a tag".into(),
                })?]
            }
            None => vec![],
        };
        let by = format!("rwasm import {}", tarball.display());
        let result = self.import_locked(r, tarball, json!({}), &by, &tags);
        if result.is_err() {
            self.collect_after_failure();
        }
        result
    }

    /// Build the `busybox:latest` image (idempotent): the static binary, one relative
    /// symlink per applet, /etc/passwd and /etc/group, as one layer with config
    /// `Cmd ["sh"]` and Docker's default `PATH`.
    pub fn init_busybox(&self) -> Result<Image, ImageError> {
        {
            // Unpacking a missing layer writes to the store: under the collection lock.
            let _l = self.gc_lock(false)?;
            if let Ok(e) = self.find("busybox:latest")
                && let Ok(img) = self.image(&e)
                && self.layer_dirs(&img).is_ok()
            {
                return Ok(img);
            }
        }
        self.init()?;
        let tmp = self
            .tmp_dir()
            .join(format!("busybox-{}", super::blobs::tmp_suffix()));
        let result = (|| {
            let root = tmp.join("rootfs");
            busybox_tree(&root)?;
            let tar_path = tmp.join("layer.tar");
            let mut f = fs::File::create(&tar_path).map_err(io("create", &tar_path))?;
            {
                let mut b = tar::Builder::new(&mut f);
                b.follow_symlinks(false);
                b.append_dir_all(".", &root)
                    .map_err(io("write", &tar_path))?;
                b.finish().map_err(io("write", &tar_path))?;
            }
            f.rewind().map_err(io("write", &tar_path))?;
            self.import_layer(
                &tar_path,
                json!({
                    "Env": [crate::engine::docker::DEFAULT_PATH],
                    "Cmd": ["sh"],
                }),
                "rwasm setup: busybox-static",
                &["busybox:latest".to_string()],
            )
        })();
        let _ = fs::remove_dir_all(&tmp);
        result
    }
}

/// The busybox rootfs at `root`.
fn busybox_tree(root: &Path) -> Result<(), ImageError> {
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "var/tmp", "home", "usr/bin",
        "usr/sbin", "sbin",
    ] {
        fs::create_dir_all(root.join(d)).map_err(io("create", &root.join(d)))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(io("chmod", root))?;
    let bin = root.join("bin/busybox");
    fs::copy(BUSYBOX, &bin).map_err(|_| ImageError::NoBusybox)?;
    let out = Command::new(&bin)
        .arg("--list")
        .output()
        .map_err(|_| ImageError::NoBusybox)?;
    if !out.status.success() {
        return Err(ImageError::NoBusybox);
    }
    for applet in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = root.join("bin").join(applet);
        symlink("busybox", &link).map_err(io("link", &link))?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(io("write", &root.join("etc/passwd")))?;
    fs::write(
        root.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )
    .map_err(io("write", &root.join("etc/group")))?;
    Ok(())
}
