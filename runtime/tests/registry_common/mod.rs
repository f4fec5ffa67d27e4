//! A real registry for the pull tests: Debian's `docker-registry` (distribution 2.8),
//! started by a test on a loopback address and port of its own with its own storage and
//! config (no auth, htpasswd basic auth, or token auth), filled by `skopeo copy` from OCI
//! layouts the tests build. The registry's access log tells which blobs were fetched and
//! how much of them.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::images_common::*;
use serde_json::{Value, json};

pub const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A registry process on IP:PORT (a loopback address); killed and reaped when dropped.
pub struct Registry {
    child: Child,
    ip: String,
    port: u16,
    dir: PathBuf,
}

impl Registry {
    /// Start `docker-registry serve` on 127.0.0.1 under `w`, with htpasswd basic auth
    /// when `user` is given.
    pub fn start(w: &World, user: Option<(&str, &str)>) -> Registry {
        let dir = w.path(&format!("registry-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apt apache2-utils)");
            assert!(out.status.success());
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: rwasm-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        Registry::launch(dir, "127.0.0.1", &auth)
    }

    /// Start `docker-registry serve` with its files in `dir`, listening on a free port of
    /// `ip`, with `auth` (YAML of the config's `auth:` section, or empty).
    pub fn launch(dir: PathBuf, ip: &str, auth: &str) -> Registry {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        // A free port, chosen by the kernel.
        let port = TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {ip}:{port}\n{auth}",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("access.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (apt docker-registry)");
        let r = Registry {
            child,
            ip: ip.to_string(),
            port,
            dir,
        };
        let t = Instant::now();
        while TcpStream::connect((ip, port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the registry did not listen on {ip}:{port}: {}",
                std::fs::read_to_string(r.dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// `IP:PORT`, as a reference names the registry.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `skopeo copy oci:LAYOUT:TAG docker://HOST/REPO_TAG` plus `extra` flags.
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .expect("skopeo (apt skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy to {repo_tag}: {}",
            stderr(&out)
        );
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// (status, bytes sent) of every GET of blob `digest`, from the access log.
    pub fn blob_gets(&self, digest: &str) -> Vec<(u16, u64)> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(&format!("/blobs/{digest} ")) && l.contains("\"GET "))
            .map(|l| {
                let after = l.split("HTTP/1.1\" ").nth(1).unwrap_or("");
                let mut f = after.split(' ');
                (
                    f.next().unwrap_or("0").parse().unwrap_or(0),
                    f.next().unwrap_or("0").parse().unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One image's blobs: the layers as stored (compressed as `media` says), config, manifest.
pub struct Img {
    pub layers: Vec<(String, Vec<u8>)>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Img {
    /// An image of the uncompressed layer tars `layers` (each with the media type it is
    /// stored as), for `arch`, with Cmd sh and PATH.
    pub fn new(layers: &[(&str, Vec<u8>)], arch: &str) -> Img {
        let tars: Vec<&[u8]> = layers.iter().map(|(_, t)| t.as_slice()).collect();
        let mut cfg: Value =
            serde_json::from_slice(&config(&tars, json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]})))
                .unwrap();
        cfg["architecture"] = json!(arch);
        let config = serde_json::to_vec(&cfg).unwrap();
        let stored: Vec<(String, Vec<u8>)> = layers
            .iter()
            .map(|(m, t)| {
                let blob = match *m {
                    GZ => gzip(t),
                    ZST => zstd(t),
                    _ => t.clone(),
                };
                (m.to_string(), blob)
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": stored.iter().map(|(m, b)| json!({"mediaType": m, "digest": sha(b), "size": b.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        Img {
            layers: stored,
            config,
            manifest,
        }
    }

    pub fn digest(&self) -> String {
        sha(&self.manifest)
    }

    pub fn layer_digest(&self, i: usize) -> String {
        sha(&self.layers[i].1)
    }
}

pub fn put_blob(layout: &Path, bytes: &[u8]) {
    let p = layout.join("blobs/sha256").join(&sha(bytes)[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// An OCI layout at `layout` holding `imgs`, whose index.json names `top` as `tag` (an
/// image's manifest, or an index given as bytes).
pub fn layout(layout: &Path, imgs: &[&Img], top: Option<&[u8]>, tag: &str) -> PathBuf {
    for i in imgs {
        for (_, b) in &i.layers {
            put_blob(layout, b);
        }
        put_blob(layout, &i.config);
        put_blob(layout, &i.manifest);
    }
    let (media, bytes) = match top {
        Some(idx) => (INDEX, idx.to_vec()),
        None => (MANIFEST, imgs[0].manifest.clone()),
    };
    put_blob(layout, &bytes);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": media, "digest": sha(&bytes), "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    layout.to_path_buf()
}

/// A layer holding `/file` with `content`.
pub fn file_layer(content: &str) -> Vec<u8> {
    layer(&[E::File("file", content.as_bytes())])
}

/// An image of busybox (gzip) and a `/file` layer stored as `media`.
pub fn app(w: &World, content: &str, media: &str) -> Img {
    Img::new(
        &[
            (GZ, busybox_layer(&w.path(&rand_suffix()))),
            (media, file_layer(content)),
        ],
        "amd64",
    )
}

/// `rwasm pull REF` with `env`, stdout and stderr captured.
pub fn pull(w: &World, reference: &str, env: &[(&str, &str)]) -> Output {
    let mut c = w.cmd(&["pull", reference]);
    // No auth file of the machine's user is read unless a test names one.
    c.env("HOME", w.path("home"))
        .env_remove("REGISTRY_AUTH_FILE");
    c.env_remove("DOCKER_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn pull_ok(w: &World, reference: &str) -> String {
    let out = pull(w, reference, &[]);
    assert!(
        out.status.success(),
        "pull {reference}: {}{}",
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

/// `rwasm pull REF` with `env` fails with Docker's "pull access denied", naming `auth`
/// (which credentials were sent: `no credentials for HOST in FILE`, `user "U" from FILE`).
pub fn pull_denied(w: &World, reference: &str, env: &[(&str, &str)], auth: &str) {
    let out = pull(w, reference, env);
    assert!(!out.status.success(), "pull {reference} succeeded");
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "pull access denied for {reference}: unauthorized ({auth})"
        )),
        "{e}"
    );
}

/// An [`app`] image with `/file` holding `content`, pushed to `reg` as `private:v1`
/// with the credentials `alice:s3cret`; returns it and its reference.
pub fn push_private(w: &World, reg: &Registry, content: &str) -> (Img, String) {
    let img = app(w, content, GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "private:v1", &["--dest-creds", "alice:s3cret"]);
    (img, format!("{}/private:v1", reg.host()))
}

pub fn inspect(w: &World, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(w, &["image", "inspect", name])).unwrap();
    v[0].clone()
}

pub fn partials(w: &World) -> Vec<String> {
    std::fs::read_dir(w.data.join("images/tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Bytes no compressor shrinks (xorshift), so a layer's size on the wire is its size.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
