//! Golden tests of the plugin manifest (STYLE.md 11): every `tests/ui/NAME.toml` is loaded
//! with `PluginSet::load`; a valid manifest's normalized form must equal `NAME.out`, an
//! invalid one's error must equal `NAME.err`. Run with `RWASM_BLESS=1` to (re)write the
//! snapshots after checking the differences.

use std::fs;
use std::path::{Path, PathBuf};

use rwasm::plugin::PluginSet;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

/// The loaded set or the error, with the checkout's location replaced by `$DIR`.
fn render(manifest: &Path, cache: &Path) -> (String, &'static str) {
    let dir = ui_dir();
    let dir = dir.to_str().expect("utf-8 path");
    match PluginSet::load(manifest, cache) {
        Ok(set) => (format!("{set:#?}\n").replace(dir, "$DIR"), "out"),
        Err(err) => (format!("{err}\n").replace(dir, "$DIR"), "err"),
    }
}

#[test]
fn manifests_match_their_snapshots() {
    let bless = std::env::var_os("RWASM_BLESS").is_some_and(|v| v == "1");
    let cache = tempfile::tempdir().expect("temp dir");
    let mut inputs: Vec<PathBuf> = fs::read_dir(ui_dir())
        .expect("tests/ui exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 8,
        "expected the golden manifests in {}",
        ui_dir().display()
    );

    let mut failures = Vec::new();
    for input in &inputs {
        let (actual, ext) = render(input, cache.path());
        let expected_path = input.with_extension(ext);
        let other = input.with_extension(if ext == "out" { "err" } else { "out" });
        if bless {
            fs::write(&expected_path, &actual).expect("write snapshot");
            let _ = fs::remove_file(&other);
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: snapshot differs\n--- expected ({})\n{expected}\n--- actual\n{actual}",
                input.display(),
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no snapshot {} (an {} was expected? run with RWASM_BLESS=1)\n--- actual\n{actual}",
                input.display(),
                expected_path.display(),
                if other.exists() { "error" } else { "output" }
            )),
        }
    }
    assert!(
        cache.path().read_dir().unwrap().next().is_none(),
        "load must not touch the cache dir"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
