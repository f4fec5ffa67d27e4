//! What hook plugins cost one short-lived `rwasm` process, without the container work:
//! load a manifest, prefetch the points, then call each point once with a real spec, as
//! `rwasm run --bundle` does at create-runtime, poststart and poststop.
//!
//! ```sh
//! cargo build --release -p rwasm --example plugin_process
//! $CARGO_TARGET_DIR/release/examples/plugin_process bench/plugins-9.toml BUNDLE/config.json
//! valgrind --tool=callgrind $CARGO_TARGET_DIR/release/examples/plugin_process …   # instructions
//! ```
//!
//! Prints the wall time of each step in microseconds.

use std::path::PathBuf;
use std::time::Instant;

use oci_spec::runtime::{Spec, State};
use rwasm::plugin::{HookPoint, PluginSet};

fn main() {
    let mut args = std::env::args().skip(1);
    let manifest = PathBuf::from(args.next().expect("usage: plugin_process MANIFEST CONFIG"));
    let config = PathBuf::from(args.next().expect("usage: plugin_process MANIFEST CONFIG"));
    let cache = PathBuf::from(
        std::env::var_os("RWASM_CACHE").unwrap_or_else(|| "/var/lib/rwasm/plugin-cache".into()),
    );
    let spec = Spec::load(&config).expect("config.json");
    let mut state = State::default();
    state.set_id("plugin-process".to_string());
    state.set_bundle(config.parent().unwrap().to_path_buf());
    let points = [
        HookPoint::CreateRuntime,
        HookPoint::Poststart,
        HookPoint::Poststop,
    ];
    let t = Instant::now();
    let set = PluginSet::load(&manifest, &cache).expect("manifest");
    let loaded = t.elapsed();
    set.prefetch(&points);
    let mut line = format!("manifest {:.0} µs", loaded.as_secs_f64() * 1e6);
    for point in points {
        let t = Instant::now();
        set.invoke(point, &state, &spec).expect("call");
        line += &format!(", {point} {:.0} µs", t.elapsed().as_secs_f64() * 1e6);
    }
    let t = Instant::now();
    drop(set);
    line += &format!(", drop {:.0} µs", t.elapsed().as_secs_f64() * 1e6);
    println!("{line}");
}
