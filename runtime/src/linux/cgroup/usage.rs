//! What a container's cgroup has used, for `stats`: CPU time, memory usage and limit, task
//! count, block I/O bytes (kernel `Documentation/admin-guide/cgroup-v1/{cpuacct,memory,
//! blkio-controller}.rst` and `cgroup-v2.rst`), read the way Docker's `stats` reads them
//! (memory usage excludes the inactive file cache).

use std::path::Path;

use super::{CgroupManager, Manager};

/// One reading of a cgroup; a field the host does not offer is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used by all tasks, in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat` usage_usec).
    pub cpu_ns: Option<u64>,
    /// Memory in use, in bytes, less inactive file pages (Docker's "MEM USAGE").
    pub memory: Option<u64>,
    /// The memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Tasks in the cgroup (`pids.current`).
    pub pids: Option<u64>,
    /// Bytes read from block devices.
    pub blk_read: u64,
    /// Bytes written to block devices.
    pub blk_write: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `KEY VALUE` lines of a `*.stat` file: the value of `key`.
fn stat_key(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Sum of v1 `blkio.throttle.io_service_bytes` lines `MAJ:MIN Read|Write N`.
fn v1_blkio(p: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut rw = (0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, op, n] = f.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => rw.0 += n,
                "Write" => rw.1 += n,
                _ => {}
            }
        }
    }
    rw
}

/// Sum of v2 `io.stat` `rbytes=` and `wbytes=` over devices.
fn v2_io(p: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut rw = (0, 0);
    for kv in text.split_whitespace() {
        if let Some(n) = kv.strip_prefix("rbytes=") {
            rw.0 += n.parse().unwrap_or(0);
        } else if let Some(n) = kv.strip_prefix("wbytes=") {
            rw.1 += n.parse().unwrap_or(0);
        }
    }
    rw
}

/// v1 limits above this are "unlimited" (the kernel reports PAGE_COUNTER_MAX pages).
const V1_UNLIMITED: u64 = 1 << 62;

impl Manager {
    /// Read the cgroup's usage now (missing files leave their fields `None` or 0).
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        match self {
            Manager::V1(_) => {
                if let Some(d) = self.path("cpuacct") {
                    u.cpu_ns = read_u64(&d.join("cpuacct.usage"));
                }
                if let Some(d) = self.path("memory") {
                    let usage = read_u64(&d.join("memory.usage_in_bytes"));
                    let inactive =
                        stat_key(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
                    u.memory = usage.map(|m| m.saturating_sub(inactive));
                    u.memory_limit =
                        read_u64(&d.join("memory.limit_in_bytes")).filter(|l| *l < V1_UNLIMITED);
                }
                if let Some(d) = self.path("pids") {
                    u.pids = read_u64(&d.join("pids.current"));
                }
                if let Some(d) = self.path("blkio") {
                    (u.blk_read, u.blk_write) =
                        v1_blkio(&d.join("blkio.throttle.io_service_bytes"));
                }
            }
            Manager::V2(_) => {
                let Some(d) = self.path("") else { return u };
                u.cpu_ns = stat_key(&d.join("cpu.stat"), "usage_usec").map(|us| us * 1000);
                let inactive = stat_key(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
                u.memory = read_u64(&d.join("memory.current")).map(|m| m.saturating_sub(inactive));
                u.memory_limit = read_u64(&d.join("memory.max"));
                u.pids = read_u64(&d.join("pids.current"));
                (u.blk_read, u.blk_write) = v2_io(&d.join("io.stat"));
            }
        }
        u
    }
}

/// Bytes received and sent by the network namespace of `pid`, over every interface but
/// `lo` (`/proc/PID/net/dev`), as Docker's "NET I/O".
pub fn net_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut rx_tx = (0, 0);
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        rx_tx.0 += f.first().copied().unwrap_or(0);
        rx_tx.1 += f.get(8).copied().unwrap_or(0);
    }
    rx_tx
}

/// The host's memory in bytes (`MemTotal` of `/proc/meminfo`); 0 when unreadable. Docker
/// shows it as the limit of a container without one.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Total CPU time of the host so far, in nanoseconds, the denominator of Docker's CPU %:
/// the `cpu` line of `/proc/stat` read as Docker's daemon reads it (see [`cpu_ticks`]).
pub fn host_cpu_ns() -> Option<u64> {
    let ticks = cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|h| *h > 0)?;
    Some(ticks * (1_000_000_000 / hz))
}

/// The host's CPU ticks in `/proc/stat` text: the sum of user, nice, system, idle,
/// iowait, irq and softirq of the `cpu` line, as Docker's `getSystemCPUUsage` (steal,
/// guest and guest_nice are not counted).
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|x| x.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    (fields.len() == 7).then(|| fields.iter().sum())
}

/// The online CPUs (`sysconf(_SC_NPROCESSORS_ONLN)`, as Docker's daemon counts them for
/// `online_cpus`); at least 1.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1)
}

/// Docker's CPU %: the container's CPU time over an interval (`cpu_before` to `cpu_now`,
/// nanoseconds) against the host's over the same interval (`host_delta`, nanoseconds,
/// all CPUs), times the online CPUs, in percent — 100 per fully busy CPU. 0 when a
/// reading is missing or nothing was used (Docker's `calculateCPUPercentUnix`).
#[allow(clippy::cast_precision_loss)] // a percentage of nanosecond counts
pub fn cpu_percent(
    cpu_before: Option<u64>,
    cpu_now: Option<u64>,
    host_delta: Option<u64>,
    cpus: u64,
) -> f64 {
    match (cpu_before, cpu_now, host_delta) {
        (Some(a), Some(b), Some(h)) if h > 0 && b > a => {
            (b - a) as f64 / h as f64 * cpus as f64 * 100.0
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_files_parse() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("io"),
            "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 1\n7:0 Read 100\nTotal 12388\n",
        )
        .unwrap();
        assert_eq!(v1_blkio(&d.path().join("io")), (4196, 8192));
        std::fs::write(
            d.path().join("io2"),
            "254:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:0 rbytes=5 wbytes=0\n",
        )
        .unwrap();
        assert_eq!(v2_io(&d.path().join("io2")), (15, 20));
        std::fs::write(d.path().join("stat"), "cache 5\ntotal_inactive_file 42\n").unwrap();
        assert_eq!(
            stat_key(&d.path().join("stat"), "total_inactive_file"),
            Some(42)
        );
        assert!(host_cpu_ns().is_some_and(|n| n > 0));
        assert!(online_cpus() >= 1);
        // user nice system idle iowait irq softirq | steal guest guest_nice: not counted.
        let stat = "cpu  10 20 30 400 5 6 7 1000 2000 3000\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(cpu_ticks(stat), Some(478));
        assert_eq!(cpu_ticks("cpu  1 2 3\n"), None);
        // Half of one CPU's time on a 2-CPU host over the interval: 50 %.
        assert!((cpu_percent(Some(1_000), Some(501_000), Some(2_000_000), 2) - 50.0).abs() < 1e-9);
        assert!(cpu_percent(None, Some(5), Some(10), 2).abs() < f64::EPSILON);
        assert!(cpu_percent(Some(5), Some(5), Some(10), 2).abs() < f64::EPSILON);
        let me = i32::try_from(std::process::id()).unwrap();
        let _ = net_io(me);
    }
}
