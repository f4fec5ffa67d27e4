//! Volumes end to end, as a Docker user types them: `rwasm volume create|ls|inspect|rm|
//! prune`, `run -v NAME:/path[:ro]`, `-v /host:/path[:ro]`, anonymous volumes (`-v /path`
//! and an image's `Volumes`), `--tmpfs`, `--read-only` with a writable volume, through the
//! first-party `local` volume driver (a wasm component). Root only (they fail, never skip,
//! otherwise). Each test has its own data root, so volume names cannot collide.

mod common;
mod images_common;

use common::*;
use images_common::*;
use serde_json::{Value, json};

fn world() -> World {
    // The built-in `local` driver is found through RWASM_PLUGIN_DIR.
    plugin_wasm("volume_local");
    let w = World::new();
    w.setup_image();
    w
}

fn fails(w: &World, args: &[&str]) -> String {
    let out = w.rwasm(args);
    assert!(
        !out.status.success(),
        "rwasm {args:?} should fail: {}",
        stdout(&out)
    );
    stderr(&out)
}

fn volume_names(w: &World) -> Vec<String> {
    ok(w, &["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn inspect_volume(w: &World, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(w, &["volume", "inspect", name])).unwrap();
    v[0].clone()
}

fn start(w: &World, args: &[&str]) {
    let (code, err) = w.rwasm_detached(&[&["run", "-d"], args].concat());
    assert_eq!(code, 0, "run -d {args:?}: {err}");
}

/// Lines of the host's /proc/mounts that mention `needle`.
fn host_mounts(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn volume_data_outlives_its_container_and_reaches_the_next() {
    let w = world();
    let out = w.rwasm(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(volume_names(&w), ["keep"], "-v NAME creates the volume");
    let v = inspect_volume(&w, "keep");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Anonymous"], false);
    let mountpoint = w.data.join("volumes/keep/_data");
    assert_eq!(
        v["Mountpoint"],
        mountpoint.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "keep:/other",
                "busybox",
                "cat",
                "/other/f"
            ]
        ),
        "kept\n"
    );
    ok(&w, &["volume", "rm", "keep"]);
    assert!(volume_names(&w).is_empty());
    assert!(!w.data.join("volumes/keep").exists(), "the data is gone");
}

#[test]
fn two_running_containers_share_a_volume() {
    let w = world();
    ok(&w, &["volume", "create", "shared"]);
    start(
        &w,
        &["--name", "one", "-v", "shared:/s", "busybox", "sleep", "60"],
    );
    start(
        &w,
        &["--name", "two", "-v", "shared:/s", "busybox", "sleep", "60"],
    );
    ok(&w, &["exec", "one", "sh", "-c", "echo from-one > /s/msg"]);
    assert_eq!(ok(&w, &["exec", "two", "cat", "/s/msg"]), "from-one\n");
    let c: Value = serde_json::from_str(&ok(&w, &["inspect", "two"])).unwrap();
    let mounts = c[0]["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Type"] == "volume" && m["Source"] == "shared" && m["Destination"] == "/s"),
        "inspect lists the volume: {mounts:?}"
    );
    ok(&w, &["rm", "-f", "one", "two"]);
}

#[test]
fn a_volume_in_use_is_not_removed() {
    let w = world();
    start(
        &w,
        &[
            "--name", "holder", "-v", "busy:/b", "busybox", "sleep", "60",
        ],
    );
    let err = fails(&w, &["volume", "rm", "busy"]);
    assert!(
        err.contains("in use") && err.contains("holder"),
        "names the container: {err}"
    );
    let err = fails(&w, &["volume", "rm", "-f", "busy"]);
    assert!(
        err.contains("holder"),
        "-f does not remove it either: {err}"
    );
    assert_eq!(volume_names(&w), ["busy"]);
    ok(&w, &["stop", "-t", "1", "holder"]);
    let err = fails(&w, &["volume", "rm", "busy"]);
    assert!(
        err.contains("holder"),
        "a stopped container still uses it: {err}"
    );
    ok(&w, &["rm", "holder"]);
    ok(&w, &["volume", "rm", "busy"]);
    assert!(volume_names(&w).is_empty());
}

#[test]
fn bind_mounts_honour_ro() {
    let w = world();
    let host = w.path("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let rw = format!("{}:/h", host.display());
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                &rw,
                "busybox",
                "sh",
                "-c",
                "cat /h/in; echo out > /h/out"
            ]
        ),
        "from-host\n"
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "out\n");
    let ro = format!("{}:/h:ro", host.display());
    let out = w.rwasm(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "echo x > /h/new",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!host.join("new").exists());
    // Docker's -v creates a missing host directory.
    let missing = w.path("made/by/v");
    let arg = format!("{}:/m", missing.display());
    ok(&w, &["run", "--rm", "-v", &arg, "busybox", "true"]);
    assert!(missing.is_dir());
    assert!(volume_names(&w).is_empty(), "a bind makes no volume");
}

#[test]
fn a_named_volume_with_ro_is_read_only_inside() {
    let w = world();
    ok(&w, &["volume", "create", "shelf"]);
    ok(
        &w,
        &[
            "run",
            "--rm",
            "-v",
            "shelf:/v",
            "busybox",
            "sh",
            "-c",
            "echo x > /v/f",
        ],
    );
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "shelf:/v:ro",
                "busybox",
                "sh",
                "-c",
                "cat /v/f; touch /v/g 2>/dev/null || echo refused; grep ' /v ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
            ]
        ),
        "x\nrefused\nro\n"
    );
    let data = w.data.join("volumes/shelf/_data");
    assert!(!data.join("g").exists());
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "x\n");
}

#[test]
fn tmpfs_is_a_tmpfs_inside() {
    let w = world();
    let line = ok(
        &w,
        &[
            "run",
            "--rm",
            "--tmpfs",
            "/scratch:size=1m,mode=750",
            "busybox",
            "grep",
            " /scratch ",
            "/proc/mounts",
        ],
    );
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[..3], ["tmpfs", "/scratch", "tmpfs"], "{line}");
    for o in ["nosuid", "nodev", "noexec", "size=1024k", "mode=750"] {
        assert!(f[3].split(',').any(|x| x == o), "{o} in {line}");
    }
}

#[test]
fn a_tmpfs_volume_of_the_local_driver_lives_while_mounted() {
    let w = world();
    ok(
        &w,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=64m",
            "--label",
            "team=a",
            "mem",
        ],
    );
    let v = inspect_volume(&w, "mem");
    assert_eq!(
        v["Options"],
        json!({"type": "tmpfs", "device": "tmpfs", "o": "size=64m"})
    );
    assert_eq!(v["Labels"], json!({"team": "a"}));
    let line = ok(
        &w,
        &[
            "run",
            "--rm",
            "-v",
            "mem:/m",
            "busybox",
            "grep",
            " /m ",
            "/proc/mounts",
        ],
    );
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], "tmpfs", "{line}");
    assert!(f[3].contains("size=65536k"), "{line}");
    let data = w.data.join("volumes/mem/_data").canonicalize().unwrap();
    assert!(
        host_mounts(data.to_str().unwrap()).is_empty(),
        "unmounted on the host once no container uses it"
    );
    let err = fails(&w, &["volume", "create", "-o", "type=nfs", "remote"]);
    assert!(err.contains("type=`nfs`"), "{err}");
    let err = fails(
        &w,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "o=exec,size=1m",
            "badopt",
        ],
    );
    assert!(err.contains("`exec` is not allowed"), "{err}");
    assert_eq!(volume_names(&w), ["mem"], "refused creates leave nothing");
}

#[test]
fn anonymous_volumes_from_the_image_go_with_rm_v() {
    let w = world();
    let bb = busybox_layer(w.tmp.path());
    let content = layer(&[E::Dir("cache"), E::File("cache/seed", b"from-image\n")]);
    let cfg = config(
        &[&bb, &content],
        json!({"Cmd": ["sh"], "Env": ["PATH=/bin"], "Volumes": {"/cache": {}}}),
    );
    let (ar, _) = oci_archive(
        &[
            ("application/vnd.oci.image.layer.v1.tar", bb),
            ("application/vnd.oci.image.layer.v1.tar", content),
        ],
        &cfg,
        Some("withvol:1"),
    );
    ok(&w, &["load", "-i", &put(&w, "withvol.tar", &ar)]);
    let out = w.rwasm(&[
        "run",
        "--name",
        "anon",
        "withvol:1",
        "sh",
        "-c",
        "echo c > /cache/x",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names = volume_names(&w);
    assert_eq!(names.len(), 1, "one anonymous volume: {names:?}");
    assert_eq!(names[0].len(), 64, "a random name: {names:?}");
    let v = inspect_volume(&w, &names[0]);
    assert_eq!(v["Anonymous"], true);
    let c: Value = serde_json::from_str(&ok(&w, &["inspect", "anon"])).unwrap();
    assert!(
        c[0]["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Source"] == names[0].as_str() && m["Destination"] == "/cache"),
        "{:?}",
        c[0]["Mounts"]
    );
    let data = w.data.join("volumes").join(&names[0]).join("_data");
    assert_eq!(std::fs::read_to_string(data.join("x")).unwrap(), "c\n");
    ok(&w, &["rm", "-v", "anon"]);
    assert!(volume_names(&w).is_empty(), "rm -v removes it");
    // A named volume that holds data is not seeded over; an empty one is.
    ok(&w, &["volume", "create", "full"]);
    std::fs::write(w.data.join("volumes/full/_data/mine"), "mine\n").unwrap();
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "full:/cache",
                "withvol:1",
                "ls",
                "/cache"
            ]
        ),
        "mine\n"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "fresh:/cache",
                "withvol:1",
                "cat",
                "/cache/seed"
            ]
        ),
        "from-image\n"
    );
    ok(&w, &["volume", "rm", "full", "fresh"]);
    assert!(!w.data.join("volumes").join(&names[0]).exists());

    // `-v /path` with --rm: made and removed with the container; a named one stays.
    ok(
        &w,
        &[
            "run", "--rm", "-v", "/scratch", "-v", "named:/n", "busybox", "true",
        ],
    );
    assert_eq!(volume_names(&w), ["named"]);
    // Without -v, rm keeps an anonymous volume, and prune removes it.
    ok(
        &w,
        &["run", "--name", "left", "-v", "/tmpdata", "busybox", "true"],
    );
    ok(&w, &["rm", "left"]);
    assert_eq!(volume_names(&w).len(), 2);
    ok(&w, &["volume", "prune", "-f"]);
    assert_eq!(
        volume_names(&w),
        ["named"],
        "prune takes only anonymous ones"
    );
    ok(&w, &["volume", "prune", "-f", "-a"]);
    assert!(volume_names(&w).is_empty());
}

#[test]
fn read_only_root_with_a_writable_volume() {
    let w = world();
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rw:/w",
        "busybox",
        "sh",
        "-c",
        "touch /rootfile 2>/dev/null && echo root-writable; echo ok > /w/f && cat /w/f",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ok\n",
        "the root is read-only, the volume is not"
    );
}

#[test]
fn bad_volume_flags_are_refused_clearly() {
    let w = world();
    for (arg, reason) in [
        (":/x", "source (volume name or host path) is empty"),
        ("data:relative", "container path `relative` is not absolute"),
        ("relative", "container path `relative` is not absolute"),
        ("data:/", "cannot be `/`"),
        ("data:/x:rx", "unknown option `rx`"),
        ("./here:/x", "relative host path"),
    ] {
        let out = w.rwasm(&["run", "--rm", "-v", arg, "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{arg}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("-v `{arg}`")) && err.contains(reason),
            "{arg}: {err}"
        );
    }
    let err = fails(&w, &["run", "--rm", "--tmpfs", "tmp", "busybox", "true"]);
    assert!(err.contains("--tmpfs `tmp`"), "{err}");
    let err = fails(&w, &["volume", "create", "a/b"]);
    assert!(err.contains("invalid volume name `a/b`"), "{err}");
    let err = fails(&w, &["volume", "create", "-d", "nosuch", "x1"]);
    assert!(err.contains("no volume driver named `nosuch`"), "{err}");
    assert!(volume_names(&w).is_empty());
    assert!(
        std::fs::read_dir(w.data.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no container is left"
    );
}

#[test]
fn volume_ls_formats_and_random_names() {
    let w = world();
    let name = ok(&w, &["volume", "create"]).trim().to_string();
    assert_eq!(name.len(), 64);
    assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    ok(&w, &["volume", "create", "--label", "k=v", "second"]);
    let table = ok(&w, &["volume", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("DRIVER") && lines[0].contains("VOLUME NAME"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    let json_lines = ok(&w, &["volume", "ls", "--format", "json"]);
    let second: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["Name"] == "second")
        .collect();
    assert_eq!(second[0]["Labels"], json!({"k": "v"}));
    assert_eq!(
        ok(&w, &["volume", "create", "second"]).trim(),
        "second",
        "idempotent"
    );
    let err = fails(&w, &["volume", "inspect", "nosuch"]);
    assert!(err.contains("no such volume: nosuch"), "{err}");
    ok(&w, &["volume", "rm", &name, "second"]);
    ok(&w, &["volume", "rm", "-f", "nosuch"]);
}

#[test]
fn copy_up_does_not_follow_a_symlink_out_of_the_rootfs() {
    let w = world();
    let host = w.path("host-secret");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host only\n").unwrap();
    let escape = format!("/../../../../../../..{}", host.display());
    let bb = busybox_layer(w.tmp.path());
    let evil = layer(&[E::Symlink("esc", &escape)]);
    let cfg = config(
        &[&bb, &evil],
        json!({"Cmd": ["sh"], "Env": ["PATH=/bin"], "Volumes": {"/esc": {}}}),
    );
    let (ar, _) = oci_archive(
        &[
            ("application/vnd.oci.image.layer.v1.tar", bb),
            ("application/vnd.oci.image.layer.v1.tar", evil),
        ],
        &cfg,
        Some("evil:1"),
    );
    ok(&w, &["load", "-i", &put(&w, "evil.tar", &ar)]);
    let _ = w.rwasm(&["run", "--name", "evil", "evil:1", "true"]);
    for name in volume_names(&w) {
        let data = w.data.join("volumes").join(&name).join("_data");
        assert!(
            !data.join("secret").exists(),
            "the host directory was copied into volume {name}"
        );
    }
    let _ = w.rwasm(&["rm", "-v", "evil"]);
    assert_eq!(
        std::fs::read_to_string(host.join("secret")).unwrap(),
        "host only\n"
    );
}

/// A manifest with the local driver's component as a third-party driver `name`, granted
/// `grant`, told that its data live at `root`.
fn driver_manifest(
    w: &World,
    name: &str,
    grant: &std::path::Path,
    root: &std::path::Path,
) -> String {
    driver_manifest_with(w, name, grant, root, "")
}

/// [`driver_manifest`] with `config` (TOML lines) added to its `[plugin.config]`.
fn driver_manifest_with(
    w: &World,
    name: &str,
    grant: &std::path::Path,
    root: &std::path::Path,
    config: &str,
) -> String {
    std::fs::create_dir_all(grant).unwrap();
    let body = format!(
        r#"[[plugin]]
name = "{name}"
path = {wasm:?}
kind = "volume-driver"
[plugin.config]
root = {root:?}
{config}
[plugin.grants]
dirs = {{ {grant:?} = "/volumes:rw" }}
"#,
        wasm = plugin_wasm("volume_local").display().to_string(),
        root = root.display().to_string(),
        grant = grant.display().to_string(),
    );
    manifest(w, &format!("{name}.toml"), &body)
        .display()
        .to_string()
}

#[test]
fn a_manifest_volume_driver_is_called_and_checked() {
    let w = world();
    let grant = w.path("vendor-volumes");
    let m = driver_manifest(&w, "vendor", &grant, &grant);
    ok(
        &w,
        &["--plugins", &m, "volume", "create", "-d", "vendor", "vv"],
    );
    assert!(
        grant.join("vv/_data").is_dir(),
        "the driver's directory holds it"
    );
    assert_eq!(inspect_volume(&w, "vv")["Driver"], "vendor");
    // The record keeps the manifest: later commands find the driver without --plugins.
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "vv:/v",
                "busybox",
                "sh",
                "-c",
                "echo v > /v/f; cat /v/f"
            ]
        ),
        "v\n"
    );
    assert_eq!(
        std::fs::read_to_string(grant.join("vv/_data/f")).unwrap(),
        "v\n"
    );
    ok(&w, &["volume", "rm", "vv"]);
    assert!(!grant.join("vv").exists());

    // A driver answering a mountpoint outside its grants is refused, and what it made
    // is removed again.
    let elsewhere = w.path("elsewhere");
    std::fs::create_dir_all(elsewhere.join("out/_data")).unwrap();
    let liar = driver_manifest(&w, "liar", &w.path("liar-volumes"), &elsewhere);
    let err = fails(
        &w,
        &["--plugins", &liar, "volume", "create", "-d", "liar", "out"],
    );
    assert!(
        err.contains("not a directory under its granted directories"),
        "{err}"
    );
    assert!(volume_names(&w).is_empty());
    assert!(
        !w.path("liar-volumes/out").exists(),
        "the driver's volume was removed"
    );
}

#[test]
fn mount_flag_as_docker() {
    let w = world();
    let host = w.path("mnt-src");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "bound\n").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = w.rwasm(&[
        "run", "--rm", "--mount", &bind, "--mount", "type=volume,src=mvol,dst=/v",
        "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox", "sh", "-c",
        "cat /b/in; touch /b/x 2>/dev/null || echo ro; echo v > /v/f; grep ' /t ' /proc/mounts | cut -d' ' -f1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "bound\nro\ntmpfs\n");
    assert_eq!(volume_names(&w), ["mvol"]);
    let missing = format!("type=bind,source={},target=/b", w.path("nope").display());
    let out = w.rwasm(&["run", "--rm", "--mount", &missing, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("bind source path does not exist"),
        "--mount refuses a missing source: {}",
        stderr(&out)
    );
    assert!(!w.path("nope").exists());
}

/// A volume made in a `local`-style driver's directory behind rwasm's back (as another
/// tool using the driver would): `DIR/NAME/_data` and its options file.
fn volume_behind_our_back(dir: &std::path::Path, name: &str) {
    std::fs::create_dir_all(dir.join(name).join("_data")).unwrap();
    std::fs::write(dir.join(name).join("opts"), "").unwrap();
}

#[test]
fn volume_ls_and_inspect_ask_the_drivers_list_and_get() {
    let w = world();
    ok(&w, &["volume", "create", "rec"]);
    let local = w.data.join("volumes").canonicalize().unwrap();
    volume_behind_our_back(&local, "side");
    let grant = w.path("vendor-volumes");
    let m = driver_manifest(&w, "vendor", &grant, &grant);
    ok(
        &w,
        &["--plugins", &m, "volume", "create", "-d", "vendor", "vv"],
    );
    volume_behind_our_back(&grant, "other");

    // `ls`: what each driver's `list` reports, merged with the records. The vendor
    // driver is asked through the manifest its record keeps, even without --plugins.
    let table = ok(&w, &["volume", "ls"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["DRIVER", "VOLUME", "NAME"],
            vec!["vendor", "other"],
            vec!["local", "rec"],
            vec!["local", "side"],
            vec!["vendor", "vv"],
        ],
        "{table}"
    );
    assert_eq!(volume_names(&w), ["other", "rec", "side", "vv"]);

    // `inspect`: a volume only the driver knows, found by its `get`, with the driver's
    // mountpoint and creation time.
    let side = inspect_volume(&w, "side");
    assert_eq!(side["Driver"], "local");
    assert_eq!(
        side["Mountpoint"],
        local.join("side/_data").display().to_string()
    );
    assert!(side["CreatedAt"].as_str().unwrap().ends_with('Z'), "{side}");
    let other = inspect_volume(&w, "other");
    assert_eq!(other["Driver"], "vendor");
    assert_eq!(
        other["Mountpoint"],
        grant.join("other/_data").display().to_string()
    );
    // A recorded volume's mountpoint is the driver's answer, not the record's copy.
    let rec_file = w.data.join("volume-records/rec.json");
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&rec_file).unwrap()).unwrap();
    rec["Mountpoint"] = json!("/stale/path");
    std::fs::write(&rec_file, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert_eq!(
        inspect_volume(&w, "rec")["Mountpoint"],
        local.join("rec/_data").display().to_string()
    );

    // A driver-only volume is usable and removable as any other.
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-v",
                "side:/s",
                "busybox",
                "sh",
                "-c",
                "echo s > /s/f; cat /s/f"
            ]
        ),
        "s\n"
    );
    ok(&w, &["volume", "rm", "side", "other"]);
    assert!(!local.join("side").exists() && !grant.join("other").exists());
    // A record whose data the driver no longer has is left out of `ls`, as Docker does.
    std::fs::remove_dir_all(local.join("rec")).unwrap();
    assert_eq!(volume_names(&w), ["vv"]);
}

#[test]
fn the_scope_is_the_drivers_capabilities_answer() {
    // Docker asks `/VolumeDriver.Capabilities` and shows its Scope in `volume inspect`
    // and `volume ls --format json`.
    let w = world();
    ok(&w, &["volume", "create", "here"]);
    assert_eq!(inspect_volume(&w, "here")["Scope"], "local");
    let grant = w.path("shared-volumes");
    let m = driver_manifest_with(&w, "shared", &grant, &grant, "scope = \"global\"");
    ok(
        &w,
        &[
            "--plugins",
            &m,
            "volume",
            "create",
            "-d",
            "shared",
            "everywhere",
        ],
    );
    assert_eq!(inspect_volume(&w, "everywhere")["Scope"], "global");
    // One only the driver knows is reported with the driver's scope too.
    volume_behind_our_back(&grant, "elsewhere");
    let v: Value = serde_json::from_str(&ok(
        &w,
        &["--plugins", &m, "volume", "inspect", "elsewhere"],
    ))
    .unwrap();
    assert_eq!(v[0]["Scope"], "global", "{v}");
    let ls = ok(&w, &["--plugins", &m, "volume", "ls", "--format", "json"]);
    let scopes: Vec<(String, String)> = ls
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["Name"].as_str().unwrap().to_string(),
                v["Scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("elsewhere".to_string(), "global".to_string()),
            ("everywhere".to_string(), "global".to_string()),
            ("here".to_string(), "local".to_string()),
        ],
        "{ls}"
    );
    // A scope the driver does not know is refused at its configure, naming the key.
    let bad = driver_manifest_with(
        &w,
        "bad",
        &w.path("bad-volumes"),
        &w.path("bad-volumes"),
        "scope = \"galactic\"",
    );
    let err = fails(
        &w,
        &["--plugins", &bad, "volume", "create", "-d", "bad", "nope"],
    );
    assert!(
        err.contains("key `scope`: `galactic` is neither local nor global"),
        "{err}"
    );
    assert_eq!(volume_names(&w), ["elsewhere", "everywhere", "here"]);
}

#[test]
fn volumes_are_unmounted_at_stop_and_mounted_again_at_start() {
    let w = world();
    ok(
        &w,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "mem",
        ],
    );
    ok(&w, &["volume", "create", "disk"]);
    let data = w.data.join("volumes/mem/_data").canonicalize().unwrap();
    let marks = w.data.join("volumes").canonicalize().unwrap();
    let mounted_for = |v: &str| -> Vec<String> {
        std::fs::read_dir(marks.join(v).join("mounts"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    start(
        &w,
        &[
            "--name", "t", "-v", "mem:/m", "-v", "disk:/d", "busybox", "sleep", "1000",
        ],
    );
    let id = ok(&w, &["inspect", "-f", "{{.Id}}", "t"])
        .trim()
        .to_string();
    assert_eq!(
        host_mounts(data.to_str().unwrap()).len(),
        1,
        "tmpfs while running"
    );
    assert_eq!(mounted_for("disk"), std::slice::from_ref(&id));
    ok(
        &w,
        &[
            "exec",
            "t",
            "sh",
            "-c",
            "echo kept > /d/f; echo lost > /m/f",
        ],
    );

    ok(&w, &["stop", "-t", "0", "t"]);
    // The drivers' `unmount` ran: no mount marker, the tmpfs gone with its data.
    assert!(
        host_mounts(data.to_str().unwrap()).is_empty(),
        "unmounted at stop"
    );
    assert!(mounted_for("disk").is_empty() && mounted_for("mem").is_empty());
    assert!(
        !data.join("f").exists(),
        "the tmpfs data went with the mount"
    );

    let (code, err) = w.rwasm_detached(&["start", "t"]);
    assert_eq!(code, 0, "start: {err}");
    // The drivers' `mount` again: a fresh tmpfs inside, the directory volume's data kept.
    let inside = ok(
        &w,
        &[
            "exec",
            "t",
            "sh",
            "-c",
            "grep ' /m ' /proc/mounts | cut -d' ' -f1; cat /d/f; ls /m",
        ],
    );
    assert_eq!(inside, "tmpfs\nkept\n", "{inside}");
    assert_eq!(host_mounts(data.to_str().unwrap()).len(), 1);
    assert_eq!(mounted_for("mem"), [id]);
    ok(&w, &["rm", "-f", "t"]);
    assert!(host_mounts(data.to_str().unwrap()).is_empty());
    assert!(mounted_for("disk").is_empty());
}
