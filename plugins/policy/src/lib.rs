//! policy plugin
