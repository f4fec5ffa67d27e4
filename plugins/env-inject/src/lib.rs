//! env-inject: adds every entry of `[plugin.config]` to the container's environment at
//! `pre-create`.
//!
//! Texts, integers, floats and booleans are written as text (`2.0`, `true`); a list of
//! texts is a configuration error, as is a key that is not a valid variable name.

use rwasm_plugin_sdk::prelude::*;

struct EnvInject;

impl Hook for EnvInject {
    fn configure(config: &Config) -> Result<(), Error> {
        variables(config)?;
        Ok(())
    }

    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        if call.point != HookPoint::PreCreate {
            return Ok(Verdict::allow());
        }
        let config = Config::current();
        let vars = variables(&config)?;
        let names: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
        log::debug(format!("env-inject: adding {}", names.join(" ")));
        let adjustment = vars
            .into_iter()
            .fold(Adjustment::default(), |adj, (name, value)| {
                adj.env(name, value)
            });
        Ok(adjustment.into())
    }
}

rwasm_plugin_sdk::export_hook!(EnvInject);

/// The configured variables as (name, value), in manifest order.
fn variables(config: &Config) -> Result<Vec<(&str, String)>, ConfigError> {
    config
        .iter()
        .map(|(name, value)| {
            check_name(name)?;
            let value = match value {
                ConfigValue::Text(s) => s.clone(),
                ConfigValue::Integer(i) => i.to_string(),
                ConfigValue::Float(f) => format!("{f:?}"),
                ConfigValue::Boolean(b) => b.to_string(),
                ConfigValue::Texts(_) => {
                    return Err(ConfigError::invalid(name, "a list cannot be an env value"));
                }
            };
            Ok((name, value))
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), ConfigError> {
    let reason = if name.is_empty() {
        "an env name must not be empty"
    } else if name.contains('=') {
        "an env name must not contain '='"
    } else if name.contains('\0') {
        "an env name must not contain NUL"
    } else {
        return Ok(());
    };
    Err(ConfigError::invalid(name, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entries: &[(&str, ConfigValue)]) -> Config {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn stringifies_scalars() {
        let c = config(&[
            ("NAME", ConfigValue::Text("web".into())),
            ("N", ConfigValue::Integer(-3)),
            ("F", ConfigValue::Float(2.0)),
            ("B", ConfigValue::Boolean(true)),
        ]);
        let vars = variables(&c).unwrap();
        assert_eq!(
            vars,
            [
                ("NAME", "web".into()),
                ("N", "-3".into()),
                ("F", "2.0".into()),
                ("B", "true".into())
            ]
        );
    }

    #[test]
    fn refuses_lists_and_bad_names() {
        let err = variables(&config(&[("L", ConfigValue::Texts(vec![]))])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"config key "L": a list cannot be an env value"#
        );
        for bad in ["", "A=B", "A\0B"] {
            let err = variables(&config(&[(bad, ConfigValue::Integer(1))])).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("config key {bad:?}")),
                "{err}"
            );
        }
    }
}
