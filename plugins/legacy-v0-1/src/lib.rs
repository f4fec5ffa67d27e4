//! legacy-v0-1: a hook plugin built with wit-bindgen directly against the frozen
//! `rwasm:plugin@0.1.0` (`sdk/wit-compat/0.1.0`), as plugins were before 0.2.0. It proves
//! that rwasm keeps loading plugins of an older minor version: at `pre-create` it adds
//! `LEGACY=1` to the container's environment; every other point is allowed unchanged.

wit_bindgen::generate!({ world: "hook", path: "../../sdk/wit-compat/0.1.0" });

use exports::rwasm::plugin::hooks::Guest;
use rwasm::plugin::host::{Level, log};
use rwasm::plugin::types::{Adjustment, ConfigEntry, HookCall, HookPoint, Verdict};

struct Legacy;

impl Guest for Legacy {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), String> {
        match config.first() {
            None => Ok(()),
            Some(entry) => Err(format!(
                "legacy-v0-1 takes no config, got key {:?}",
                entry.key
            )),
        }
    }

    fn invoke(call: HookCall) -> Result<Verdict, String> {
        if call.point != HookPoint::PreCreate {
            return Ok(Verdict::Allow(Adjustment {
                env: Vec::new(),
                annotations: Vec::new(),
                mounts: Vec::new(),
            }));
        }
        log(Level::Info, "legacy-v0-1: adding LEGACY=1");
        Ok(Verdict::Allow(Adjustment {
            env: vec![("LEGACY".to_string(), "1".to_string())],
            annotations: Vec::new(),
            mounts: Vec::new(),
        }))
    }
}

export!(Legacy);
