//! rwasm plugin SDK
