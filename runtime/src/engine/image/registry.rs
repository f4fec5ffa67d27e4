//! What `rwasm pull` needs to know about a registry before it talks to it: whether it is
//! reached over plain HTTP, and which credentials to send.
//!
//! **Insecure registries** (plain HTTP, no TLS): `localhost`, `127.0.0.1` and `[::1]` (any
//! port) always, as Docker treats them; any other registry only when it is listed under
//! `insecure-registries` (Docker's `daemon.json` key) in `<data-root>/registries.toml` or
//! `/etc/rwasm/registries.toml` (both are read; a missing file is fine), or given with
//! `rwasm pull --insecure-registry HOST[:PORT]`:
//!
//! ```toml
//! insecure-registries = ["registry.lan:5000", "10.0.0.7:5000"]
//! ```
//!
//! **Credentials** come from a Docker-style auth file (`docker login`'s `config.json`,
//! podman's and skopeo's `auth.json`: the same `auths` map): the first of
//! `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` that
//! exists. An entry is keyed by `HOST[:PORT]` (a `https://` prefix and a path are ignored;
//! Docker Hub's `https://index.docker.io/v1/` key serves `docker.io`) and holds `auth`
//! (base64 of `USER:PASSWORD`), or `username` and `password`, or `registrytoken` (sent as a
//! bearer token). Basic credentials are sent as HTTP basic auth to a registry that asks for
//! basic auth, and exchanged for a bearer token at the realm of a registry that asks for a
//! token (distribution's token authentication).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// The system-wide registries file.
pub const SYSTEM_REGISTRIES: &str = "/etc/rwasm/registries.toml";

/// A registries file or an auth file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A registries file is not valid TOML of the documented shape.
    #[error("malformed registries file {path}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The TOML error, naming the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// An auth file is not valid JSON of the `auths` shape.
    #[error("malformed auth file {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// An `auth` value is not base64 of `USER:PASSWORD`.
    #[error("auth file {path}: auths.{registry:?}.auth is not base64 of USER:PASSWORD")]
    BadAuth {
        /// The file.
        path: PathBuf,
        /// The key of the entry.
        registry: String,
    },
}

/// `registries.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RegistriesFile {
    /// Registries reached over plain HTTP: `HOST[:PORT]`.
    #[serde(default)]
    insecure_registries: Vec<String>,
}

/// The registries reached over plain HTTP besides loopback ones.
#[derive(Debug, Clone, Default)]
pub struct Insecure(Vec<String>);

impl Insecure {
    /// The registries listed in `<data_root>/registries.toml` and [`SYSTEM_REGISTRIES`], plus
    /// `extra` (from `--insecure-registry`).
    pub fn load(data_root: &Path, extra: &[String]) -> Result<Insecure, RegistryConfigError> {
        let mut hosts = extra.to_vec();
        for path in [data_root.join("registries.toml"), SYSTEM_REGISTRIES.into()] {
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(RegistryConfigError::Read { path, source }),
            };
            let f: RegistriesFile = toml::from_str(&text)
                .map_err(|source| RegistryConfigError::Toml { path, source })?;
            hosts.extend(f.insecure_registries);
        }
        Ok(Insecure(hosts.iter().map(|h| normalize(h)).collect()))
    }

    /// Whether `registry` (`HOST[:PORT]`, as in a reference) is reached over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = match registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => registry.split(':').next().unwrap_or(registry),
        };
        matches!(host, "localhost" | "127.0.0.1" | "::1") || self.0.iter().any(|h| h == registry)
    }
}

/// `HOST[:PORT]` of an auth-file key or a registries entry: scheme and path dropped,
/// Docker Hub's names made `docker.io`.
fn normalize(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None found: pull anonymously.
    Anonymous,
    /// A user name and password (HTTP basic auth, or exchanged for a token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A registry token, sent as `Authorization: Bearer TOKEN`.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, <hidden>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The auth file to read: the first of `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
/// `$HOME/.docker/config.json` that is set and exists (see the module).
pub fn default_auth_file() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let candidates = [
        env("REGISTRY_AUTH_FILE").map(PathBuf::from),
        env("DOCKER_CONFIG").map(|d| PathBuf::from(d).join("config.json")),
        env("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// The credentials `auth_file` holds for `registry` (`HOST[:PORT]`; `docker.io` for Docker
/// Hub); [`Credentials::Anonymous`] without a file or an entry.
pub fn credentials(
    auth_file: Option<&Path>,
    registry: &str,
) -> Result<Credentials, RegistryConfigError> {
    let Some(path) = auth_file else {
        return Ok(Credentials::Anonymous);
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Credentials::Anonymous),
        Err(source) => {
            return Err(RegistryConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: AuthFile =
        serde_json::from_slice(&bytes).map_err(|source| RegistryConfigError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    let want = normalize(registry);
    let Some((key, entry)) = file.auths.iter().find(|(k, _)| normalize(k) == want) else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(t) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::Bearer(t.clone()));
    }
    if let Some(a) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let bad = || RegistryConfigError::BadAuth {
            path: path.to_path_buf(),
            registry: key.clone(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (u, p) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Credentials::Basic {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => Ok(Credentials::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join("registries.toml"),
            "insecure-registries = [\"reg.lan:5000\"]\n",
        )
        .unwrap();
        let i = Insecure::load(t.path(), &["https://other:1/".into()]).unwrap();
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:41234",
            "[::1]:5000",
        ] {
            assert!(i.is_insecure(r), "{r}");
        }
        assert!(i.is_insecure("reg.lan:5000"));
        assert!(i.is_insecure("other:1"));
        assert!(!i.is_insecure("reg.lan"));
        assert!(!i.is_insecure("docker.io"));
        fs::write(t.path().join("registries.toml"), "insecure = []\n").unwrap();
        let e = Insecure::load(t.path(), &[]).unwrap_err();
        assert!(matches!(e, RegistryConfigError::Toml { .. }), "{e:?}");
    }

    #[test]
    fn credentials_are_read_from_docker_auths() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.json");
        // base64("alice:s3cr:et")
        fs::write(
            &p,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcjpldA=="},
                "127.0.0.1:5000": {"username": "bob", "password": "pw"},
                "tok.example": {"registrytoken": "T"},
                "bad.example": {"auth": "!!"}
            }}"#,
        )
        .unwrap();
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(
            credentials(Some(&p), "docker.io").unwrap(),
            basic("alice", "s3cr:et")
        );
        assert_eq!(
            credentials(Some(&p), "127.0.0.1:5000").unwrap(),
            basic("bob", "pw")
        );
        assert_eq!(
            credentials(Some(&p), "tok.example").unwrap(),
            Credentials::Bearer("T".into())
        );
        assert_eq!(
            credentials(Some(&p), "nowhere:1").unwrap(),
            Credentials::Anonymous
        );
        let e = credentials(Some(&p), "bad.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auths.\"bad.example\".auth"), "{e}");
        assert_eq!(credentials(None, "x").unwrap(), Credentials::Anonymous);
    }
}
