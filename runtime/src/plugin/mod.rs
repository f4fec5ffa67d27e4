//! The WebAssembly plugin host.
