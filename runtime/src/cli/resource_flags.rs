//! The cgroup resource flags that `run`/`create` and `update` share, spelled as Docker's
//! and runc's (`docker run --help`, `runc update --help`): sizes with b/k/m/g suffixes,
//! CPU times in microseconds.

use clap::Args;

/// Flattened into `run`/`create` and `update`.
#[derive(Args, Debug, Default, Clone)]
pub struct ResourceFlags {
    /// Memory limit (bytes or a size such as 256m, 1g; -1 for unlimited in update).
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit (size, or -1).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (size, or -1 for unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight, 2 to 262144).
    #[arg(short = 'c', long, visible_alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (-1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1 or 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000 (0 disables).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}
