//! policy: refuses containers at `pre-create` that have no memory limit or keep a forbidden
//! capability.
//!
//! Config (both optional): `require-memory-limit` (boolean, default `true`) and
//! `forbid-capabilities` (texts, default `["CAP_SYS_ADMIN"]`). Other keys are refused.

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
        Ok(match rules.violation(&call.spec_value()?) {
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

    /// Why the container is refused, if it is.
    fn violation(&self, spec: &Value) -> Option<String> {
        if self.require_memory_limit && spec::memory_limit(spec).is_none_or(|limit| limit <= 0) {
            return Some(
                "policy: container has no memory limit (linux.resources.memory.limit); \
                 set one, e.g. rwasm run -m 256m"
                    .to_owned(),
            );
        }
        spec::CAPABILITY_SETS.iter().find_map(|set| {
            let cap = spec::capabilities(spec, set)
                .find(|cap| self.forbid_capabilities.iter().any(|f| f == cap))?;
            Some(format!(
                "policy: container keeps {cap} in process.capabilities.{set}"
            ))
        })
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

    fn spec(limit: Option<i64>, effective: &[&str]) -> Value {
        let mut spec = json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"], "effective": effective}}});
        if let Some(limit) = limit {
            spec["linux"] = json!({"resources": {"memory": {"limit": limit}}});
        }
        spec
    }

    #[test]
    fn denies_missing_or_unset_memory_limit() {
        let r = rules(&[]).unwrap();
        for limit in [None, Some(0), Some(-1)] {
            let reason = r.violation(&spec(limit, &[])).unwrap();
            assert!(
                reason.starts_with("policy: container has no memory limit"),
                "{reason}"
            );
        }
        assert_eq!(r.violation(&spec(Some(256 << 20), &[])), None);
        let lax = rules(&[("require-memory-limit", ConfigValue::Boolean(false))]).unwrap();
        assert_eq!(lax.violation(&spec(None, &[])), None);
    }

    #[test]
    fn denies_forbidden_capabilities_naming_the_set() {
        let r = rules(&[]).unwrap();
        assert_eq!(
            r.violation(&spec(Some(1 << 30), &["CAP_SYS_ADMIN"]))
                .as_deref(),
            Some("policy: container keeps CAP_SYS_ADMIN in process.capabilities.effective")
        );
        let r = rules(&[(
            "forbid-capabilities",
            ConfigValue::Texts(vec!["CAP_CHOWN".into()]),
        )])
        .unwrap();
        assert_eq!(
            r.violation(&spec(Some(1 << 30), &["CAP_SYS_ADMIN"]))
                .as_deref(),
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
