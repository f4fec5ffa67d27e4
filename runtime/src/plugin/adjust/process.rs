//! `args` and `cgroups-path`: `process.args` and `linux.cgroupsPath`.
//!
//! `args` replaces `process.args` only when the manifest grants `args = true`; the list is
//! non-empty, at most [`MAX_LIST`](super::MAX_LIST) strings without NUL, and `args[0]`
//! non-empty. Claims `process.args`.
//!
//! `cgroups-path` sets `linux.cgroupsPath`: non-empty, at most 4096 bytes, made only of
//! normal components (absolute: under the cgroup root; relative: under the runtime's own
//! cgroup), no `.`, `..` or empty components, and naming a cgroup that does not exist yet
//! in any hierarchy: rwasm would reuse an existing one, and deleting the container (or
//! rolling back its create) kills every process in it, a host service's too. Claims
//! `linux.cgroupsPath`.

use std::path::PathBuf;

use oci_spec::runtime::Spec;

use super::{Edit, MAX_LIST, PluginError};

/// The longest cgroups path, in bytes (PATH_MAX).
const MAX_CGROUPS_PATH: usize = 4096;

/// Applies `args`.
pub(super) fn args(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    args: Option<Vec<String>>,
) -> Result<(), PluginError> {
    let Some(args) = args else { return Ok(()) };
    if !e.rules.plugin.grant_args {
        return Err(e.invalid(
            "args",
            "replacing process.args needs the grant `args = true` in [plugin.grants]",
        ));
    }
    e.count("args", args.len(), MAX_LIST)?;
    for (i, a) in args.iter().enumerate() {
        e.text(|| format!("args[{i}]"), a)?;
    }
    if args.first().is_none_or(String::is_empty) {
        return Err(e.invalid("args", "the new process.args must name the program to run"));
    }
    e.claim("process.args".to_string(), "args", false)?;
    let Some(process) = spec.process_mut() else {
        return Err(e.invalid("args", "the spec has no process"));
    };
    process.set_args(Some(args.clone()));
    e.did(format!("replaced process.args with {args:?}"));
    Ok(())
}

/// Applies `cgroups-path`.
pub(super) fn cgroups_path(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    path: Option<String>,
) -> Result<(), PluginError> {
    let Some(path) = path else { return Ok(()) };
    e.text(|| "cgroups-path".to_string(), &path)?;
    let body = path.strip_prefix('/').unwrap_or(&path);
    let clean = !body.is_empty()
        && path.len() <= MAX_CGROUPS_PATH
        && body
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !clean {
        return Err(e.invalid(
            "cgroups-path",
            format!("`{path}` is not a clean cgroup path (non-empty, at most {MAX_CGROUPS_PATH} bytes, no `.`, `..` or empty components)"),
        ));
    }
    // The id only names the default path; any valid one resolves `path` the same way.
    let existing = crate::linux::cgroup::Manager::for_container(Some(&path), "plugin")
        .map_err(|err| e.invalid("cgroups-path", format!("`{path}`: {err}")))?
        .existing_dirs();
    if let Some(dir) = existing.first() {
        return Err(e.invalid(
            "cgroups-path",
            format!(
                "`{path}` names a cgroup that exists already ({}): a plugin may only place the container in a new cgroup",
                dir.display()
            ),
        ));
    }
    e.claim("linux.cgroupsPath".to_string(), "cgroups-path", false)?;
    spec.linux_mut()
        .get_or_insert_with(Default::default)
        .set_cgroups_path(Some(PathBuf::from(&path)));
    e.did(format!("set linux.cgroupsPath to {path}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Adjustment;
    use super::super::tests::{field, plugin, run};
    use oci_spec::runtime::Spec;

    #[test]
    fn args_need_the_grant() {
        let adj = || Adjustment {
            args: Some(vec!["/bin/echo".into(), "hi".into()]),
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&plugin("p", vec![]), adj(), &Spec::default()).unwrap_err()),
            "args"
        );
        let mut granted = plugin("p", vec![]);
        granted.grant_args = true;
        let out = run(&granted, adj(), &Spec::default()).unwrap();
        assert_eq!(
            out.spec.process().as_ref().unwrap().args().clone().unwrap(),
            ["/bin/echo", "hi"]
        );
        let empty = Adjustment {
            args: Some(vec![]),
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&granted, empty, &Spec::default()).unwrap_err()),
            "args"
        );
    }

    #[test]
    fn cgroups_paths_must_be_clean() {
        let p = plugin("p", vec![]);
        let path = |s: &str| Adjustment {
            cgroups_path: Some(s.into()),
            ..Adjustment::default()
        };
        for good in ["/rwasm/x", "rwasm/x", "x"] {
            assert!(run(&p, path(good), &Spec::default()).is_ok(), "{good}");
        }
        for bad in ["", "/", "/a/../b", "a/./b", "a//b", "a/"] {
            assert_eq!(
                field(run(&p, path(bad), &Spec::default()).unwrap_err()),
                "cgroups-path",
                "{bad}"
            );
        }
    }
}
