//! The hook call and the container's spec (OCI runtime-spec `config.md`), in two forms.
//!
//! - The typed view, [`HookCall::spec`] ([`SpecView`]): the fields plugins read most,
//!   already decoded. Its methods ([`SpecView::memory_limit`], [`SpecView::env_var`],
//!   [`SpecView::has_capability`], ...) answer the usual questions without parsing.
//! - The whole config.json, [`HookCall::spec_json`]: [`HookCall::spec_value`] parses it on
//!   demand, and the functions here ([`memory_limit`], [`capabilities`]) read common paths
//!   of the parsed value. Anything else is a [`Value::pointer`] away:
//!   `spec.pointer("/process/cwd")`. Use it for what the view lacks, e.g. the capability
//!   sets other than bounding and effective, seccomp, or sysctls.

use std::fmt;

use serde_json::Value;

use crate::{Cpu, HookCall, HookPoint, Mount, Rlimit, SpecView, State, Status};

/// The capability sets of `process.capabilities`, in the order the runtime-spec lists them.
pub const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// `linux.resources.memory.limit` in bytes, if present and an integer (`-1` means unlimited).
pub fn memory_limit(spec: &Value) -> Option<i64> {
    spec.pointer("/linux/resources/memory/limit")
        .and_then(Value::as_i64)
}

/// The capabilities (`CAP_...` names) in the set `process.capabilities.<set>`; empty if the
/// set is absent. `set` is one of [`CAPABILITY_SETS`].
pub fn capabilities<'a>(spec: &'a Value, set: &str) -> impl Iterator<Item = &'a str> + use<'a> {
    spec.get("process")
        .and_then(|p| p.get("capabilities"))
        .and_then(|c| c.get(set))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl HookCall {
    /// Parses the full spec (`spec_json`, the config.json text) into a JSON value; each
    /// call parses again. The typed view in `spec` needs no parsing.
    ///
    /// Errors with `spec is not valid JSON: ...`, which only a host bug can cause.
    pub fn spec_value(&self) -> Result<Value, String> {
        serde_json::from_str(&self.spec_json).map_err(|e| format!("spec is not valid JSON: {e}"))
    }
}

impl SpecView {
    /// `linux.resources.memory.limit` in bytes (`-1` means unlimited), if set.
    pub fn memory_limit(&self) -> Option<i64> {
        self.resources.as_ref()?.memory.as_ref()?.limit
    }

    /// `linux.resources.cpu`, if set.
    pub fn cpu(&self) -> Option<&Cpu> {
        self.resources.as_ref()?.cpu.as_ref()
    }

    /// `linux.resources.pids.limit`, if set.
    pub fn pids_limit(&self) -> Option<i64> {
        self.resources.as_ref()?.pids_limit
    }

    /// The value of the `process.env` variable `name`, if set (the last entry wins, as
    /// for `execve`'s callers).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
    }

    /// The value of the annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `cap` (a `CAP_...` name) is in the bounding or the effective set. The view
    /// carries only those two sets; the others are in the JSON ([`capabilities`]).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities_bounding
            .iter()
            .chain(&self.capabilities_effective)
            .any(|c| c == cap)
    }

    /// Whether `linux.namespaces` has a namespace of `kind` (`pid`, `network`, `mount`,
    /// `user`, ...): a container without one shares the runtime's.
    pub fn has_namespace(&self, kind: &str) -> bool {
        self.namespaces.iter().any(|n| n == kind)
    }

    /// The mount at `destination`, if the spec has one.
    pub fn mount_at(&self, destination: &str) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.destination == destination)
    }

    /// The `process.rlimits` entry of `kind` (`RLIMIT_NOFILE`), if set.
    pub fn rlimit(&self, kind: &str) -> Option<&Rlimit> {
        self.rlimits.iter().find(|r| r.type_ == kind)
    }
}

/// An empty view (no process args, root uid/gid, no mounts), for building test calls.
impl Default for SpecView {
    fn default() -> Self {
        SpecView {
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".to_owned(),
            uid: 0,
            gid: 0,
            hostname: None,
            root_path: String::new(),
            root_readonly: false,
            image: None,
            annotations: Vec::new(),
            mounts: Vec::new(),
            devices: Vec::new(),
            resources: None,
            rlimits: Vec::new(),
            cgroups_path: None,
            capabilities_bounding: Vec::new(),
            capabilities_effective: Vec::new(),
            namespaces: Vec::new(),
        }
    }
}

/// A `creating` container with empty id and bundle and OCI version `1.2.0`, for building
/// test calls.
impl Default for State {
    fn default() -> Self {
        State {
            oci_version: "1.2.0".to_owned(),
            id: String::new(),
            status: Status::Creating,
            pid: None,
            bundle: String::new(),
            annotations: Vec::new(),
        }
    }
}

impl HookCall {
    /// A call of `point` with a default [`State`], the view `spec` and `spec_json` `{}`,
    /// for a plugin's unit tests (the host builds the real ones). Set other fields
    /// directly: `HookCall { spec_json: .., ..HookCall::new(point, spec) }`.
    pub fn new(point: HookPoint, spec: SpecView) -> Self {
        HookCall {
            point,
            state: State::default(),
            spec,
            spec_json: "{}".to_owned(),
            update: None,
        }
    }
}

impl HookPoint {
    /// The hook point as the WIT spells it: `pre-create`, `create-runtime`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::PreCreate => "pre-create",
            HookPoint::CreateRuntime => "create-runtime",
            HookPoint::CreateContainer => "create-container",
            HookPoint::StartContainer => "start-container",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
            HookPoint::PreUpdate => "pre-update",
            HookPoint::PostDelete => "post-delete",
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    /// The status as the runtime-spec spells it: `creating`, `created`, `running`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_memory_limit() {
        let spec = json!({"linux": {"resources": {"memory": {"limit": 268435456}}}});
        assert_eq!(memory_limit(&spec), Some(268_435_456));
        assert_eq!(memory_limit(&json!({"linux": {}})), None);
    }

    #[test]
    fn reads_capability_sets() {
        let spec =
            json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}}});
        assert_eq!(
            capabilities(&spec, "bounding").collect::<Vec<_>>(),
            ["CAP_CHOWN", "CAP_SYS_ADMIN"]
        );
        assert_eq!(capabilities(&spec, "ambient").count(), 0);
    }

    #[test]
    fn typed_view_helpers() {
        use crate::Resources;
        let view = SpecView {
            env: vec![
                "PATH=/bin".into(),
                "A=1".into(),
                "AB=2".into(),
                "A=3".into(),
            ],
            annotations: vec![("org.example/k".into(), "v".into())],
            resources: Some(
                Resources::default()
                    .memory_limit(64 << 20)
                    .cpu_shares(512)
                    .pids_limit(10),
            ),
            capabilities_bounding: vec!["CAP_CHOWN".into()],
            capabilities_effective: vec!["CAP_NET_RAW".into()],
            namespaces: vec!["pid".into(), "mount".into()],
            mounts: vec![crate::Mount::bind("/srv", "/data")],
            rlimits: vec![crate::Rlimit::new("nofile", 10, 20)],
            ..SpecView::default()
        };
        assert_eq!(view.memory_limit(), Some(64 << 20));
        assert_eq!(view.cpu().and_then(|c| c.shares), Some(512));
        assert_eq!(view.pids_limit(), Some(10));
        assert_eq!(view.env_var("A"), Some("3"));
        assert_eq!(view.env_var("AB"), Some("2"));
        assert_eq!(view.env_var("PAT"), None);
        assert_eq!(view.annotation("org.example/k"), Some("v"));
        assert_eq!(view.annotation("k"), None);
        assert!(view.has_capability("CAP_CHOWN") && view.has_capability("CAP_NET_RAW"));
        assert!(!view.has_capability("CAP_SYS_ADMIN"));
        assert!(view.has_namespace("mount") && !view.has_namespace("network"));
        assert_eq!(
            view.mount_at("/data").map(|m| m.source.as_str()),
            Some("/srv")
        );
        assert!(view.mount_at("/srv").is_none());
        assert_eq!(
            view.rlimit("RLIMIT_NOFILE").map(|r| (r.soft, r.hard)),
            Some((10, 20))
        );

        let empty = SpecView::default();
        assert_eq!((empty.memory_limit(), empty.pids_limit()), (None, None));
        assert!(empty.cpu().is_none());
    }

    #[test]
    fn test_calls() {
        let call = HookCall::new(HookPoint::Poststop, SpecView::default());
        assert_eq!(call.point, HookPoint::Poststop);
        assert_eq!(call.state.status, Status::Creating);
        assert_eq!(call.spec_value(), Ok(json!({})));
    }

    #[test]
    fn spells_points_as_the_wit() {
        assert_eq!(HookPoint::PreCreate.to_string(), "pre-create");
        assert_eq!(HookPoint::StartContainer.as_str(), "start-container");
        assert_eq!(Status::Stopped.to_string(), "stopped");
    }
}
