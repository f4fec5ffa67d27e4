//! Volume driver plugins (world `volume-driver` of `rwasm:plugin@0.3.0`): the operations
//! of Docker's volume plugin API (`/VolumeDriver.Create`, `.Remove`, `.Mount`, `.Unmount`,
//! `.Path`, `.Get`, `.List`, `.Capabilities`) and the [`PluginSet`] call that runs one.
//!
//! A driver sees its granted directories (WASI preopens) and may mount a tmpfs under a
//! writable one through `volume-host` (see `host::volume`). A mountpoint it answers must be
//! a directory under one of its granted directories; after a failed call the host
//! unmounts what the call mounted.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::manifest::PluginKind;
use super::{Phase, PluginError, PluginSet};

/// One volume operation and its arguments (Docker's volume plugin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolOp {
    /// `/VolumeDriver.Create`: make volume `name` with driver options `-o key=value`.
    Create {
        /// Volume name.
        name: String,
        /// Driver options, in the order given.
        options: Vec<(String, String)>,
    },
    /// `/VolumeDriver.Remove`: delete the volume and its data.
    Remove {
        /// Volume name.
        name: String,
    },
    /// `/VolumeDriver.Mount`: make the volume available for a container.
    Mount {
        /// Volume name.
        name: String,
        /// The container's id.
        container_id: String,
    },
    /// `/VolumeDriver.Unmount`: the container no longer uses it.
    Unmount {
        /// Volume name.
        name: String,
        /// The container's id.
        container_id: String,
    },
    /// `/VolumeDriver.Path`: the host path of a mounted volume.
    Path {
        /// Volume name.
        name: String,
    },
    /// `/VolumeDriver.Get`: one volume.
    Get {
        /// Volume name.
        name: String,
    },
    /// `/VolumeDriver.List`: every volume of the driver.
    List,
    /// `/VolumeDriver.Capabilities`.
    Capabilities,
}

impl VolOp {
    /// The operation's WIT name: `create`, `remove`, `mount`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            VolOp::Create { .. } => "create",
            VolOp::Remove { .. } => "remove",
            VolOp::Mount { .. } => "mount",
            VolOp::Unmount { .. } => "unmount",
            VolOp::Path { .. } => "path",
            VolOp::Get { .. } => "get",
            VolOp::List => "list",
            VolOp::Capabilities => "capabilities",
        }
    }

    /// The volume the operation is about; empty for `list` and `capabilities`.
    pub fn volume(&self) -> &str {
        match self {
            VolOp::Create { name, .. }
            | VolOp::Remove { name }
            | VolOp::Mount { name, .. }
            | VolOp::Unmount { name, .. }
            | VolOp::Path { name }
            | VolOp::Get { name } => name,
            VolOp::List | VolOp::Capabilities => "",
        }
    }
}

/// A volume as a driver reports it (Docker's `Volume` object of `.Get` and `.List`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    /// Volume name.
    pub name: String,
    /// Host path of its data, once created or mounted.
    pub mountpoint: Option<PathBuf>,
    /// Driver-defined status (Docker's `Status`).
    pub status: Vec<(String, String)>,
    /// RFC 3339 creation time, when the driver knows it.
    pub created_at: Option<String>,
}

/// Docker's `Capabilities.Scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Volumes live on this machine.
    Local,
    /// Volumes are visible to every machine using the driver.
    Global,
}

/// What a volume call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolAnswer {
    /// `create`, `remove`, `unmount`.
    Done,
    /// `mount` (always `Some`) and `path`: the host path of the data.
    Path(Option<PathBuf>),
    /// `get`.
    Volume(VolumeInfo),
    /// `list`.
    Volumes(Vec<VolumeInfo>),
    /// `capabilities`.
    Capabilities(Scope),
}

impl PluginSet {
    /// The names of the manifest's `volume-driver` plugins, in manifest order.
    pub fn volume_drivers(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .filter(|p| p.spec.kind == PluginKind::VolumeDriver)
            .map(|p| p.spec.name.as_str())
            .collect()
    }

    /// Whether the manifest has a `volume-driver` plugin named `name`.
    pub fn has_volume_driver(&self, name: &str) -> bool {
        self.plugins
            .iter()
            .any(|p| p.spec.kind == PluginKind::VolumeDriver && p.spec.name == name)
    }

    /// Runs `op` of the volume driver named `driver`, bounded like every plugin call
    /// (deadline, memory cap, fuel, answer size). A mountpoint answered by `mount` or
    /// `path` is checked to be a directory under the driver's granted directories.
    ///
    /// Errors: [`PluginError::NoVolumeDriver`] when there is no such driver, else
    /// [`PluginError::VolumeFailed`] naming the driver, the operation, the volume and
    /// the phase.
    pub fn volume(&self, driver: &str, op: &VolOp) -> Result<VolAnswer, PluginError> {
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.spec.kind == PluginKind::VolumeDriver && p.spec.name == driver)
            .ok_or_else(|| PluginError::NoVolumeDriver {
                name: driver.to_string(),
                manifest: self.manifest.clone(),
            })?;
        let failed = |phase, cause| PluginError::VolumeFailed {
            plugin: plugin.spec.name.clone(),
            op: op.as_str(),
            volume: op.volume().to_string(),
            phase,
            cause,
        };
        let _span = tracing::info_span!("volume", plugin = %plugin.spec.name, op = op.as_str(),
            volume = op.volume())
        .entered();
        self.join_prefetch();
        let host = self
            .host_or_new()
            .map_err(|cause| failed(Phase::Load, cause))?;
        let started = Instant::now();
        let (loaded, _) = host
            .load_volume(&plugin.spec, &self.cache_dir)
            .map_err(|cause| failed(Phase::Load, cause))?;
        let result = host.volume_call(&loaded, &plugin.spec, op);
        tracing::debug!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "volume driver call finished"
        );
        result.map_err(|(phase, cause)| failed(phase, cause))
    }
}
