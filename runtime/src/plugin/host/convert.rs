//! Conversions between the WIT types of `rwasm:plugin` (0.2.0 and 0.1.0) and the host's
//! own: the hook call built from the OCI state and spec, and the adjustment a plugin
//! returns.

use oci_spec::runtime::{ContainerState, LinuxResources, Spec, State};
use serde::Serialize;

use super::super::adjust::{
    Adjustment, BlockIoRequest, CpuRequest, DeviceRequest, HookRequest, HookStage, MemoryRequest,
    MountRequest, ResourcesRequest, RlimitRequest,
};
use super::super::manifest::ConfigValue;
use super::super::{HookPoint, PluginError};
use super::bindings::rwasm::plugin::types as wit;
use super::bindings_v0_1::rwasm::plugin::types as wit1;

/// The annotation an image-based container carries its image reference in (image-spec
/// `annotations.md`).
pub(crate) const IMAGE_REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// rwasm's own image annotation (set by `rwasm run IMAGE`).
pub(crate) const RWASM_IMAGE_ANNOTATION: &str = "org.rwasm.image";

/// One hook invocation, encoded once per plugin position and handed to the plugin.
pub(crate) struct Call {
    pub(super) call: wit::HookCall,
}

impl Call {
    /// Encodes the state, the spec (typed view and JSON) and, at `pre-update`, the
    /// resources about to be applied.
    pub(crate) fn new(
        point: HookPoint,
        state: &State,
        spec: &Spec,
        update: Option<&LinuxResources>,
    ) -> Result<Call, PluginError> {
        let spec_json =
            serde_json::to_string(spec).map_err(|source| PluginError::EncodeSpec { source })?;
        Ok(Call {
            call: wit::HookCall {
                point: hook_point(point),
                state: state_of(state),
                spec: spec_view(spec),
                spec_json,
                update: update.map(resources_of),
            },
        })
    }

    /// The same call for a plugin built against `rwasm:plugin@0.1.0`, which knows only
    /// the first six hook points; `None` at the others.
    pub(super) fn v0_1(&self) -> Option<wit1::HookCall> {
        let point = match self.call.point {
            wit::HookPoint::PreCreate => wit1::HookPoint::PreCreate,
            wit::HookPoint::CreateRuntime => wit1::HookPoint::CreateRuntime,
            wit::HookPoint::CreateContainer => wit1::HookPoint::CreateContainer,
            wit::HookPoint::StartContainer => wit1::HookPoint::StartContainer,
            wit::HookPoint::Poststart => wit1::HookPoint::Poststart,
            wit::HookPoint::Poststop => wit1::HookPoint::Poststop,
            wit::HookPoint::PreUpdate | wit::HookPoint::PostDelete => return None,
        };
        let s = &self.call.state;
        Some(wit1::HookCall {
            point,
            state: wit1::State {
                oci_version: s.oci_version.clone(),
                id: s.id.clone(),
                status: match s.status {
                    wit::Status::Creating => wit1::Status::Creating,
                    wit::Status::Created => wit1::Status::Created,
                    wit::Status::Running => wit1::Status::Running,
                    wit::Status::Stopped => wit1::Status::Stopped,
                },
                pid: s.pid,
                bundle: s.bundle.clone(),
                annotations: s.annotations.clone(),
            },
            spec: self.call.spec_json.clone(),
        })
    }
}

fn hook_point(point: HookPoint) -> wit::HookPoint {
    match point {
        HookPoint::PreCreate => wit::HookPoint::PreCreate,
        HookPoint::CreateRuntime => wit::HookPoint::CreateRuntime,
        HookPoint::CreateContainer => wit::HookPoint::CreateContainer,
        HookPoint::StartContainer => wit::HookPoint::StartContainer,
        HookPoint::Poststart => wit::HookPoint::Poststart,
        HookPoint::Poststop => wit::HookPoint::Poststop,
        HookPoint::PreUpdate => wit::HookPoint::PreUpdate,
        HookPoint::PostDelete => wit::HookPoint::PostDelete,
    }
}

fn state_of(state: &State) -> wit::State {
    let mut annotations: Vec<(String, String)> = state
        .annotations()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.sort();
    wit::State {
        oci_version: state.version().clone(),
        id: state.id().clone(),
        status: match state.status() {
            ContainerState::Creating => wit::Status::Creating,
            ContainerState::Created => wit::Status::Created,
            ContainerState::Running => wit::Status::Running,
            ContainerState::Stopped => wit::Status::Stopped,
        },
        pid: *state.pid(),
        bundle: state.bundle().to_string_lossy().into_owned(),
        annotations,
    }
}

/// The serde name of an OCI enum value (`"c"`, `"RLIMIT_NOFILE"`, `"network"`,
/// `"CAP_CHOWN"`), which is what config.json spells.
fn serde_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The typed view of `spec` (WIT `spec-view`).
pub(crate) fn spec_view(spec: &Spec) -> wit::SpecView {
    let process = spec.process().as_ref();
    let linux = spec.linux().as_ref();
    let mut annotations: Vec<(String, String)> = spec
        .annotations()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.sort();
    let image = spec.annotations().as_ref().and_then(|a| {
        a.get(IMAGE_REF_ANNOTATION)
            .or_else(|| a.get(RWASM_IMAGE_ANNOTATION))
            .cloned()
    });
    let caps = |set: fn(&oci_spec::runtime::LinuxCapabilities) -> &Option<_>| -> Vec<String> {
        let mut names: Vec<String> = process
            .and_then(|p| p.capabilities().as_ref())
            .and_then(|c| set(c).as_ref())
            .map(|s: &oci_spec::runtime::Capabilities| s.iter().map(serde_name).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    wit::SpecView {
        args: process.and_then(|p| p.args().clone()).unwrap_or_default(),
        env: process.and_then(|p| p.env().clone()).unwrap_or_default(),
        cwd: process
            .map(|p| p.cwd().to_string_lossy().into_owned())
            .unwrap_or_default(),
        uid: process.map_or(0, |p| p.user().uid()),
        gid: process.map_or(0, |p| p.user().gid()),
        hostname: spec.hostname().clone(),
        root_path: spec
            .root()
            .as_ref()
            .map(|r| r.path().to_string_lossy().into_owned())
            .unwrap_or_default(),
        root_readonly: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        image,
        annotations,
        mounts: spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| wit::Mount {
                destination: m.destination().to_string_lossy().into_owned(),
                source: m
                    .source()
                    .as_ref()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                type_: m.typ().clone().unwrap_or_default(),
                options: m.options().clone().unwrap_or_default(),
            })
            .collect(),
        devices: linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .map(|d| wit::Device {
                path: d.path().to_string_lossy().into_owned(),
                type_: serde_name(&d.typ()),
                major: d.major(),
                minor: d.minor(),
                file_mode: d.file_mode(),
                uid: d.uid(),
                gid: d.gid(),
                permissions: String::new(),
            })
            .collect(),
        resources: linux.and_then(|l| l.resources().as_ref()).map(resources_of),
        rlimits: process
            .and_then(|p| p.rlimits().as_ref())
            .into_iter()
            .flatten()
            .map(|r| wit::Rlimit {
                type_: serde_name(&r.typ()),
                hard: r.hard(),
                soft: r.soft(),
            })
            .collect(),
        cgroups_path: linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned()),
        capabilities_bounding: caps(|c| c.bounding()),
        capabilities_effective: caps(|c| c.effective()),
        namespaces: linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .map(|n| serde_name(&n.typ()))
            .collect(),
    }
}

/// WIT `resources` from `linux.resources`.
pub(crate) fn resources_of(r: &LinuxResources) -> wit::Resources {
    let throttle = |list: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
        list.iter()
            .flatten()
            .map(|t| wit::ThrottleDevice {
                major: t.major(),
                minor: t.minor(),
                rate: t.rate(),
            })
            .collect()
    };
    wit::Resources {
        memory: r.memory().as_ref().map(|m| wit::Memory {
            limit: m.limit(),
            reservation: m.reservation(),
            swap: m.swap(),
        }),
        cpu: r.cpu().as_ref().map(|c| wit::Cpu {
            shares: c.shares(),
            quota: c.quota(),
            period: c.period(),
            cpus: c.cpus().clone(),
            mems: c.mems().clone(),
        }),
        pids_limit: r.pids().as_ref().map(|p| p.limit()),
        block_io: r.block_io().as_ref().map(|b| wit::BlockIo {
            weight: b.weight(),
            throttle_read_bps: throttle(b.throttle_read_bps_device()),
            throttle_write_bps: throttle(b.throttle_write_bps_device()),
            throttle_read_iops: throttle(b.throttle_read_iops_device()),
            throttle_write_iops: throttle(b.throttle_write_iops_device()),
        }),
        hugepage_limits: r
            .hugepage_limits()
            .iter()
            .flatten()
            .map(|h| wit::HugepageLimit {
                page_size: h.page_size().clone(),
                limit: u64::try_from(h.limit()).unwrap_or(0),
            })
            .collect(),
    }
}

fn mount_request(m: wit::Mount) -> MountRequest {
    MountRequest {
        destination: m.destination,
        source: m.source,
        typ: m.type_,
        options: m.options,
    }
}

fn resources_request(r: wit::Resources) -> ResourcesRequest {
    let throttle = |list: Vec<wit::ThrottleDevice>| {
        list.into_iter()
            .map(|t| (t.major, t.minor, t.rate))
            .collect()
    };
    ResourcesRequest {
        memory: r.memory.map(|m| MemoryRequest {
            limit: m.limit,
            reservation: m.reservation,
            swap: m.swap,
        }),
        cpu: r.cpu.map(|c| CpuRequest {
            shares: c.shares,
            quota: c.quota,
            period: c.period,
            cpus: c.cpus,
            mems: c.mems,
        }),
        pids_limit: r.pids_limit,
        block_io: r.block_io.map(|b| BlockIoRequest {
            weight: b.weight,
            throttle_read_bps: throttle(b.throttle_read_bps),
            throttle_write_bps: throttle(b.throttle_write_bps),
            throttle_read_iops: throttle(b.throttle_read_iops),
            throttle_write_iops: throttle(b.throttle_write_iops),
        }),
        hugepage_limits: r
            .hugepage_limits
            .into_iter()
            .map(|h| (h.page_size, h.limit))
            .collect(),
    }
}

/// The host's form of a 0.2 plugin's adjustment.
pub(super) fn adjustment(a: wit::Adjustment) -> Adjustment {
    Adjustment {
        env: a.env,
        remove_env: a.remove_env,
        annotations: a.annotations,
        remove_annotations: a.remove_annotations,
        mounts: a.mounts.into_iter().map(mount_request).collect(),
        remove_mounts: a.remove_mounts,
        devices: a
            .devices
            .into_iter()
            .map(|d| DeviceRequest {
                path: d.path,
                typ: d.type_,
                major: d.major,
                minor: d.minor,
                file_mode: d.file_mode,
                uid: d.uid,
                gid: d.gid,
                permissions: d.permissions,
            })
            .collect(),
        cdi_devices: a.cdi_devices,
        resources: a.resources.map(resources_request),
        rlimits: a
            .rlimits
            .into_iter()
            .map(|r| RlimitRequest {
                typ: r.type_,
                hard: r.hard,
                soft: r.soft,
            })
            .collect(),
        cgroups_path: a.cgroups_path,
        hooks: a
            .hooks
            .into_iter()
            .map(|h| HookRequest {
                stage: match h.stage {
                    wit::OciHookStage::Prestart => HookStage::Prestart,
                    wit::OciHookStage::CreateRuntime => HookStage::CreateRuntime,
                    wit::OciHookStage::CreateContainer => HookStage::CreateContainer,
                    wit::OciHookStage::StartContainer => HookStage::StartContainer,
                    wit::OciHookStage::Poststart => HookStage::Poststart,
                    wit::OciHookStage::Poststop => HookStage::Poststop,
                },
                path: h.path,
                args: h.args,
                env: h.env,
                timeout: h.timeout,
            })
            .collect(),
        args: a.args,
    }
}

/// The host's form of a 0.1 plugin's adjustment (env, annotations, mounts).
pub(super) fn adjustment_v0_1(a: wit1::Adjustment) -> Adjustment {
    Adjustment {
        env: a.env,
        annotations: a.annotations,
        mounts: a
            .mounts
            .into_iter()
            .map(|m| MountRequest {
                destination: m.destination,
                source: m.source,
                typ: m.type_,
                options: m.options,
            })
            .collect(),
        ..Adjustment::default()
    }
}

/// A 0.2 guest error as one line: `invalid-config: key x: ...`.
pub(super) fn error_message(e: wit::Error) -> String {
    let code = match e.code {
        wit::ErrorCode::InvalidConfig => "invalid-config",
        wit::ErrorCode::InvalidInput => "invalid-input",
        wit::ErrorCode::Unsupported => "unsupported",
        wit::ErrorCode::Unavailable => "unavailable",
        wit::ErrorCode::Internal => "internal",
    };
    format!("{code}: {}", e.message)
}

pub(super) fn config_entry((key, value): &(String, ConfigValue)) -> wit::ConfigEntry {
    wit::ConfigEntry {
        key: key.clone(),
        value: match value {
            ConfigValue::Text(s) => wit::ConfigValue::Text(s.clone()),
            ConfigValue::Integer(i) => wit::ConfigValue::Integer(*i),
            ConfigValue::Float(f) => wit::ConfigValue::Float(*f),
            ConfigValue::Boolean(b) => wit::ConfigValue::Boolean(*b),
            ConfigValue::Texts(t) => wit::ConfigValue::Texts(t.clone()),
        },
    }
}

pub(super) fn config_entry_v0_1((key, value): &(String, ConfigValue)) -> wit1::ConfigEntry {
    wit1::ConfigEntry {
        key: key.clone(),
        value: match value {
            ConfigValue::Text(s) => wit1::ConfigValue::Text(s.clone()),
            ConfigValue::Integer(i) => wit1::ConfigValue::Integer(*i),
            ConfigValue::Float(f) => wit1::ConfigValue::Float(*f),
            ConfigValue::Boolean(b) => wit1::ConfigValue::Boolean(*b),
            ConfigValue::Texts(t) => wit1::ConfigValue::Texts(t.clone()),
        },
    }
}
