//! Facts about processes read from procfs (proc(5)).

use std::fs;

/// A process's state as far as a container runtime cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running or sleeping: the container is alive.
    Alive,
    /// Exited: gone, or a zombie nobody reaped yet.
    Dead,
}

/// Field 22 of `/proc/PID/stat`: start time in clock ticks since boot; with the pid it
/// identifies a process across pid reuse.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `started` (ticks) and not a zombie.
pub fn liveness(pid: i32, started: u64) -> Liveness {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Liveness::Dead;
    };
    let Some(close) = stat.rfind(')') else {
        return Liveness::Dead;
    };
    let rest = &stat[close + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next().unwrap_or("X");
    let start: Option<u64> = fields.nth(18).and_then(|s| s.parse().ok());
    if matches!(state, "Z" | "X" | "x") || start != Some(started) {
        Liveness::Dead
    } else {
        Liveness::Alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = i32::try_from(std::process::id()).unwrap();
        let t = start_time(me).expect("start time of self");
        assert_eq!(liveness(me, t), Liveness::Alive);
        assert_eq!(liveness(me, t + 1), Liveness::Dead);
        assert_eq!(liveness(i32::MAX, 0), Liveness::Dead);
    }
}
