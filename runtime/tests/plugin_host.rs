//! The plugin host with real wasm components, through the public API only.
//!
//! The test plugins (`plugins/` in the workspace, built for wasm32-wasip2) are found in
//! `$RWASM_PLUGIN_DIR` as `env_inject.wasm`, `policy.wasm`, `audit.wasm` and
//! `misbehave.wasm`; the Makefile builds them and sets it. Every test writes its own manifest into a temp
//! directory, with its own compile cache.

use std::error::Error;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    Capability, ContainerState, LinuxMemoryBuilder, LinuxResourcesBuilder, Spec, State,
    StateBuilder,
};
use rwasm::plugin::{FailureCause, HookPoint, Phase, PluginError, PluginSet};
use tempfile::TempDir;

/// Absolute path of a test plugin, or a panic that says how to get it.
fn plugin(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os("RWASM_PLUGIN_DIR") else {
        panic!(
            "RWASM_PLUGIN_DIR is not set: build the test plugins (plugins/, for wasm32-wasip2; the \
             Makefile's test target does it) and set RWASM_PLUGIN_DIR to the directory holding \
             env_inject.wasm, policy.wasm, audit.wasm and misbehave.wasm"
        );
    };
    let path = Path::new(&dir).join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "test plugin {} is missing: build the plugins (see the Makefile) or fix RWASM_PLUGIN_DIR",
        path.display()
    );
    path
}

/// A manifest in a temp dir; `{name}` in the text is replaced by that plugin's path.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn load(&self, manifest: &str) -> PluginSet {
        self.try_load(manifest)
            .unwrap_or_else(|e| panic!("manifest does not load: {}", chain(&e)))
    }

    fn try_load(&self, manifest: &str) -> Result<PluginSet, PluginError> {
        let mut text = manifest.to_string();
        for name in ["env_inject", "policy", "audit", "misbehave"] {
            let pattern = format!("{{{name}}}");
            if text.contains(&pattern) {
                text = text.replace(
                    &pattern,
                    &format!("{:?}", plugin(name).to_str().expect("utf-8 path")),
                );
            }
        }
        let path = self.dir.path().join("plugins.toml");
        std::fs::write(&path, text).expect("write manifest");
        PluginSet::load(&path, &self.cache())
    }

    fn cwasm_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.cache()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        files.sort();
        files
    }
}

fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

fn state() -> State {
    StateBuilder::default()
        .version("1.2.0")
        .id("c0ffee")
        .status(ContainerState::Creating)
        .bundle("/run/rwasm/c0ffee")
        .build()
        .expect("state")
}

fn spec_with_memory_limit() -> Spec {
    let mut spec = Spec::default();
    let memory = LinuxMemoryBuilder::default()
        .limit(256i64 << 20)
        .build()
        .expect("memory");
    let resources = LinuxResourcesBuilder::default()
        .memory(memory)
        .build()
        .expect("resources");
    spec.linux_mut()
        .as_mut()
        .expect("default spec has linux")
        .set_resources(Some(resources));
    spec
}

fn env_of(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
}

/// A manifest for misbehave in `mode`, with `timeout-ms = 100` unless `extra` sets it.
fn misbehave(mode: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout-ms") {
        ""
    } else {
        "timeout-ms = 100"
    };
    format!(
        r#"
[[plugin]]
name = "misbehave"
path = {{misbehave}}
kind = "hook"
hooks = ["pre-create", "poststop"]
{timeout}
{extra}
[plugin.config]
mode = "{mode}"
"#
    )
}

/// The `Failed` error's phase and cause, or a panic.
fn failed(result: Result<impl std::fmt::Debug, PluginError>) -> (Phase, FailureCause, String) {
    match result {
        Err(e @ PluginError::Failed { .. }) => {
            let text = chain(&e);
            let PluginError::Failed { phase, cause, .. } = e else {
                unreachable!()
            };
            (phase, cause, text)
        }
        other => panic!("expected PluginError::Failed, got {other:?}"),
    }
}

fn invalid_field(result: Result<impl std::fmt::Debug, PluginError>) -> String {
    match result {
        Err(PluginError::InvalidAdjustment {
            plugin,
            field,
            reason,
        }) => {
            assert_eq!(plugin, "misbehave");
            format!("{field}: {reason}")
        }
        other => panic!("expected PluginError::InvalidAdjustment, got {other:?}"),
    }
}

#[test]
fn empty_set_wants_nothing() {
    let set = PluginSet::empty();
    assert!(set.manifest_path().is_none());
    assert!(HookPoint::ALL.iter().all(|&p| !set.wants(p)));
    let mut spec = Spec::default();
    assert!(
        set.pre_create(&state(), &mut spec)
            .expect("no plugins")
            .is_empty()
    );
    set.invoke(HookPoint::Poststop, &state(), &spec)
        .expect("no plugins");
}

#[test]
fn hook_points_round_trip() {
    for p in HookPoint::ALL {
        assert_eq!(p.to_string().parse::<HookPoint>(), Ok(p));
    }
    assert!("prestart".parse::<HookPoint>().is_err());
}

#[test]
fn env_inject_adds_the_configured_env() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "inject"
path = {env_inject}
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
RWASM_GREETING = "hello"
RWASM_ANSWER = "42"
"#,
    );
    assert!(set.wants(HookPoint::PreCreate));
    assert!(!set.wants(HookPoint::Poststop));
    assert!(fx.cwasm_files().is_empty(), "load must not compile");
    let mut spec = Spec::default();
    let before = env_of(&spec);
    let applied = set.pre_create(&state(), &mut spec).expect("pre-create");
    let env = env_of(&spec);
    assert!(env.contains(&"RWASM_GREETING=hello".to_string()), "{env:?}");
    assert!(env.contains(&"RWASM_ANSWER=42".to_string()), "{env:?}");
    for entry in before {
        assert!(env.contains(&entry), "original env entry {entry} kept");
    }
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied.iter().all(|a| a.plugin == "inject"));
    assert!(
        applied
            .iter()
            .any(|a| a.description.contains("RWASM_GREETING")),
        "{applied:?}"
    );
}

#[test]
fn policy_denies_a_spec_without_memory_limit_and_allows_one_with_it() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "policy"
path = {policy}
kind = "hook"
hooks = ["pre-create"]
on-error = "ignore"     # a denial is a decision, not a failure: still an error
"#,
    );
    let mut spec = Spec::default();
    let original = spec.clone();
    match set.pre_create(&state(), &mut spec) {
        Err(PluginError::Denied {
            plugin,
            point,
            reason,
        }) => {
            assert_eq!(plugin, "policy");
            assert_eq!(point, HookPoint::PreCreate);
            assert!(reason.to_lowercase().contains("memory"), "reason: {reason}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(spec, original, "a denied pre-create leaves the spec alone");

    let mut spec = spec_with_memory_limit();
    let applied = set
        .pre_create(&state(), &mut spec)
        .expect("a spec with a memory limit is allowed");
    assert!(applied.is_empty());

    let mut spec = spec_with_memory_limit();
    let process = spec
        .process_mut()
        .as_mut()
        .expect("default spec has a process");
    let mut caps = process.capabilities().clone().unwrap_or_default();
    let mut bounding = caps.bounding().clone().unwrap_or_default();
    bounding.insert(Capability::SysAdmin);
    caps.set_bounding(Some(bounding));
    process.set_capabilities(Some(caps));
    match set.pre_create(&state(), &mut spec) {
        Err(PluginError::Denied { reason, .. }) => {
            assert!(reason.contains("SYS_ADMIN"), "reason: {reason}")
        }
        other => panic!("expected a denial for CAP_SYS_ADMIN, got {other:?}"),
    }
}

#[test]
fn audit_writes_one_json_line_per_call_into_its_granted_dir() {
    let fx = Fixture::new();
    let log_dir = tempfile::tempdir().expect("log dir");
    let set = fx.load(&format!(
        r#"
[[plugin]]
name = "audit"
path = {{audit}}
kind = "hook"
hooks = ["pre-create", "start-container", "poststop"]
[plugin.config]
log-dir = "/log"
[plugin.grants]
dirs = {{ {:?} = "/log:rw" }}
"#,
        log_dir.path().to_str().expect("utf-8 path")
    ));
    let mut spec = Spec::default();
    assert!(
        set.pre_create(&state(), &mut spec)
            .expect("pre-create")
            .is_empty()
    );
    set.invoke(HookPoint::StartContainer, &state(), &spec)
        .expect("start-container");
    set.invoke(HookPoint::Poststop, &state(), &spec)
        .expect("poststop");
    let text =
        std::fs::read_to_string(log_dir.path().join("audit.jsonl")).expect("audit.jsonl written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(value.is_object(), "{line}");
    }
}

#[test]
fn audit_without_its_grant_cannot_write() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "audit"
path = {audit}
kind = "hook"
hooks = ["poststop"]
"#,
    );
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert_eq!(phase, Phase::Invoke, "{text}");
    assert!(
        matches!(
            cause,
            FailureCause::Guest { .. } | FailureCause::Trap { .. }
        ),
        "{text}"
    );
}

#[test]
fn a_loop_is_stopped_at_its_deadline() {
    let fx = Fixture::new();
    let set = fx.load(&misbehave("loop", ""));
    // The first call also compiles the component; time the second.
    let (_, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert!(
        matches!(cause, FailureCause::Deadline { timeout_ms: 100 }),
        "{text}"
    );
    let started = Instant::now();
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    let elapsed = started.elapsed();
    assert_eq!(phase, Phase::Invoke);
    assert!(
        matches!(cause, FailureCause::Deadline { timeout_ms: 100 }),
        "{text}"
    );
    assert!(text.contains("exceeded its deadline of 100 ms"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(2000),
        "took {elapsed:?} for a 100 ms deadline"
    );
}

#[test]
fn a_guest_blocked_in_a_sleep_is_abandoned_at_its_deadline() {
    let fx = Fixture::new();
    let set = fx.load(&format!("{}sleep-ms = 5000\n", misbehave("sleep", "")));
    let started = Instant::now();
    let (_, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    let elapsed = started.elapsed();
    assert!(
        matches!(cause, FailureCause::Deadline { timeout_ms: 100 }),
        "{text}"
    );
    assert!(
        elapsed < Duration::from_millis(2000),
        "took {elapsed:?} for a 100 ms deadline"
    );
}

#[test]
fn allocation_is_stopped_at_the_memory_limit() {
    let fx = Fixture::new();
    let set = fx.load(&misbehave(
        "alloc",
        "memory-limit = \"16MiB\"\ntimeout-ms = 5000",
    ));
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert_eq!(phase, Phase::Invoke);
    assert!(
        matches!(
            cause,
            FailureCause::MemoryLimit {
                limit_bytes: 16_777_216
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("exceeded its memory limit of 16777216 bytes"),
        "{text}"
    );
}

#[test]
fn a_loop_runs_out_of_fuel() {
    let fx = Fixture::new();
    let set = fx.load(&misbehave("loop", "fuel = 10000000\ntimeout-ms = 10000"));
    let started = Instant::now();
    let (_, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert!(
        matches!(cause, FailureCause::OutOfFuel { fuel: 10_000_000 }),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fuel, not the deadline, stopped it"
    );
}

#[test]
fn a_panic_is_a_trap_with_the_panic_message() {
    let fx = Fixture::new();
    let set = fx.load(&misbehave("panic", ""));
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert_eq!(phase, Phase::Invoke);
    match cause {
        FailureCause::Trap { stderr_tail, .. } => {
            assert!(
                stderr_tail.contains("panicked"),
                "stderr tail: {stderr_tail}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(text.contains("trapped"), "{text}");
    // The runtime goes on: the next call gets a fresh instance and traps the same way.
    let (_, cause, _) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert!(matches!(cause, FailureCause::Trap { .. }));
}

#[test]
fn a_guest_error_is_a_failure_and_deny_is_a_denial() {
    let fx = Fixture::new();
    let set = fx.load(&misbehave("error", ""));
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert_eq!(phase, Phase::Invoke);
    assert!(matches!(cause, FailureCause::Guest { .. }), "{text}");

    let fx = Fixture::new();
    let set = fx.load(&misbehave("deny", "on-error = \"ignore\""));
    match set.invoke(HookPoint::Poststop, &state(), &Spec::default()) {
        Err(PluginError::Denied { plugin, point, .. }) => {
            assert_eq!((plugin.as_str(), point), ("misbehave", HookPoint::Poststop));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn bad_env_bad_mount_and_huge_answers_are_invalid_adjustments() {
    let grant = tempfile::tempdir().expect("grant dir");
    let grants = format!(
        "[plugin.grants]\ndirs = {{ {:?} = \"/data:rw\" }}\n",
        grant.path().to_str().expect("utf-8 path")
    );
    for mode in ["bad-env", "bad-mount", "huge"] {
        let fx = Fixture::new();
        // `huge` (100000 variables, 1.6 MB) is over the default max-answer of 1 MiB; raised
        // so that the entry-count rule is what refuses it.
        let limits = "timeout-ms = 5000\nmax-answer = \"16MiB\"";
        let set = fx.load(&format!("{}{grants}", misbehave(mode, limits)));
        let mut spec = Spec::default();
        let original = spec.clone();
        let what = invalid_field(set.pre_create(&state(), &mut spec));
        assert_eq!(
            spec, original,
            "{mode}: an invalid adjustment is not applied"
        );
        eprintln!("{mode}: {what}");
    }
}

#[test]
fn an_adjustment_outside_pre_create_is_invalid() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "inject"
path = {env_inject}
kind = "hook"
hooks = ["poststop"]
[plugin.config]
RWASM_GREETING = "hello"
"#,
    );
    // env-inject may or may not answer at poststop; if it does, it must be refused.
    match set.invoke(HookPoint::Poststop, &state(), &Spec::default()) {
        Ok(()) => {}
        Err(PluginError::InvalidAdjustment { plugin, reason, .. }) => {
            assert_eq!(plugin, "inject");
            assert!(reason.contains("only pre-create"), "{reason}");
        }
        Err(other) => panic!("unexpected error {}", chain(&other)),
    }
}

#[test]
fn two_plugins_setting_one_variable_conflict() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "inject-a"
path = {env_inject}
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
RWASM_SHARED = "a"

[[plugin]]
name = "inject-b"
path = {env_inject}
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
RWASM_SHARED = "b"
"#,
    );
    let mut spec = Spec::default();
    let original = spec.clone();
    match set.pre_create(&state(), &mut spec) {
        Err(PluginError::Conflict {
            field,
            first,
            second,
        }) => {
            assert!(field.contains("RWASM_SHARED"), "{field}");
            assert_eq!((first.as_str(), second.as_str()), ("inject-a", "inject-b"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(spec, original);
}

#[test]
fn on_error_ignore_turns_a_loop_failure_into_ok() {
    let fx = Fixture::new();
    let set = fx.load(&format!(
        "{}
[[plugin]]
name = \"inject\"
path = {{env_inject}}
kind = \"hook\"
hooks = [\"pre-create\"]
[plugin.config]
RWASM_AFTER = \"yes\"
",
        misbehave("loop", "on-error = \"ignore\"")
    ));
    set.invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("ignored failure");
    let mut spec = Spec::default();
    let applied = set
        .pre_create(&state(), &mut spec)
        .expect("ignored failure");
    assert_eq!(applied.len(), 1, "the next plugin still ran: {applied:?}");
    assert!(env_of(&spec).contains(&"RWASM_AFTER=yes".to_string()));
}

#[test]
fn the_cache_gets_a_cwasm_and_a_second_set_loads_from_it() {
    let fx = Fixture::new();
    let manifest = misbehave("ok", "");
    let set = fx.load(&manifest);
    let started = Instant::now();
    set.invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("first call");
    let first = started.elapsed();
    let started = Instant::now();
    set.invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("second call");
    let warm = started.elapsed();

    let files = fx.cwasm_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name")
        .to_string();
    let (digest, engine) = name
        .trim_end_matches(".cwasm")
        .split_once('-')
        .expect("<sha256>-<engine>.cwasm");
    assert_eq!(digest.len(), 64, "{name}");
    assert_eq!(engine.len(), 16, "{name}");
    let meta = std::fs::metadata(&files[0]).expect("cwasm");
    let dir_mode = std::fs::metadata(fx.cache()).expect("cache dir").mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    drop(set);

    let again = fx.load(&manifest);
    let started = Instant::now();
    again
        .invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("call from cache");
    let cached = started.elapsed();
    let after = std::fs::metadata(&files[0]).expect("cwasm");
    assert_eq!(
        meta.ino(),
        after.ino(),
        "the artifact was loaded, not rewritten"
    );
    assert_eq!(fx.cwasm_files().len(), 1);
    eprintln!(
        "first call (compile + cache write): {first:?}; warm call: {warm:?}; new set, from cache: {cached:?}"
    );

    drop(again);

    // A damaged artifact is recompiled and replaced. Damage it the way a writer must (new
    // file + rename): truncating a mapped artifact in place would fault any process using it.
    let damaged = fx.cache().join("damaged.tmp");
    std::fs::write(&damaged, b"not a cwasm").expect("damage the artifact");
    std::fs::rename(&damaged, &files[0]).expect("replace the artifact");
    let third = fx.load(&manifest);
    third
        .invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("recompiled");
    let replaced = std::fs::metadata(&files[0]).expect("cwasm");
    assert!(replaced.len() > 1000, "the artifact was rewritten");
}

#[test]
fn a_missing_component_fails_its_load_phase() {
    let fx = Fixture::new();
    let set = fx.load(
        r#"
[[plugin]]
name = "ghost"
path = "ghost.wasm"
kind = "hook"
hooks = ["poststop"]
"#,
    );
    match set.invoke(HookPoint::Poststop, &state(), &Spec::default()) {
        Err(PluginError::Failed {
            plugin,
            phase: Phase::Load,
            cause: FailureCause::Io { path, .. },
            ..
        }) => {
            assert_eq!(plugin, "ghost");
            assert!(path.ends_with("ghost.wasm"));
        }
        other => panic!("expected a load failure, got {other:?}"),
    }
}

#[test]
fn a_non_component_fails_its_load_phase() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("junk.wasm"), b"\0asm junk").expect("write junk");
    let set = fx.load(
        r#"
[[plugin]]
name = "junk"
path = "junk.wasm"
kind = "hook"
hooks = ["poststop"]
on-error = "ignore"
"#,
    );
    set.invoke(HookPoint::Poststop, &state(), &Spec::default())
        .expect("ignored");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[test]
fn guest_logs_and_stderr_reach_the_callers_subscriber_with_plugin_and_hook() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A thread-local subscriber: the call's own thread must inherit it.
    tracing::subscriber::with_default(subscriber, || {
        let fx = Fixture::new();
        let set = fx.load(&format!(
            r#"
[[plugin]]
name = "inject"
path = {{env_inject}}
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
RWASM_GREETING = "hello"
{}"#,
            misbehave("panic", "").replace("name = \"misbehave\"", "name = \"crash\"")
        ));
        let mut spec = Spec::default();
        let (_, cause, _) = failed(set.pre_create(&state(), &mut spec));
        assert!(matches!(cause, FailureCause::Trap { .. }));
    });
    let logs = buffer.text();
    let guest_line = logs
        .lines()
        .find(|l| l.contains("RWASM_GREETING") && !l.contains("set env"))
        .unwrap_or_else(|| panic!("no guest log line in:\n{logs}"));
    assert!(guest_line.contains("plugin=inject"), "{guest_line}");
    assert!(guest_line.contains("hook=pre-create"), "{guest_line}");
    let stderr_line = logs
        .lines()
        .find(|l| l.contains("panicked"))
        .unwrap_or_else(|| panic!("no guest stderr line in:\n{logs}"));
    assert!(stderr_line.contains("plugin=crash"), "{stderr_line}");
}

#[test]
fn a_missing_granted_dir_fails_the_prepare_phase() {
    let fx = Fixture::new();
    let missing = fx.dir.path().join("not-there");
    let set = fx.load(&format!(
        r#"
[[plugin]]
name = "audit"
path = {{audit}}
kind = "hook"
hooks = ["poststop"]
[plugin.grants]
dirs = {{ {:?} = "/log:rw" }}
"#,
        missing.to_str().expect("utf-8 path")
    ));
    let (phase, cause, text) = failed(set.invoke(HookPoint::Poststop, &state(), &Spec::default()));
    assert_eq!(phase, Phase::Prepare, "{text}");
    assert!(matches!(cause, FailureCause::Grant { .. }), "{text}");
}

/// Not a check: prints what a call costs. Run with
/// `cargo nextest run --release -p rwasm --run-ignored only --no-capture measure_call_costs`.
#[test]
#[ignore = "measurement, prints timings"]
fn measure_call_costs() {
    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }
    let fx = Fixture::new();
    let manifest = misbehave("ok", "");
    let (state, spec) = (state(), Spec::default());

    let set = fx.load(&manifest);
    let started = Instant::now();
    set.invoke(HookPoint::Poststop, &state, &spec)
        .expect("call");
    let compile = started.elapsed();
    let warm = median(
        (0..500)
            .map(|_| {
                let started = Instant::now();
                set.invoke(HookPoint::Poststop, &state, &spec)
                    .expect("call");
                started.elapsed()
            })
            .collect(),
    );
    drop(set);

    let cached = median(
        (0..50)
            .map(|_| {
                let set = fx.load(&manifest);
                let started = Instant::now();
                set.invoke(HookPoint::Poststop, &state, &spec)
                    .expect("call");
                started.elapsed()
            })
            .collect(),
    );

    let looping = fx.load(&misbehave("loop", ""));
    let _ = looping.invoke(HookPoint::Poststop, &state, &spec);
    let deadline = median(
        (0..10)
            .map(|_| {
                let started = Instant::now();
                let _ = looping.invoke(HookPoint::Poststop, &state, &spec);
                started.elapsed()
            })
            .collect(),
    );
    eprintln!(
        "misbehave ok: first call with compile {compile:?}; warm call (fresh instance, median of 500) {warm:?}; \
         first call of a new set from the cache (engine + deserialize + link + call, median of 50) {cached:?}; \
         loop with timeout-ms = 100 stopped after (median of 10) {deadline:?}"
    );
}
