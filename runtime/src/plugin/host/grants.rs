//! What a plugin may touch: the import allow-list checked at load, and the WASI context
//! of each call built from the manifest's `[plugin.grants]`.
//!
//! At load, every import of the component must be one of
//!
//! | import | when |
//! |---|---|
//! | `wasi:cli/{environment,exit,stdin,stdout,stderr,terminal-*}` | always (Rust's std imports them) |
//! | `wasi:io/*`, `wasi:filesystem/*` | always (there is nothing to open without a grant) |
//! | `wasi:clocks/*` | `clock = true` (the default) |
//! | `wasi:random/*` | `random = true` (the default) |
//! | `rwasm:plugin/{host,types}@0.1.0`, `@0.2.0` and `@0.3.0` | always |
//!
//! Anything else — `wasi:sockets/*`, `wasi:http/*`, an unknown interface — is refused with
//! [`FailureCause::ImportNotGranted`], naming the import and the reason. So a plugin has
//! no sockets, no network and no host processes whatever it links against.
//!
//! Per call, the WASI context inherits nothing: no args, no stdin, no network; stdout and
//! stderr go to in-memory pipes; only the variables of `grants.env` that are set in
//! rwasm's own environment are passed; only the `dirs` and, with `rootfs`, the
//! container's rootfs (at [`ROOTFS_GUEST_PATH`]) are preopened.

use std::fs;
use std::path::{Path, PathBuf};

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::super::FailureCause;
use super::super::manifest::{Access, PluginSpec, ROOTFS_GUEST_PATH, SandboxGrants};
use super::{Call, describe};

/// `wasi:cli` interfaces every plugin may import.
const CLI_INTERFACES: &[&str] = &["environment", "exit", "stdin", "stdout", "stderr"];

/// `rwasm:plugin` interfaces every plugin may import, with the versions hosted.
const RWASM_IMPORTS: &[&str] = &[
    "rwasm:plugin/host@0.1.0",
    "rwasm:plugin/types@0.1.0",
    "rwasm:plugin/host@0.2.0",
    "rwasm:plugin/types@0.2.0",
    "rwasm:plugin/host@0.3.0",
    "rwasm:plugin/types@0.3.0",
];

/// Checks every import name of a component against the allow-list of `grants`.
pub(super) fn check_imports<'a>(
    grants: &SandboxGrants,
    imports: impl IntoIterator<Item = &'a str>,
) -> Result<(), FailureCause> {
    for import in imports {
        if let Err(reason) = allowed(grants, import) {
            return Err(FailureCause::ImportNotGranted {
                import: import.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// Whether one import may be linked; `Err` says why not.
fn allowed(grants: &SandboxGrants, import: &str) -> Result<(), String> {
    let unversioned = import.split_once('@').map_or(import, |(name, _)| name);
    let Some((package, interface)) = unversioned.split_once('/') else {
        return Err("it is not an interface of a package rwasm hosts".to_string());
    };
    match package {
        "wasi:cli" if CLI_INTERFACES.contains(&interface) || interface.starts_with("terminal-") => {
            Ok(())
        }
        "wasi:io" | "wasi:filesystem" => Ok(()),
        "wasi:clocks" if grants.clock => Ok(()),
        "wasi:clocks" => Err("clock is not granted (`[plugin.grants] clock = false`)".to_string()),
        "wasi:random" if grants.random => Ok(()),
        "wasi:random" => {
            Err("random is not granted (`[plugin.grants] random = false`)".to_string())
        }
        "wasi:sockets" => Err("plugins get no sockets".to_string()),
        "wasi:http" => Err("plugins get no network".to_string()),
        "rwasm:plugin" if RWASM_IMPORTS.contains(&import) => Ok(()),
        "rwasm:plugin" => Err(format!(
            "this rwasm offers only {}",
            RWASM_IMPORTS.join(", ")
        )),
        _ => Err("rwasm offers no such interface to plugins".to_string()),
    }
}

/// The WASI context of one call of `spec`'s plugin: guest output into `stdout` and
/// `stderr`, the granted env variables, directories and, for a `call` about a container,
/// its rootfs (`None`: configuring outside any container, no rootfs). A granted directory
/// that is missing or not a directory is a [`FailureCause::Grant`].
pub(super) fn wasi_ctx(
    spec: &PluginSpec,
    call: Option<&Call>,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> Result<WasiCtx, FailureCause> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_blocking_current_thread(true);
    for name in &spec.sandbox.env {
        match std::env::var(name) {
            Ok(value) => {
                builder.env(name, value);
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                tracing::warn!(variable = %name, "granted variable is not UTF-8; not passed");
            }
        }
    }
    for grant in &spec.dirs {
        let access = if grant.writable {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        preopen(&mut builder, &grant.host, &grant.guest, access)?;
    }
    if let (Some(access), Some(call)) = (spec.sandbox.rootfs, call) {
        let rootfs = rootfs_of(call);
        preopen(&mut builder, &rootfs, ROOTFS_GUEST_PATH, access)?;
    }
    Ok(builder.build())
}

/// The container's rootfs on the host: `root.path` of the spec, relative to the bundle
/// unless absolute (runtime-spec `config.md`, "Root").
fn rootfs_of(call: &Call) -> PathBuf {
    let root = Path::new(&call.call.spec.root_path);
    if root.is_absolute() {
        root.to_path_buf()
    } else {
        Path::new(&call.call.state.bundle).join(root)
    }
}

pub(super) fn preopen(
    builder: &mut WasiCtxBuilder,
    host: &Path,
    guest: &str,
    access: Access,
) -> Result<(), FailureCause> {
    let grant_err = |reason: String| FailureCause::Grant {
        host: host.to_path_buf(),
        guest: guest.to_string(),
        reason,
    };
    match fs::metadata(host) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(grant_err("not a directory".to_string())),
        Err(e) => return Err(grant_err(e.to_string())),
    }
    let perms = match access {
        Access::ReadOnly => FsPerms::ReadOnly,
        Access::ReadWrite => FsPerms::ReadWrite,
    };
    builder
        .preopened_dir(host, guest, perms)
        .map_err(|e| grant_err(describe(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(clock: bool, random: bool) -> SandboxGrants {
        SandboxGrants {
            clock,
            random,
            ..SandboxGrants::default()
        }
    }

    #[test]
    fn what_rust_std_imports_is_allowed() {
        let std_imports = [
            "wasi:cli/environment@0.2.6",
            "wasi:cli/exit@0.2.6",
            "wasi:cli/stdin@0.2.6",
            "wasi:cli/stdout@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:cli/terminal-input@0.2.6",
            "wasi:cli/terminal-stderr@0.2.6",
            "wasi:io/poll@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:filesystem/preopens@0.2.6",
            "rwasm:plugin/host@0.2.0",
            "rwasm:plugin/types@0.1.0",
        ];
        check_imports(&grants(false, false), std_imports).expect("allowed");
    }

    #[test]
    fn clocks_and_random_follow_their_grants() {
        let clock = ["wasi:clocks/monotonic-clock@0.2.6"];
        let random = ["wasi:random/insecure-seed@0.2.6"];
        check_imports(&grants(true, true), clock.into_iter().chain(random)).expect("granted");
        let err = check_imports(&grants(false, true), clock).unwrap_err();
        assert_eq!(
            err.to_string(),
            "imports `wasi:clocks/monotonic-clock@0.2.6`, which is not granted: clock is not \
             granted (`[plugin.grants] clock = false`)"
        );
        let err = check_imports(&grants(true, false), random).unwrap_err();
        assert!(err.to_string().contains("random is not granted"), "{err}");
    }

    #[test]
    fn sockets_http_and_unknown_imports_are_refused() {
        let all = grants(true, true);
        for (import, reason) in [
            ("wasi:sockets/tcp@0.2.6", "plugins get no sockets"),
            ("wasi:http/outgoing-handler@0.2.6", "plugins get no network"),
            ("wasi:cli/run@0.2.6", "no such interface"),
            ("rwasm:plugin/host@1.0.0", "this rwasm offers only"),
            ("acme:exec/spawn", "no such interface"),
            ("plain-function", "not an interface"),
        ] {
            let err = check_imports(&all, [import]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(import) && text.contains(reason), "{text}");
        }
    }
}
