//! misbehave plugin
