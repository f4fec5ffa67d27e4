//! Write rwasm hook plugins in a few lines of Rust.
//!
//! A hook plugin is a WebAssembly component of the world `rwasm:plugin/hook@0.3.0`
//! (`sdk/wit/plugin.wit`), built with `cargo build --target wasm32-wasip2`. rwasm calls it
//! at the container lifecycle points its manifest lists; at `pre-create` it may change the
//! container's spec, at any point it may refuse the container. This crate hides the
//! generated bindings behind the [`Hook`] trait and the [`export_hook!`] macro.
//!
//! # A plugin, end to end
//!
//! **1. The crate.** Copy `examples/plugin-template/` out of the rwasm repository (it is a
//! standalone crate with its own `[workspace]`). Its `Cargo.toml` is a `cdylib` that
//! depends on this crate:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! rwasm-plugin-sdk = { path = "../../sdk" }   # or a git / registry dependency once copied
//! ```
//!
//! **2. The code.** Implement [`Hook`] on a unit struct and export it:
//!
//! ```no_run
//! use rwasm_plugin_sdk::prelude::*;
//!
//! struct Greeter;
//!
//! impl Hook for Greeter {
//!     /// Runs on every fresh instance, before `invoke`: check the manifest's
//!     /// `[plugin.config]` table, without side effects.
//!     fn configure(config: &Config) -> Result<(), Error> {
//!         config.deny_unknown(&["greeting"])?; // an unknown key names itself
//!         config.get_str("greeting")?; // a wrong type names key and types
//!         Ok(())
//!     }
//!
//!     fn invoke(call: &HookCall) -> Result<Verdict, Error> {
//!         if call.point != HookPoint::PreCreate {
//!             return Ok(Verdict::allow());
//!         }
//!         // The typed view of the spec needs no parsing.
//!         if call.spec.has_capability("CAP_SYS_ADMIN") {
//!             return Ok(Verdict::deny("greeter: drop CAP_SYS_ADMIN (--cap-drop SYS_ADMIN)"));
//!         }
//!         let config = Config::current();
//!         let greeting = config.get_str("greeting")?.unwrap_or("hello");
//!         log::info(format!("greeting container {}", call.state.id));
//!         Ok(Adjustment::default()
//!             .env("GREETING", greeting)
//!             .annotation("org.example.greeter/greeted", "true")
//!             .into())
//!     }
//! }
//!
//! rwasm_plugin_sdk::export_hook!(Greeter);
//! ```
//!
//! **3. The build.** One command: `cargo build --target wasm32-wasip2 --release` writes
//! `target/wasm32-wasip2/release/<crate_name>.wasm`, a component (rustup's linker makes
//! it; no other tool is needed). `rustup target add wasm32-wasip2` once per machine.
//!
//! **4. The manifest.** List the plugin in a `plugins.toml` and run containers with it,
//! `rwasm --plugins plugins.toml run --rm busybox env`:
//!
//! ```toml
//! version = 1
//!
//! [[plugin]]
//! name = "greeter"                  # a-z, 0-9, -; errors and logs name the plugin by it
//! path = "greeter.wasm"             # relative to the manifest
//! kind = "hook"
//! hooks = ["pre-create"]            # where rwasm calls it
//! on-error = "fail"                 # or "ignore": log the failure and skip the plugin
//! timeout-ms = 500                  # wall-clock deadline per call (default 1000)
//! memory-limit = "16MiB"            # cap per linear memory (default 64MiB)
//! [plugin.config]                   # what `configure` and Config::current() see
//! greeting = "hello from greeter"
//! ```
//!
//! # The calls
//!
//! Every call runs in a fresh instance: `configure(config)` first, then `invoke(call)`, so
//! a plugin keeps no state between calls (a static is gone with the instance;
//! [`Config::current`] is the configuration of this instance). A [`HookCall`] carries the
//! hook point, the OCI state ([`State`]: id, status, pid, bundle, annotations), the
//! spec as a typed [`SpecView`] (see [`spec`] for its helpers) and as the whole config.json
//! ([`HookCall::spec_value`]), and at `pre-update` the resources about to be applied.
//!
//! - `Ok(Verdict::allow())`, or an [`Adjustment`] `.into()`, lets the operation go on.
//!   Only `pre-create` may return a non-empty adjustment (`pre-update`: only its
//!   `resources`, to clamp the update); elsewhere it is an invalid adjustment.
//! - `Ok(Verdict::deny(reason))` refuses the operation; rwasm shows `reason` and a
//!   refused create leaves nothing behind. A denial is a decision, honoured whatever
//!   `on-error` says.
//! - `Err(error)` is a failure of the plugin ([`Error`] with an [`ErrorCode`]; a `String`,
//!   `&str` or [`ConfigError`] converts with `?`). `on-error = "fail"` (the default)
//!   fails the container operation; `"ignore"` logs a warning and skips the plugin.
//! - A panic, a trap, or breaking a limit fails the call the same way, with the panic
//!   message (guest stderr) quoted.
//!
//! `log::info(..)` and its siblings ([`log`]) write to rwasm's log, attributed to the
//! plugin and hook point (default level warn: `rwasm --debug` or `RUST_LOG=info` shows more).
//!
//! # What the host checks
//!
//! Plugins never edit the spec; they return declarative edits (one builder per field of
//! the WIT `adjustment` record, see [`Adjustment`]) and the host validates every one
//! before applying it. A refused edit is an invalid-adjustment error naming the plugin and
//! the field (`env[0].name`, `mounts[1].source`), subject to `on-error`. The rules:
//!
//! - **env** ([`Adjustment::env`], [`Adjustment::remove_env`]): names non-empty, without
//!   `=` or NUL; values without NUL; each name once.
//! - **annotations** ([`Adjustment::annotation`], [`Adjustment::remove_annotation`]): keys
//!   non-empty, without NUL, each once.
//! - **mounts** ([`Mount::bind`], [`Adjustment::remove_mount`]): bind mounts only; the
//!   destination absolute without `.`/`..`; the source must resolve to a path inside a
//!   directory the manifest grants (`[plugin.grants] dirs`), read-only grants need
//!   [`Mount::read_only`]; options from `bind rbind ro rw nosuid nodev noexec private
//!   rprivate slave rslave`.
//! - **devices** ([`Device::char`], [`Device::block`], [`Adjustment::cdi_device`]): a node
//!   under `/dev` with its device cgroup rule; CDI names are looked up in the host's CDI
//!   spec directories.
//! - **resources** ([`Resources`], [`Adjustment::resources`]) and **rlimits**
//!   ([`Adjustment::rlimit`]): set where unset, or tightened; loosening a limit needs the
//!   grant `loosen-resources`.
//! - **cgroups path**, **OCI hooks** ([`OciHook::new`]) and **args** ([`Adjustment::args`],
//!   only with the grant `args`).
//! - Sizes: at most 1024 env entries, 1024 annotations, 256 mounts (16 options each), and
//!   64 KiB per string; the whole answer is capped too.
//!
//! Several plugins at one point run in manifest order (`order`, then position); each sees
//! the spec as adjusted by those before it, and two plugins setting the same field (an env
//! variable, annotation, mount destination, device path, resource, rlimit, cgroups path or
//! args) conflict with an error naming both. A kind this rwasm cannot apply yet is refused
//! with "not supported by this rwasm yet", never dropped silently.
//!
//! # Grants and limits
//!
//! A plugin may touch only what `[plugin.grants]` gives it: preopened directories
//! (`dirs = { "/var/log/x" = "/log:rw" }`, read-only unless `:rw`), and the grants that
//! widen what its adjustments may do (`args`, `loosen-resources`). It has no sockets, no
//! host processes, no host environment. Each call is bounded by `timeout-ms` (epoch
//! interruption), `memory-limit` (store limits) and an optional `fuel` budget; breaking
//! one fails that call only, never the runtime.
//!
//! # Versions
//!
//! This crate builds against `rwasm:plugin@0.3.0`. rwasm also loads plugins built against
//! 0.2.0 and 0.1.0 (the same major line; both frozen in `sdk/wit-compat/`); a plugin for
//! another major version, or exporting another world, is refused at load with the
//! interface that is missing. A released WIT version is never edited. Network drivers
//! (world `network-driver`) are written against the WIT directly for now
//! (`plugins/net-bridge`).
//!
//! # Testing a plugin
//!
//! The plugin crate's unit tests run natively (`cargo test`): build a call with
//! [`HookCall::new`] and a [`SpecView`] (`..SpecView::default()`), a configuration with
//! `Config::from_iter`, and call your `Hook` impl directly; outside wasm, [`log`] writes
//! to stderr. `rwasm plugin test NAME --hook pre-create --state S --spec C` runs a built
//! plugin offline.
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
        // So that plugins (and their unit tests) can compare adjustments and views.
        additional_derives: [PartialEq],
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
        Adjustment, BlockIo, Config, ConfigError, ConfigValue, Cpu, Device, Error, ErrorCode, Hook,
        HookCall, HookPoint, Memory, Mount, OciHook, OciHookStage, Resources, Rlimit, SpecView,
        State, Status, Verdict,
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
