//! The cap on the size of what a plugin returns (manifest `max-answer`).
//!
//! The size of an answer is the sum of the bytes of every string in it: env names and
//! values, annotation keys and values, paths, options, CDI names, hook argv and env, args,
//! and a deny reason. Numbers and enum values do not count. The answer has been lifted
//! out of the guest by then (bounded by the guest's `memory-limit`); an answer over the
//! cap fails only that call, and the plugin's `on-error` decides what that does.

use super::super::adjust::{Adjustment, ResourcesRequest};
use super::super::{FailureCause, Phase};
use super::Outcome;

/// `outcome` if its strings hold at most `limit` bytes, else
/// [`FailureCause::AnswerTooLarge`] in the invoke phase.
pub(super) fn check_answer(outcome: Outcome, limit: u64) -> Result<Outcome, (Phase, FailureCause)> {
    let bytes = match &outcome {
        Outcome::Allow(adjustment) => answer_bytes(adjustment),
        Outcome::Deny(reason) => len(reason),
    };
    if bytes > limit {
        return Err((Phase::Invoke, FailureCause::AnswerTooLarge { bytes, limit }));
    }
    Ok(outcome)
}

fn len(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

fn sum<'a>(strings: impl IntoIterator<Item = &'a String>) -> u64 {
    strings
        .into_iter()
        .fold(0u64, |total, s| total.saturating_add(len(s)))
}

/// Bytes of all strings in `a`.
pub(crate) fn answer_bytes(a: &Adjustment) -> u64 {
    let pairs = |list: &'_ Vec<(String, String)>| sum(list.iter().flat_map(|(k, v)| [k, v]));
    let mut total = pairs(&a.env)
        .saturating_add(sum(&a.remove_env))
        .saturating_add(pairs(&a.annotations))
        .saturating_add(sum(&a.remove_annotations))
        .saturating_add(sum(&a.remove_mounts))
        .saturating_add(sum(&a.cdi_devices));
    for m in &a.mounts {
        total = total
            .saturating_add(sum([&m.destination, &m.source, &m.typ]))
            .saturating_add(sum(&m.options));
    }
    for d in &a.devices {
        total = total.saturating_add(sum([&d.path, &d.typ, &d.permissions]));
    }
    if let Some(r) = &a.resources {
        total = total.saturating_add(resources_bytes(r));
    }
    for r in &a.rlimits {
        total = total.saturating_add(len(&r.typ));
    }
    if let Some(p) = &a.cgroups_path {
        total = total.saturating_add(len(p));
    }
    for h in &a.hooks {
        total = total
            .saturating_add(len(&h.path))
            .saturating_add(sum(&h.args))
            .saturating_add(sum(&h.env));
    }
    if let Some(args) = &a.args {
        total = total.saturating_add(sum(args));
    }
    total
}

fn resources_bytes(r: &ResourcesRequest) -> u64 {
    let cpu = r
        .cpu
        .as_ref()
        .map_or(0, |c| sum(c.cpus.iter().chain(c.mems.iter())));
    let pages = sum(r.hugepage_limits.iter().map(|(size, _)| size));
    cpu.saturating_add(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::adjust::MountRequest;

    #[test]
    fn counts_every_string() {
        let a = Adjustment {
            env: vec![("AB".into(), "xyz".into())],
            annotations: vec![("k".into(), "v".into())],
            mounts: vec![MountRequest {
                destination: "/d".into(),
                source: "/s".into(),
                typ: "bind".into(),
                options: vec!["ro".into()],
            }],
            args: Some(vec!["sh".into()]),
            ..Adjustment::default()
        };
        assert_eq!(answer_bytes(&a), 5 + 2 + 2 + 2 + 4 + 2 + 2);
    }

    #[test]
    fn over_the_cap_fails_the_invoke_phase() {
        let a = Adjustment {
            env: vec![("X".into(), "y".repeat(100))],
            ..Adjustment::default()
        };
        let ok = check_answer(Outcome::Allow(Box::new(a.clone())), 101);
        assert!(ok.is_ok());
        match check_answer(Outcome::Allow(Box::new(a)), 100) {
            Err((Phase::Invoke, FailureCause::AnswerTooLarge { bytes, limit })) => {
                assert_eq!((bytes, limit), (101, 100));
            }
            _ => panic!("expected AnswerTooLarge"),
        }
        assert!(check_answer(Outcome::Deny("no".into()), 1).is_err());
    }
}
