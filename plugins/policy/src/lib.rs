//! policy: refuses containers at `pre-create` that have no memory limit or keep a forbidden
//! capability.
//!
//! Config (both optional): `require-memory-limit` (boolean, default `true`) and
//! `forbid-capabilities` (texts, default `["CAP_SYS_ADMIN"]`). Other keys are refused.
//!
//! The memory limit comes from the typed spec view; the capabilities from the spec's JSON,
//! because all five sets are checked and the view carries only bounding and effective.

use rwasm_plugin_sdk::prelude::*;

struct Policy;

/// The validated configuration.
struct Rules {
    require_memory_limit: bool,
    forbid_capabilities: Vec<String>,
}

impl Hook for Policy {
    fn configure(config: &Config) -> Result<(), Error> {
        Rules::from_config(config)?;
        Ok(())
    }

    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        if call.point != HookPoint::PreCreate {
            return Ok(Verdict::allow());
        }
        let rules = Rules::from_config(&Config::current())?;
        Ok(match rules.violation(&call.spec, || call.spec_value())? {
            Some(reason) => Verdict::deny(reason),
            None => Verdict::allow(),
        })
    }
}

rwasm_plugin_sdk::export_hook!(Policy);

impl Rules {
    fn from_config(config: &Config) -> Result<Self, ConfigError> {
        const FORBID: &str = "forbid-capabilities";
        config.deny_unknown(&["require-memory-limit", FORBID])?;
        let forbid_capabilities = match config.get_texts(FORBID)? {
            Some(caps) => caps.to_vec(),
            None => vec!["CAP_SYS_ADMIN".to_owned()],
        };
        if let Some(bad) = forbid_capabilities.iter().find(|c| !c.starts_with("CAP_")) {
            return Err(ConfigError::invalid(
                FORBID,
                format!("{bad:?} is not a CAP_... name"),
            ));
        }
        Ok(Rules {
            require_memory_limit: config.get_bool("require-memory-limit")?.unwrap_or(true),
            forbid_capabilities,
        })
    }

    /// Why the container is refused, if it is; `json` parses the whole spec, needed only
    /// when the memory limit is fine.
    fn violation(
        &self,
        view: &SpecView,
        json: impl FnOnce() -> Result<Value, String>,
    ) -> Result<Option<String>, String> {
        if self.require_memory_limit && view.memory_limit().is_none_or(|limit| limit <= 0) {
            return Ok(Some(
                "policy: container has no memory limit (linux.resources.memory.limit); \
                 set one, e.g. rwasm run -m 256m"
                    .to_owned(),
            ));
        }
        let spec = json()?;
        Ok(spec::CAPABILITY_SETS.iter().find_map(|set| {
            let cap = spec::capabilities(&spec, set)
                .find(|cap| self.forbid_capabilities.iter().any(|f| f == cap))?;
            Some(format!(
                "policy: container keeps {cap} in process.capabilities.{set}"
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use rwasm_plugin_sdk::serde_json::json;

    use super::*;

    fn rules(entries: &[(&str, ConfigValue)]) -> Result<Rules, ConfigError> {
        Rules::from_config(
            &entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    /// The view and the JSON of a spec with memory limit `limit` and the capabilities
    /// `CAP_CHOWN` (bounding) and `effective`.
    fn spec(limit: Option<i64>, effective: &[&str]) -> (SpecView, Value) {
        let mut spec = json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"], "effective": effective}}});
        let mut view = SpecView {
            capabilities_bounding: vec!["CAP_CHOWN".into()],
            capabilities_effective: effective.iter().map(|c| (*c).to_owned()).collect(),
            ..SpecView::default()
        };
        if let Some(limit) = limit {
            spec["linux"] = json!({"resources": {"memory": {"limit": limit}}});
            view.resources = Some(Resources::default().memory_limit(limit));
        }
        (view, spec)
    }

    fn violation(rules: &Rules, (view, json): (SpecView, Value)) -> Option<String> {
        rules.violation(&view, || Ok(json)).unwrap()
    }

    #[test]
    fn denies_missing_or_unset_memory_limit() {
        let r = rules(&[]).unwrap();
        for limit in [None, Some(0), Some(-1)] {
            let reason = violation(&r, spec(limit, &[])).unwrap();
            assert!(
                reason.starts_with("policy: container has no memory limit"),
                "{reason}"
            );
        }
        assert_eq!(violation(&r, spec(Some(256 << 20), &[])), None);
        let lax = rules(&[("require-memory-limit", ConfigValue::Boolean(false))]).unwrap();
        assert_eq!(violation(&lax, spec(None, &[])), None);
    }

    #[test]
    fn denies_forbidden_capabilities_naming_the_set() {
        let r = rules(&[]).unwrap();
        assert_eq!(
            violation(&r, spec(Some(1 << 30), &["CAP_SYS_ADMIN"])).as_deref(),
            Some("policy: container keeps CAP_SYS_ADMIN in process.capabilities.effective")
        );
        let r = rules(&[(
            "forbid-capabilities",
            ConfigValue::Texts(vec!["CAP_CHOWN".into()]),
        )])
        .unwrap();
        assert_eq!(
            violation(&r, spec(Some(1 << 30), &["CAP_SYS_ADMIN"])).as_deref(),
            Some("policy: container keeps CAP_CHOWN in process.capabilities.bounding")
        );
    }

    #[test]
    fn refuses_bad_config() {
        assert!(rules(&[("strict", ConfigValue::Boolean(true))]).is_err());
        assert!(rules(&[("require-memory-limit", ConfigValue::Text("yes".into()))]).is_err());
        assert!(
            rules(&[(
                "forbid-capabilities",
                ConfigValue::Texts(vec!["SYS_ADMIN".into()])
            )])
            .is_err()
        );
    }
}
