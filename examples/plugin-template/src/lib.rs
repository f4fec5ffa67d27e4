//! plugin-template: a small, complete rwasm hook plugin to copy and change.
//!
//! At `pre-create` it
//! - refuses a container whose command (`process.args[0]`, without its directory) is listed
//!   in `deny-commands`, with a reason that says so;
//! - otherwise adds the env variable `GREETING` (the `greeting` value) and the annotation
//!   `org.example.plugin-template/greeted = "true"`, and logs one line through the host.
//!
//! At any other hook point it allows and changes nothing.
//!
//! Config (`[plugin.config]` in the manifest; both optional, other keys are refused):
//! - `greeting` (text, default `hello from the plugin template`);
//! - `deny-commands` (list of texts, default empty), e.g. `["nc", "telnet"]`.

use rwasm_plugin_sdk::prelude::*;

/// The annotation the plugin sets on every container it allows at `pre-create`.
pub const GREETED: &str = "org.example.plugin-template/greeted";

struct Template;

/// The validated configuration.
#[derive(Debug, PartialEq)]
struct Settings {
    greeting: String,
    deny_commands: Vec<String>,
}

impl Settings {
    /// Reads and checks `[plugin.config]`; an error names the key.
    fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        config.deny_unknown(&["greeting", "deny-commands"])?;
        let greeting = config
            .get_str("greeting")?
            .unwrap_or("hello from the plugin template")
            .to_owned();
        if greeting.contains('\0') {
            return Err(ConfigError::invalid("greeting", "must not contain NUL"));
        }
        let deny_commands = config
            .get_texts("deny-commands")?
            .unwrap_or_default()
            .to_vec();
        if let Some(bad) = deny_commands
            .iter()
            .find(|c| c.is_empty() || c.contains('/'))
        {
            return Err(ConfigError::invalid(
                "deny-commands",
                format!("{bad:?} is not a command name (no `/`, not empty)"),
            ));
        }
        Ok(Settings {
            greeting,
            deny_commands,
        })
    }

    /// What the plugin decides at `pre-create` for the container `spec`.
    fn decide(&self, spec: &SpecView) -> Verdict {
        let command = spec
            .args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or_default();
        if self.deny_commands.iter().any(|c| c == command) {
            return Verdict::deny(format!(
                "plugin-template: the command `{command}` is not allowed here \
                 (listed in deny-commands)"
            ));
        }
        Adjustment::default()
            .env("GREETING", &self.greeting)
            .annotation(GREETED, "true")
            .into()
    }
}

impl Hook for Template {
    fn configure(config: &Config) -> Result<(), Error> {
        Settings::from_config(config)?;
        Ok(())
    }

    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        if call.point != HookPoint::PreCreate {
            return Ok(Verdict::allow());
        }
        let settings = Settings::from_config(&Config::current())?;
        let verdict = settings.decide(&call.spec);
        match &verdict {
            Verdict::Allow(_) => log::info(format!("greeting container {}", call.state.id)),
            Verdict::Deny(reason) => log::info(format!("{}: {reason}", call.state.id)),
        }
        Ok(verdict)
    }
}

rwasm_plugin_sdk::export_hook!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entries: &[(&str, ConfigValue)]) -> Config {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn spec(args: &[&str]) -> SpecView {
        SpecView {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..SpecView::default()
        }
    }

    #[test]
    fn greets_with_the_configured_greeting() {
        let s = Settings::from_config(&config(&[("greeting", ConfigValue::Text("hi".into()))]))
            .unwrap();
        assert_eq!(
            s.decide(&spec(&["sh"])),
            Adjustment::default()
                .env("GREETING", "hi")
                .annotation(GREETED, "true")
                .into()
        );
        let default = Settings::from_config(&Config::default()).unwrap();
        assert_eq!(default.greeting, "hello from the plugin template");
        assert!(default.deny_commands.is_empty());
    }

    #[test]
    fn denies_listed_commands_by_base_name() {
        let s = Settings::from_config(&config(&[(
            "deny-commands",
            ConfigValue::Texts(vec!["nc".into()]),
        )]))
        .unwrap();
        assert_eq!(
            s.decide(&spec(&["/bin/nc", "-l"])),
            Verdict::deny(
                "plugin-template: the command `nc` is not allowed here (listed in deny-commands)"
            )
        );
        assert!(matches!(s.decide(&spec(&["ncat"])), Verdict::Allow(_)));
        assert!(matches!(s.decide(&spec(&[])), Verdict::Allow(_)));
    }

    #[test]
    fn other_points_change_nothing() {
        let call = HookCall::new(HookPoint::Poststop, spec(&["nc"]));
        assert_eq!(Template::invoke(&call), Ok(Verdict::allow()));
    }

    #[test]
    fn bad_config_names_the_key() {
        let err =
            Settings::from_config(&config(&[("colour", ConfigValue::Integer(1))])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown config key "colour"; known keys: greeting, deny-commands"#
        );
        let err = Settings::from_config(&config(&[(
            "deny-commands",
            ConfigValue::Text("nc".into()),
        )]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"config key "deny-commands": expected texts, found text"#
        );
        assert!(
            Settings::from_config(&config(&[(
                "deny-commands",
                ConfigValue::Texts(vec!["/bin/nc".into()])
            )]))
            .is_err()
        );
    }
}
