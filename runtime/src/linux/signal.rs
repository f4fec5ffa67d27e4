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
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| BadSignal(s.into()))
}

static FORWARD_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_PID.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe and takes plain integers.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Forward the signals a terminal or supervisor sends (INT, TERM, HUP, QUIT, USR1, USR2,
/// WINCH) to `pid`, as `runc run` does for its container.
pub fn forward_to(pid: i32) -> Result<(), nix::Error> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    FORWARD_PID.store(pid, std::sync::atomic::Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only loads an atomic and calls kill(2), both async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
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
