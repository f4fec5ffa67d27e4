//! cgroups (v1, hybrid and v2) behind one trait.
