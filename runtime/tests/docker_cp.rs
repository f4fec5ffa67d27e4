//! `rwasm cp` both ways on real containers (running and stopped), Docker's destination
//! rules, and that no symlink in the container leads a copy onto the host; `system df`
//! and `system prune` on a data root of the test's own. Root only (they fail, never skip).

mod common;

use common::*;

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

/// A detached busybox that made /data (a file, a subdir, a link to /etc) and then sleeps.
fn started(w: &World, name: &str) {
    let (code, err) = w.rwasm_detached(&[
        "run",
        "-d",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub; echo hello > /data/a; chmod 640 /data/a; echo inner > /data/sub/b; \
         ln -s /etc /data/escape; touch /tmp/ready; sleep 300",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = std::time::Instant::now();
    while !w
        .rwasm(&["exec", name, "test", "-e", "/tmp/ready"])
        .status
        .success()
    {
        assert!(t.elapsed().as_secs() < 20, "the container never got ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn cp_out_copies_trees_files_and_links_as_docker_does() {
    let w = World::new();
    w.setup_image();
    let name = format!("cpo-{}", rand_suffix());
    started(&w, &name);
    let out = w.path("out");
    std::fs::create_dir(&out).unwrap();

    // An existing destination directory receives the source under its name.
    ok(&w.rwasm(&["cp", &format!("{name}:/data"), out.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(out.join("data/a")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/b")).unwrap(),
        "inner\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("data/a"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // A link is copied as a link, not followed.
    assert_eq!(
        std::fs::read_link(out.join("data/escape")).unwrap(),
        std::path::Path::new("/etc")
    );

    // SRC/. into a missing destination: the contents, in a new directory.
    let flat = out.join("flat");
    ok(&w.rwasm(&["cp", &format!("{name}:/data/."), flat.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(flat.join("a")).unwrap(), "hello\n");

    // -L resolves the link inside the container: its /etc/hostname, not the host's.
    let hn = out.join("hostname");
    ok(&w.rwasm(&[
        "cp",
        "-L",
        &format!("{name}:/data/escape/hostname"),
        hn.to_str().unwrap(),
    ]));
    let id = ok(&w.rwasm(&["inspect", "-f", "{{.Id}}", &name]));
    assert_eq!(
        std::fs::read_to_string(&hn).unwrap().trim(),
        &id.trim()[..12]
    );

    // Docker's rules: a directory onto a file; a file into a missing `dir/`.
    let o = w.rwasm(&[
        "cp",
        &format!("{name}:/data"),
        out.join("data/a").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot copy a directory to a file"),
        "{}",
        stderr(&o)
    );
    let o = w.rwasm(&[
        "cp",
        &format!("{name}:/data/a"),
        &format!("{}/nodir/", out.display()),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no such directory"), "{}", stderr(&o));
    let o = w.rwasm(&["cp", &format!("{name}:/missing"), out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/missing"), "{}", stderr(&o));
    let o = w.rwasm(&["cp", "/etc/hostname", out.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("at least one container"),
        "{}",
        stderr(&o)
    );
    ok(&w.rwasm(&["rm", "-f", &name]));
}

#[test]
fn cp_in_stays_inside_the_rootfs_and_sets_root_ownership() {
    let w = World::new();
    w.setup_image();
    let name = format!("cpi-{}", rand_suffix());
    started(&w, &name);
    let marker = format!("rwasm-cp-{}", rand_suffix());
    let src = w.path(&marker);
    std::fs::write(&src, "from the host\n").unwrap();
    std::os::unix::fs::chown(&src, Some(1234), Some(1234)).unwrap();

    // Through the container's /data/escape -> /etc: lands in the container's /etc.
    ok(&w.rwasm(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{name}:/data/escape/"),
    ]));
    assert!(
        !std::path::Path::new("/etc").join(&marker).exists(),
        "the copy reached the host's /etc"
    );
    let inside = ok(&w.rwasm(&[
        "exec",
        &name,
        "stat",
        "-c",
        "%u:%g %s",
        &format!("/etc/{marker}"),
    ]));
    assert_eq!(inside.trim(), "0:0 14");
    // `..` is clamped at the container's root.
    ok(&w.rwasm(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{name}:/../../../tmp/up"),
    ]));
    assert_eq!(
        ok(&w.rwasm(&["exec", &name, "cat", "/tmp/up"])),
        "from the host\n"
    );
    // -a keeps the source's owner; a directory is copied recursively.
    let tree = w.path("tree");
    std::fs::create_dir_all(tree.join("deep")).unwrap();
    std::fs::write(tree.join("deep/f"), "x").unwrap();
    std::os::unix::fs::symlink("deep/f", tree.join("l")).unwrap();
    std::os::unix::fs::chown(tree.join("deep/f"), Some(1234), Some(99)).unwrap();
    ok(&w.rwasm(&["cp", "-a", tree.to_str().unwrap(), &format!("{name}:/srv")]));
    assert_eq!(
        ok(&w.rwasm(&["exec", &name, "stat", "-c", "%u:%g", "/srv/deep/f"])).trim(),
        "1234:99"
    );
    assert_eq!(
        ok(&w.rwasm(&["exec", &name, "readlink", "/srv/l"])).trim(),
        "deep/f"
    );
    ok(&w.rwasm(&["rm", "-f", &name]));
}

#[test]
fn cp_works_on_a_stopped_container_and_leaves_its_rootfs_unmounted() {
    let w = World::new();
    w.setup_image();
    let name = format!("cps-{}", rand_suffix());
    ok(&w.rwasm(&[
        "run",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept",
    ]));
    let out = w.path("kept");
    ok(&w.rwasm(&["cp", &format!("{name}:/kept"), out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept\n");
    std::fs::write(w.path("new"), "new\n").unwrap();
    ok(&w.rwasm(&[
        "cp",
        w.path("new").to_str().unwrap(),
        &format!("{name}:/new"),
    ]));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(w.data.to_str().unwrap()),
        "a rootfs stayed mounted: {mounts}"
    );
    // The file copied in is in the container's writable layer: seen by its next start.
    ok(&w.rwasm(&["start", "-a", &name]));
    let o = ok(&w.rwasm(&[
        "cp",
        &format!("{name}:/new"),
        w.path("back").to_str().unwrap(),
    ]));
    assert!(o.is_empty());
    assert_eq!(std::fs::read_to_string(w.path("back")).unwrap(), "new\n");
    ok(&w.rwasm(&["rm", &name]));
}

#[test]
fn system_df_counts_and_system_prune_removes_what_is_unused() {
    let w = World::new();
    w.setup_image();
    let name = format!("df-{}", rand_suffix());
    ok(&w.rwasm(&[
        "run",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1000 count=300 2>/dev/null",
    ]));
    let df = ok(&w.rwasm(&["system", "df", "--format", "json"]));
    let rows: Vec<serde_json::Value> = df
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["Type"], "Images");
    assert_eq!(rows[0]["TotalCount"], "1");
    assert_eq!(rows[1]["Type"], "Containers");
    assert_eq!(rows[1]["TotalCount"], "1");
    assert_eq!(rows[1]["Active"], "0");
    // 300 kB written by the container (its writable layer, as the storage driver counts it:
    // the file plus the layer's own directories), all reclaimable once stopped.
    let size = rows[1]["Size"].as_str().unwrap();
    let kb: f64 = size.strip_suffix("kB").expect(size).parse().unwrap();
    assert!((300.0..320.0).contains(&kb), "{df}");
    assert_eq!(
        rows[1]["Reclaimable"].as_str().unwrap(),
        format!("{size} (100%)"),
        "{df}"
    );
    // Its image is in use by it (stopped or not, as Docker counts).
    assert_eq!(rows[0]["Active"], "1", "{df}");
    let table = ok(&w.rwasm(&["system", "df"]));
    assert!(table.starts_with("TYPE"), "{table}");

    let pruned = ok(&w.rwasm(&["system", "prune", "-a", "-f"]));
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(pruned.contains("untagged: busybox:latest"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert!(ok(&w.rwasm(&["ps", "-a", "-q"])).trim().is_empty());
    assert!(ok(&w.rwasm(&["images", "-q"])).trim().is_empty());
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    let w = World::new();
    let bash = ok(&w.rwasm(&["completion", "bash"]));
    for cmd in ["run", "exec", "cp", "system", "image"] {
        assert!(bash.contains(cmd), "no {cmd} in the bash completion");
    }
    assert!(ok(&w.rwasm(&["completion", "zsh"])).contains("#compdef rwasm"));
    let dir = w.path("man");
    let o = ok(&w.rwasm(&["generate-man", dir.to_str().unwrap()]));
    assert!(o.contains("man pages in"), "{o}");
    let run = std::fs::read_to_string(dir.join("rwasm-run.1")).unwrap();
    assert!(
        run.starts_with(".ie") || run.contains(".TH rwasm-run"),
        "{run}"
    );
    assert!(run.contains("Examples:"), "no example in rwasm-run.1");
    assert!(dir.join("rwasm-image-ls.1").exists());
    assert!(
        !dir.join("rwasm-monitor.1").exists(),
        "a hidden command got a page"
    );
    let help = ok(&w.rwasm(&["cp", "--help"]));
    assert!(
        help.contains("Examples:\n  rwasm cp web:/etc/hostname"),
        "{help}"
    );
}
