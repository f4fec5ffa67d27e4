//! `rwasm plugin ls|inspect|validate|precompile|test`: each subcommand's output, through
//! the built binary, with the fixture plugins of RWASM_PLUGIN_DIR.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

/// A built fixture component (`make plugins` builds them into RWASM_PLUGIN_DIR).
fn fixture(name: &str) -> String {
    plugin_wasm(name).to_str().unwrap().to_string()
}

/// A manifest of env-inject (with grants) and misbehave.
fn two_plugins(w: &World) -> PathBuf {
    std::fs::create_dir_all(w.path("log")).unwrap();
    manifest(
        w,
        "plugins.toml",
        &format!(
            r#"
[[plugin]]
name = "inject"
path = {inject:?}
kind = "hook"
hooks = ["pre-create", "poststop"]
[plugin.config]
GREETING = "hi"
[plugin.grants]
dirs = {{ {log:?} = "/log:rw" }}
env = ["HTTP_PROXY"]
rootfs = "ro"
clock = false
hooks = true

[[plugin]]
name = "misbehave"
path = {misbehave:?}
kind = "hook"
hooks = ["pre-create"]
[plugin.config]
mode = "bad-mount"
"#,
            inject = fixture("env_inject"),
            misbehave = fixture("misbehave"),
            log = w.path("log").to_str().unwrap(),
        ),
    )
}

fn run(w: &World, args: &[&str]) -> (i32, String, String) {
    let out = w.rwasm(args);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn ls_lists_kind_hooks_grants_and_cache_state() {
    let w = World::new();
    let m = two_plugins(&w);
    let m = m.to_str().unwrap();
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "ls"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[0]),
        ["NAME", "KIND", "HOOKS", "CACHE", "GRANTS"]
    );
    let inject = cells(lines[1]);
    assert_eq!(
        inject[..4],
        ["inject", "hook", "pre-create,poststop", "missing"]
    );
    assert!(
        lines[1].ends_with(&format!(
            "dir {} -> /log (rw), env HTTP_PROXY, rootfs -> /rootfs (ro), random, hooks",
            w.path("log").display()
        )),
        "{}",
        lines[1]
    );
    assert_eq!(
        cells(lines[2]),
        [
            "misbehave",
            "hook",
            "pre-create",
            "missing",
            "clock,",
            "random"
        ]
    );

    let (code, _, err) = run(&w, &["--plugins", m, "plugin", "precompile"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "ls", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "inject");
    assert_eq!(v[0]["cache"], "cached");
    assert_eq!(v[0]["hooks"], json!(["pre-create", "poststop"]));
    assert_eq!(
        v[0]["grants"],
        json!({
            "dirs": [{"host": w.path("log"), "guest": "/log", "access": "rw"}],
            "env": ["HTTP_PROXY"],
            "rootfs": "ro",
            "clock": false,
            "random": true,
            "adjust": ["hooks"],
        })
    );
    assert_eq!(v[0]["max_answer"], 1 << 20);
    assert_eq!(v[1]["cache"], "cached");
    assert_eq!(v[1]["grants"]["rootfs"], Value::Null);
}

#[test]
fn inspect_shows_world_version_exports_imports_and_grants() {
    let w = World::new();
    let m = two_plugins(&w);
    let m = m.to_str().unwrap();
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "inspect", "inject"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "name:        inject".to_string(),
        format!("path:        {}", fixture("env_inject")),
        "world:       hook".to_string(),
        "wit version: rwasm:plugin@0.3.0".to_string(),
        "exports:     rwasm:plugin/hooks@0.3.0".to_string(),
        "imports:     rwasm:plugin/host@0.3.0".to_string(),
        "             wasi:cli/environment@0.2.6".to_string(),
        "             env HTTP_PROXY".to_string(),
        "             rootfs -> /rootfs (ro)".to_string(),
        "loads:       yes".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?} in\n{out}");
    }

    // By file, JSON: misbehave imports the clocks.
    let (code, out, err) = run(
        &w,
        &[
            "--plugins",
            m,
            "plugin",
            "inspect",
            &fixture("misbehave"),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], Value::Null);
    assert_eq!(v["world"], "hook");
    assert_eq!(v["wit_version"], "0.3.0");
    assert_eq!(v["exports"], json!(["rwasm:plugin/hooks@0.3.0"]));
    let imports: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"wasi:clocks/monotonic-clock@0.2.6"),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"wasi:random/insecure-seed@0.2.6"),
        "{imports:?}"
    );
    assert_eq!(v["grants"], Value::Null);
    assert_eq!(v["load_error"], Value::Null);

    // Without any manifest, a file still inspects; the legacy one is 0.1.0, the socket
    // user does not load.
    let (code, out, err) = run(&w, &["plugin", "inspect", &fixture("legacy_v0_1")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wit version: rwasm:plugin@0.1.0\n"), "{out}");
    // The C plugin's committed bindings are of the frozen 0.2.0: it inspects as such and loads.
    let (code, out, err) = run(&w, &["plugin", "inspect", &fixture("c_plugin")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wit version: rwasm:plugin@0.2.0\n"), "{out}");
    assert!(out.contains("\nloads:       yes"), "{out}");
    let (code, out, _) = run(&w, &["plugin", "inspect", &fixture("socket_user")]);
    assert_eq!(code, 1, "a plugin that does not load exits 1: {out}");
    assert!(
        out.contains("\nloads:       no: imports `wasi:sockets/")
            && out.contains("plugins get no sockets"),
        "{out}"
    );
}

#[test]
fn inspect_tells_a_name_from_a_file_and_exits_1_when_it_does_not_load() {
    let w = World::new();
    let m = two_plugins(&w);
    let m = m.to_str().unwrap();
    // A name the manifest lacks is not read as a file.
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "inspect", "nosuch"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("no plugin named `nosuch` in the manifest") && !err.contains("cannot read"),
        "{err}"
    );
    // A relative path (with `/`) is a file and needs no manifest.
    let out = w
        .cmd(&["plugin", "inspect", "./misbehave.wasm"])
        .current_dir(plugin_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "path:        ./misbehave.wasm
"
        ),
        "{}",
        stdout(&out)
    );
    // Ends in .wasm: a file, so a missing one says so (not "no plugin manifest").
    let (code, _, err) = run(&w, &["plugin", "inspect", "gone.wasm"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read gone.wasm"), "{err}");
    // The wrong major prints its version but exits 1; so does JSON.
    let (code, out, _) = run(&w, &["plugin", "inspect", &fixture("wrong_major")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wit version: rwasm:plugin@1.0.0\n"), "{out}");
    assert!(
        out.contains("\nloads:       no: built for rwasm:plugin 1.0.0"),
        "{out}"
    );
    let (code, out, _) = run(
        &w,
        &[
            "plugin",
            "inspect",
            &fixture("socket_user"),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["load_error"].as_str().unwrap().contains("wasi:sockets/"),
        "{v}"
    );
}

#[test]
fn validate_lists_every_error_and_exits_1() {
    let w = World::new();
    let good = two_plugins(&w);
    let (code, out, err) = run(&w, &["plugin", "validate", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}: 2 plugins valid\n", good.display()));
    let one = manifest(
        &w,
        "one.toml",
        &format!(
            "[[plugin]]\nname = \"ok\"\npath = {:?}\nkind = \"hook\"\nhooks = [\"pre-create\"]\n",
            fixture("env_inject")
        ),
    );
    let (code, out, err) = run(&w, &["plugin", "validate", one.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}: 1 plugin valid\n", one.display()));

    let plugin = |name: &str, wasm: &str| {
        format!(
            "[[plugin]]\nname = \"{name}\"\npath = {wasm:?}\nkind = \"hook\"\nhooks = [\"pre-create\"]\n"
        )
    };
    let bad = manifest(
        &w,
        "bad.toml",
        &[
            plugin("sockets", &fixture("socket_user")),
            plugin("major", &fixture("wrong_major")),
            plugin("ok", &fixture("env_inject")),
            plugin("net", &fixture("net_sketch")),
            plugin("ghost", "/nonexistent/ghost.wasm"),
            // Loads, but its configure phase refuses the config.
            plugin("badconf", &fixture("misbehave")) + "[plugin.config]\nsize-mib = -1\n",
        ]
        .join("\n"),
    );
    let (code, out, _) = run(&w, &["plugin", "validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[0].starts_with("error: plugin `sockets` does not load: imports `wasi:sockets/"),
        "{out}"
    );
    assert!(lines[0].ends_with("plugins get no sockets"), "{out}");
    assert!(lines[1].starts_with("error: plugin `major` does not load: built for rwasm:plugin 1.0.0, this rwasm hosts 0.1.0, 0.2.0 and 0.3.0"), "{out}");
    assert!(lines[2].starts_with("error: plugin `net` does not load: listed as kind `hook`, but the component exports `rwasm:plugin/network@0.2.0`"), "{out}");
    assert!(
        lines[3].starts_with(
            "error: plugin `ghost` does not load: cannot read /nonexistent/ghost.wasm"
        ),
        "{out}"
    );
    assert!(
        lines[4].starts_with("error: plugin `badconf` failed at pre-create in its configure phase")
            && lines[4].contains("size-mib"),
        "{out}"
    );
    assert_eq!(
        lines[5],
        format!("{}: 5 of 6 plugins invalid", bad.display())
    );

    let broken = manifest(&w, "broken.toml", "[[plugin]]\nname = \"x\"\n");
    let (code, out, _) = run(&w, &["plugin", "validate", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.starts_with("error: invalid plugin manifest"), "{out}");
    assert!(out.contains("missing field `path`"), "{out}");
}

#[test]
fn precompile_reports_compiled_then_cached() {
    let w = World::new();
    let m = two_plugins(&w);
    let m = m.to_str().unwrap();
    let parse = |out: &str| -> Vec<(String, String, f64)> {
        out.lines()
            .map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                assert_eq!(parts.len(), 4, "{l}");
                assert_eq!(parts[3], "ms", "{l}");
                (
                    parts[0].to_string(),
                    parts[1].to_string(),
                    parts[2].parse().unwrap(),
                )
            })
            .collect()
    };
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "precompile"]);
    assert_eq!(code, 0, "{err}");
    let first = parse(&out);
    assert_eq!(
        first
            .iter()
            .map(|(n, h, _)| (n.as_str(), h.as_str()))
            .collect::<Vec<_>>(),
        [("inject", "compiled"), ("misbehave", "compiled")]
    );
    let (code, out, err) = run(&w, &["--plugins", m, "plugin", "precompile"]);
    assert_eq!(code, 0, "{err}");
    let second = parse(&out);
    assert!(second.iter().all(|(_, how, _)| how == "cached"), "{out}");
    for ((name, _, compiled), (_, _, cached)) in first.iter().zip(&second) {
        assert!(
            cached < compiled,
            "{name}: cached {cached} ms, compiled {compiled} ms"
        );
    }
    eprintln!("precompile: {first:?} then {second:?}");
}

#[test]
fn test_runs_one_hook_offline_and_says_whether_the_host_accepts_it() {
    let w = World::new();
    let m = two_plugins(&w);
    let m = m.to_str().unwrap();
    // inject is granted the rootfs: the bundle's `rootfs` must exist.
    std::fs::create_dir_all(w.path("b/rootfs")).unwrap();
    let state = w.path("state.json");
    std::fs::write(
        &state,
        json!({"ociVersion": "1.2.0", "id": "offline", "status": "creating", "bundle": w.path("b")})
            .to_string(),
    )
    .unwrap();
    let spec = w.path("config.json");
    std::fs::write(&spec, default_spec(&["true"]).to_string()).unwrap();
    let args = |name: &'static str, hook: &'static str| -> Vec<String> {
        [
            "--plugins",
            m,
            "plugin",
            "test",
            name,
            "--hook",
            hook,
            "--state",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            state.display().to_string(),
            "--spec".to_string(),
            spec.display().to_string(),
        ])
        .collect()
    };
    let call = |name, hook| {
        let a = args(name, hook);
        let (code, out, err) = run(&w, &a.iter().map(String::as_str).collect::<Vec<_>>());
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, v)
    };

    let (code, v) = call("inject", "pre-create");
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v,
        json!({
            "plugin": "inject",
            "hook": "pre-create",
            "verdict": "allow",
            "adjustment": {"env": [["GREETING", "hi"]]},
            "accepted": true,
            "applied": ["set env GREETING"],
        })
    );

    // misbehave asks for a bind mount of /etc, which it is not granted.
    let (code, v) = call("misbehave", "pre-create");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["adjustment"]["mounts"][0]["source"], "/etc");
    assert_eq!(v["accepted"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("plugin `misbehave` returned an invalid adjustment: mounts[0]"),
        "{v}"
    );

    // At poststop env-inject allows with an empty adjustment.
    let (code, v) = call("inject", "poststop");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["adjustment"], json!({}));
    assert_eq!(v["accepted"], true);
    let a = args("inject", "poststop");
    let (_, _, err) = run(&w, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!err.contains("warning"), "{err}");

    // poststart is not in inject's manifest entry: it runs, with a warning.
    let a = args("inject", "poststart");
    let (code, out, err) = run(&w, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out} {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["hook"], &v["accepted"]),
        (&json!("poststart"), &json!(true))
    );
    assert!(
        err.contains("warning: the manifest does not register plugin `inject` at poststart"),
        "{err}"
    );

    // The hook is called once: audit appends one line per call.
    std::fs::create_dir_all(w.path("audit")).unwrap();
    let audit = manifest(
        &w,
        "audit.toml",
        &format!(
            r#"
[[plugin]]
name = "audit"
path = {audit:?}
kind = "hook"
hooks = ["poststop"]
[plugin.grants]
dirs = {{ {log:?} = "/log:rw" }}
"#,
            audit = fixture("audit"),
            log = w.path("audit").to_str().unwrap(),
        ),
    );
    let mut a = args("audit", "poststop");
    a[1] = audit.display().to_string();
    let (code, out, err) = run(&w, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out} {err}");
    let lines = std::fs::read_to_string(w.path("audit/audit.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");

    let (code, _, err) = run(
        &w,
        &args("nobody", "pre-create")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no plugin named `nobody` in the manifest"),
        "{err}"
    );
}
