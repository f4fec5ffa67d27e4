//! env-inject plugin
