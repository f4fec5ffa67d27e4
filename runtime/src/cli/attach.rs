//! `rwasm attach [--no-stdin] [--detach-keys KEYS] CONTAINER`: attach the caller's terminal
//! to a running container's terminal through its monitor (Docker's `attach`), and the
//! client side shared with `run -it` and `start -a`.

use anyhow::bail;
use clap::Args;

use rwasm::engine::attach::{self, Client, Ended};
use rwasm::engine::record::Live;

use super::Cli;
use super::containers::{records, with_lifecycle};

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Key sequence that detaches: ctrl-X or single characters, comma-separated.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// The container (name, id or unique id prefix).
    pub container: String,
}

/// `attach CONTAINER`: until the container exits (its exit code) or the detach keys (0).
pub fn attach(cli: &Cli, a: &AttachArgs) -> anyhow::Result<i32> {
    let rs = records(cli);
    let id = rs.resolve(&a.container)?;
    let r = rs.load(&id)?;
    if !matches!(r.live(), Live::Running) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let dir = rs.dir(&id);
    if !attach::has_terminal(&dir) {
        bail!(
            "container {} has no terminal (run -t): follow its output with `rwasm logs -f {}`",
            r.name,
            r.name
        );
    }
    let stream = attach::connect(&dir)?;
    follow(cli, &id, stream, !a.no_stdin, &a.detach_keys)
}

/// Attached over `stream` to container `id`: returns 0 on detach, else its exit code.
pub fn follow(
    cli: &Cli,
    id: &str,
    mut stream: std::os::unix::net::UnixStream,
    stdin: bool,
    detach_keys: &str,
) -> anyhow::Result<i32> {
    let keys = attach::parse_detach_keys(detach_keys)?;
    let client = Client {
        stdin,
        detach_keys: if stdin && attach::stdin_is_terminal() {
            &keys
        } else {
            &[]
        },
    };
    match client.run(&mut stream)? {
        Ended::Detached => Ok(0),
        // The monitor keeps the record until we close the stream (`--rm`).
        Ended::Closed => with_lifecycle(cli, |l| Ok(l.wait(id)?)),
    }
}
