//! Microbenchmark of one WASM hook call, as rwasm makes it in production.
//!
//! ```sh
//! make plugins   # or: cargo build --target wasm32-wasip2 --profile plugin -p misbehave -p audit
//! RWASM_PLUGIN_DIR=$CARGO_TARGET_DIR/wasm32-wasip2/plugin \
//!   cargo run --release -p rwasm --example plugin_call [-- CALLS]
//! ```
//!
//! Prints medians and 90th percentiles, in microseconds, of:
//! - *fresh instance, inline*: `PluginSet::invoke` of misbehave (mode `ok`, no grants) at
//!   `poststop`: a new store and instance from the cached component, `configure`, `invoke`,
//!   teardown, on the calling thread (the production path of plugins without filesystem
//!   grants);
//! - *fresh instance, worker*: the same call of audit, whose `dirs` grant sends it to the
//!   watched worker thread (it also appends a line to a file in its granted directory);
//! - *live instance*: `invoke` again on one instance (instantiated and configured once);
//! - *new set*: the first call of a freshly loaded manifest (engine, cached component
//!   deserialized, linked, one call), as a short-lived `rwasm` process pays it once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::{Spec, State};
use rwasm::plugin::{HookPoint, PluginSet};

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // small indexes
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i].as_secs_f64() * 1e6
    };
    format!(
        "median {:7.1} µs   p90 {:7.1} µs   (n = {})",
        at(0.5),
        at(0.9),
        v.len()
    )
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .map_or(2000, |a| a.parse().expect("CALLS must be a number"));
    let dir = std::env::var_os("RWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .expect("set RWASM_PLUGIN_DIR to the directory of the built plugins (make plugins)");
    // The manifest is written elsewhere, and plugin paths are relative to it.
    let dir = std::path::absolute(&dir).expect("RWASM_PLUGIN_DIR resolves");
    let tmp = std::env::temp_dir().join(format!("rwasm-plugin-call-{}", std::process::id()));
    let log = tmp.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let manifest = tmp.join("plugins.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[plugin]]
name = "ok"
path = "{misbehave}"
kind = "hook"
hooks = ["poststop"]
[plugin.config]
mode = "ok"

[[plugin]]
name = "audit"
path = "{audit}"
kind = "hook"
hooks = ["post-delete"]
[plugin.grants]
dirs = {{ "{log}" = "/log:rw" }}
"#,
            misbehave = dir.join("misbehave.wasm").display(),
            audit = dir.join("audit.wasm").display(),
            log = log.display()
        ),
    )
    .unwrap();
    let cache = tmp.join("cache");
    let (state, spec) = (State::default(), Spec::default());
    let time = |set: &PluginSet, point: HookPoint, n: usize| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                set.invoke(point, &state, &spec).expect("call");
                t.elapsed()
            })
            .collect()
    };

    let set = PluginSet::load(&manifest, &cache).unwrap();
    time(&set, HookPoint::Poststop, 50); // compile, cache, warm up
    time(&set, HookPoint::PostDelete, 50);
    let inline = time(&set, HookPoint::Poststop, calls);
    let worker = time(&set, HookPoint::PostDelete, calls / 4);
    let live = set
        .bench_live_calls("ok", HookPoint::Poststop, &state, &spec, calls * 5)
        .expect("live calls");
    drop(set);
    let fresh_sets: Vec<Duration> = (0..100)
        .map(|_| {
            let set = PluginSet::load(&manifest, &cache).unwrap();
            let t = Instant::now();
            set.invoke(HookPoint::Poststop, &state, &spec)
                .expect("call");
            t.elapsed()
        })
        .collect();

    println!("one hook call (misbehave mode ok unless said), release build:");
    println!(
        "  fresh instance, inline (no grants)      {}",
        stats(inline)
    );
    println!(
        "  fresh instance, worker (audit, dirs)    {}",
        stats(worker)
    );
    println!("  live instance, inline                   {}", stats(live));
    println!(
        "  new set: engine + load + link + 1 call  {}",
        stats(fresh_sets)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
