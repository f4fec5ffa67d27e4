//! `linux.seccomp`: a seccomp-bpf filter compiled with libseccomp from the spec and loaded
//! into the calling (single-threaded) process just before it execs the user process
//! (runtime-spec `config-linux.md`, "Seccomp"; seccomp(2), seccomp_rule_add(3)).
//!
//! The rules follow runc's `libcontainer/seccomp/seccomp_linux.go`:
//! - a syscall name libseccomp does not know on this machine is skipped (a profile may name
//!   syscalls of newer kernels or other architectures);
//! - a rule whose action equals the default action is skipped (libseccomp refuses it);
//! - `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` without `errnoRet` return `EPERM`;
//! - conditions on distinct arguments are ANDed in one rule; when one argument is compared
//!   more than once (libseccomp allows one comparison per argument and rule), each
//!   condition becomes a rule of its own, so they are ORed;
//! - `SCMP_CMP_MASKED_EQ` takes `value` as the mask and `valueTwo` as the datum;
//! - the filter never sets `no_new_privs` itself: `process.noNewPrivileges` decides that,
//!   and without it the filter is loaded while the process still holds CAP_SYS_ADMIN.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// The highest argument index a syscall has (seccomp compares arguments 0 to 5).
const MAX_ARG_INDEX: usize = 5;

/// A `linux.seccomp` that cannot be compiled or loaded; names the field.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A field has a value the runtime refuses; `field` is its path in config.json, e.g.
    /// `linux.seccomp.syscalls[2].args[0].index`.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path in config.json.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// libseccomp refused an operation (a rule, an attribute, the load itself).
    #[error("{field}: libseccomp cannot {what}")]
    Libseccomp {
        /// The field the operation came from (`linux.seccomp` for the load).
        field: String,
        /// The operation, e.g. `add a rule for "clone"`.
        what: String,
        /// libseccomp's error (its errno, when the kernel or library gave one).
        #[source]
        source: libseccomp::error::SeccompError,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn lib(
    field: impl Into<String>,
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let (field, what) = (field.into(), what.into());
    move |source| SeccompError::Libseccomp {
        field,
        what,
        source,
    }
}

/// A compiled filter, ready for [`Filter::load`].
pub struct Filter {
    ctx: ScmpFilterContext,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

impl Filter {
    /// Load the filter into the calling thread (and, with `SECCOMP_FILTER_FLAG_TSYNC`,
    /// all its threads). Needs `no_new_privs` set or CAP_SYS_ADMIN (seccomp(2)); every
    /// syscall the process makes afterwards, execve included, goes through it.
    pub fn load(&self) -> Result<(), SeccompError> {
        self.ctx
            .load()
            .map_err(lib("linux.seccomp", "load the filter"))
    }
}

/// The version of the libseccomp library in use, e.g. `2.5.4`.
pub fn library_version() -> Option<String> {
    libseccomp::ScmpVersion::current()
        .ok()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
}

/// The action of `field` (`…defaultAction` or `…syscalls[i].action`) with its `errnoRet`.
pub fn action(
    field: &str,
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    let ret = |name: &str| -> Result<u16, SeccompError> {
        let v = errno_ret.unwrap_or(libc::EPERM.unsigned_abs());
        u16::try_from(v).map_err(|_| {
            invalid(
                format!("{field} ({name}) errnoRet"),
                format!("{v} is out of range (0 to 65535)"),
            )
        })
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret("SCMP_ACT_ERRNO")?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret("SCMP_ACT_TRACE")?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                field,
                "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which rwasm does not support",
            ));
        }
    })
}

/// libseccomp's architecture token for a spec architecture.
pub fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// libseccomp's comparison for a spec argument condition: (op, datum).
pub fn condition(
    field: &str,
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Result<ScmpArgCompare, SeccompError> {
    if index > MAX_ARG_INDEX {
        return Err(invalid(
            format!("{field}.index"),
            format!("{index} is past the last syscall argument ({MAX_ARG_INDEX})"),
        ));
    }
    let (op, datum) = match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            value_two.unwrap_or_default(),
        ),
    };
    #[allow(clippy::cast_possible_truncation)] // index ≤ 5, checked above
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

/// Compile `linux.seccomp` into a filter (see the module docs for the rules).
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action(
        "linux.seccomp.defaultAction",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib(
        "linux.seccomp.defaultAction",
        "create a filter with this default action",
    ))?;
    // The spec's noNewPrivileges decides; libseccomp would otherwise set it on load.
    ctx.set_ctl_nnp(false)
        .map_err(lib("linux.seccomp", "leave no_new_privs alone"))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.architectures[{i}]");
        let a = arch(*a);
        let present = ctx
            .is_arch_present(a)
            .map_err(lib(&field, format!("look up {a:?}")))?;
        if !present {
            ctx.add_arch(a).map_err(lib(&field, format!("add {a:?}")))?;
        }
    }
    for (i, f) in s.flags().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.flags[{i}]");
        let r = match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
        };
        r.map_err(lib(&field, format!("set {f}")))?;
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), sc.action(), sc.errno_ret())?;
        let conds = sc
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, a)| {
                condition(
                    &format!("{field}.args[{j}]"),
                    a.index(),
                    a.value(),
                    a.value_two(),
                    a.op(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if act == default {
            continue;
        }
        let mut indices: Vec<usize> = sc.args().iter().flatten().map(|a| a.index()).collect();
        indices.sort_unstable();
        let repeated = indices.windows(2).any(|w| w[0] == w[1]);
        for name in sc.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!("{field}.names: unknown syscall {name:?} skipped");
                continue;
            };
            let what = || format!("add a rule for {name:?}");
            if repeated {
                for c in &conds {
                    ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                        .map_err(lib(&field, what()))?;
                }
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
                    .map_err(lib(&field, what()))?;
            }
        }
    }
    Ok(Filter { ctx })
}

/// A field-naming reason why `linux.seccomp` in a config.json that failed to parse is
/// wrong (an unknown action, operator, architecture or flag), or `None` when the
/// seccomp section is not the problem. `value` is the whole config.json.
pub fn explain_json(value: &serde_json::Value) -> Option<String> {
    let s = value.get("linux")?.get("seccomp")?;
    if s.is_null() {
        return None;
    }
    let bad = |field: String, v: &serde_json::Value, what: &str, known: &[&str]| {
        Some(format!(
            "{field}: unknown {what} {v} (expected one of {})",
            known.join(", ")
        ))
    };
    const ACTIONS: [&str; 9] = [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_ALLOW",
    ];
    const OPS: [&str; 7] = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let is_action =
        |v: &serde_json::Value| serde_json::from_value::<LinuxSeccompAction>(v.clone()).is_ok();
    let is_op =
        |v: &serde_json::Value| serde_json::from_value::<LinuxSeccompOperator>(v.clone()).is_ok();
    if let Some(v) = s.get("defaultAction")
        && !is_action(v)
    {
        return bad("linux.seccomp.defaultAction".into(), v, "action", &ACTIONS);
    }
    for (i, a) in s
        .get("architectures")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if serde_json::from_value::<Arch>(a.clone()).is_err() {
            return Some(format!(
                "linux.seccomp.architectures[{i}]: unknown architecture {a}"
            ));
        }
    }
    for (i, f) in s
        .get("flags")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if serde_json::from_value::<LinuxSeccompFilterFlag>(f.clone()).is_err() {
            return Some(format!("linux.seccomp.flags[{i}]: unknown flag {f}"));
        }
    }
    for (i, sc) in s
        .get("syscalls")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(v) = sc.get("action")
            && !is_action(v)
        {
            return bad(
                format!("linux.seccomp.syscalls[{i}].action"),
                v,
                "action",
                &ACTIONS,
            );
        }
        for (j, a) in sc
            .get("args")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(v) = a.get("op")
                && !is_op(v)
            {
                return bad(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].op"),
                    v,
                    "operator",
                    &OPS,
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seccomp(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn actions_carry_their_errno() {
        let f = "f";
        assert_eq!(
            action(f, LinuxSeccompAction::ScmpActErrno, None).unwrap(),
            ScmpAction::Errno(libc::EPERM)
        );
        assert_eq!(
            action(f, LinuxSeccompAction::ScmpActErrno, Some(38)).unwrap(),
            ScmpAction::Errno(38)
        );
        assert_eq!(
            action(f, LinuxSeccompAction::ScmpActTrace, Some(7)).unwrap(),
            ScmpAction::Trace(7)
        );
        assert_eq!(
            action(f, LinuxSeccompAction::ScmpActKill, None).unwrap(),
            ScmpAction::KillThread
        );
        assert_eq!(
            action(f, LinuxSeccompAction::ScmpActKillProcess, None).unwrap(),
            ScmpAction::KillProcess
        );
        let e = action("x.action", LinuxSeccompAction::ScmpActErrno, Some(70000)).unwrap_err();
        assert!(e.to_string().contains("x.action"), "{e}");
        let e = action("x.action", LinuxSeccompAction::ScmpActNotify, None).unwrap_err();
        assert!(
            e.to_string().starts_with("x.action: SCMP_ACT_NOTIFY"),
            "{e}"
        );
    }

    #[test]
    fn masked_eq_takes_value_as_mask_and_value_two_as_datum() {
        let c = condition(
            "a",
            0,
            0x7E02_0000,
            Some(0),
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )
        .unwrap();
        assert_eq!(
            c,
            ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(0x7E02_0000), 0)
        );
        let c = condition("a", 2, 5, None, LinuxSeccompOperator::ScmpCmpGe).unwrap();
        assert_eq!(c, ScmpArgCompare::new(2, ScmpCompareOp::GreaterEqual, 5));
        let e = condition("s.args[0]", 6, 0, None, LinuxSeccompOperator::ScmpCmpEq).unwrap_err();
        assert!(e.to_string().starts_with("s.args[0].index: 6"), "{e}");
    }

    #[test]
    fn a_profile_compiles_skipping_unknown_names_and_default_rules() {
        let f = compile(&seccomp(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_NATIVE"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_syscall_here"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}
            ]
        })))
        .unwrap();
        drop(f);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = compile(&seccomp(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.syscalls[0].action:"),
            "{e}"
        );
        let cfg = serde_json::json!({"linux": {"seccomp": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]
        }}});
        let why = explain_json(&cfg).unwrap();
        assert!(
            why.starts_with(
                "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_SOMETIMES\""
            ),
            "{why}"
        );
        let cfg = serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_MAYBE"}}});
        assert!(
            explain_json(&cfg)
                .unwrap()
                .starts_with("linux.seccomp.defaultAction: unknown action")
        );
        assert_eq!(explain_json(&serde_json::json!({"linux": {}})), None);
    }
}
