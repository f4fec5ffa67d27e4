//! `annotations` and `remove-annotations`: the spec's `annotations`.
//!
//! Rules: at most [`MAX_ANNOTATIONS`](super::MAX_ANNOTATIONS) entries and
//! [`MAX_LIST`](super::MAX_LIST) removals; keys non-empty, without NUL, each once; values
//! without NUL; not a key that selects plugins ([`Rules::selection_keys`](super::Rules),
//! from `[plugin.match]`), so that no plugin switches another off or on. A set inserts or
//! replaces; a removal of a key not present is no error.

use oci_spec::runtime::Spec;

use super::{Edit, MAX_ANNOTATIONS, MAX_LIST, PluginError};

/// Applies one plugin's annotation removals, then its sets.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    set: Vec<(String, String)>,
    remove: Vec<String>,
) -> Result<(), PluginError> {
    e.count("annotations", set.len(), MAX_ANNOTATIONS)?;
    e.count("remove-annotations", remove.len(), MAX_LIST)?;
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    let before = annotations.clone();
    for (i, key) in remove.iter().enumerate() {
        let entry = format!("remove-annotations[{i}]");
        e.text(|| entry.clone(), key)?;
        if key.is_empty() {
            return Err(e.invalid(entry, "empty annotation key"));
        }
        selects(e, &entry, key)?;
        e.claim(format!("annotations[{key:?}]"), &entry, true)?;
        if annotations.remove(key).is_some() {
            e.did(format!("removed annotation {key}"));
        }
    }
    for (i, (key, value)) in set.into_iter().enumerate() {
        let entry = format!("annotations[{i}].key");
        e.text(|| entry.clone(), &key)?;
        e.text(|| format!("annotations[{i}].value"), &value)?;
        if key.is_empty() {
            return Err(e.invalid(entry, "empty annotation key"));
        }
        selects(e, &entry, &key)?;
        e.claim(format!("annotations[{key:?}]"), &entry, false)?;
        let description = if annotations.insert(key.clone(), value).is_some() {
            format!("replaced annotation {key}")
        } else {
            format!("set annotation {key}")
        };
        e.did(description);
    }
    if annotations != before {
        spec.set_annotations(Some(annotations));
    }
    Ok(())
}

/// Refuses `key` when it selects plugins.
fn selects(e: &Edit<'_>, entry: &str, key: &str) -> Result<(), PluginError> {
    if e.rules.selection_keys.iter().any(|k| k == key) {
        return Err(e.invalid(
            entry,
            format!("annotation `{key}` selects plugins ([plugin.match]): no plugin may set or remove it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Adjustment;
    use super::super::tests::{field, plugin, run};
    use oci_spec::runtime::Spec;

    #[test]
    fn set_remove_and_rules() {
        let p = plugin("a", vec![]);
        let adj = Adjustment {
            annotations: vec![("k".into(), "v".into()), ("gone".into(), "x".into())],
            ..Adjustment::default()
        };
        let out = run(&p, adj, &Spec::default()).unwrap();
        let adj = Adjustment {
            remove_annotations: vec!["gone".into()],
            ..Adjustment::default()
        };
        let out = run(&p, adj, &out.spec).unwrap();
        let a = out.spec.annotations().clone().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a["k"], "v");
        let bad = Adjustment {
            annotations: vec![("".into(), "v".into())],
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&p, bad, &Spec::default()).unwrap_err()),
            "annotations[0].key"
        );
        let twice = Adjustment {
            annotations: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&p, twice, &Spec::default()).unwrap_err()),
            "annotations[1].key"
        );
    }

    #[test]
    fn keys_that_select_plugins_are_not_touched() {
        let p = plugin("a", vec![]);
        let keys = ["team".to_string()];
        let rules = super::super::Rules {
            plugin: &p,
            cdi_spec_dirs: &[],
            selection_keys: &keys,
        };
        let owners = super::super::Owners::default();
        for (adj, entry) in [
            (
                Adjustment {
                    annotations: vec![("team".into(), "x".into())],
                    ..Adjustment::default()
                },
                "annotations[0].key",
            ),
            (
                Adjustment {
                    remove_annotations: vec!["team".into()],
                    ..Adjustment::default()
                },
                "remove-annotations[0]",
            ),
        ] {
            let err = super::super::apply(&rules, &owners, adj, &Spec::default()).unwrap_err();
            assert_eq!(field(err), entry);
        }
        let other = Adjustment {
            annotations: vec![("tier".into(), "x".into())],
            ..Adjustment::default()
        };
        assert!(super::super::apply(&rules, &owners, other, &Spec::default()).is_ok());
    }
}
