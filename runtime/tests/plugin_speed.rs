//! The call path's two roads hold the deadline: inline calls (plugins without filesystem
//! grants, epoch ticker, clock waits bounded by the deadline) and worker calls (plugins
//! with `dirs` grants). Uses the misbehave plugin's `sleep` and `loop` modes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::{Spec, State};
use rwasm::plugin::{FailureCause, HookPoint, PluginError, PluginSet};

fn misbehave() -> PathBuf {
    let dir = std::env::var_os("RWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .expect("RWASM_PLUGIN_DIR is not set: run the tests through `make test`");
    let f = dir.join("misbehave.wasm");
    assert!(f.exists(), "{} is missing: run `make plugins`", f.display());
    f
}

/// A set with misbehave in `mode`; with a `dirs` grant when `granted` (worker path).
fn set(
    tmp: &tempfile::TempDir,
    mode: &str,
    sleep_ms: u64,
    timeout_ms: u64,
    granted: bool,
) -> PluginSet {
    let grants = if granted {
        format!(
            "[plugin.grants]\ndirs = {{ \"{}\" = \"/data\" }}\n",
            tmp.path().display()
        )
    } else {
        String::new()
    };
    let text = format!(
        "[[plugin]]\nname = \"m\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"poststop\"]\n\
         timeout-ms = {timeout_ms}\n[plugin.config]\nmode = \"{mode}\"\nsleep-ms = {sleep_ms}\n{grants}",
        misbehave().display()
    );
    let m = tmp.path().join(format!("{mode}-{sleep_ms}-{granted}.toml"));
    std::fs::write(&m, text).unwrap();
    PluginSet::load(&m, &tmp.path().join("cache")).unwrap()
}

fn call(set: &PluginSet) -> (Result<(), PluginError>, Duration) {
    let started = Instant::now();
    let r = set.invoke(HookPoint::Poststop, &State::default(), &Spec::default());
    (r, started.elapsed())
}

fn assert_deadline(r: Result<(), PluginError>, timeout_ms: u64) {
    match r {
        Err(PluginError::Failed {
            cause: FailureCause::Deadline { timeout_ms: t },
            ..
        }) => {
            assert_eq!(t, timeout_ms)
        }
        other => panic!("expected the deadline, got {other:?}"),
    }
}

#[test]
fn inline_and_worker_calls_stop_a_long_sleep_at_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    for granted in [false, true] {
        let s = set(&tmp, "sleep", 5000, 100, granted);
        let _ = call(&s); // compiles
        let (r, took) = call(&s);
        assert_deadline(r, 100);
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(2000),
            "granted={granted}: a 5 s sleep with timeout-ms = 100 took {took:?}"
        );
    }
}

#[test]
fn inline_and_worker_calls_stop_a_loop_at_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    for granted in [false, true] {
        let s = set(&tmp, "loop", 0, 100, granted);
        let _ = call(&s);
        let (r, took) = call(&s);
        assert_deadline(r, 100);
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(2000),
            "granted={granted}: a loop with timeout-ms = 100 took {took:?}"
        );
    }
}

#[test]
fn a_short_sleep_inside_the_deadline_completes() {
    let tmp = tempfile::tempdir().unwrap();
    for granted in [false, true] {
        let s = set(&tmp, "sleep", 30, 1000, granted);
        let _ = call(&s);
        let (r, took) = call(&s);
        r.unwrap_or_else(|e| panic!("granted={granted}: {e:?}"));
        assert!(
            took >= Duration::from_millis(30) && took < Duration::from_millis(500),
            "granted={granted}: a 30 ms sleep took {took:?}"
        );
    }
}

#[test]
fn calls_after_a_deadline_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let s = set(&tmp, "sleep", 5000, 50, false);
    assert_deadline(call(&s).0, 50);
    let ok = set(&tmp, "ok", 0, 50, false);
    for _ in 0..20 {
        ok_call(&ok);
    }
}

fn ok_call(s: &PluginSet) {
    let (r, _) = call(s);
    r.expect("ok mode allows");
}

/// A plugin with a filesystem grant blocked in a file operation (audit opening its log,
/// here a FIFO nobody reads) cannot be interrupted by the epoch: the caller gives up the
/// worker after the deadline plus the grace, and the next call gets a new worker.
#[test]
fn a_worker_blocked_in_a_file_operation_is_abandoned_at_its_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir(&log).unwrap();
    let fifo = log.join("audit.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let audit = misbehave().with_file_name("audit.wasm");
    let m = tmp.path().join("audit.toml");
    std::fs::write(
        &m,
        format!(
            "[[plugin]]\nname = \"audit\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"poststop\"]\n\
             timeout-ms = 100\n[plugin.grants]\ndirs = {{ \"{}\" = \"/log:rw\" }}\n",
            audit.display(),
            log.display()
        ),
    )
    .unwrap();
    let set = PluginSet::load(&m, &tmp.path().join("cache")).unwrap();
    let (r, took) = call(&set);
    assert_deadline(r, 100);
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(2500),
        "a call blocked opening a FIFO took {took:?} for timeout-ms = 100"
    );
    // Unblock the abandoned call: open the FIFO for reading and drain it.
    let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
    let lines = reader.join().unwrap();
    assert!(lines.is_empty() || lines.ends_with(b"\n"));
    // The log is still a FIFO: once the abandoned call has ended (until then the plugin is
    // not called: `StillBlocked`), a second call blocks again, on a new worker.
    let mut tries = 0;
    let r = loop {
        match call(&set).0 {
            Err(PluginError::Failed {
                cause: FailureCause::StillBlocked,
                ..
            }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            r => break r,
        }
    };
    assert_deadline(r, 100);
    let fifo = log.join("audit.jsonl");
    let _ = std::thread::spawn(move || std::fs::read(&fifo)).join();
}

/// A plugin that wedges in a file operation on every call (audit writing to a FIFO nobody
/// reads) must not take the instance pool from the others: after its first abandoned call
/// it is not called again while that call still runs, and a well-behaved plugin at the
/// same hook point keeps working for every later container operation of the process.
#[test]
fn a_wedged_plugin_does_not_exhaust_the_pool_for_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir(&log).unwrap();
    let fifo = log.join("audit.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let audit = misbehave().with_file_name("audit.wasm");
    let m = tmp.path().join("wedged.toml");
    std::fs::write(
        &m,
        format!(
            "[[plugin]]\nname = \"audit\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"poststop\"]\n\
             timeout-ms = 100\non-error = \"ignore\"\n[plugin.grants]\ndirs = {{ \"{}\" = \"/log:rw\" }}\n\n\
             [[plugin]]\nname = \"good\"\npath = \"{}\"\nkind = \"hook\"\nhooks = [\"poststop\"]\n\
             timeout-ms = 500\n[plugin.config]\nmode = \"ok\"\n",
            audit.display(),
            log.display(),
            misbehave().display()
        ),
    )
    .unwrap();
    let set = PluginSet::load(&m, &tmp.path().join("cache")).unwrap();
    let started = Instant::now();
    for round in 0..8 {
        let (r, _) = call(&set);
        r.unwrap_or_else(|e| panic!("round {round}: the good plugin's call failed: {e}"));
    }
    // Only the first audit call waited for its deadline (+ the 250 ms grace).
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "8 rounds took {:?}: the wedged plugin was called again",
        started.elapsed()
    );
    let _ = std::thread::spawn(move || std::fs::read(&fifo)).join();
}
