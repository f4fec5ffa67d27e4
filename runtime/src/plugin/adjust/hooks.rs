//! `hooks`: OCI exec hooks appended to the spec's `hooks` (runtime-spec `config.md`,
//! "POSIX-platform Hooks").
//!
//! Rules: the plugin needs the grant `hooks = true` in `[plugin.grants]` (a hook is a host
//! process run as root: without the grant a plugin could run any command on the host); at
//! most [`MAX_LIST`](super::MAX_LIST) hooks; `path` absolute without `.`/`..`;
//! `args` and `env` at most [`MAX_LIST`](super::MAX_LIST) strings without NUL, each env
//! entry `NAME=value` with a non-empty name; `timeout` > 0 seconds when present. An empty
//! `args` becomes `[path]`. Hooks append to their stage's list and claim nothing.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, Hooks, Spec};

use super::{Edit, HookRequest, HookStage, MAX_LIST, PluginError};
use crate::plugin::manifest::clean_absolute;

/// Applies one plugin's `hooks`.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    hooks: Vec<HookRequest>,
) -> Result<(), PluginError> {
    if hooks.is_empty() {
        return Ok(());
    }
    if !e.rules.plugin.grant_hooks {
        return Err(e.invalid(
            "hooks[0]",
            "adding OCI hooks (host processes run as root) needs the grant `hooks = true` in [plugin.grants]",
        ));
    }
    e.count("hooks", hooks.len(), MAX_LIST)?;
    for (i, h) in hooks.into_iter().enumerate() {
        add(e, spec, &format!("hooks[{i}]"), h)?;
    }
    Ok(())
}

/// Checks one hook named `entry` and appends it.
pub(super) fn add(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    entry: &str,
    h: HookRequest,
) -> Result<(), PluginError> {
    let f = |name: &str| format!("{entry}.{name}");
    e.text(|| f("path"), &h.path)?;
    if !clean_absolute(Path::new(&h.path)) {
        return Err(e.invalid(
            f("path"),
            format!("`{}` is not an absolute path without `.` and `..`", h.path),
        ));
    }
    e.count(&f("args"), h.args.len(), MAX_LIST)?;
    e.count(&f("env"), h.env.len(), MAX_LIST)?;
    for (j, a) in h.args.iter().enumerate() {
        e.text(|| format!("{entry}.args[{j}]"), a)?;
    }
    for (j, v) in h.env.iter().enumerate() {
        e.text(|| format!("{entry}.env[{j}]"), v)?;
        if v.split_once('=').is_none_or(|(name, _)| name.is_empty()) {
            return Err(e.invalid(
                format!("{entry}.env[{j}]"),
                format!("`{v}` is not a NAME=value entry"),
            ));
        }
    }
    if let Some(t) = h.timeout
        && t <= 0
    {
        return Err(e.invalid(f("timeout"), format!("{t} is not a timeout > 0 seconds")));
    }
    let mut hook = Hook::default();
    hook.set_path(PathBuf::from(&h.path));
    hook.set_args(Some(if h.args.is_empty() {
        vec![h.path.clone()]
    } else {
        h.args
    }));
    hook.set_env((!h.env.is_empty()).then_some(h.env));
    hook.set_timeout(h.timeout.map(i64::from));
    let hooks = spec.hooks_mut().get_or_insert_with(Hooks::default);
    let (list, name) = match h.stage {
        HookStage::Prestart => {
            #[allow(
                deprecated,
                reason = "prestart is deprecated in the spec but still run"
            )]
            let l = hooks.prestart_mut();
            (l, "prestart")
        }
        HookStage::CreateRuntime => (hooks.create_runtime_mut(), "createRuntime"),
        HookStage::CreateContainer => (hooks.create_container_mut(), "createContainer"),
        HookStage::StartContainer => (hooks.start_container_mut(), "startContainer"),
        HookStage::Poststart => (hooks.poststart_mut(), "poststart"),
        HookStage::Poststop => (hooks.poststop_mut(), "poststop"),
    };
    list.get_or_insert_with(Vec::new).push(hook);
    e.did(format!("added {name} hook {}", h.path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{field, plugin, run};
    use super::super::{Adjustment, HookRequest, HookStage};
    use oci_spec::runtime::Spec;

    fn hook(path: &str, env: &[&str], timeout: Option<i32>) -> Adjustment {
        Adjustment {
            hooks: vec![HookRequest {
                stage: HookStage::Poststart,
                path: path.into(),
                args: vec![],
                env: env.iter().map(|s| s.to_string()).collect(),
                timeout,
            }],
            ..Adjustment::default()
        }
    }

    #[test]
    fn hooks_need_the_grant() {
        let err = run(
            &plugin("p", vec![]),
            hook("/bin/true", &[], None),
            &Spec::default(),
        );
        assert_eq!(field(err.unwrap_err()), "hooks[0]");
    }

    #[test]
    fn rules() {
        let mut p = plugin("p", vec![]);
        p.grant_hooks = true;
        let s = Spec::default();
        let out = run(&p, hook("/bin/true", &["A=1"], Some(5)), &s).unwrap();
        let h = out
            .spec
            .hooks()
            .clone()
            .unwrap()
            .poststart()
            .clone()
            .unwrap();
        assert_eq!(h[0].args().clone().unwrap(), ["/bin/true"]);
        assert_eq!(h[0].timeout(), Some(5));
        assert_eq!(
            field(run(&p, hook("true", &[], None), &s).unwrap_err()),
            "hooks[0].path"
        );
        assert_eq!(
            field(run(&p, hook("/bin/true", &[], Some(0)), &s).unwrap_err()),
            "hooks[0].timeout"
        );
        assert_eq!(
            field(run(&p, hook("/bin/true", &["A"], None), &s).unwrap_err()),
            "hooks[0].env[0]"
        );
    }
}
