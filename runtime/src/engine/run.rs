//! `rwasm run IMAGE [CMD...]`: a Docker-style container run attached, from the image to
//! the exit code. Each run gets a bundle under `<data-root>/containers/<id>`: a
//! config.json from Docker's defaults, and an overlay rootfs whose upper layer holds the
//! container's writes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::linux::overlay::{OverlayError, unmount};
use crate::plugin::PluginSet;

use super::container::{self, CreateOptions, EngineError};
use super::docker::{FlagError, RunFlags, docker_spec};
use super::image::{
    EXPOSED_PORTS_ANNOTATION, IMAGE_ID_ANNOTATION, IMAGE_MANIFEST_ANNOTATION, ImageError,
    ImageStore,
};
use super::state::StateStore;
use super::storage::RootfsDriver as _;

/// Annotation holding the Docker-style container name.
pub const NAME_ANNOTATION: &str = "org.rwasm.name";
/// Annotation saying rwasm mounted the container's rootfs (an overlay) and `delete`
/// must unmount it.
pub const ROOTFS_MOUNT_ANNOTATION: &str = "org.rwasm.rootfs-mount";
/// Annotation holding the image the container was made from.
pub const IMAGE_ANNOTATION: &str = "org.rwasm.image";

/// A failed run, before or after the container existed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A `docker run` flag has a value Docker would refuse.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// The image cannot be resolved to a rootfs.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Create, start, wait or delete of the container failed (boxed: the error is large).
    #[error(transparent)]
    Engine(#[from] Box<EngineError>),
    /// Mounting the overlay rootfs (image as lower, the run's `upper` and `work`) failed.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// `--name` names a container whose bundle still exists under `<data-root>/containers`.
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    /// `--name` does not match Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    BadName(String),
    /// No command was given and the image has no `/bin/sh` to default to; carries the image.
    #[error("no command given and image {0:?} has no default command")]
    NoCommand(String),
    /// A file operation on the run's bundle failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `read`, `create`, `list`, `write`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl RunError {
    /// What init reported about the user process (Docker's 126/127), if anything.
    pub fn failure_kind(&self) -> Option<crate::linux::sync::FailureKind> {
        match self {
            RunError::Engine(e) => e.failure_kind(),
            _ => None,
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

/// What to run.
pub struct RunRequest<'a> {
    /// `busybox` (or `busybox:latest`), or a rootfs directory path (see [`ImageStore::resolve`]).
    pub image: &'a str,
    /// The command and its arguments; empty means `sh` when the image has `/bin/sh`.
    pub args: Vec<String>,
    /// `--name`; defaults to the first 12 hex digits of the id, as in Docker.
    pub name: Option<String>,
    /// `--rm`: remove the bundle (overlay upper layer included) once the container exits.
    pub rm: bool,
    /// The resource and process flags that shape config.json.
    pub flags: RunFlags,
    /// The loaded plugins whose hooks run at each lifecycle point; may be empty.
    pub plugins: &'a PluginSet,
    /// The data root: images under `images/`, bundles under `containers/<id>`.
    pub data_root: &'a Path,
    /// The compiled-plugin cache, used when delete reloads the container's plugins for poststop.
    pub cache_dir: &'a Path,
    /// Called with init's pid once the container runs (the CLI forwards signals to it).
    pub on_start: &'a dyn Fn(i32),
}

/// A new 64-hex-digit container id (Docker's form) from the kernel's CSPRNG.
pub fn new_id() -> io::Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn check_name(name: &str) -> Result<(), RunError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RunError::BadName(name.into()))
    }
}

/// Removes the run's bundle (overlay unmounted) when dropped, unless kept.
struct Bundle {
    dir: PathBuf,
    rootfs: PathBuf,
    keep: bool,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.rootfs) {
            tracing::warn!("{}", crate::error_chain(&e));
        }
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Run a container from an image, attached; returns its exit code.
pub fn run_image(store: &StateStore, req: RunRequest<'_>) -> Result<i32, RunError> {
    req.plugins.prefetch(&container::RUN_POINTS);
    let images = ImageStore::new(req.data_root);
    let resolved = images.resolve(req.image)?;
    let mut flags = req.flags.clone();
    let config = resolved
        .image
        .as_ref()
        .and_then(|i| i.config.config().as_ref());
    let args = match super::image::defaults::apply(config, &req.args, &mut flags) {
        Some(args) => args,
        // A rootfs directory has no config: `sh`, as before images had configs.
        None if resolved.image.is_none()
            && resolved.layers.iter().any(|l| l.join("bin/sh").exists()) =>
        {
            vec!["sh".to_string()]
        }
        None => return Err(RunError::NoCommand(req.image.into())),
    };
    let id = new_id().map_err(io_err("read", Path::new("/dev/urandom")))?;
    let containers = req.data_root.join("containers");
    fs::create_dir_all(&containers).map_err(io_err("create", &containers))?;
    if let Some(n) = &req.name {
        check_name(n)?;
        for e in fs::read_dir(&containers)
            .map_err(io_err("list", &containers))?
            .flatten()
        {
            if fs::read_to_string(e.path().join("name")).ok().as_deref() == Some(n.as_str()) {
                return Err(RunError::NameInUse(n.clone()));
            }
        }
    }
    let dir = containers.join(&id);
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let mut bundle = Bundle {
        dir: dir.clone(),
        rootfs: rootfs.clone(),
        keep: false,
    };
    for d in ["upper", "work", "rootfs"] {
        fs::create_dir_all(dir.join(d)).map_err(io_err("create", &dir.join(d)))?;
    }
    let name = req.name.clone().unwrap_or_else(|| id[..12].to_string());
    fs::write(dir.join("name"), &name).map_err(io_err("write", &dir.join("name")))?;
    let hostname = req
        .flags
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(io_err("write", &dir))?;
    fs::write(
        dir.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
    )
    .map_err(io_err("write", &dir))?;
    let bind = |file: &str, dest: &str| -> Mount {
        oci_spec::runtime::MountBuilder::default()
            .destination(dest)
            .typ("bind")
            .source(dir.join(file))
            .options(vec!["rbind".to_string(), "rprivate".to_string()])
            .build()
            .expect("static mount")
    };
    super::storage::NativeOverlay.prepare(&resolved.layers, &dir, &rootfs)?;
    let mut annotations = HashMap::from([
        (NAME_ANNOTATION.to_string(), name),
        (IMAGE_ANNOTATION.to_string(), req.image.to_string()),
        (ROOTFS_MOUNT_ANNOTATION.to_string(), "overlay".to_string()),
    ]);
    if let Some(img) = &resolved.image {
        annotations.insert(
            IMAGE_MANIFEST_ANNOTATION.into(),
            img.manifest_digest.clone(),
        );
        annotations.insert(IMAGE_ID_ANNOTATION.into(), img.id.clone());
        if let Some(p) = super::image::defaults::exposed_ports(config) {
            annotations.insert(EXPOSED_PORTS_ANNOTATION.into(), p);
        }
    }
    flags.hostname = Some(hostname);
    if let Some(u) = &flags.user {
        // Names resolve through the container's merged tree (the overlay just mounted).
        let (uid, gid) = super::docker::resolve_user(u, &rootfs)?;
        flags.user = Some(format!("{uid}:{gid}"));
    }
    let spec = docker_spec(
        &id,
        Path::new("rootfs"),
        args,
        &flags,
        vec![
            bind("hostname", "/etc/hostname"),
            bind("hosts", "/etc/hosts"),
        ],
        annotations,
    )?;
    let cfg = dir.join("config.json");
    fs::write(
        &cfg,
        serde_json::to_vec_pretty(&spec).expect("spec serializes"),
    )
    .map_err(io_err("write", &cfg))?;

    let created = container::create(
        store,
        &CreateOptions {
            id: &id,
            bundle: &dir,
            pid_file: None,
            preserve_fds: 0,
            plugins: req.plugins,
        },
    )
    .map_err(Box::new)?;
    (req.on_start)(created.record.pid.unwrap_or_default());
    let code = match container::start(store, &id, req.plugins) {
        Ok(record) => container::wait_exit(&record),
        Err(e) => Err(e),
    };
    let deleted = container::delete(store, &id, true, req.cache_dir, Some(req.plugins));
    bundle.keep = !req.rm;
    let code = code.map_err(Box::new)?;
    deleted.map_err(Box::new)?;
    Ok(code)
}
