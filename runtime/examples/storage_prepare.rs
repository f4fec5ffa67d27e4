//! Rootfs preparation by each storage driver, as `rwasm run` makes it, timed in one
//! process (no container, no CLI): bench/storage.sh's finer measure.
//!
//! ```sh
//! make build    # the storage-overlay and storage-vfs components, and the runtime
//! RWASM_PLUGIN_DIR=$CARGO_TARGET_DIR/wasm32-wasip2/plugin \
//!   cargo run --release -p rwasm --example storage_prepare -- DATA_ROOT IMAGE [ROUNDS]
//! ```
//!
//! For IMAGE in the store of DATA_ROOT (root only: it mounts), each round does, for the
//! drivers `overlay`, `vfs` and `native-overlay` in turn (round-robin, so load from
//! elsewhere hits them alike): a bundle `DATA_ROOT/containers/ID` as `prepare` leaves it
//! (its driver recorded), then
//! - *prepare*: `storage::mount`, what `run` and `start` do before the container exists:
//!   the driver's manifest written if changed, its component loaded from the compiled
//!   cache, its `prepare` (overlayfs mount, or a copy of every layer for vfs), the bind at
//!   the bundle's `rootfs`;
//! - *release*: `storage::release`, what `rm` does: the unmounts, the driver's `release`
//!   (which removes vfs's copy and overlay's upper layer), then the bundle removed.
//!
//! Prints a Markdown table: median and 90th percentile (ms) of each phase per driver and
//! the prepare medians' ratio to overlay's. Each rootfs is checked to hold `/bin/sh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rwasm::engine::image::ImageStore;
use rwasm::engine::storage::{self, MountCtx};
use rwasm::plugin::PluginSet;

const DRIVERS: [&str; 3] = ["overlay", "vfs", "native-overlay"];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (median, 90th percentile) in ms.
fn stats(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let p90 = ((v.len() * 9).div_ceil(10)).clamp(1, v.len()) - 1;
    (ms(v[v.len() / 2]), ms(v[p90]))
}

/// One prepare and release of `driver`'s rootfs of `layers`; returns both durations.
fn once(data_root: &Path, cache: &Path, layers: &[PathBuf], driver: &str) -> (Duration, Duration) {
    let id = rwasm::engine::run::new_id().expect("read /dev/urandom");
    let bundle = data_root.join("containers").join(&id);
    std::fs::create_dir_all(bundle.join("rootfs")).expect("create the bundle");
    let plugins = PluginSet::empty();
    storage::choose(&bundle, driver, &plugins, false, &[]).expect("record the driver");
    let t0 = Instant::now();
    storage::mount(&MountCtx {
        data_root,
        bundle: &bundle,
        layers,
        plugins: &plugins,
        cache_dir: cache,
    })
    .unwrap_or_else(|e| panic!("{driver}: {}", rwasm::error_chain(&e)));
    let prepared = t0.elapsed();
    assert!(
        bundle.join("rootfs/bin/sh").exists(),
        "{driver}: the rootfs has no /bin/sh"
    );
    let t1 = Instant::now();
    storage::release(&bundle, cache);
    std::fs::remove_dir_all(&bundle).expect("remove the bundle");
    (prepared, t1.elapsed())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: storage_prepare DATA_ROOT IMAGE [ROUNDS]";
    let data_root = PathBuf::from(args.next().expect(usage));
    let image = args.next().expect(usage);
    let rounds: usize = args
        .next()
        .map_or(20, |a| a.parse().expect("ROUNDS must be a number"));
    let data_root = data_root.canonicalize().expect("DATA_ROOT exists");
    let cache = data_root.join("plugin-cache");
    let resolved = ImageStore::new(&data_root)
        .resolve(&image)
        .unwrap_or_else(|e| panic!("{}", rwasm::error_chain(&e)));
    let layers = resolved.layers.clone();
    // One warm-up round: components compiled into the cache, page cache filled.
    for d in DRIVERS {
        once(&data_root, &cache, &layers, d);
    }
    let mut times: Vec<(Vec<Duration>, Vec<Duration>)> = vec![(Vec::new(), Vec::new()); 3];
    for _ in 0..rounds {
        for (i, d) in DRIVERS.iter().enumerate() {
            let (p, r) = once(&data_root, &cache, &layers, d);
            times[i].0.push(p);
            times[i].1.push(r);
        }
    }
    let base = stats(&mut times[0].0.clone()).0;
    println!(
        "| {image} ({} layer{}, {rounds} rounds) | prepare median | prepare p90 | release median | release p90 | prepare ratio to overlay |",
        layers.len(),
        if layers.len() == 1 { "" } else { "s" }
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, d) in DRIVERS.iter().enumerate() {
        let (pm, p9) = stats(&mut times[i].0);
        let (rm, r9) = stats(&mut times[i].1);
        println!(
            "| {d} | {pm:.2} ms | {p9:.2} ms | {rm:.2} ms | {r9:.2} ms | {:.2}× |",
            pm / base
        );
    }
}
