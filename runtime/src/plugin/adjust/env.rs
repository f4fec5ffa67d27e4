//! `env` and `remove-env`: `process.env` entries.
//!
//! Rules: at most [`MAX_ENV_ENTRIES`](super::MAX_ENV_ENTRIES) entries and
//! [`MAX_LIST`](super::MAX_LIST) removals; names non-empty, without `=` or NUL, each once;
//! values without NUL. A set replaces the entry of that name or appends one; a removal
//! drops every entry of that name (a name not present is no error). Values are not repeated
//! in the descriptions of what was applied (they may be secrets).
//!
//! The dynamic loader's variables ([`LOADER_VARS`]: `LD_PRELOAD`, `LD_AUDIT`,
//! `LD_LIBRARY_PATH`, ld.so(8)) load code of the plugin's choosing into the container's
//! process, which is replacing what `process.args` runs: setting one needs the same grant,
//! `args = true`. Removing one needs nothing.

use oci_spec::runtime::Spec;

use super::{Edit, MAX_ENV_ENTRIES, MAX_LIST, PluginError};

/// Variables that make ld.so(8) load other code into every dynamically linked program.
pub(super) const LOADER_VARS: [&str; 3] = ["LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"];

/// Checks an env name from `entry`.
fn check_name(e: &Edit<'_>, entry: &str, name: &str) -> Result<(), PluginError> {
    e.text(|| entry.to_string(), name)?;
    if name.is_empty() {
        return Err(e.invalid(entry, "empty variable name"));
    }
    if name.contains('=') {
        return Err(e.invalid(entry, format!("variable name `{name}` contains `=`")));
    }
    Ok(())
}

/// Sets `name=value` in `spec`'s process env, claiming the name for `entry`.
pub(super) fn set(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    entry: &str,
    name: &str,
    value: &str,
) -> Result<(), PluginError> {
    check_name(e, entry, name)?;
    e.text(|| format!("{entry} value"), value)?;
    e.claim(format!("process.env {name}"), entry, false)?;
    let Some(process) = spec.process_mut() else {
        return Err(e.invalid(entry, "the spec has no process to set variables for"));
    };
    let mut env = process.env().clone().unwrap_or_default();
    let prefix = format!("{name}=");
    let line = format!("{name}={value}");
    let description = if let Some(slot) = env
        .iter_mut()
        .find(|l| l.starts_with(&prefix) || **l == name)
    {
        *slot = line;
        format!("replaced env {name}")
    } else {
        env.push(line);
        format!("set env {name}")
    };
    process.set_env(Some(env));
    e.did(description);
    Ok(())
}

/// Applies one plugin's env removals, then its sets.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    set_list: Vec<(String, String)>,
    remove: Vec<String>,
) -> Result<(), PluginError> {
    e.count("env", set_list.len(), MAX_ENV_ENTRIES)?;
    e.count("remove-env", remove.len(), MAX_LIST)?;
    for (i, name) in remove.iter().enumerate() {
        let entry = format!("remove-env[{i}]");
        check_name(e, &entry, name)?;
        e.claim(format!("process.env {name}"), &entry, true)?;
        if let Some(process) = spec.process_mut() {
            let mut env = process.env().clone().unwrap_or_default();
            let before = env.len();
            let prefix = format!("{name}=");
            env.retain(|l| !(l.starts_with(&prefix) || *l == *name));
            if env.len() != before {
                process.set_env(Some(env));
                e.did(format!("removed env {name}"));
            }
        }
    }
    for (i, (name, value)) in set_list.iter().enumerate() {
        let entry = format!("env[{i}].name");
        if LOADER_VARS.contains(&name.as_str()) && !e.rules.plugin.grant_args {
            return Err(e.invalid(
                &entry,
                format!(
                    "setting {name} loads code into the container's process, which needs \
                     the grant `args = true` in [plugin.grants], as replacing process.args does"
                ),
            ));
        }
        set(e, spec, &entry, name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Adjustment;
    use super::super::tests::{field, plugin, run};
    use oci_spec::runtime::Spec;

    fn env(pairs: &[(&str, &str)]) -> Adjustment {
        Adjustment {
            env: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Adjustment::default()
        }
    }

    fn env_of(spec: &Spec) -> Vec<String> {
        spec.process()
            .as_ref()
            .unwrap()
            .env()
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn rules() {
        let p = plugin("a", vec![]);
        let s = Spec::default();
        assert!(run(&p, env(&[("A", "1"), ("B", "")]), &s).is_ok());
        assert_eq!(
            field(run(&p, env(&[("", "1")]), &s).unwrap_err()),
            "env[0].name"
        );
        assert_eq!(
            field(run(&p, env(&[("A=B", "1")]), &s).unwrap_err()),
            "env[0].name"
        );
        assert_eq!(
            field(run(&p, env(&[("A", "x\0")]), &s).unwrap_err()),
            "env[0].name value"
        );
        assert_eq!(
            field(run(&p, env(&[("A", "1"), ("A", "2")]), &s).unwrap_err()),
            "env[1].name"
        );
        let many: Vec<(String, String)> = (0..=super::MAX_ENV_ENTRIES)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        let adj = Adjustment {
            env: many,
            ..Adjustment::default()
        };
        assert_eq!(field(run(&p, adj, &s).unwrap_err()), "env");
        let long = "x".repeat(super::super::MAX_STRING_BYTES + 1);
        assert_eq!(
            field(run(&p, env(&[("A", long.as_str())]), &s).unwrap_err()),
            "env[0].name value"
        );
    }

    #[test]
    fn loader_variables_need_the_args_grant() {
        let p = plugin("a", vec![]);
        let s = Spec::default();
        for var in super::LOADER_VARS {
            let err = run(&p, env(&[("A", "1"), (var, "/x.so")]), &s).unwrap_err();
            assert_eq!(field(err), "env[1].name", "{var}");
        }
        let mut granted = plugin("a", vec![]);
        granted.grant_args = true;
        let out = run(&granted, env(&[("LD_PRELOAD", "/x.so")]), &s).unwrap();
        assert!(env_of(&out.spec).contains(&"LD_PRELOAD=/x.so".to_string()));
    }

    #[test]
    fn set_replaces_and_remove_drops() {
        let p = plugin("a", vec![]);
        let out = run(&p, env(&[("A", "1"), ("PATH", "/x")]), &Spec::default()).unwrap();
        let e = env_of(&out.spec);
        assert!(e.contains(&"A=1".to_string()));
        assert_eq!(e.iter().filter(|l| l.starts_with("PATH=")).count(), 1);
        assert!(e.contains(&"PATH=/x".to_string()));
        let adj = Adjustment {
            remove_env: vec!["PATH".into(), "NOPE".into()],
            ..Adjustment::default()
        };
        let out = run(&p, adj, &out.spec).unwrap();
        let e = env_of(&out.spec);
        assert!(e.contains(&"A=1".to_string()));
        assert!(!e.iter().any(|l| l.starts_with("PATH=")), "{e:?}");
        assert_eq!(out.applied.len(), 1);
        assert_eq!(out.applied[0].description, "removed env PATH");
    }
}
