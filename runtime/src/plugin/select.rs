//! Per-container selection of plugins (`[plugin.match]`).
//!
//! A plugin without `[plugin.match]` applies to every container. With one, every listed
//! annotation must be present with its value (`"*"` matches any value), and when `images`
//! is non-empty the container's image name must match one of its globs: `*` matches any run
//! of characters (`/` and `:` included), `?` exactly one. The image name is the annotation
//! `org.opencontainers.image.ref.name` (image-spec), else rwasm's `org.rwasm.image`; a
//! container without either matches no `images` list. The glob is on the whole name as
//! written there: `busybox` matches `busybox` only, `busybox*` also `busybox:latest`.

use oci_spec::runtime::Spec;

use super::PluginSet;
use super::host::{IMAGE_REF_ANNOTATION, RWASM_IMAGE_ANNOTATION};
use super::manifest::Selector;

impl PluginSet {
    /// The annotation keys some plugin of the set is selected by: every key of a
    /// `[plugin.match] annotations`, and both image annotations when a plugin matches
    /// `images`. Sorted, each once. Adjustments may not touch them (see `adjust::Rules`).
    pub(crate) fn selection_keys(&self) -> Vec<String> {
        let mut keys = std::collections::BTreeSet::new();
        for p in &self.plugins {
            let s = &p.spec.selector;
            keys.extend(s.annotations.iter().map(|(k, _)| k.clone()));
            if !s.images.is_empty() {
                keys.insert(IMAGE_REF_ANNOTATION.to_string());
                keys.insert(RWASM_IMAGE_ANNOTATION.to_string());
            }
        }
        keys.into_iter().collect()
    }
}

impl Selector {
    /// Whether the container of `spec` is selected.
    pub(crate) fn matches(&self, spec: &Spec) -> bool {
        let annotations = spec.annotations().as_ref();
        let get = |k: &str| annotations.and_then(|a| a.get(k));
        let annotations_ok = self.annotations.iter().all(|(k, want)| match get(k) {
            Some(v) => want == "*" || v == want,
            None => false,
        });
        if !annotations_ok {
            return false;
        }
        if self.images.is_empty() {
            return true;
        }
        let Some(image) = get(IMAGE_REF_ANNOTATION).or_else(|| get(RWASM_IMAGE_ANNOTATION)) else {
            return false;
        };
        self.images
            .iter()
            .any(|g| glob(g.as_bytes(), image.as_bytes()))
    }
}

/// `*` and `?` glob over bytes, iterative with one backtrack point (linear in practice).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(annotations: &[(&str, &str)]) -> Spec {
        let mut s = Spec::default();
        s.set_annotations(Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        s
    }

    #[test]
    fn globs() {
        assert!(glob(b"busybox", b"busybox"));
        assert!(!glob(b"busybox", b"busybox:latest"));
        assert!(glob(
            b"docker.io/library/nginx:*",
            b"docker.io/library/nginx:1.25"
        ));
        assert!(!glob(
            b"docker.io/library/nginx:*",
            b"docker.io/library/nginx"
        ));
        assert!(glob(b"*nginx*", b"docker.io/library/nginx:1"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*b*c", b"a-b-d"));
    }

    #[test]
    fn selection_by_annotations_and_image() {
        let all = Selector::default();
        assert!(all.matches(&Spec::default()));
        let team = Selector {
            annotations: vec![("team".into(), "gpu".into()), ("tier".into(), "*".into())],
            images: vec![],
        };
        assert!(team.matches(&spec(&[("team", "gpu"), ("tier", "x")])));
        assert!(!team.matches(&spec(&[("team", "gpu")])));
        assert!(!team.matches(&spec(&[("team", "web"), ("tier", "x")])));
        let images = Selector {
            annotations: vec![],
            images: vec!["busybox".into(), "docker.io/library/nginx:*".into()],
        };
        assert!(images.matches(&spec(&[(RWASM_IMAGE_ANNOTATION, "busybox")])));
        assert!(images.matches(&spec(&[
            (IMAGE_REF_ANNOTATION, "docker.io/library/nginx:1"),
            (RWASM_IMAGE_ANNOTATION, "x")
        ])));
        assert!(!images.matches(&spec(&[(IMAGE_REF_ANNOTATION, "alpine")])));
        assert!(!images.matches(&Spec::default()));
    }
}
