//! What the clap definitions generate for people: an example at the end of every command's
//! `--help`, shell completions (`rwasm completion SHELL`, as `docker completion`), and man
//! pages (`rwasm generate-man DIR`, used by `make man`).

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

/// One example per command, by its path under `rwasm` (`"image ls"` for `rwasm image ls`).
/// Shown under "Examples:" in `--help` and in the man page; a test checks that every
/// visible command has one.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "create",
        "rwasm create --name web -p 8080:80 busybox httpd -f\n  rwasm create --bundle /path/to/bundle ID    (runc)",
    ),
    (
        "start",
        "rwasm start -a web\n  rwasm create -i --name box busybox cat; echo hi | rwasm start -ai box\n  rwasm start ID                              (runc)",
    ),
    ("state", "rwasm state ID"),
    (
        "kill",
        "rwasm kill -s HUP web\n  rwasm kill ID TERM                          (runc)",
    ),
    (
        "ps",
        "rwasm ps -a --filter status=exited --format '{{.Names}} {{.Status}}'",
    ),
    ("logs", "rwasm logs -f --tail 20 -t web"),
    ("stop", "rwasm stop -t 1 web"),
    ("restart", "rwasm restart web"),
    ("rm", "rwasm rm -f web"),
    ("wait", "rwasm wait web"),
    ("inspect", "rwasm inspect -f '{{.State.ExitCode}}' web"),
    ("exec", "rwasm exec -it -e TERM=xterm -w /tmp web sh"),
    ("pause", "rwasm pause web"),
    ("unpause", "rwasm unpause web"),
    ("rename", "rwasm rename web web-old"),
    ("top", "rwasm top web"),
    ("stats", "rwasm stats --no-stream --format json"),
    ("version", "rwasm version --format json"),
    ("info", "rwasm info"),
    ("container", "rwasm container prune -f"),
    ("container prune", "rwasm container prune -f"),
    (
        "delete",
        "rwasm delete --force ID                     (runc)",
    ),
    ("update", "rwasm update --memory 256m --cpus 1.5 web"),
    (
        "run",
        "rwasm run --rm -it busybox sh\n  rwasm run -d --name web -p 8080:80 -m 64m busybox httpd -f\n  rwasm run --bundle /path/to/bundle ID       (runc)",
    ),
    ("list", "rwasm list --format json              (runc)"),
    ("setup", "rwasm setup"),
    ("image", "rwasm image ls"),
    ("image inspect", "rwasm image inspect busybox"),
    ("image ls", "rwasm image ls --format json"),
    ("image rm", "rwasm image rm busybox:old"),
    ("image prune", "rwasm image prune -a -f"),
    ("image pull", "rwasm image pull localhost:5000/app:1.0"),
    ("image load", "rwasm image load -i app.tar"),
    ("image save", "rwasm image save -o busybox.tar busybox"),
    ("image tag", "rwasm image tag busybox mybox:1"),
    ("image import", "rwasm image import rootfs.tar.gz mybase:1"),
    (
        "images",
        "rwasm images busybox\n  rwasm images --format json",
    ),
    (
        "pull",
        "rwasm pull --insecure-registry localhost:5000 localhost:5000/app:1.0",
    ),
    ("load", "rwasm load -i app.tar\n  rwasm load < app.tar.gz"),
    (
        "save",
        "rwasm save -o busybox.tar busybox\n  rwasm save busybox | gzip > busybox.tar.gz",
    ),
    (
        "import",
        "rwasm import rootfs.tar.gz mybase:1\n  tar -C rootfs -c . | rwasm import - mybase:2",
    ),
    ("tag", "rwasm tag busybox mybox:1"),
    ("rmi", "rwasm rmi -f mybox:1"),
    ("plugin", "rwasm plugin ls"),
    (
        "plugin ls",
        "rwasm --plugins examples/plugins.toml plugin ls",
    ),
    (
        "plugin inspect",
        "rwasm plugin inspect examples/wasm/policy.wasm",
    ),
    (
        "plugin validate",
        "rwasm plugin validate examples/plugins.toml",
    ),
    (
        "plugin precompile",
        "rwasm --plugins examples/plugins.toml plugin precompile",
    ),
    (
        "plugin test",
        "rwasm --plugins examples/plugins.toml plugin test policy --hook pre-create --state state.json --spec config.json",
    ),
    ("system", "rwasm system df"),
    ("system df", "rwasm system df -v"),
    ("system prune", "rwasm system prune -a -f"),
    (
        "cp",
        "rwasm cp web:/etc/hostname ./hostname\n  rwasm cp ./site web:/var/www\n  rwasm cp web:/var/log - | tar tvf -\n  tar -cf - site | rwasm cp - web:/var/www",
    ),
    (
        "completion",
        "rwasm completion bash > /etc/bash_completion.d/rwasm",
    ),
    (
        "attach",
        "rwasm attach --detach-keys ctrl-x box\n  rwasm run -di --name cat busybox cat; echo hi | rwasm attach cat",
    ),
    ("port", "rwasm port web 80/tcp"),
    ("network", "rwasm network ls"),
    (
        "network create",
        "rwasm network create --subnet 10.89.7.0/24 --gateway 10.89.7.1 backend",
    ),
    ("network ls", "rwasm network ls --format json"),
    ("network inspect", "rwasm network inspect backend"),
    ("network rm", "rwasm network rm backend"),
    ("network prune", "rwasm network prune -f"),
    ("volume", "rwasm volume ls"),
    (
        "volume create",
        "rwasm volume create -o type=tmpfs -o device=tmpfs -o o=size=64m scratch",
    ),
    ("volume ls", "rwasm volume ls --format json"),
    ("volume inspect", "rwasm volume inspect scratch"),
    ("volume rm", "rwasm volume rm scratch"),
    ("volume prune", "rwasm volume prune -a -f"),
];

/// The whole command tree, each command with its example from [`EXAMPLES`].
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for (path, example) in EXAMPLES {
        let text = format!("Examples:\n  {example}");
        cmd = with_example(cmd, &path.split(' ').collect::<Vec<_>>(), text);
    }
    cmd
}

fn with_example(cmd: clap::Command, path: &[&str], text: String) -> clap::Command {
    match path {
        [] => cmd.after_help(text),
        [first, rest @ ..] => {
            let (first, rest) = (first.to_string(), rest.to_vec());
            cmd.mut_subcommand(first, move |sub| with_example(sub, &rest, text))
        }
    }
}

/// `rwasm completion SHELL`: the completion script for `shell` on stdout (a closed pipe,
/// as with `| head`, ends the output quietly).
pub fn completion(shell: clap_complete::Shell) {
    use std::io::Write as _;
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rwasm", &mut script);
    let _ = std::io::stdout().lock().write_all(&script);
}

/// `rwasm generate-man DIR`: one roff page per command, `rwasm.1`, `rwasm-run.1`,
/// `rwasm-image-ls.1` ... (clap_mangen; hidden commands left out). Returns how many.
pub fn generate_man(dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = command();
    cmd.build();
    write_pages(&cmd, "rwasm", dir)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<usize> {
    let page = cmd.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out).with_context(|| format!("cannot write {}", file.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        n += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible_paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let path = if prefix.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            visible_paths(sub, &path, out);
            out.push(path);
        }
    }

    #[test]
    fn every_visible_command_has_an_example_and_every_example_a_command() {
        let cmd = Cli::command();
        let mut paths = Vec::new();
        visible_paths(&cmd, "", &mut paths);
        let missing: Vec<_> = paths
            .iter()
            .filter(|p| !EXAMPLES.iter().any(|(e, _)| e == p))
            .collect();
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:?}"
        );
        let stale: Vec<_> = EXAMPLES
            .iter()
            .filter(|(e, _)| !paths.iter().any(|p| p == e))
            .map(|(e, _)| e)
            .collect();
        assert!(stale.is_empty(), "examples of no command: {stale:?}");
    }

    #[test]
    fn help_ends_with_the_example() {
        let mut cmd = command();
        let help = cmd
            .find_subcommand_mut("image")
            .and_then(|c| c.find_subcommand_mut("ls"))
            .expect("image ls")
            .render_long_help()
            .to_string();
        assert!(
            help.trim_end().ends_with("rwasm image ls --format json"),
            "{help}"
        );
    }
}
