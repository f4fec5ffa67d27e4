//! rwasm: a Linux container runtime with a native core and WebAssembly plugins.
//!
//! Modules follow the data's path (../shared/DESIGN.md): `engine` (containers, state
//! store) → `plugin` (manifest, wasmtime host) → `linux` (namespaces, mounts, cgroups,
//! process launch). `linux` knows nothing of plugins; `plugin` knows nothing of syscalls.

#![warn(missing_docs)]

pub mod engine;
pub mod linux;
pub mod plugin;

/// An error and its sources as one line, `outer: inner: root`, skipping a source whose
/// text the outer message already ends with.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
