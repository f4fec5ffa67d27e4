//! Signal names and numbers as `kill` accepts them (runc: `TERM`, `SIGTERM`, `15`).

use std::str::FromStr;

use nix::sys::signal::Signal;

/// A signal argument that names no signal.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct BadSignal(pub String);

/// Parse `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse(s: &str) -> Result<Signal, BadSignal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| BadSignal(s.into()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map_err(|_| BadSignal(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse("NOPE").is_err());
        assert!(parse("999").is_err());
    }
}
