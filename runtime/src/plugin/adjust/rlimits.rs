//! `rlimits`: `process.rlimits` (runtime-spec `config.md`, "POSIX process"; setrlimit(2)).
//!
//! Rules: at most [`MAX_LIST`](super::MAX_LIST) entries; `type` one of the Linux
//! `RLIMIT_*` names, each once; `soft` ≤ `hard`. A type may only get a `hard` and a
//! `soft` no higher than the current ones (u64::MAX is RLIM_INFINITY) — the spec's, or for
//! a type the spec does not limit the runtime's own (`getrlimit(2)`), which the container
//! would inherit; so no plugin raises, say, `RLIMIT_RTPRIO` from 0 to 99 (real-time
//! scheduling for the container) — unless the manifest grants
//! `loosen-resources = true`. Claims `process.rlimits TYPE`. A hard limit above the
//! runtime's own fails at create with EPERM (no CAP_SYS_RESOURCE), as for any spec.

use oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType, Spec};

use super::{Edit, MAX_LIST, PluginError, RlimitRequest};

/// Applies one plugin's `rlimits`.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    rlimits: Vec<RlimitRequest>,
) -> Result<(), PluginError> {
    e.count("rlimits", rlimits.len(), MAX_LIST)?;
    for (i, r) in rlimits.into_iter().enumerate() {
        let entry = format!("rlimits[{i}]");
        e.text(|| format!("{entry}.type"), &r.typ)?;
        let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(r.typ.clone()))
            .map_err(|_| {
                e.invalid(
                    format!("{entry}.type"),
                    format!("`{}` is not a Linux rlimit such as RLIMIT_NOFILE", r.typ),
                )
            })?;
        if r.soft > r.hard {
            return Err(e.invalid(
                format!("{entry}.soft"),
                format!("soft {} is above hard {}", r.soft, r.hard),
            ));
        }
        let Some(process) = spec.process_mut() else {
            return Err(e.invalid(entry, "the spec has no process to set rlimits for"));
        };
        let mut list = process.rlimits().clone().unwrap_or_default();
        let at = list.iter().position(|x| x.typ() == typ);
        let current = match at {
            Some(j) => Some((list[j].soft(), list[j].hard())),
            None => crate::linux::credentials::resource(&r.typ)
                .and_then(|res| nix::sys::resource::getrlimit(res).ok()),
        };
        if let Some((soft, hard)) = current {
            let looser = if r.hard > hard {
                Some(("hard", r.hard, hard))
            } else if r.soft > soft {
                Some(("soft", r.soft, soft))
            } else {
                None
            };
            if let Some((which, new, old)) = looser
                && !e.rules.plugin.loosen_resources
            {
                return Err(e.invalid(
                    format!("rlimits[{i}].{which}"),
                    format!(
                        "{} {which} {new} is looser than the current {old}: a plugin may only tighten rlimits unless the manifest grants `loosen-resources = true`",
                        r.typ
                    ),
                ));
            }
        }
        e.claim(
            format!("process.rlimits {}", r.typ),
            &format!("{entry}.type"),
            false,
        )?;
        let limit = PosixRlimitBuilder::default()
            .typ(typ)
            .hard(r.hard)
            .soft(r.soft)
            .build()
            .expect("every field set");
        match at {
            Some(j) => list[j] = limit,
            None => list.push(limit),
        }
        process.set_rlimits(Some(list));
        e.did(format!(
            "set rlimit {} to soft {} hard {}",
            r.typ, r.soft, r.hard
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{field, plugin, run};
    use super::super::{Adjustment, RlimitRequest};
    use oci_spec::runtime::Spec;

    fn nofile(soft: u64, hard: u64) -> Adjustment {
        Adjustment {
            rlimits: vec![RlimitRequest {
                typ: "RLIMIT_NOFILE".into(),
                hard,
                soft,
            }],
            ..Adjustment::default()
        }
    }

    #[test]
    fn rules() {
        let p = plugin("p", vec![]);
        // Spec::default() limits RLIMIT_NOFILE to 1024/1024.
        let s = Spec::default();
        let out = run(&p, nofile(512, 1024), &s).unwrap();
        let r = out
            .spec
            .process()
            .as_ref()
            .unwrap()
            .rlimits()
            .clone()
            .unwrap();
        assert_eq!(r.iter().filter(|x| x.soft() == 512).count(), 1);
        assert_eq!(
            field(run(&p, nofile(512, 4096), &s).unwrap_err()),
            "rlimits[0].hard"
        );
        assert_eq!(
            field(run(&p, nofile(2048, 1024), &s).unwrap_err()),
            "rlimits[0].soft"
        );
        let mut granted = plugin("p", vec![]);
        granted.loosen_resources = true;
        assert!(run(&granted, nofile(4096, 4096), &s).is_ok());
        let bad = Adjustment {
            rlimits: vec![RlimitRequest {
                typ: "NOFILE".into(),
                hard: 1,
                soft: 1,
            }],
            ..Adjustment::default()
        };
        assert_eq!(field(run(&p, bad, &s).unwrap_err()), "rlimits[0].type");
        let unset = Adjustment {
            rlimits: vec![RlimitRequest {
                typ: "RLIMIT_CORE".into(),
                hard: 0,
                soft: 0,
            }],
            ..Adjustment::default()
        };
        assert!(run(&p, unset, &s).is_ok());
    }

    #[test]
    fn an_unset_rlimit_is_compared_with_the_runtimes_own() {
        // nextest runs each test in its own process: lowering our own limit is local.
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_RTPRIO, 0, 0).unwrap();
        let rtprio = |n| Adjustment {
            rlimits: vec![RlimitRequest {
                typ: "RLIMIT_RTPRIO".into(),
                hard: n,
                soft: n,
            }],
            ..Adjustment::default()
        };
        let s = Spec::default();
        assert_eq!(
            field(run(&plugin("p", vec![]), rtprio(99), &s).unwrap_err()),
            "rlimits[0].hard"
        );
        assert!(run(&plugin("p", vec![]), rtprio(0), &s).is_ok());
        let mut granted = plugin("p", vec![]);
        granted.loosen_resources = true;
        assert!(run(&granted, rtprio(99), &s).is_ok());
    }
}
