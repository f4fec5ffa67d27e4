//! Hidden helpers for the plugin-call microbenchmark (`runtime/examples/plugin_call.rs`);
//! not part of rwasm's API.

use std::time::Duration;

use oci_spec::runtime::{Spec, State};

use super::{HookPoint, Phase, PluginError, PluginSet, host};

impl PluginSet {
    /// Times `n` calls of plugin `name` at `point` on one live instance (instantiated and
    /// configured once, outside the timing), inline as production calls run. Each sample
    /// is one `invoke` on that instance, with the call encoded once beforehand.
    #[doc(hidden)]
    pub fn bench_live_calls(
        &self,
        name: &str,
        point: HookPoint,
        state: &State,
        spec: &Spec,
        n: usize,
    ) -> Result<Vec<Duration>, PluginError> {
        let plugin = self.plugin(name).ok_or_else(|| PluginError::Failed {
            plugin: name.to_string(),
            point,
            phase: Phase::Load,
            cause: super::FailureCause::Engine {
                reason: "no such plugin in the manifest".to_string(),
            },
        })?;
        // One ordinary call loads the component and creates the host.
        self.call_one(plugin, point, &self.encode(point, state, spec)?)?;
        let host = self.host.get().expect("created by the call above");
        let loaded = plugin.loaded.get().expect("loaded by the call above");
        let call = host::Call::new(point, state, spec, None)?;
        host.live_calls(loaded, &plugin.spec, point, &call, n)
            .map_err(|(phase, cause)| PluginError::Failed {
                plugin: name.to_string(),
                point,
                phase,
                cause,
            })
    }
}
