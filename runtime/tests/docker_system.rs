//! `rwasm stats` of a real container (the memory it holds is reported inside its limit),
//! `version` and `info`. Root only (they fail, never skip, otherwise).

mod common;

use common::*;
use rwasm::engine::units::human_size;

/// "12.5MiB" → bytes.
fn binary_size(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let mul = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    num.parse::<f64>().unwrap() * mul
}

/// A fresh world with the busybox image and a detached container running `sh -c script`
/// (its name prefixed with `prefix`); the world and the container's name.
fn detached_sh(prefix: &str, script: &str) -> (World, String) {
    let w = World::new();
    w.setup_image();
    let name = format!("{prefix}-{}", rand_suffix());
    let out = w.rwasm(&["run", "-d", "--name", &name, "busybox", "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    (w, name)
}

/// Poll (bounded at 30 s) until the container `name` has made `path`.
fn wait_for_file(w: &World, name: &str, path: &str) {
    let t = std::time::Instant::now();
    while !w
        .rwasm(&["exec", name, "test", "-e", path])
        .status
        .success()
    {
        assert!(t.elapsed().as_secs() < 30, "{name} never made {path}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn stats_no_stream_reports_memory_inside_the_limit() {
    let w = World::new();
    w.setup_image();
    let name = format!("st-{}", rand_suffix());
    // 10 MiB in /dev/shm (tmpfs pages are charged to the container's memory cgroup).
    let out = w.rwasm(&[
        "run",
        "-d",
        "--name",
        &name,
        "-m",
        "64m",
        "--shm-size",
        "32m",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/f bs=1M count=10 2>/dev/null; touch /tmp/ready; sleep 60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_file(&w, &name, "/tmp/ready");
    let out = w.rwasm(&["stats", "--no-stream", "--format", "json", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["Name"], name.as_str());
    let (usage, limit) = v["MemUsage"].as_str().unwrap().split_once(" / ").unwrap();
    let (usage, limit) = (binary_size(usage), binary_size(limit));
    assert_eq!(limit, 64.0 * 1024.0 * 1024.0, "{v}");
    assert!(usage >= 10.0 * 1024.0 * 1024.0 && usage < limit, "{v}");
    assert!(
        v["PIDs"].as_str().unwrap().parse::<u32>().unwrap() >= 1,
        "{v}"
    );
    assert!(v["CPUPerc"].as_str().unwrap().ends_with('%'), "{v}");
    let table = stdout(&w.rwasm(&["stats", "--no-stream", &name]));
    assert!(
        table.starts_with("CONTAINER ID   NAME") && table.contains("MEM USAGE / LIMIT"),
        "{table}"
    );
    assert!(w.rwasm(&["rm", "-f", &name]).status.success());
}

/// Docker's CPU %: two samples of the cgroup's CPU time (cpuacct.usage, cpu.stat
/// usage_usec) against the host's CPU time between them, times the online CPUs. A busy
/// loop shows well above 0 % (up to 100 % of one CPU, less while other work shares the
/// machine), an idle `sleep` about 0 %.
#[test]
fn stats_cpu_percent_tells_a_busy_loop_from_an_idle_sleep() {
    let w = World::new();
    w.setup_image();
    let busy = format!("busy-{}", rand_suffix());
    let idle = format!("idle-{}", rand_suffix());
    for (name, cmd) in [(&busy, "while :; do :; done"), (&idle, "sleep 60")] {
        let out = w.rwasm(&["run", "-d", "--name", name, "busybox", "sh", "-c", cmd]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = w.rwasm(&["stats", "--no-stream", "--format", "json", &busy, &idle]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cpu = |name: &str| -> f64 {
        let line = stdout(&out)
            .lines()
            .find(|l| l.contains(&format!("\"Name\":\"{name}\"")))
            .unwrap_or_else(|| panic!("no row for {name}: {}", stdout(&out)))
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["CPUPerc"]
            .as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    let (b, i) = (cpu(&busy), cpu(&idle));
    assert!(b > 10.0 && b <= 105.0, "busy loop: {b}% ({})", stdout(&out));
    assert!(i < 5.0, "idle sleep: {i}% ({})", stdout(&out));
    assert!(w.rwasm(&["rm", "-f", &busy, &idle]).status.success());
}

/// "8.47MB" (go-units' decimal HumanSize) → bytes.
fn decimal_bytes(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let mul = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    };
    num.parse::<f64>().unwrap() * mul
}

/// BLOCK I/O is the cgroup's (blkio.throttle.io_service_bytes on v1, io.stat on v2):
/// 8 MiB written and synced shows at least 8 MiB written; NET I/O without a network 0B.
#[test]
fn stats_block_io_counts_what_the_container_wrote() {
    let (w, name) = detached_sh(
        "bio",
        "dd if=/dev/zero of=/big bs=1M count=8 conv=fsync 2>/dev/null; sync; touch /tmp/done; sleep 60",
    );
    wait_for_file(&w, &name, "/tmp/done");
    let out = w.rwasm(&["stats", "--no-stream", "--format", "json", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let (_, written) = v["BlockIO"].as_str().unwrap().split_once(" / ").unwrap();
    assert!(decimal_bytes(written) >= 8.0 * 1024.0 * 1024.0, "{v}");
    assert_eq!(v["NetIO"], "0B / 0B", "{v}");
    assert!(w.rwasm(&["rm", "-f", &name]).status.success());
}

#[test]
fn version_and_info_describe_the_build_and_the_host() {
    let w = World::new();
    w.setup_image();
    let v: serde_json::Value =
        serde_json::from_slice(&w.rwasm(&["version", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["OciVersion"], "1.2.0");
    assert!(v["Libseccomp"].as_str().unwrap().starts_with("2."), "{v}");
    let name = format!("info-{}", rand_suffix());
    let out = w.rwasm(&["run", "-d", "--name", &name, "busybox", "sleep", "30"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let i: serde_json::Value =
        serde_json::from_slice(&w.rwasm(&["info", "--format", "json"]).stdout).unwrap();
    assert_eq!(i["Containers"], 1, "{i}");
    assert_eq!(i["ContainersRunning"], 1, "{i}");
    assert!(i["Images"].as_u64().unwrap() >= 1, "{i}");
    let layout = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = layout.lines().any(|l| l.contains(" - cgroup "));
    assert_eq!(i["CgroupVersion"], if v1 { "1" } else { "2" }, "{i}");
    // The storage driver new containers get, and the drivers there are to choose from.
    assert_eq!(i["Driver"], "overlay", "{i}");
    assert_eq!(
        i["NetworkDrivers"],
        serde_json::json!(["none", "host", "bridge"]),
        "{i}"
    );
    assert_eq!(
        i["StorageDrivers"],
        serde_json::json!(["overlay", "vfs", "native-overlay"]),
        "{i}"
    );
    assert_eq!(i["VolumeDrivers"], serde_json::json!(["local"]), "{i}");
    let vfs: serde_json::Value = serde_json::from_slice(
        &w.rwasm(&["--storage-driver", "vfs", "info", "--format", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(vfs["Driver"], "vfs");
    let text = stdout(&w.rwasm(&["info"]));
    assert!(
        text.contains(" Cgroup Driver: cgroupfs")
            && text.contains("   Running: 1")
            && text.contains(" Network Drivers: none host bridge"),
        "{text}"
    );
    assert!(w.rwasm(&["rm", "-f", &name]).status.success());
}

/// The stdout of a command that must succeed.
fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
}

#[test]
fn ps_size_shows_the_writable_layer_and_the_virtual_size() {
    let w = World::new();
    w.setup_image();
    // The image's bytes: its unpacked layers, as `images` counts them.
    let image_bytes: u64 = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".size"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(image_bytes > 1_000_000, "busybox-static is over 1 MB");
    // 300000 bytes written by each container: the overlay plugin and the native overlay.
    for driver in ["overlay", "native-overlay"] {
        let out = w.rwasm(&[
            "--storage-driver",
            driver,
            "run",
            "--name",
            &format!("sz-{driver}"),
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/big bs=1000 count=300 2>/dev/null",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let want = format!("300kB (virtual {})", human_size(image_bytes + 300_000));
    let rows: Vec<serde_json::Value> = ok(&w.rwasm(&["ps", "-a", "-s", "--format", "json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["Size"], want.as_str(), "{r}");
    }
    let table = ok(&w.rwasm(&["ps", "-a", "--size"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID")
            && lines[0]
                .split_whitespace()
                .rev()
                .take(2)
                .eq(["SIZE", "NAMES"]),
        "{table}"
    );
    assert!(
        lines[1..].iter().all(|l| l.trim_end().ends_with(&want)),
        "{table}"
    );
    // A template naming .Size has the sizes computed, as Docker's.
    let t = ok(&w.rwasm(&["ps", "-a", "--format", "{{.Names}}={{.Size}}"]));
    assert!(t.contains(&format!("sz-overlay={want}")), "{t}");
    // Without -s nothing is measured.
    let plain: serde_json::Value = serde_json::from_str(
        ok(&w.rwasm(&["ps", "-a", "--format", "json"]))
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(plain["Size"], "0B");
    assert!(!ok(&w.rwasm(&["ps", "-a"])).contains("SIZE"));
}

/// Without `--no-stream`, `stats` redraws (Docker's clear-screen-and-home) once a second
/// until interrupted, each frame from a fresh sample.
#[test]
fn stats_streams_a_frame_a_second_until_interrupted() {
    let (w, name) = detached_sh(
        "sts",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.2; done",
    );
    let mut c = w.cmd(&["stats", "--format", "json", &name]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut reader = child.stdout.take().unwrap();
    let frames = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    std::thread::sleep(std::time::Duration::from_millis(3600));
    assert!(
        child.try_wait().unwrap().is_none(),
        "stats without --no-stream keeps running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap();
    let text = frames.join().unwrap();
    let frames: Vec<serde_json::Value> = text
        .split("\x1b[2J\x1b[H")
        .filter(|f| !f.trim().is_empty())
        .map(|f| serde_json::from_str(f.trim()).unwrap())
        .collect();
    // A frame a second (each after a 1 s sleep between samples): 3 in 3.6 s, at least 2
    // on a loaded machine.
    assert!(frames.len() >= 2, "{text:?}");
    for f in &frames {
        assert_eq!(f["Name"], name.as_str(), "{f}");
        assert_ne!(f["PIDs"], "0", "{f}");
    }
    w.rwasm(&["rm", "-f", &name]);
}
