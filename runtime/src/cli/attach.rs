//! `rwasm attach [--no-stdin] [--sig-proxy=BOOL] [--detach-keys KEYS] CONTAINER`: attach
//! the caller's stdin, stdout and stderr to a running container through its monitor
//! (Docker's `attach`), and the client side shared with `run -it` and `start -a`.

use anyhow::bail;
use clap::{ArgAction, Args};

use rwasm::engine::attach::{self, Client, Ended};
use rwasm::engine::record::Live;

use super::Cli;
use super::containers::{records, with_lifecycle};

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy the signals rwasm receives (INT, TERM, HUP, QUIT, USR1, USR2) to the
    /// container's process; a container with a terminal gets ctrl-c through it instead.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Key sequence that detaches: ctrl-X or single characters, comma-separated (a
    /// container with a terminal, our stdin a terminal).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// The container (name, id or unique id prefix).
    pub container: String,
}

/// `attach CONTAINER`: until the container exits (its exit code) or the detach keys (0).
/// Our stdin goes to the container when it was created with `-i` (Docker's rule), its
/// stdout and stderr come back to ours, kept apart (a terminal's output is all stdout).
pub fn attach(cli: &Cli, a: &AttachArgs) -> anyhow::Result<i32> {
    let rs = records(cli);
    let id = rs.resolve(&a.container)?;
    let r = rs.load(&id)?;
    match r.live() {
        Live::Running => {}
        Live::Paused => bail!("You cannot attach to a paused container, unpause it first"),
        _ => bail!("You cannot attach to a stopped container, start it first"),
    }
    let dir = rs.dir(&id);
    let terminal = attach::has_terminal(&dir);
    check_tty(!a.no_stdin, terminal)?;
    let Ok(stream) = attach::connect(&dir) else {
        bail!(
            "container {} has no attach socket (its monitor is gone): follow its output with `rwasm logs -f {}`",
            r.name,
            r.name
        );
    };
    if a.sig_proxy && !terminal {
        proxy_signals(r.pid);
    }
    let stdin = !a.no_stdin && r.open_stdin;
    follow(cli, &id, stream, stdin, terminal, &a.detach_keys)
}

/// Docker's `CheckTty`: attaching our stdin (`attach_stdin`) to a terminal of the
/// container (`terminal`) needs our stdin to be a terminal too, else [`NotATty`]
/// (`attach --no-stdin`, or no `-i`, avoids it).
pub fn check_tty(attach_stdin: bool, terminal: bool) -> anyhow::Result<()> {
    if attach_stdin && terminal && !attach::stdin_is_terminal() {
        return Err(NotATty.into());
    }
    Ok(())
}

/// "the input device is not a TTY": Docker's client refuses before it asks the daemon
/// for anything, so its exit code is the client's 1, even for `run` and `attach` (whose
/// own failures are 125).
#[derive(Debug, thiserror::Error)]
#[error("the input device is not a TTY")]
pub struct NotATty;

/// Forward the signals we receive to the container's init `pid` (Docker's `--sig-proxy`,
/// for a container without a terminal).
pub fn proxy_signals(pid: Option<i32>) {
    if let Some(pid) = pid
        && let Err(e) = rwasm::linux::signal::forward_to(pid)
    {
        tracing::warn!("cannot forward signals: {e}");
    }
}

/// Attached over `stream` to container `id` (`terminal`: it has one): returns 0 on
/// detach, else its exit code.
pub fn follow(
    cli: &Cli,
    id: &str,
    mut stream: std::os::unix::net::UnixStream,
    stdin: bool,
    terminal: bool,
    detach_keys: &str,
) -> anyhow::Result<i32> {
    let keys = attach::parse_detach_keys(detach_keys)?;
    let client = Client {
        stdin,
        terminal,
        // Docker: the detach keys work on a terminal only; without one, every byte is
        // the container's input.
        detach_keys: if stdin && terminal && attach::stdin_is_terminal() {
            &keys
        } else {
            &[]
        },
    };
    match client.run(&mut stream)? {
        Ended::Detached => Ok(0),
        Ended::Exited(code) => Ok(code),
        // A monitor that sent no exit code keeps the record until we close the stream.
        Ended::Closed => with_lifecycle(cli, |l| Ok(l.wait(id)?)),
    }
}
