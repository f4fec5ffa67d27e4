//! wrong-major: a hook plugin built against a copy of the WIT package labelled
//! `rwasm:plugin@1.0.0` (`wit/plugin.wit` here), a major version this rwasm does not host.
//! Loading it must fail with an error naming the version; it is never meant to run.

wit_bindgen::generate!({ world: "hook", path: "wit" });

use exports::rwasm::plugin::hooks::Guest;
use rwasm::plugin::types::{Adjustment, ConfigEntry, HookCall, Verdict};

struct WrongMajor;

impl Guest for WrongMajor {
    fn configure(_config: Vec<ConfigEntry>) -> Result<(), String> {
        Ok(())
    }

    fn invoke(_call: HookCall) -> Result<Verdict, String> {
        Ok(Verdict::Allow(Adjustment {
            env: vec![("WRONG_MAJOR".to_string(), "1".to_string())],
            annotations: Vec::new(),
            mounts: Vec::new(),
        }))
    }
}

export!(WrongMajor);
