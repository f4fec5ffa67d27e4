//! Writing to rwasm's log through the host's `log` import.
//!
//! Each call is one line, attributed to the plugin by the host. Outside WebAssembly (unit
//! tests of a plugin on the build machine) the line goes to stderr instead.

use crate::bindings::rwasm::plugin::host;
pub use host::Level;

/// Writes `message` at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    host::log(level, message.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {}", message.as_ref());
}

/// Writes `message` at level trace.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Writes `message` at level debug.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Writes `message` at level info.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Writes `message` at level warn.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Writes `message` at level error.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
