//! `net-host.exec-binary`: a host binary (a CNI plugin, CNI SPEC.md "Execution protocol")
//! run for a network driver granted `exec-dir`. The binary is a plain file name resolved
//! in that directory without following a symlink out of it (the file itself must be a
//! regular executable file, not a link); it runs with no shell and no arguments, only
//! the given environment, the given bytes on stdin, stdout and stderr captured (1 MiB
//! each at most), and is killed (SIGKILL) when `timeout-ms` passes. Its other file
//! descriptors are only 0-2: Rust opens every other descriptor close-on-exec.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::net_ctx::NetRefusal;

/// Most bytes kept of each of stdout and stderr.
const MAX_OUTPUT: u64 = 1 << 20;
/// Longest run allowed, whatever the driver asks (60 s).
const MAX_TIMEOUT_MS: u32 = 60_000;

/// What the binary did.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code, 128+N for signal N.
    pub(crate) exit_code: i32,
    /// Its stdout.
    pub(crate) stdout: Vec<u8>,
    /// Its stderr.
    pub(crate) stderr: Vec<u8>,
}

/// Runs `dir/binary` as the module says; `Refused` for a bad name or a file that is not
/// a regular executable in `dir`, `Failed` when it cannot be started or times out.
pub(crate) fn run(
    dir: &Path,
    binary: &str,
    env: &[(String, String)],
    stdin: &[u8],
    timeout_ms: u32,
) -> Result<Output, NetRefusal> {
    if binary.is_empty() || binary.contains('/') || binary == "." || binary == ".." {
        return Err(NetRefusal::Refused(format!(
            "invalid binary name `{binary}`: a file name in {} without `/`",
            dir.display()
        )));
    }
    let path = dir.join(binary);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Ok(_) => {
            return Err(NetRefusal::Refused(format!(
                "{} is not a regular executable file",
                path.display()
            )));
        }
        Err(e) => {
            return Err(NetRefusal::Refused(format!(
                "no binary {}: {e}",
                path.display()
            )));
        }
    }
    let failed = |what: &str, e: std::io::Error| {
        NetRefusal::Failed(format!("cannot {what} {}: {e}", path.display()))
    };
    let mut child = Command::new(&path)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed("run", e))?;
    let input = stdin.to_vec();
    let mut child_in = child.stdin.take().expect("piped stdin");
    // A binary that does not read its stdin must not block us: write from a thread.
    let writer = std::thread::spawn(move || {
        let _ = child_in.write_all(&input);
    });
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut out);
            }
            out
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline =
        Instant::now() + Duration::from_millis(u64::from(timeout_ms.min(MAX_TIMEOUT_MS)));
    let status = loop {
        match child.try_wait().map_err(|e| failed("wait for", e))? {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetRefusal::Failed(format!(
                    "{} did not finish within {timeout_ms} ms and was killed",
                    path.display()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let _ = writer.join();
    use std::os::unix::process::ExitStatusExt;
    Ok(Output {
        exit_code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_links_are_refused_and_a_binary_runs_with_only_its_env() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/bin/sh", d.path().join("link")).unwrap();
        for bad in ["", "../sh", "a/b", "..", "link", "missing"] {
            assert!(
                matches!(
                    run(d.path(), bad, &[], b"", 1000),
                    Err(NetRefusal::Refused(_))
                ),
                "{bad}"
            );
        }
        std::fs::copy("/usr/bin/env", d.path().join("env")).unwrap();
        let o = run(d.path(), "env", &[("A".into(), "1".into())], b"", 5000).unwrap();
        assert_eq!((o.exit_code, o.stdout.as_slice()), (0, b"A=1\n".as_slice()));
        let script = d.path().join("sleep");
        std::fs::write(&script, "#!/bin/sh\nexec /bin/sleep 5\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            run(d.path(), "sleep", &[], b"", 100),
            Err(NetRefusal::Failed(m)) if m.contains("killed")
        ));
    }
}
