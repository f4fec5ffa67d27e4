//! The host of the `volume-driver` world (`rwasm:plugin@0.3.0`): its bindings, the
//! `volume-host` imports (tmpfs mounts checked by [`VolCtx`]), load and the `configure` +
//! operation call.
//!
//! A call runs inline on the calling thread in a fresh store with the driver's memory
//! cap, deadline and fuel, like a network driver call. The driver's state is its granted
//! directories; a mount it asks for must be on an existing directory under a writable one.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::super::manifest::{Access, PluginSpec};
use super::super::volume::{Scope, VolAnswer, VolOp, VolumeInfo};
use super::super::{FailureCause, HookPoint, Phase};
use super::state::HostState;
use super::{Host, STDOUT_CAPACITY, convert};

/// Bindings of the `volume-driver` world; `types` and `host` are the hook world's.
mod bindings_vol {
    wasmtime::component::bindgen!({
        world: "volume-driver",
        path: "../sdk/wit",
        with: {
            "rwasm:plugin/types": crate::plugin::host::bindings::rwasm::plugin::types,
            "rwasm:plugin/host": crate::plugin::host::bindings::rwasm::plugin::host,
        },
    });
}

use super::bindings::rwasm::plugin::types as wit;
use bindings_vol::exports::rwasm::plugin::volume as wvol;
use bindings_vol::rwasm::plugin::volume_host;

/// The export a volume driver has.
const VOLUME_EXPORT: &str = "rwasm:plugin/volume@0.3.0";
/// The import only volume drivers may have.
const VOLUME_HOST_IMPORT: &str = "rwasm:plugin/volume-host@0.3.0";
/// tmpfs(5) options a driver may ask for (`key=` prefixes and flag words).
const TMPFS_KEYS: &[&str] = &["size=", "nr_inodes=", "mode=", "uid=", "gid="];
const TMPFS_FLAGS: &[&str] = &["ro", "noexec", "nosuid", "nodev"];

/// Adds the `volume-host` imports to the set's linker.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    volume_host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// A loaded volume driver.
pub(crate) struct VolLoaded {
    pre: bindings_vol::VolumeDriverPre<HostState>,
}

/// The `volume-host` capability of one call: the driver's writable granted directories
/// (canonical host paths) and what the call mounted, for the clean-up after a failure.
pub(crate) struct VolCtx {
    roots: Vec<PathBuf>,
    mounted: Vec<PathBuf>,
}

impl VolCtx {
    /// `target` resolved (symlinks followed, then checked) to an existing directory strictly
    /// under a writable granted directory.
    fn check_target(&self, target: &str) -> Result<PathBuf, String> {
        let path = Path::new(target);
        if !path.is_absolute() {
            return Err(format!("target `{target}` is not an absolute host path"));
        }
        let real = path
            .canonicalize()
            .map_err(|e| format!("target `{target}`: {e}"))?;
        if !real.is_dir() {
            return Err(format!("target `{target}` is not a directory"));
        }
        if !self.roots.iter().any(|r| real.starts_with(r) && real != *r) {
            return Err(format!(
                "target `{target}` is not under a writable granted directory of the driver"
            ));
        }
        Ok(real)
    }

    fn mount_tmpfs(&mut self, target: &str, options: &[String]) -> Result<(), wit::Error> {
        let refuse = |message| wit::Error {
            code: wit::ErrorCode::InvalidInput,
            message,
        };
        let real = self.check_target(target).map_err(refuse)?;
        for o in options {
            let ok = TMPFS_FLAGS.contains(&o.as_str())
                || TMPFS_KEYS.iter().any(|k| {
                    o.strip_prefix(k)
                        .is_some_and(|v| !v.is_empty() && !v.contains(','))
                });
            if !ok {
                return Err(refuse(format!(
                    "tmpfs option `{o}` is not allowed (allowed: {}, {})",
                    TMPFS_KEYS.join(" "),
                    TMPFS_FLAGS.join(" ")
                )));
            }
        }
        let parsed = crate::linux::mount_opts::parse(options);
        let data = (!parsed.data.is_empty()).then_some(parsed.data.as_str());
        nix::mount::mount(
            Some("tmpfs"),
            &real,
            Some("tmpfs"),
            parsed.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data,
        )
        .map_err(|e| wit::Error {
            code: wit::ErrorCode::Unavailable,
            message: format!("mount tmpfs on {}: {e}", real.display()),
        })?;
        self.mounted.push(real);
        Ok(())
    }

    fn unmount(&mut self, target: &str) -> Result<(), wit::Error> {
        let real = self.check_target(target).map_err(|message| wit::Error {
            code: wit::ErrorCode::InvalidInput,
            message,
        })?;
        match nix::mount::umount2(&real, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {
                self.mounted.retain(|m| *m != real);
                Ok(())
            }
            Err(e) => Err(wit::Error {
                code: wit::ErrorCode::Unavailable,
                message: format!("unmount {}: {e}", real.display()),
            }),
        }
    }

    /// Undoes the mounts of a failed call.
    fn clean_up(self) {
        for m in self.mounted.iter().rev() {
            if let Err(e) = nix::mount::umount2(m, MntFlags::MNT_DETACH) {
                tracing::warn!(target = %m.display(), "unmount after failed volume call: {e}");
            }
        }
    }
}

impl volume_host::Host for HostState {
    fn mount_tmpfs(&mut self, target: String, options: Vec<String>) -> Result<(), wit::Error> {
        let plugin = self.plugin.clone();
        let Some(ctx) = self.vol.as_mut() else {
            return Err(unsupported());
        };
        let r = ctx.mount_tmpfs(&target, &options);
        log_result(&plugin, &format!("mount-tmpfs {target}"), &r);
        r
    }

    fn unmount(&mut self, target: String) -> Result<(), wit::Error> {
        let plugin = self.plugin.clone();
        let Some(ctx) = self.vol.as_mut() else {
            return Err(unsupported());
        };
        let r = ctx.unmount(&target);
        log_result(&plugin, &format!("unmount {target}"), &r);
        r
    }
}

fn unsupported() -> wit::Error {
    wit::Error {
        code: wit::ErrorCode::Unsupported,
        message: "volume-host is only for volume driver calls".to_string(),
    }
}

fn log_result(plugin: &str, what: &str, r: &Result<(), wit::Error>) {
    match r {
        Ok(()) => tracing::debug!(plugin = %plugin, "volume-host {what}: done"),
        Err(e) => tracing::warn!(plugin = %plugin, "volume-host {what}: {}", e.message),
    }
}

/// `Ok` when `exports` hold the 0.3.0 volume interface; else why not.
fn check_exports(exports: &[String]) -> Result<(), FailureCause> {
    if exports.iter().any(|e| e == VOLUME_EXPORT) {
        return Ok(());
    }
    if let Some(other) = exports.iter().find(|e| e.starts_with("rwasm:plugin/")) {
        return Err(FailureCause::VolumeLink {
            reason: format!(
                "the component exports `{other}`, not `{VOLUME_EXPORT}` (a volume driver of \
                 world rwasm:plugin/volume-driver)"
            ),
        });
    }
    Err(FailureCause::VolumeLink {
        reason: format!("the component does not export `{VOLUME_EXPORT}`"),
    })
}

fn from_wit_info(v: wvol::VolumeInfo) -> VolumeInfo {
    VolumeInfo {
        name: v.name,
        mountpoint: v.mountpoint.map(PathBuf::from),
        status: v.status,
        created_at: v.created_at,
    }
}

/// Bytes of strings in an answer, for `max-answer`.
fn answer_bytes(a: &VolAnswer) -> u64 {
    let one = |v: &VolumeInfo| {
        v.name.len()
            + v.mountpoint.as_ref().map_or(0, |p| p.as_os_str().len())
            + v.status
                .iter()
                .map(|(k, x)| k.len() + x.len())
                .sum::<usize>()
            + v.created_at.as_ref().map_or(0, String::len)
    };
    let n = match a {
        VolAnswer::Done | VolAnswer::Capabilities(_) => 0,
        VolAnswer::Path(p) => p.as_ref().map_or(0, |p| p.as_os_str().len()),
        VolAnswer::Volume(v) => one(v),
        VolAnswer::Volumes(vs) => vs.iter().map(one).sum(),
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}

type VolCallResult = Result<VolAnswer, (Phase, FailureCause)>;

impl Host {
    /// Load phase of a volume driver: compile or load from the cache, check its exports
    /// (`rwasm:plugin/volume@0.3.0`) and imports (those of a hook plus `volume-host`).
    pub(crate) fn load_volume(
        &self,
        spec: &PluginSpec,
        cache_dir: &Path,
    ) -> Result<(VolLoaded, super::Origin), FailureCause> {
        let kind = super::driver_call::DriverKind {
            check_exports,
            host_import: VOLUME_HOST_IMPORT,
            link: |reason| FailureCause::VolumeLink { reason },
            pre: bindings_vol::VolumeDriverPre::new,
        };
        self.load_driver(spec, cache_dir, &kind)
            .map(|(pre, origin)| (VolLoaded { pre }, origin))
    }

    /// Configure + `op` of a loaded driver. After a failure the host unmounts what the
    /// call mounted; a mountpoint answered must be a directory under a granted directory.
    pub(crate) fn volume_call(
        &self,
        loaded: &VolLoaded,
        spec: &PluginSpec,
        op: &VolOp,
    ) -> VolCallResult {
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        let mut roots = Vec::new();
        let mut granted = Vec::new();
        for grant in &spec.dirs {
            let access = if grant.writable {
                Access::ReadWrite
            } else {
                Access::ReadOnly
            };
            super::grants::preopen(&mut builder, &grant.host, &grant.guest, access)
                .map_err(|cause| (Phase::Prepare, cause))?;
            if let Ok(real) = grant.host.canonicalize() {
                if grant.writable {
                    roots.push(real.clone());
                }
                granted.push(real);
            }
        }
        let mut state = HostState::new(builder.build(), spec, HookPoint::CreateRuntime);
        state.vol = Some(VolCtx {
            roots,
            mounted: Vec::new(),
        });
        let ticker = self
            .ticker()
            .map_err(|source| (Phase::Prepare, FailureCause::Thread { source }))?;
        let _runtime = ticker.handle().enter();
        let _ticking = ticker.activate();
        let mut store = Store::new(&self.engine, state);
        let mut result = run(&mut store, loaded, spec, op, self.fuel);
        if let Ok(VolAnswer::Path(Some(p))) = &result {
            let inside = p
                .canonicalize()
                .is_ok_and(|r| r.is_dir() && granted.iter().any(|g| r.starts_with(g)));
            if !inside {
                result = Err((
                    Phase::Invoke,
                    FailureCause::BadMountpoint { path: p.clone() },
                ));
            }
        }
        let ctx = store.data_mut().vol.take();
        if let (Err(_), Some(ctx)) = (&result, ctx) {
            ctx.clean_up();
        }
        for (stream, bytes) in [("stdout", stdout.contents()), ("stderr", stderr.contents())] {
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                if result.is_err() {
                    tracing::warn!(stream, "guest: {line}");
                } else {
                    tracing::debug!(stream, "guest: {line}");
                }
            }
        }
        result
    }
}

fn run(
    store: &mut Store<HostState>,
    loaded: &VolLoaded,
    spec: &PluginSpec,
    op: &VolOp,
    fuel: bool,
) -> VolCallResult {
    super::driver_call::arm(store, spec, fuel)?;
    let driver = loaded
        .pre
        .instantiate(&mut *store)
        .map_err(|e| (Phase::Prepare, super::driver_call::classify(store, spec, e)))?;
    let guest = |e: wit::Error| FailureCause::Guest {
        message: convert::error_message(e),
    };
    let v = driver.rwasm_plugin_volume();
    let config: Vec<_> = spec.config.iter().map(convert::config_entry).collect();
    match v.call_configure(&mut *store, &config) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err((Phase::Configure, guest(e))),
        Err(e) => {
            return Err((
                Phase::Configure,
                super::driver_call::classify(store, spec, e),
            ));
        }
    }
    let answer = match op {
        VolOp::Create { name, options } => v
            .call_create(&mut *store, name, options)
            .map(|r| r.map(|()| VolAnswer::Done)),
        VolOp::Remove { name } => v
            .call_remove(&mut *store, name)
            .map(|r| r.map(|()| VolAnswer::Done)),
        VolOp::Mount { name, container_id } => v
            .call_mount(&mut *store, name, container_id)
            .map(|r| r.map(|p| VolAnswer::Path(Some(PathBuf::from(p))))),
        VolOp::Unmount { name, container_id } => v
            .call_unmount(&mut *store, name, container_id)
            .map(|r| r.map(|()| VolAnswer::Done)),
        VolOp::Path { name } => v
            .call_path(&mut *store, name)
            .map(|r| r.map(|p| VolAnswer::Path(p.map(PathBuf::from)))),
        VolOp::Get { name } => v
            .call_get(&mut *store, name)
            .map(|r| r.map(|i| VolAnswer::Volume(from_wit_info(i)))),
        VolOp::List => v
            .call_list(&mut *store)
            .map(|r| r.map(|l| VolAnswer::Volumes(l.into_iter().map(from_wit_info).collect()))),
        VolOp::Capabilities => v.call_capabilities(&mut *store).map(|c| {
            Ok(VolAnswer::Capabilities(match c.scope {
                wvol::Scope::Local => Scope::Local,
                wvol::Scope::Global => Scope::Global,
            }))
        }),
    };
    let result = match answer {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err((Phase::Invoke, guest(e))),
        Err(e) => return Err((Phase::Invoke, super::driver_call::classify(store, spec, e))),
    };
    if store.data().overslept {
        return Err((
            Phase::Invoke,
            FailureCause::Deadline {
                timeout_ms: spec.timeout_ms,
            },
        ));
    }
    let bytes = answer_bytes(&result);
    if bytes > spec.max_answer {
        return Err((
            Phase::Invoke,
            FailureCause::AnswerTooLarge {
                bytes,
                limit: spec.max_answer,
            },
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_targets_stay_under_the_grants() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("v/_data")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let ctx = VolCtx {
            roots: vec![root.clone()],
            mounted: Vec::new(),
        };
        let inside = root.join("v/_data");
        assert_eq!(ctx.check_target(inside.to_str().unwrap()).unwrap(), inside);
        for bad in [
            "/etc".to_string(),
            "relative".to_string(),
            root.display().to_string(),
            root.join("link").display().to_string(),
            root.join("v/_data/../../..").display().to_string(),
            root.join("missing").display().to_string(),
        ] {
            assert!(ctx.check_target(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_options_are_a_short_list() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("v")).unwrap();
        let mut ctx = VolCtx {
            roots: vec![root.clone()],
            mounted: Vec::new(),
        };
        let target = root.join("v").display().to_string();
        for bad in ["exec", "suid", "size=", "size=1m,exec", "dev", "remount"] {
            let e = ctx.mount_tmpfs(&target, &[bad.to_string()]).unwrap_err();
            assert_eq!(e.code, wit::ErrorCode::InvalidInput, "{bad}");
            assert!(e.message.contains("not allowed"), "{bad}: {}", e.message);
        }
        assert!(ctx.mounted.is_empty());
    }
}
