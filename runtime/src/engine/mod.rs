//! Containers and their state: the OCI lifecycle on top of `linux` and `plugin`.

pub mod container;
pub mod hooks;
pub mod state;
