//! rwasm: a Linux container runtime with a native core and WebAssembly plugins.
//!
//! Modules follow the data's path (../shared/DESIGN.md): `engine` (containers, state
//! store) → `plugin` (manifest, wasmtime host) → `linux` (namespaces, mounts, cgroups,
//! process launch). `linux` knows nothing of plugins; `plugin` knows nothing of syscalls.

pub mod linux;
pub mod plugin;
