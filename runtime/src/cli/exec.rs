//! Docker's `exec [-d] [-i] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...`: a new process
//! in a running container, in all its namespaces and its cgroup, with the container's
//! environment, capabilities and user unless the flags say otherwise.

use anyhow::{Context, bail};
use clap::Args;

use rwasm::engine::record::{Live, Records};
use rwasm::engine::state::StateStore;
use rwasm::linux::cgroup::Manager;
use rwasm::linux::exec_in::{ExecRequest, exec_in};

use super::Cli;

/// `exec` flags, as Docker's.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open (the command reads the caller's stdin).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY: the command runs on a new terminal of the container, sized
    /// like the caller's window (which it follows), proxied to the caller's stdio.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (NAME=VALUE, or NAME to pass the caller's).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: NAME|UID[:GROUP|GID]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// The container.
    pub container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Run `exec`; the command's exit code (126/127 when it cannot be run, as Docker).
pub fn exec(cli: &Cli, a: &ExecArgs) -> anyhow::Result<i32> {
    if a.tty && a.detach {
        bail!("exec -d -t: a detached exec has no terminal to attach to; drop -t");
    }
    super::attach::check_tty(a.interactive, a.tty)?;
    let records = Records::new(&cli.data_root);
    let id = records.resolve(&a.container)?;
    let r = records.load(&id)?;
    match r.live() {
        Live::Running => {}
        Live::Paused => bail!(
            "container {} is paused, unpause the container before exec",
            r.name
        ),
        _ => bail!("container {} is not running", r.name),
    }
    let oci = StateStore::open(&cli.root)?.load(&id)?;
    let spec_path = cli.root.join(&id).join("config.json");
    let spec = oci_spec::runtime::Spec::load(&spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(a.command.clone()));
    process.set_terminal(Some(a.tty));
    let mut env = process.env().clone().unwrap_or_default();
    for kv in &a.env {
        let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
        if k.is_empty() {
            bail!("invalid value {kv:?} for --env: expected NAME=VALUE");
        }
        let entry = match (kv.contains('='), std::env::var(k)) {
            (true, _) => kv.clone(),
            (false, Ok(v)) => format!("{k}={v}"),
            (false, Err(_)) => continue,
        };
        env.retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
        env.push(entry);
    }
    process.set_env(Some(env));
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            bail!(
                "invalid value {w:?} for --workdir: the working directory must be an absolute path"
            );
        }
        process.set_cwd(w.into());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = rwasm::engine::docker::resolve_user(u, &records.dir(&id).join("rootfs"))?;
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        user.set_additional_gids(None);
        process.set_user(user);
    }
    let handle = oci
        .cgroup
        .with_context(|| format!("container {} has no cgroup", r.name))?;
    let cgroup = Manager::from_handle(&handle);
    let result = exec_in(&ExecRequest {
        init_pid: oci.pid.context("the container has no init pid")?,
        cgroup: &cgroup,
        process: &process,
        detach: a.detach,
        stdin: a.interactive,
        terminal: a.tty,
        seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
    });
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            errln!("rwasm: {}", rwasm::error_chain(&e));
            Ok(e.exit_code())
        }
    }
}
