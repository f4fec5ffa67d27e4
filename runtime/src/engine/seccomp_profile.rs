//! The default seccomp profile of `rwasm run`, and `--security-opt seccomp=FILE` profiles.
//!
//! Our own profile, written as a blocklist over a default-allow filter: it refuses, with
//! `EPERM`, the system calls that Docker's documentation lists as blocked by its default
//! profile ("Seccomp security profiles for Docker", "Significant syscalls blocked by the
//! default profile"), and lifts each group when the container holds the capability that
//! Docker's profile gates it on (so `--cap-add SYS_ADMIN` allows `mount`, `--cap-add
//! SYS_TIME` allows `settimeofday`, ...). `clone` and `unshare` creating namespaces,
//! `clone3` (`ENOSYS`, so libc falls back to `clone`) and `personality` outside Linux's
//! own personas are refused the same way. Architectures: the native one plus its 32-bit
//! companions, so a 32-bit program runs and meets the same rules.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// System calls refused unless the container holds a capability, by capability (Docker's
/// profile gates the same calls on the same capabilities). `None`: always refused.
const GATED: &[(Option<Capability>, &[&str])] = &[
    // Kernel keyring: not namespaced.
    (None, &["add_key", "keyctl", "request_key"]),
    // Obsolete or host-wide calls with no place in a container.
    (
        None,
        &[
            "kexec_load",
            "kexec_file_load",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vm86",
            "vm86old",
            "swapon",
            "swapoff",
            "move_pages",
            "userfaultfd",
        ],
    ),
    (
        Some(Capability::SysAdmin),
        &[
            "mount",
            "mount_setattr",
            "umount",
            "umount2",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "open_tree",
            "move_mount",
            "pivot_root",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "fanotify_init",
            "lookup_dcookie",
            "name_to_handle_at",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "syslog",
        ],
    ),
    (Some(Capability::SysBoot), &["reboot"]),
    (
        Some(Capability::SysModule),
        &["init_module", "finit_module", "delete_module"],
    ),
    (Some(Capability::SysPacct), &["acct"]),
    (
        Some(Capability::SysPtrace),
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    (Some(Capability::SysRawio), &["iopl", "ioperm"]),
    (
        Some(Capability::SysTime),
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    (Some(Capability::SysTtyConfig), &["vhangup"]),
    (
        Some(Capability::SysNice),
        &[
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
            "mbind",
        ],
    ),
    (Some(Capability::DacReadSearch), &["open_by_handle_at"]),
];

/// `ptrace` and `process_vm_{readv,writev}` are safe from kernel 4.8 on (Docker allows
/// them there); before, they need CAP_SYS_PTRACE.
const PTRACE: [&str; 3] = ["ptrace", "process_vm_readv", "process_vm_writev"];

/// The `clone(2)` flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET): together Docker's mask 0x7E020000.
const CLONE_NS_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The `personality(2)` bits a container may set: PER_LINUX32 (0x8) and UNAME26
/// (0x20000); 0 is PER_LINUX and 0xffffffff only queries.
const PERSONA_ALLOWED: u64 = 0x0002_0008;

fn rule(names: &[&str], errno: u32, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(LinuxSeccompAction::ScmpActErrno);
    s.set_errno_ret(Some(errno));
    if !args.is_empty() {
        s.set_args(Some(args));
    }
    s
}

fn masked(index: usize, mask: u64, value: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(mask)
        .value_two(value)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()
        .expect("static seccomp argument")
}

/// Rules refusing `personality(x)` unless x is 0xffffffff or only has allowed bits.
///
/// libseccomp compares an argument once per rule, so "not one of these values" is a set
/// of rules that are ORed: for the forbidden bits b0..bn taken in a ring, "bi set and
/// bi+1 clear" for each i. A value escapes them all only when its forbidden bits are all
/// clear (allowed) or all set; of the latter, only 0xffffffff itself is allowed.
fn personality_rules() -> Vec<LinuxSyscall> {
    const EPERM: u32 = 1;
    let forbidden: Vec<u64> = (0..32)
        .map(|b| 1u64 << b)
        .filter(|b| b & PERSONA_ALLOWED == 0)
        .collect();
    let mut rules: Vec<LinuxSyscall> = forbidden
        .iter()
        .zip(forbidden.iter().cycle().skip(1))
        .map(|(&b, &next)| rule(&["personality"], EPERM, vec![masked(0, b | next, b)]))
        .collect();
    for v in [0xffff_fff7u64, 0xfffd_ffff, 0xfffd_fff7] {
        rules.push(rule(
            &["personality"],
            EPERM,
            vec![masked(0, 0xffff_ffff, v)],
        ));
    }
    rules
}

/// Whether the running kernel is at least `major.minor` (false when uname cannot tell).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// The architectures of the profile: this machine's, with its 32-bit companions.
fn architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The default profile for a container whose bounding set is `caps` (module docs).
pub fn default_profile(caps: &HashSet<Capability>) -> LinuxSeccomp {
    const EPERM: u32 = 1;
    const ENOSYS: u32 = 38;
    let has = |c: &Capability| caps.contains(c);
    let mut syscalls = Vec::new();
    for (cap, names) in GATED {
        if cap.as_ref().is_none_or(|c| !has(c)) {
            syscalls.push(rule(names, EPERM, vec![]));
        }
    }
    if !has(&Capability::SysPtrace) && !kernel_at_least(4, 8) {
        syscalls.push(rule(&PTRACE, EPERM, vec![]));
    }
    if !has(&Capability::SysAdmin) {
        for flag in CLONE_NS_FLAGS {
            // clone's flags are its first argument on x86 and arm (s390 swaps the first two).
            syscalls.push(rule(&["clone"], EPERM, vec![masked(0, flag, flag)]));
        }
        syscalls.push(rule(&["clone3"], ENOSYS, vec![]));
    }
    syscalls.extend(personality_rules());
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActAllow);
    s.set_architectures(Some(architectures()));
    s.set_syscalls(Some(syscalls));
    s
}

/// A `--security-opt seccomp=FILE` profile that cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("--security-opt seccomp: cannot read {path}")]
    Read {
        /// The profile file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a seccomp profile (JSON with the runtime-spec's `linux.seccomp`
    /// fields, or Docker's profile format).
    #[error("--security-opt seccomp: {path}: {reason}")]
    Parse {
        /// The profile file.
        path: std::path::PathBuf,
        /// What is wrong, naming the field when known.
        reason: String,
    },
}

/// Read a profile file: the runtime-spec's `linux.seccomp` object, or Docker's format
/// (`archMap` with `architecture`/`subArchitectures`, and `includes`/`excludes` by
/// `caps` and `arches` on each syscall entry, judged against `caps` and this machine).
pub fn load_profile(
    path: &std::path::Path,
    caps: &HashSet<Capability>,
) -> Result<LinuxSeccomp, ProfileError> {
    let bytes = std::fs::read(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| ProfileError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| bad("expected a JSON object".into()))?;
    let native = architectures()
        .first()
        .and_then(|a| serde_json::to_value(a).ok())
        .and_then(|a| a.as_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(map) = obj.remove("archMap") {
        // Docker: the entry for this machine's architecture and its sub-architectures.
        let mut arches = Vec::new();
        for entry in map.as_array().into_iter().flatten() {
            if entry.get("architecture").and_then(|a| a.as_str()) == Some(native.as_str()) {
                arches.push(serde_json::Value::String(native.clone()));
                arches.extend(
                    entry
                        .get("subArchitectures")
                        .and_then(|s| s.as_array())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        if !arches.is_empty() {
            obj.insert("architectures".into(), serde_json::Value::Array(arches));
        }
    }
    let cap_names: HashSet<String> = caps
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let arch_short = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let matches = |filter: &serde_json::Value| -> (bool, bool) {
        // (any caps listed and held, any arches listed and this one)
        let held = filter.get("caps").and_then(|c| c.as_array()).map(|c| {
            c.iter()
                .filter_map(|x| x.as_str())
                .any(|x| cap_names.contains(x))
        });
        let arch = filter
            .get("arches")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).any(|x| x == arch_short));
        (held.unwrap_or(true), arch.unwrap_or(true))
    };
    if let Some(calls) = obj.get_mut("syscalls").and_then(|s| s.as_array_mut()) {
        calls.retain_mut(|c| {
            let Some(o) = c.as_object_mut() else {
                return true;
            };
            let keep_inc = o.remove("includes").is_none_or(|i| {
                let (caps_ok, arch_ok) = matches(&i);
                caps_ok && arch_ok
            });
            let keep_exc = o.remove("excludes").is_none_or(|e| {
                let caps_listed = e.get("caps").is_some();
                let arches_listed = e.get("arches").is_some();
                let (caps_hit, arch_hit) = matches(&e);
                !((caps_listed && caps_hit) || (arches_listed && arch_hit))
            });
            o.remove("comment");
            o.remove("name")
                .map(|n| o.insert("names".into(), serde_json::json!([n])));
            keep_inc && keep_exc
        });
    }
    let wrapped = serde_json::json!({"linux": {"seccomp": v}});
    if let Some(why) = crate::linux::seccomp::explain_json(&wrapped) {
        return Err(bad(why));
    }
    serde_json::from_value(wrapped["linux"]["seccomp"].clone()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &LinuxSeccomp) -> HashSet<String> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn the_default_profile_lifts_groups_by_capability() {
        let docker: HashSet<Capability> = super::super::docker::DEFAULT_CAPS.into_iter().collect();
        let p = default_profile(&docker);
        let blocked = names(&p);
        for n in [
            "mount",
            "unshare",
            "kexec_load",
            "reboot",
            "keyctl",
            "bpf",
            "settimeofday",
        ] {
            assert!(blocked.contains(n), "{n} must be blocked by default");
        }
        assert!(
            !blocked.contains("ptrace"),
            "ptrace is allowed on kernels >= 4.8"
        );
        let mut admin = docker.clone();
        admin.insert(Capability::SysAdmin);
        let blocked = names(&default_profile(&admin));
        assert!(!blocked.contains("mount") && !blocked.contains("unshare"));
        assert!(blocked.contains("kexec_load") && blocked.contains("reboot"));
        crate::linux::seccomp::compile(&p).expect("the default profile compiles");
    }

    #[test]
    fn personality_rules_allow_linux_personas_only() {
        // Evaluate the rules as the kernel would: any matching rule refuses the call.
        let rules = personality_rules();
        let refused = |x: u64| {
            rules.iter().any(|r| {
                r.args()
                    .iter()
                    .flatten()
                    .all(|a| x & a.value() == a.value_two().unwrap_or_default())
            })
        };
        for ok in [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
            assert!(!refused(ok), "{ok:#x} must be allowed");
        }
        for bad in [
            0x1u64,
            0x40000,
            0x40008,
            0x8004_0000,
            0xffff_fff7,
            0xfffd_ffff,
            0x7fff_ffff,
        ] {
            assert!(refused(bad), "{bad:#x} must be refused");
        }
    }

    #[test]
    fn docker_format_profiles_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.json");
        std::fs::write(
            &p,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
               "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                          {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
               "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","comment":"io"},
                           {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                           {"names":["chmod"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_CHOWN"]}}]}"#,
        )
        .unwrap();
        let caps: HashSet<Capability> = [Capability::Chown].into_iter().collect();
        let s = load_profile(&p, &caps).unwrap();
        let all: Vec<String> = s
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().clone())
            .collect();
        assert_eq!(all, ["read", "write"]);
        assert_eq!(s.default_errno_ret(), Some(1));
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                s.architectures().clone().unwrap(),
                [Arch::ScmpArchX86_64, Arch::ScmpArchX86]
            );
        }
        std::fs::write(&p, r#"{"defaultAction":"SCMP_ACT_SOMETIMES"}"#).unwrap();
        let e = load_profile(&p, &caps).unwrap_err().to_string();
        assert!(
            e.contains("linux.seccomp.defaultAction: unknown action"),
            "{e}"
        );
    }
}
