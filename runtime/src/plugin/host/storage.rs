//! The host of the `storage-driver` world (`rwasm:plugin@0.3.0`): its bindings, the
//! `storage-host` imports (each checked by [`StorageCtx`]), load and the `configure` +
//! `prepare` / `release` / `usage` call.
//!
//! A call runs inline on the calling thread in a fresh store with the driver's memory
//! cap, deadline and fuel, like a network driver call. The driver sees its state
//! directory (read-write) and the layers of the call (read-only) as WASI preopens at
//! their host paths, so the paths it is handed and the paths it sends back to
//! `storage-host` are the same strings.

use std::path::{Path, PathBuf};

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::super::manifest::{Access, PluginSpec};
use super::super::storage::{StorageAnswer, StorageOp, StorageRequest};
use super::super::{FailureCause, HookPoint, Phase};
use super::net_ctx::NetRefusal;
use super::state::HostState;
use super::storage_ctx::MountKind;
pub(crate) use super::storage_ctx::StorageCtx;
use super::{Host, STDOUT_CAPACITY, convert};

/// Bindings of the `storage-driver` world; `types` and `host` are the hook world's.
mod bindings_storage {
    wasmtime::component::bindgen!({
        world: "storage-driver",
        path: "../sdk/wit",
        with: {
            "rwasm:plugin/types": crate::plugin::host::bindings::rwasm::plugin::types,
            "rwasm:plugin/host": crate::plugin::host::bindings::rwasm::plugin::host,
        },
    });
}

use super::bindings::rwasm::plugin::types as wit;
use bindings_storage::exports::rwasm::plugin::storage as wst;
use bindings_storage::rwasm::plugin::storage_host;

/// The export a storage driver has.
const STORAGE_EXPORT: &str = "rwasm:plugin/storage@0.3.0";
/// The import only storage drivers may have.
const STORAGE_HOST_IMPORT: &str = "rwasm:plugin/storage-host@0.3.0";

/// The `configure` entry the host adds: the driver's state directory (host path).
const STATE_DIR_KEY: &str = "state-dir";

/// Adds the `storage-host` imports to the set's linker.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    storage_host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// A loaded storage driver.
pub(crate) struct StorageLoaded {
    pre: bindings_storage::StorageDriverPre<HostState>,
}

fn wit_err(r: NetRefusal) -> wit::Error {
    match r {
        NetRefusal::Refused(message) => wit::Error {
            code: wit::ErrorCode::InvalidInput,
            message,
        },
        NetRefusal::Failed(message) => wit::Error {
            code: wit::ErrorCode::Unavailable,
            message,
        },
    }
}

impl HostState {
    fn storage<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut StorageCtx) -> Result<T, NetRefusal>,
    ) -> Result<T, wit::Error> {
        let plugin = self.plugin.clone();
        let Some(ctx) = self.storage.as_mut() else {
            return Err(wit::Error {
                code: wit::ErrorCode::Unsupported,
                message: "storage-host is only for storage driver calls".to_string(),
            });
        };
        let r = f(ctx);
        match &r {
            Ok(_) => tracing::debug!(plugin = %plugin, "storage-host {what}: done"),
            Err(NetRefusal::Refused(m) | NetRefusal::Failed(m)) => {
                tracing::warn!(plugin = %plugin, "storage-host {what}: {m}");
            }
        }
        r.map_err(wit_err)
    }
}

impl storage_host::Host for HostState {
    fn mount(&mut self, request: storage_host::MountRequest) -> Result<(), wit::Error> {
        let kind = match request.kind {
            storage_host::MountKind::Overlay => MountKind::Overlay,
            storage_host::MountKind::Bind => MountKind::Bind,
            storage_host::MountKind::Tmpfs => MountKind::Tmpfs,
        };
        self.storage(&format!("mount {}", request.target), |c| {
            c.mount(
                kind,
                request.source.as_deref(),
                &request.target,
                &request.options,
            )
        })
    }

    fn unmount(&mut self, target: String) -> Result<(), wit::Error> {
        self.storage(&format!("unmount {target}"), |c| c.unmount(&target))
    }

    fn remove(&mut self, target: String) -> Result<(), wit::Error> {
        self.storage(&format!("remove {target}"), |c| c.remove(&target))
    }

    fn copy_layer(&mut self, layer: String, target: String) -> Result<u64, wit::Error> {
        self.storage(&format!("copy-layer {layer} {target}"), |c| {
            c.copy_layer(&layer, &target)
        })
    }
}

fn check_exports(exports: &[String]) -> Result<(), FailureCause> {
    if exports.iter().any(|e| e == STORAGE_EXPORT) {
        return Ok(());
    }
    Err(FailureCause::StorageLink {
        reason: format!(
            "the component does not export `{STORAGE_EXPORT}` (a storage driver of world \
             rwasm:plugin/storage-driver); it exports: {}",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ),
    })
}

type StorageCallResult = Result<StorageAnswer, (Phase, FailureCause)>;

impl Host {
    /// Load phase of a storage driver: compile or load from the cache, check its exports
    /// (`rwasm:plugin/storage@0.3.0`) and imports (those of a hook plus `storage-host`).
    pub(crate) fn load_storage(
        &self,
        spec: &PluginSpec,
        cache_dir: &Path,
    ) -> Result<(StorageLoaded, super::Origin), FailureCause> {
        let kind = super::driver_call::DriverKind {
            check_exports,
            host_import: STORAGE_HOST_IMPORT,
            link: |reason| FailureCause::StorageLink { reason },
            pre: bindings_storage::StorageDriverPre::new,
        };
        self.load_driver(spec, cache_dir, &kind)
            .map(|(pre, origin)| (StorageLoaded { pre }, origin))
    }

    /// Configure + `op` of a loaded driver owning `state_dir`, in `ctx`; returns the
    /// answer and the targets the call mounted (also on failure, for the clean-up).
    pub(crate) fn storage_call(
        &self,
        loaded: &StorageLoaded,
        spec: &PluginSpec,
        op: StorageOp,
        req: &StorageRequest,
        state_dir: &Path,
        ctx: StorageCtx,
    ) -> (StorageCallResult, Vec<PathBuf>) {
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        let mut preopens: Vec<(PathBuf, String, Access)> = vec![(
            state_dir.to_path_buf(),
            state_dir.display().to_string(),
            Access::ReadWrite,
        )];
        for l in &req.layers {
            preopens.push((
                l.path.clone(),
                l.path.display().to_string(),
                Access::ReadOnly,
            ));
        }
        for grant in &spec.dirs {
            let access = if grant.writable {
                Access::ReadWrite
            } else {
                Access::ReadOnly
            };
            preopens.push((grant.host.clone(), grant.guest.clone(), access));
        }
        for (host, guest, access) in preopens {
            if let Err(cause) = super::grants::preopen(&mut builder, &host, &guest, access) {
                return (Err((Phase::Prepare, cause)), Vec::new());
            }
        }
        let mut state = HostState::new(builder.build(), spec, HookPoint::CreateRuntime);
        state.storage = Some(ctx);
        let ticker = match self.ticker() {
            Ok(t) => t,
            Err(source) => {
                return (
                    Err((Phase::Prepare, FailureCause::Thread { source })),
                    Vec::new(),
                );
            }
        };
        let _runtime = ticker.handle().enter();
        let _ticking = ticker.activate();
        let mut store = Store::new(&self.engine, state);
        let result = run(&mut store, loaded, spec, op, req, state_dir, self.fuel);
        let mounted = store
            .data_mut()
            .storage
            .take()
            .map(|c| c.mounted)
            .unwrap_or_default();
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
        (result, mounted)
    }
}

fn to_wit(req: &StorageRequest) -> wst::PrepareRequest {
    wst::PrepareRequest {
        container_id: req.container_id.clone(),
        layers: req
            .layers
            .iter()
            .map(|l| wst::Layer {
                digest: l.digest.clone(),
                path: l.path.display().to_string(),
            })
            .collect(),
        read_only: req.read_only,
        options: req.options.clone(),
    }
}

fn run(
    store: &mut Store<HostState>,
    loaded: &StorageLoaded,
    spec: &PluginSpec,
    op: StorageOp,
    req: &StorageRequest,
    state_dir: &Path,
    fuel: bool,
) -> StorageCallResult {
    super::driver_call::arm(store, spec, fuel)?;
    let driver = loaded
        .pre
        .instantiate(&mut *store)
        .map_err(|e| (Phase::Prepare, super::driver_call::classify(store, spec, e)))?;
    let guest = |e: wit::Error| FailureCause::Guest {
        message: convert::error_message(e),
    };
    let s = driver.rwasm_plugin_storage();
    let mut config: Vec<_> = spec.config.iter().map(convert::config_entry).collect();
    // The driver's own directory, as the host preopened it (`storage.configure`).
    config.retain(|e| e.key != STATE_DIR_KEY);
    config.push(wit::ConfigEntry {
        key: STATE_DIR_KEY.to_string(),
        value: wit::ConfigValue::Text(state_dir.display().to_string()),
    });
    match s.call_configure(&mut *store, &config) {
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
        StorageOp::Prepare => s
            .call_prepare(&mut *store, &to_wit(req))
            .map(|r| r.map(|p| StorageAnswer::Prepared(PathBuf::from(p.rootfs)))),
        StorageOp::Release => s
            .call_release(&mut *store, &req.container_id)
            .map(|r| r.map(|()| StorageAnswer::Released)),
        StorageOp::Usage => s.call_usage(&mut *store, &req.container_id).map(|r| {
            r.map(|u| StorageAnswer::Usage {
                size: u.size,
                inodes: u.inodes,
            })
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
    Ok(result)
}
