//! `linux.seccomp` applied by the runtime: a blocked syscall fails with the profile's errno
//! inside containers started through the OCI CLI (`run --bundle`, `create` + `start`),
//! with and without noNewPrivileges; bad profiles fail naming the field. (`rwasm run`'s
//! default profile and `exec` under a profile: `docker_flags.rs`.)
//! Root only (they fail, never skip, otherwise).

mod common;

use common::*;
use serde_json::{Value, json};

/// mkdir and mkdirat refused with `errno` (busybox's mkdir uses mkdir(2) on x86_64).
fn deny_mkdir(errno: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat", "not_a_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [rule]
    }}})
}

fn run_bundle(w: &World, b: &std::path::Path, id: &str) -> std::process::Output {
    w.rwasm(&["run", "--bundle", b.to_str().unwrap(), id])
}

#[test]
fn a_blocked_syscall_fails_with_the_profiles_errno() {
    let w = World::new();
    let script = "mkdir /tmp/x; echo rc=$?; touch /tmp/y && echo touched";
    // EACCES (13) as errnoRet, no noNewPrivileges: loaded while CAP_SYS_ADMIN is held.
    let b = w.bundle("a", &["sh", "-c", script], deny_mkdir(Some(13)));
    let out = run_bundle(&w, &b, &id("sc-eacces"));
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("rc=1") && o.contains("touched"), "{o}{e}");
    assert!(e.contains("Permission denied"), "EACCES expected: {e}");
    assert!(!b.join("rootfs/tmp/x").exists());

    // Without errnoRet: EPERM; with noNewPrivileges: loaded after the capability switch.
    let mut patch = deny_mkdir(None);
    merge(
        &mut patch,
        json!({"process": {"noNewPrivileges": true, "user": {"uid": 1000, "gid": 1000}}}),
    );
    let b = w.bundle("b", &["sh", "-c", script], patch);
    std::fs::set_permissions(
        b.join("rootfs/tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out = run_bundle(&w, &b, &id("sc-eperm"));
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("rc=1") && o.contains("touched"), "{o}{e}");
    assert!(e.contains("Operation not permitted"), "EPERM expected: {e}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status.contains("NoNewPrivs:\t0"),
        "the runtime itself is untouched"
    );
}

#[test]
fn create_and_start_apply_the_filter_and_seccomp_shows_in_proc() {
    let w = World::new();
    let b = w.bundle(
        "b",
        &[
            "sh",
            "-c",
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /tmp/out; mkdir /tmp/d 2>> /tmp/out; echo rc=$? >> /tmp/out",
        ],
        deny_mkdir(Some(38)),
    );
    let c = id("sc-cs");
    let (code, err) = w.rwasm_detached(&["create", "--bundle", b.to_str().unwrap(), &c]);
    assert_eq!(code, 0, "create: {err}");
    let (code, err) = w.rwasm_detached(&["start", &c]);
    assert_eq!(code, 0, "start: {err}");
    w.wait_status(&c, "stopped");
    let out = std::fs::read_to_string(b.join("rootfs/tmp/out")).unwrap();
    assert!(
        out.contains("Seccomp:\t2"),
        "filter mode (2) expected: {out}"
    );
    assert!(
        out.contains("NoNewPrivs:\t0"),
        "the filter sets no NNP: {out}"
    );
    assert!(out.contains("not implemented"), "ENOSYS expected: {out}");
    assert!(out.contains("rc=1"), "{out}");
    assert_eq!(w.rwasm_detached(&["delete", &c]).0, 0);
}

#[test]
fn bad_profiles_fail_create_naming_the_field() {
    let w = World::new();
    let b = w.bundle(
        "op",
        &["true"],
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ODD"}]}
        ]}}}),
    );
    let out = run_bundle(&w, &b, &id("sc-op"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("linux.seccomp.syscalls[0].args[0].op: unknown operator"),
        "{}",
        stderr(&out)
    );
    let b = w.bundle(
        "act",
        &["true"],
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_SOMETIMES"}}}),
    );
    let out = run_bundle(&w, &b, &id("sc-act"));
    assert!(
        stderr(&out).contains("linux.seccomp.defaultAction: unknown action"),
        "{}",
        stderr(&out)
    );
    let c = id("sc-idx");
    let b = w.bundle(
        "idx",
        &["true"],
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}
        ]}}}),
    );
    let out = run_bundle(&w, &b, &c);
    assert!(
        stderr(&out).contains("linux.seccomp.syscalls[0].args[0].index: 9"),
        "{}",
        stderr(&out)
    );
    assert!(!w.root.join(&c).exists(), "a failed create leaves nothing");
    assert!(cgroup_dirs_named(&c).is_empty());
}
