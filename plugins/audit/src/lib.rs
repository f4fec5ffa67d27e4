//! audit plugin
