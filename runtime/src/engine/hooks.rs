//! Calling everything that runs at one lifecycle point: the OCI exec hooks of
//! config.json that the runtime itself runs, then the WASM plugins registered for it.

use oci_spec::runtime::{ContainerState, Hook, Spec};

use crate::linux::exec_hook::{self, HookError};
use crate::plugin::{HookPoint, PluginError, PluginSet};

use super::state::Record;

/// The OCI hooks of one kind from the spec (`hooks.prestart`, ...).
pub fn oci_hooks(spec: &Spec, point: OciHook) -> Vec<Hook> {
    let Some(h) = spec.hooks().as_ref() else {
        return Vec::new();
    };
    #[allow(deprecated)] // prestart is deprecated in the spec but still run, as runc does
    let list = match point {
        OciHook::Prestart => h.prestart(),
        OciHook::CreateRuntime => h.create_runtime(),
        OciHook::Poststart => h.poststart(),
        OciHook::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// The OCI hooks the runtime process runs (createContainer and startContainer run in init).
#[derive(Debug, Clone, Copy)]
pub enum OciHook {
    /// `hooks.prestart`: deprecated by the spec, run with createRuntime as runc does.
    Prestart,
    /// `hooks.createRuntime`: after the namespaces exist, before pivot_root, in the runtime namespace.
    CreateRuntime,
    /// `hooks.poststart`: after the user process started; a failure is only logged.
    Poststart,
    /// `hooks.poststop`: after the container is deleted; a failure is only logged.
    Poststop,
}

/// A failure at a lifecycle point.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// An OCI exec hook could not be spawned, exited non-zero or timed out.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A WASM plugin registered for the point failed and its `on-error` did not say ignore.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// The state JSON handed to hooks on stdin.
pub fn state_json(record: &Record, status: ContainerState) -> String {
    serde_json::to_string(&record.oci_state(status)).expect("state serializes")
}

/// Run the OCI hooks `oci` (in order), then the plugins for `point`.
pub fn run_point(
    plugins: &PluginSet,
    spec: &Spec,
    record: &Record,
    status: ContainerState,
    oci: &[OciHook],
    point: HookPoint,
) -> Result<(), PointError> {
    let json = state_json(record, status);
    for kind in oci {
        let hooks = oci_hooks(spec, *kind);
        let _span = tracing::debug_span!("oci-hooks", kind = ?kind, count = hooks.len()).entered();
        exec_hook::run_all(&hooks, json.as_bytes())?;
    }
    if plugins.wants(point) {
        plugins.invoke(point, &record.oci_state(status), spec)?;
    }
    Ok(())
}

/// Like [`run_point`] for points whose failures the spec says to log, not to fail on
/// (poststart, poststop; rwasm's post-delete, which has no OCI hooks, likewise): every
/// hook runs, failures become warnings.
pub fn run_point_logged(
    plugins: &PluginSet,
    spec: &Spec,
    record: &Record,
    status: ContainerState,
    oci: Option<OciHook>,
    point: HookPoint,
) {
    let json = state_json(record, status);
    if let Some(kind) = oci {
        for h in oci_hooks(spec, kind) {
            if let Err(e) = exec_hook::run(&h, json.as_bytes()) {
                tracing::warn!(container = %record.id, "{kind:?} hook failed: {}", crate::error_chain(&e));
            }
        }
    }
    if plugins.wants(point)
        && let Err(e) = plugins.invoke(point, &record.oci_state(status), spec)
    {
        tracing::warn!(container = %record.id, hook = %point.as_str(), "{}", crate::error_chain(&e));
    }
}
