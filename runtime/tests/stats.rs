//! `rwasm stats` of a real container: the memory it holds is reported inside its limit.
//! Root only (it fails, never skips, otherwise).

mod common;

use common::*;

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
    let t = std::time::Instant::now();
    while !w
        .rwasm(&["exec", &name, "test", "-e", "/tmp/ready"])
        .status
        .success()
    {
        assert!(
            t.elapsed().as_secs() < 20,
            "the container never wrote its 10 MiB"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
