//! Building verdicts and adjustments.

use crate::{Adjustment, Mount, Verdict};

impl Verdict {
    /// Go on without changing anything.
    pub fn allow() -> Self {
        Verdict::Allow(Adjustment::default())
    }

    /// Go on, applying `adjustment` (which the host accepts only at `pre-create`).
    pub fn allow_with(adjustment: Adjustment) -> Self {
        Verdict::Allow(adjustment)
    }

    /// Refuse the container; `reason` is shown to the user, so say what to change.
    pub fn deny(reason: impl Into<String>) -> Self {
        Verdict::Deny(reason.into())
    }
}

impl From<Adjustment> for Verdict {
    fn from(adjustment: Adjustment) -> Self {
        Verdict::Allow(adjustment)
    }
}

/// An empty adjustment, to build on:
/// `Adjustment::default().env("A", "1").annotation("k", "v").mount(Mount::bind(..))`.
impl Default for Adjustment {
    fn default() -> Self {
        Adjustment {
            env: Vec::new(),
            remove_env: Vec::new(),
            annotations: Vec::new(),
            remove_annotations: Vec::new(),
            mounts: Vec::new(),
            remove_mounts: Vec::new(),
            devices: Vec::new(),
            cdi_devices: Vec::new(),
            resources: None,
            rlimits: Vec::new(),
            cgroups_path: None,
            hooks: Vec::new(),
            args: None,
        }
    }
}

impl Adjustment {
    /// Adds or replaces the `process.env` variable `name`.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds the annotation `key`.
    #[must_use]
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }

    /// Appends a mount.
    #[must_use]
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Whether the adjustment changes nothing.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.remove_env.is_empty()
            && self.annotations.is_empty()
            && self.remove_annotations.is_empty()
            && self.mounts.is_empty()
            && self.remove_mounts.is_empty()
            && self.devices.is_empty()
            && self.cdi_devices.is_empty()
            && self.resources.is_none()
            && self.rlimits.is_empty()
            && self.cgroups_path.is_none()
            && self.hooks.is_empty()
            && self.args.is_none()
    }
}

impl Mount {
    /// A recursive bind mount (type `bind`, options `["rbind"]`) of the host path `source`
    /// at `destination` in the container; both absolute.
    ///
    /// rwasm accepts it only if `source` lies inside a directory the manifest grants the
    /// plugin.
    pub fn bind(source: impl Into<String>, destination: impl Into<String>) -> Self {
        Mount {
            destination: destination.into(),
            source: source.into(),
            type_: "bind".to_owned(),
            options: vec!["rbind".to_owned()],
        }
    }

    /// Adds an fstab-style option such as `nosuid`.
    #[must_use]
    pub fn option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// Makes the mount read-only (option `ro`).
    #[must_use]
    pub fn read_only(self) -> Self {
        self.option("ro")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_in_order() {
        let adj = Adjustment::default()
            .env("A", "1")
            .env("B", "2")
            .annotation("org.example/owner", "audit")
            .mount(Mount::bind("/srv/data", "/data").read_only());
        assert_eq!(
            adj.env,
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(
            adj.annotations,
            [("org.example/owner".into(), "audit".into())]
        );
        let m = &adj.mounts[0];
        assert_eq!(
            (m.source.as_str(), m.destination.as_str()),
            ("/srv/data", "/data")
        );
        assert_eq!(m.type_, "bind");
        assert_eq!(m.options, ["rbind", "ro"]);
        assert!(!adj.is_empty());
        assert!(Adjustment::default().is_empty());
    }

    #[test]
    fn verdicts() {
        assert!(matches!(Verdict::allow(), Verdict::Allow(a) if a.is_empty()));
        assert!(matches!(Verdict::deny("no"), Verdict::Deny(r) if r == "no"));
        let v: Verdict = Adjustment::default().env("A", "1").into();
        assert!(matches!(v, Verdict::Allow(a) if a.env.len() == 1));
    }
}
