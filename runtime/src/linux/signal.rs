//! Signal names and numbers as `kill` accepts them (runc: `TERM`, `SIGTERM`, `15`).

use std::str::FromStr;

use nix::sys::signal::Signal;

/// A signal argument that names no signal.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct BadSignal(pub String);

/// Parse `KILL`, `SIGKILL`, `kill`, `9`, or a real-time signal (`RTMIN`, `SIGRTMIN+3`,
/// `RTMAX-1`, `64`); returns the signal number (signal(7)).
pub fn parse(s: &str) -> Result<i32, BadSignal> {
    let bad = || BadSignal(s.into());
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |base: i32, rest: &str| -> Result<i32, BadSignal> {
        let n = match rest {
            "" => base,
            r if r.starts_with('+') => base + r[1..].parse::<i32>().map_err(|_| bad())?,
            r if r.starts_with('-') => base - r[1..].parse::<i32>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if (rtmin..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rtmin, rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rtmax, rest);
    }
    Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .map_err(|_| bad())
}

/// Send signal number `sig` to `pid` (kill(2)); unlike nix's `kill` this takes real-time
/// signals too.
pub fn send(pid: i32, sig: i32) -> Result<(), nix::Error> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
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
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse("sigusr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        assert_eq!(parse("64").unwrap(), 64);
        assert!(parse("RTMAX+1").is_err());
        assert!(parse("0").is_err());
        assert!(parse("NOPE").is_err());
        assert!(parse("999").is_err());
    }
}
