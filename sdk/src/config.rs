//! The plugin's `[plugin.config]` table.

use crate::{ConfigEntry, ConfigValue};

/// A configuration error; its message names the key.
///
/// Converts into the `String` error of [`Hook::configure`](crate::Hook::configure) with `?`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The key holds a value of another type.
    #[error("config key {key:?}: expected {expected}, found {found}")]
    WrongType {
        /// The key, as written in the manifest.
        key: String,
        /// The WIT case the plugin expects: `text`, `integer`, `float`, `boolean`, `texts`.
        expected: &'static str,
        /// The WIT case the manifest holds.
        found: &'static str,
    },
    /// The key is not one the plugin knows.
    #[error("unknown config key {key:?}; known keys: {}", known.join(", "))]
    Unknown {
        /// The key, as written in the manifest.
        key: String,
        /// The keys the plugin accepts.
        known: Vec<String>,
    },
    /// The value has the right type but is not acceptable.
    #[error("config key {key:?}: {reason}")]
    Invalid {
        /// The key, as written in the manifest.
        key: String,
        /// Why the value is refused, e.g. `must be an absolute path`.
        reason: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for String {
    fn from(err: ConfigError) -> String {
        err.to_string()
    }
}

impl ConfigValue {
    /// The WIT case name of the value: `text`, `integer`, `float`, `boolean` or `texts`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigValue::Text(_) => "text",
            ConfigValue::Integer(_) => "integer",
            ConfigValue::Float(_) => "float",
            ConfigValue::Boolean(_) => "boolean",
            ConfigValue::Texts(_) => "texts",
        }
    }
}

/// The plugin's `[plugin.config]` table: `key = value` entries in manifest order.
///
/// The typed getters return `Ok(None)` for a missing key and [`ConfigError::WrongType`]
/// for a value of another type, so optional keys read as
/// `config.get_bool("strict")?.unwrap_or(true)`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    entries: Vec<ConfigEntry>,
}

impl Config {
    /// Wraps the entries the host passed to `configure`.
    pub fn new(entries: Vec<ConfigEntry>) -> Self {
        Config { entries }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The value of `key` as text.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        self.typed(key, "text", |v| match v {
            ConfigValue::Text(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The value of `key` as a 64-bit integer.
    pub fn get_int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.typed(key, "integer", |v| match v {
            ConfigValue::Integer(i) => Some(*i),
            _ => None,
        })
    }

    /// The value of `key` as a float; an integer is accepted and converted.
    pub fn get_float(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        self.typed(key, "float", |v| match v {
            ConfigValue::Float(f) => Some(*f),
            #[allow(clippy::cast_precision_loss, reason = "config integers are small")]
            ConfigValue::Integer(i) => Some(*i as f64),
            _ => None,
        })
    }

    /// The value of `key` as a boolean.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.typed(key, "boolean", |v| match v {
            ConfigValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    /// The value of `key` as a list of texts (a TOML array of strings).
    pub fn get_texts(&self, key: &str) -> Result<Option<&[String]>, ConfigError> {
        self.typed(key, "texts", |v| match v {
            ConfigValue::Texts(t) => Some(t.as_slice()),
            _ => None,
        })
    }

    /// Fails on the first key that is not in `known`.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self
            .entries
            .iter()
            .find(|e| !known.contains(&e.key.as_str()))
        {
            Some(e) => Err(ConfigError::Unknown {
                key: e.key.clone(),
                known: known.iter().map(|k| (*k).to_owned()).collect(),
            }),
            None => Ok(()),
        }
    }

    /// The entries as `(key, value)`, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ConfigValue)> {
        self.into_iter()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        pick: impl FnOnce(&'a ConfigValue) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        pick(value).map(Some).ok_or_else(|| ConfigError::WrongType {
            key: key.to_owned(),
            expected,
            found: value.kind(),
        })
    }
}

impl From<Vec<ConfigEntry>> for Config {
    fn from(entries: Vec<ConfigEntry>) -> Self {
        Config::new(entries)
    }
}

impl<'a> IntoIterator for &'a Config {
    type Item = (&'a str, &'a ConfigValue);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, ConfigEntry>, fn(&'a ConfigEntry) -> Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }
}

impl FromIterator<(String, ConfigValue)> for Config {
    fn from_iter<I: IntoIterator<Item = (String, ConfigValue)>>(iter: I) -> Self {
        Config::new(
            iter.into_iter()
                .map(|(key, value)| ConfigEntry { key, value })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        [
            ("name", ConfigValue::Text("web".into())),
            ("count", ConfigValue::Integer(3)),
            ("ratio", ConfigValue::Float(0.5)),
            ("strict", ConfigValue::Boolean(false)),
            ("caps", ConfigValue::Texts(vec!["CAP_NET_RAW".into()])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn typed_getters_read_their_type() {
        let c = config();
        assert_eq!(c.get_str("name"), Ok(Some("web")));
        assert_eq!(c.get_int("count"), Ok(Some(3)));
        assert_eq!(c.get_float("ratio"), Ok(Some(0.5)));
        assert_eq!(c.get_float("count"), Ok(Some(3.0)));
        assert_eq!(c.get_bool("strict"), Ok(Some(false)));
        assert_eq!(
            c.get_texts("caps"),
            Ok(Some(&["CAP_NET_RAW".to_owned()][..]))
        );
    }

    #[test]
    fn missing_key_is_none() {
        assert_eq!(config().get_bool("absent"), Ok(None));
    }

    #[test]
    fn wrong_type_names_key_and_types() {
        let err = config().get_bool("name").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"config key "name": expected boolean, found text"#
        );
        let err: String = config().get_texts("count").unwrap_err().into();
        assert_eq!(err, r#"config key "count": expected texts, found integer"#);
    }

    #[test]
    fn deny_unknown_names_the_key() {
        let c = config();
        assert!(
            c.deny_unknown(&["name", "count", "ratio", "strict", "caps"])
                .is_ok()
        );
        let err = c.deny_unknown(&["name", "count"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown config key "ratio"; known keys: name, count"#
        );
    }

    #[test]
    fn iterates_in_order() {
        let c = config();
        let keys: Vec<_> = c.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["name", "count", "ratio", "strict", "caps"]);
        assert_eq!((&c).into_iter().count(), 5);
        assert_eq!(config().len(), 5);
        assert!(Config::default().is_empty());
    }
}
