//! Containers and their state: the OCI lifecycle on top of `linux` and `plugin`.

pub mod container;
pub mod docker;
pub mod hooks;
pub mod image;
pub mod run;
pub mod state;
pub mod storage;
pub mod update;
pub mod validate;
