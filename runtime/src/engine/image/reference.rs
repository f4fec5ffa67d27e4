//! Image references as Docker reads them (distribution's `reference` package):
//! `[REGISTRY/]REPOSITORY[:TAG][@sha256:HEX]`, lowercase repository, `latest` when neither
//! tag nor digest is given, and Docker Hub's `docker.io/library/` prefix shown familiar
//! (`busybox`, not `docker.io/library/busybox`).

use super::ImageError;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The repository in familiar form: `busybox`, `localhost:5000/team/app`.
    pub repository: String,
    /// The tag; `latest` when the reference names neither tag nor digest.
    pub tag: Option<String>,
    /// `sha256:HEX` after `@`, if given.
    pub digest: Option<String>,
}

fn bad(reference: &str, reason: &str) -> ImageError {
    ImageError::BadReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

impl Reference {
    /// Parse `s` as Docker does.
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                super::blobs::sha256_hex(d).map_err(|_| bad(s, "invalid digest"))?;
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
            None => (name, None),
        };
        if let Some(t) = tag {
            let mut c = t.chars();
            let ok = c
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                && t.len() <= 128;
            if !ok {
                return Err(bad(s, "invalid tag"));
            }
        }
        if repo.is_empty() {
            return Err(bad(s, "repository name is empty"));
        }
        let mut parts: Vec<&str> = repo.split('/').collect();
        // The first component is a registry host if it has a '.' or ':' or is localhost.
        let host = (parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost"))
            .then(|| parts.remove(0));
        for p in &parts {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && p.as_bytes()[0].is_ascii_alphanumeric()
                && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric();
            if !ok {
                return Err(bad(
                    s,
                    if p.bytes().any(|b| b.is_ascii_uppercase()) {
                        "repository name must be lowercase"
                    } else {
                        "invalid reference format"
                    },
                ));
            }
        }
        let path = parts.join("/");
        let repository = match host {
            Some("docker.io" | "index.docker.io") => {
                path.strip_prefix("library/").unwrap_or(&path).to_string()
            }
            Some(h) => format!("{h}/{path}"),
            None => path.strip_prefix("library/").unwrap_or(&path).to_string(),
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            repository,
            tag,
            digest,
        })
    }

    /// `REPOSITORY:TAG`, the name an image is stored under; `None` for a digest-only reference.
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository))
    }

    /// The fully qualified name (`docker.io/library/busybox:latest`), as containerd's
    /// `io.containerd.image.name` annotation holds it.
    pub fn full(&self) -> String {
        let first = self.repository.split('/').next().unwrap_or("");
        let qualified = if !self.repository.contains('/') {
            format!("docker.io/library/{}", self.repository)
        } else if first.contains('.') || first.contains(':') || first == "localhost" {
            self.repository.clone()
        } else {
            format!("docker.io/{}", self.repository)
        };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{qualified}:{t}"),
            (None, Some(d)) => format!("{qualified}@{d}"),
            (None, None) => qualified,
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_as_docker_reads_them() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.tagged().unwrap(), "busybox:latest");
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        let r = Reference::parse("docker.io/library/alpine:3.19").unwrap();
        assert_eq!(r.tagged().unwrap(), "alpine:3.19");
        let r = Reference::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.repository, "localhost:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.full(), "localhost:5000/team/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/app@{d}")).unwrap();
        assert_eq!((r.tag, r.digest), (None, Some(d)));
        let e = Reference::parse("BusyBox").unwrap_err().to_string();
        assert!(e.contains("must be lowercase"), "{e}");
        assert!(Reference::parse("a:b:c").is_err());
        assert!(Reference::parse("").is_err());
    }
}
