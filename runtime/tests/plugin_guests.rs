//! Guest plugins other than the first-party Rust ones, in real containers, as root: the C
//! plugin (examples/c-plugin, proving the ABI is not Rust-only) and the copyable Rust
//! template (examples/plugin-template). `make plugins` builds both into
//! `$RWASM_PLUGIN_DIR` as `c_plugin.wasm` and `plugin_template.wasm`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// A guest built by `make plugins`, or a panic that says how to get it.
fn guest(file: &str) -> PathBuf {
    let dir = std::env::var_os("RWASM_PLUGIN_DIR").map(PathBuf::from).expect(
        "RWASM_PLUGIN_DIR is not set: run the tests through `make test`, which builds the plugins",
    );
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins` (it builds examples/c-plugin and \
         examples/plugin-template too)",
        path.display()
    );
    path
}

/// The repository's `examples/` directory.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A manifest with the C plugin at `pre-create` and `create-runtime` (where it must
/// change nothing, or the create fails), with `config` as its `[plugin.config]` body.
fn c_manifest(w: &World, config: &str) -> PathBuf {
    manifest(
        w,
        "c.toml",
        &format!(
            r#"version = 1
[[plugin]]
name = "c-plugin"
path = {path:?}
kind = "hook"
hooks = ["pre-create", "create-runtime"]
timeout-ms = 500
memory-limit = "16MiB"
[plugin.config]
{config}
"#,
            path = guest("c_plugin.wasm")
        ),
    )
}

/// A shipped example manifest, its `path = "../wasm/FILE"` pointed at the built guest.
fn example_manifest(w: &World, example: &str, file: &str) -> PathBuf {
    let text = std::fs::read_to_string(examples().join(example).join("plugins.toml"))
        .expect("read the example manifest");
    let shipped = format!("path = \"../wasm/{file}\"");
    assert!(
        text.contains(&shipped),
        "{example}/plugins.toml has {shipped}"
    );
    let built = format!("path = {:?}", guest(file));
    manifest(w, "example.toml", &text.replace(&shipped, &built))
}

fn run(w: &World, m: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--plugins", m.to_str().unwrap()];
    all.extend_from_slice(args);
    w.rwasm(&all)
}

/// Containers of this world that still exist (state dirs) plus Docker-style bundles left.
fn leftovers(w: &World) -> Vec<String> {
    let mut left: Vec<String> = stdout(&w.rwasm(&["list", "-q"]))
        .lines()
        .map(str::to_owned)
        .collect();
    if let Ok(dirs) = std::fs::read_dir(w.data.join("containers")) {
        left.extend(dirs.map(|d| d.unwrap().path().display().to_string()));
    }
    left
}

/// Asserts that nothing of the container `id` exists: state, cgroup, mount, process.
fn assert_nothing_left_of(w: &World, id: &str) {
    assert!(!w.root.join(id).exists(), "no state directory of {id}");
    assert!(cgroup_dirs_named(id).is_empty(), "no cgroup of {id}");
    assert!(mounts_mentioning(id).is_empty(), "no mount of {id}");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !stdout(&ps).lines().any(|l| l.contains(id)),
        "no process of {id}"
    );
}

fn env_lines(out: &std::process::Output, name: &str) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn c_plugin_env_is_seen_inside_a_container_as_env_injects_is() {
    let w = World::new();
    w.setup_image();
    let m = c_manifest(&w, r#"env = ["FROM_C=yes", "SECOND=two words"]"#);
    let out = run(&w, &m, &["run", "--rm", "busybox", "env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env_lines(&out, "FROM_C"),
        ["FROM_C=yes"],
        "{}",
        stdout(&out)
    );
    assert_eq!(env_lines(&out, "SECOND"), ["SECOND=two words"]);
    // The image's own variables are kept.
    assert_eq!(env_lines(&out, "PATH").len(), 1, "{}", stdout(&out));

    // The Rust plugin asked for the same variable gives the same result.
    let rust = manifest(
        &w,
        "rust.toml",
        &format!(
            "[[plugin]]\nname = \"env-inject\"\npath = {:?}\nkind = \"hook\"\nhooks = [\"pre-create\"]\n[plugin.config]\nFROM_C = \"yes\"\n",
            guest("env_inject.wasm")
        ),
    );
    let out_rust = run(&w, &rust, &["run", "--rm", "busybox", "env"]);
    assert_eq!(
        env_lines(&out_rust, "FROM_C"),
        env_lines(&out, "FROM_C"),
        "{}",
        stderr(&out_rust)
    );

    // The OCI path: a bundle run by id; the C plugin replaces a variable the spec has.
    let m = c_manifest(&w, r#"env = ["FROM_C=yes", "TERM=dumb"]"#);
    let b = w.bundle("b", &["env"], json!({}));
    let out = run(
        &w,
        &m,
        &["run", "--bundle", b.to_str().unwrap(), &id("c-env")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env_lines(&out, "FROM_C"),
        ["FROM_C=yes"],
        "{}",
        stdout(&out)
    );
    assert_eq!(env_lines(&out, "TERM"), ["TERM=dumb"], "{}", stdout(&out));
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
}

#[test]
fn c_plugin_annotation_is_in_the_state_and_the_spec() {
    let w = World::new();
    let m = c_manifest(
        &w,
        r#"env = ["FROM_C=yes"]
annotations = ["org.example.c-plugin/by=c", "org.example.c-plugin/lang=C11"]"#,
    );
    let b = w.bundle("b", &["sleep", "30"], json!({"annotations": {"kept": "1"}}));
    let c = id("c-ann");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        m.to_str().unwrap(),
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "{err}");
    let state = w.state(&c);
    assert_eq!(state["status"], "created");
    assert_eq!(
        state["annotations"],
        json!({"kept": "1", "org.example.c-plugin/by": "c", "org.example.c-plugin/lang": "C11"}),
        "{state}"
    );
    // The spec the container was created from, as rwasm keeps it.
    let spec: Value =
        serde_json::from_slice(&std::fs::read(w.root.join(&c).join("config.json")).unwrap())
            .unwrap();
    assert_eq!(spec["annotations"]["org.example.c-plugin/by"], "c");
    let env: Vec<&str> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"FROM_C=yes"), "{env:?}");
    // The bundle's own config.json is not touched.
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(bundle["annotations"], json!({"kept": "1"}));
    let (code, err) = w.rwasm_detached(&["delete", "--force", &c]);
    assert_eq!(code, 0, "{err}");
    assert_nothing_left_of(&w, &c);
}

#[test]
fn c_plugin_deny_refuses_the_container_with_its_reason_and_leaves_nothing_behind() {
    let w = World::new();
    w.setup_image();
    let m = c_manifest(
        &w,
        r#"env = ["FROM_C=yes"]
deny = "c-plugin says no: this host runs no containers today""#,
    );
    let out = run(
        &w,
        &m,
        &["run", "--name", "refused", "busybox", "echo", "ran"],
    );
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "the container never ran");
    assert!(
        stderr(&out).contains("c-plugin says no: this host runs no containers today"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("c-plugin"), "{}", stderr(&out));
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
    assert!(
        mounts_mentioning(w.data.to_str().unwrap()).is_empty(),
        "no overlay left"
    );

    // The runc path, with an id to look for.
    let b = w.bundle("b", &["sleep", "30"], json!({}));
    let c = id("c-deny");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        m.to_str().unwrap(),
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("this host runs no containers today"), "{err}");
    assert_nothing_left_of(&w, &c);
}

#[test]
fn c_plugin_config_errors_name_the_key() {
    let w = World::new();
    w.setup_image();
    for (config, needles) in [
        (
            r#"colour = "red""#,
            &[
                "invalid-config",
                "unknown config key \"colour\"",
                "env, annotations, deny",
            ][..],
        ),
        (
            r#"env = "FROM_C=yes""#,
            &["invalid-config", "config key \"env\"", "list of texts"][..],
        ),
        (
            r#"env = ["FROM_C"]"#,
            &[
                "invalid-config",
                "config key \"env\"",
                "\"FROM_C\"",
                "NAME=value",
            ][..],
        ),
        (
            r#"deny = 1"#,
            &["invalid-config", "config key \"deny\"", "text"][..],
        ),
    ] {
        let m = c_manifest(&w, config);
        let out = run(&w, &m, &["run", "--rm", "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{config}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("c-plugin") && err.contains("configure"),
            "{config}: {err}"
        );
        for needle in needles {
            assert!(err.contains(needle), "{config}: {needle:?} not in: {err}");
        }
        assert!(leftovers(&w).is_empty(), "{config}: {:?}", leftovers(&w));
    }
}

#[test]
fn c_plugin_logs_through_the_host_log_import() {
    let w = World::new();
    w.setup_image();
    let m = c_manifest(
        &w,
        r#"env = ["FROM_C=yes", "B=2"]
annotations = ["org.example.c-plugin/by=c"]"#,
    );
    let out = w
        .cmd(&[
            "--plugins",
            m.to_str().unwrap(),
            "run",
            "--rm",
            "busybox",
            "true",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stderr(&out)
        .lines()
        .find(|l| l.contains("c-plugin: adding 2 env variable(s) and 1 annotation(s) to container"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no log line from the C plugin: {}", stderr(&out)));
    assert!(
        line.contains("INFO")
            && line.contains("plugin=c-plugin")
            && line.contains("hook=pre-create"),
        "{line}"
    );
}

#[test]
fn the_c_example_manifest_runs_as_shipped() {
    let w = World::new();
    w.setup_image();
    let m = example_manifest(&w, "c-plugin", "c_plugin.wasm");
    let out = run(&w, &m, &["run", "--rm", "busybox", "env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env_lines(&out, "FROM_C"),
        ["FROM_C=yes"],
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_plugin_template_greets_and_denies_in_real_containers() {
    let w = World::new();
    w.setup_image();
    let m = example_manifest(&w, "plugin-template", "plugin_template.wasm");
    let out = run(
        &w,
        &m,
        &["run", "--rm", "busybox", "sh", "-c", "echo \"$GREETING\""],
    );
    assert_eq!(
        stdout(&out),
        "hello from the plugin template\n",
        "{}",
        stderr(&out)
    );

    // Its annotation, on the OCI path.
    let b = w.bundle("b", &["sleep", "30"], json!({}));
    let c = id("tmpl");
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        m.to_str().unwrap(),
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &c,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        w.state(&c)["annotations"]["org.example.plugin-template/greeted"],
        "true"
    );
    let (code, err) = w.rwasm_detached(&["delete", "--force", &c]);
    assert_eq!(code, 0, "{err}");

    // A command in deny-commands is refused with the template's reason.
    let out = run(&w, &m, &["run", "--rm", "busybox", "nc", "-l", "-p", "80"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plugin-template: the command `nc` is not allowed here"),
        "{}",
        stderr(&out)
    );
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
}
