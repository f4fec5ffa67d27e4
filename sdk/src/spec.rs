//! The hook call and the container's spec (OCI runtime-spec `config.md`).
//!
//! [`HookCall::spec_value`] parses the spec on demand; the functions here read the paths
//! plugins commonly need from the parsed value. Anything else is a
//! [`Value::pointer`] away: `spec.pointer("/process/cwd")`.

use std::fmt;

use serde_json::Value;

use crate::{HookCall, HookPoint, SpecView, Status};

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
    fn spells_points_as_the_wit() {
        assert_eq!(HookPoint::PreCreate.to_string(), "pre-create");
        assert_eq!(HookPoint::StartContainer.as_str(), "start-container");
        assert_eq!(Status::Stopped.to_string(), "stopped");
    }
}
