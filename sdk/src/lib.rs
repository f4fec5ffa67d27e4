//! Write rwasm hook plugins in a few lines of Rust.
//!
//! A hook plugin is a WebAssembly component of the world `rwasm:plugin/hook@0.2.0`
//! (`sdk/wit/plugin.wit`), built with `cargo build --target wasm32-wasip2`. rwasm calls
//! [`Hook::configure`] once on every fresh instance with the plugin's `[plugin.config]`
//! table, then [`Hook::invoke`] for the hook point.
//!
//! ```no_run
//! use rwasm_plugin_sdk::prelude::*;
//!
//! struct Greeter;
//!
//! impl Hook for Greeter {
//!     fn invoke(call: &HookCall) -> Result<Verdict, String> {
//!         log::info(format!("hello from {}", call.point));
//!         Ok(Adjustment::default().env("GREETING", "hello").into())
//!     }
//! }
//!
//! rwasm_plugin_sdk::export_hook!(Greeter);
//! ```
#![warn(missing_docs)]

mod adjust;
mod config;
pub mod log;
pub mod spec;

use std::sync::{Mutex, PoisonError};

/// The bindings `wit_bindgen` generates for the world `hook`; documented in the WIT.
#[allow(
    missing_docs,
    reason = "generated code, documented in sdk/wit/plugin.wit"
)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "hook",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "rwasm_plugin_sdk::bindings",
    });
}

pub use bindings::rwasm::plugin::types::{
    Adjustment, BlockIo, ConfigEntry, ConfigValue, Cpu, Device, Error, ErrorCode, HookCall,
    HookPoint, HugepageLimit, Memory, Mount, OciHook, OciHookStage, Resources, Rlimit, SpecView,
    State, Status, ThrottleDevice, Verdict,
};
pub use config::{Config, ConfigError};
pub use serde_json;

/// The usual imports of a plugin: `use rwasm_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::log;
    pub use crate::spec;
    pub use crate::{
        Adjustment, Config, ConfigError, ConfigValue, Device, Error, ErrorCode, Hook, HookCall,
        HookPoint, Mount, OciHook, OciHookStage, Resources, Rlimit, SpecView, State, Status,
        Verdict,
    };
    pub use serde_json::Value;
}

/// A lifecycle hook plugin.
///
/// Implement it on a unit struct and export that with [`export_hook!`]. Both functions
/// return `Err` for a failure of the plugin; the manifest's `on-error` decides what that
/// does to the container. A refusal is not a failure: return [`Verdict::deny`]. An
/// [`Error`] converts from a `String` or `&str` (code `internal`) and from a
/// [`ConfigError`] (code `invalid-config`), so `?` works on either.
pub trait Hook {
    /// Validates the plugin's `[plugin.config]` table, without side effects.
    ///
    /// Called once on every fresh instance, before any `invoke`. An `Err` names the bad key
    /// (a [`ConfigError`] converts with `?`). The default accepts any configuration.
    fn configure(config: &Config) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Handles one hook point; [`Config::current`] gives the configuration.
    fn invoke(call: &HookCall) -> Result<Verdict, Error>;
}

/// The configuration of the last successful `configure` of this instance.
static CURRENT: Mutex<Option<Config>> = Mutex::new(None);

impl<T: Hook> bindings::exports::rwasm::plugin::hooks::Guest for T {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        let config = Config::new(config);
        T::configure(&config)?;
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        Ok(())
    }

    fn invoke(call: HookCall) -> Result<Verdict, Error> {
        T::invoke(&call)
    }
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::new(ErrorCode::InvalidConfig, e.to_string())
    }
}

impl Config {
    /// The configuration the host passed to this instance's last successful `configure`,
    /// or an empty one if there was none.
    pub fn current() -> Config {
        CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }
}

/// Exports a type that implements [`Hook`] as the plugin's `rwasm:plugin/hooks` interface.
///
/// Use it once per plugin crate, at the crate root: `rwasm_plugin_sdk::export_hook!(Mine);`.
#[macro_export]
macro_rules! export_hook {
    ($ty:ident) => {
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}
