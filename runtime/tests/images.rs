//! The image store and Docker's image commands, against real archives the tests build:
//! `setup`'s busybox image, `load` (OCI and `docker save` archives, gzip and zstd layers),
//! `save`, `import`, `tag`, `images`, `image inspect`, `rmi`, `image prune`, corrupted
//! blobs and concurrent loads. Root only (they fail, never skip, otherwise).

mod common;
mod images_common;

use common::*;
use images_common::*;
use serde_json::{Value, json};

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

#[test]
fn setup_makes_busybox_a_real_image_in_an_oci_layout() {
    let w = World::new();
    w.setup_image();
    let images = w.data.join("images");
    assert_eq!(
        std::fs::read_to_string(images.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let idx = index(&w);
    let m = &idx["manifests"].as_array().unwrap()[0];
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "busybox:latest"
    );
    assert_eq!(verify_blobs(&w), 3, "manifest, config, one layer");
    let table = ok(&w, &["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "REPOSITORY   TAG       IMAGE ID       CREATED                  SIZE"
    );
    assert!(lines[1].starts_with("busybox      latest    "), "{table}");
    assert_eq!(lines.len(), 2);
    let j: Value = serde_json::from_str(ok(&w, &["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(
        (j["Repository"].as_str(), j["Tag"].as_str()),
        (Some("busybox"), Some("latest"))
    );
    let id = j["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 12);
    assert!(j["Size"].as_str().unwrap().ends_with("MB"), "{j}");
    let inspect: Value = serde_json::from_str(&ok(&w, &["image", "inspect", "busybox"])).unwrap();
    let i = &inspect[0];
    assert!(
        i["Id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sha256:{id}"))
    );
    assert_eq!(i["RepoTags"], json!(["busybox:latest"]));
    assert_eq!(i["Config"]["Cmd"], json!(["sh"]));
    assert_eq!(
        i["Config"]["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // Setup is idempotent and the image runs by name, by tag and by short ID.
    w.setup_image();
    assert_eq!(ok(&w, &["images", "-q"]).trim(), id);
    for name in ["busybox", "busybox:latest", id.as_str()] {
        assert_eq!(
            ok(&w, &["run", "--rm", name, "echo", "ok"]),
            "ok\n",
            "{name}"
        );
    }
}

/// A two-layer image: a busybox layer (gzip) and a layer (zstd) adding /data/hello.
fn two_layer_archive(w: &World, name: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    two_layer_archive_on(busybox_layer(w.tmp.path()), name)
}

fn two_layer_archive_on(bb: Vec<u8>, name: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let top = layer(&[
        E::Dir("data"),
        E::File("data/hello", b"from the top layer\n"),
    ]);
    let cfg = config(&[&bb, &top], json!({"Cmd": ["cat", "/data/hello"]}));
    let (ar, _) = oci_archive(&[(GZ, gzip(&bb)), (ZST, zstd(&top))], &cfg, name);
    (ar, cfg)
}

#[test]
fn load_reads_oci_and_docker_archives_and_save_round_trips() {
    let w = World::new();
    // One busybox layer for both images (a second tar of the tree could differ in mtimes).
    let bb = busybox_layer(w.tmp.path());
    let (ar, cfg) = two_layer_archive_on(bb.clone(), Some("docker.io/library/app:v1"));
    let path = put(&w, "app.tar", &ar);
    assert_eq!(ok(&w, &["load", "-i", &path]), "Loaded image: app:v1\n");
    assert_eq!(ok(&w, &["run", "--rm", "app:v1"]), "from the top layer\n");
    assert_eq!(verify_blobs(&w), 4);
    let layers = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        layers, 2,
        "each layer unpacked once, into its own directory"
    );

    // A docker save archive with plain layers, its config carrying the same diff IDs.
    let extra = layer(&[E::File("docker-was-here", b"yes\n")]);
    let dcfg = config(&[&bb, &extra], json!({"Cmd": ["cat", "/docker-was-here"]}));
    let dpath = put(
        &w,
        "docker.tar",
        &docker_archive(&[bb, extra], &dcfg, &["legacy:1"]),
    );
    assert_eq!(ok(&w, &["load", "-i", &dpath]), "Loaded image: legacy:1\n");
    assert_eq!(ok(&w, &["run", "--rm", "legacy:1"]), "yes\n");
    let bb_layers = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .count();
    assert_eq!(
        bb_layers,
        3 * 2,
        "the busybox layer is shared: 3 dirs + 3 size files"
    );

    // save, then load into a fresh world: same image ID, same content.
    let out = w.path("saved.tar");
    ok(&w, &["save", "-o", out.to_str().unwrap(), "app:v1"]);
    let w2 = World::new();
    assert_eq!(
        ok(&w2, &["load", "-i", out.to_str().unwrap()]),
        "Loaded image: app:v1\n"
    );
    let id = |w: &World| {
        let v: Value = serde_json::from_str(&ok(w, &["image", "inspect", "app:v1"])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&w), id(&w2));
    assert_eq!(id(&w), sha(&cfg), "the image ID is the config digest");
    assert_eq!(ok(&w2, &["run", "--rm", "app:v1"]), "from the top layer\n");
    // CREATED is the config's `created`, as Docker shows it (go-units' HumanDuration).
    let j: Value = serde_json::from_str(ok(&w2, &["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["CreatedAt"], "2024-01-02 03:04:05 +0000 UTC", "{j}");
    let since = j["CreatedSince"].as_str().unwrap();
    assert!(since.ends_with(" years ago"), "{j}");
    let table = ok(&w2, &["images"]);
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!(
            "app          v1        {}   {since}   ",
            &id(&w2)[7..19]
        )),
        "{table}"
    );
    // The saved archive is also a docker save archive.
    let mut names = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&out).unwrap())
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    for n in ["oci-layout", "index.json", "manifest.json"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
}

#[test]
fn a_corrupted_blob_is_detected_on_load_and_on_read() {
    let w = World::new();
    // In the archive: a layer blob whose content does not match its name.
    let bb = busybox_layer(w.tmp.path());
    let cfg = config(&[&bb], json!({"Cmd": ["true"]}));
    let (ar, _) = oci_archive(&[(TAR, bb.clone())], &cfg, Some("bad:1"));
    let hex = &sha(&bb)[7..];
    let mut a = tar::Archive::new(&ar[..]);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if p.ends_with(hex) {
            data[600] ^= 0xff;
        }
        let mut h = e.header().clone();
        b.append_data(&mut h, &p, &data[..]).unwrap();
    }
    let path = put(&w, "bad.tar", &b.into_inner().unwrap());
    let err = fails(&w, &["load", "-i", &path]);
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(err.contains(&sha(&bb)), "{err}");
    assert_eq!(index(&w)["manifests"], json!([]), "nothing indexed");
    assert_eq!(verify_blobs(&w), 0, "a failed load leaves no blob behind");

    // In the store: a stored layer blob altered after load is caught when it is unpacked.
    let (ar, _) = oci_archive(&[(TAR, bb.clone())], &cfg, Some("good:1"));
    ok(&w, &["load", "-i", &put(&w, "good.tar", &ar)]);
    let blob = w.data.join("images/blobs/sha256").join(hex);
    let mut data = std::fs::read(&blob).unwrap();
    data[600] ^= 0xff;
    std::fs::write(&blob, data).unwrap();
    std::fs::remove_dir_all(w.data.join("images/layers").join(hex)).unwrap();
    let out = w.rwasm(&["run", "--rm", "good:1"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
    assert!(
        !w.data.join("images/layers").join(hex).exists(),
        "no half layer left"
    );
    // A stored config altered: every read checks it.
    let cfg_blob = w.data.join("images/blobs/sha256").join(&sha(&cfg)[7..]);
    std::fs::write(&cfg_blob, b"{}").unwrap();
    let err = fails(&w, &["image", "inspect", "good:1"]);
    assert!(err.contains("does not match its digest"), "{err}");
}

#[test]
fn concurrent_loads_of_one_image_all_succeed() {
    let w = World::new();
    let (ar, _) = two_layer_archive(&w, Some("same:1"));
    let path = put(&w, "same.tar", &ar);
    let children: Vec<_> = (0..4)
        .map(|_| {
            w.cmd(&["load", "-i", &path])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "Loaded image: same:1\n");
    }
    assert_eq!(verify_blobs(&w), 4);
    assert_eq!(index(&w)["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&w, &["images", "-q"]).lines().count(), 1);
    assert_eq!(ok(&w, &["run", "--rm", "same:1"]), "from the top layer\n");
    let leftovers: Vec<_> = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp layer dirs left: {leftovers:?}");
}

#[test]
fn import_makes_an_image_from_a_rootfs_tarball() {
    let w = World::new();
    let tarball = put(&w, "rootfs.tar.gz", &gzip(&busybox_layer(w.tmp.path())));
    let id = ok(&w, &["import", &tarball, "imported:v2"]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    assert_eq!(
        ok(&w, &["run", "--rm", "imported:v2", "echo", "in"]),
        "in\n"
    );
    // docker import gives no Cmd: a run without a command is refused as Docker does.
    let out = w.rwasm(&["run", "--rm", "imported:v2"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("no command given"),
        "{}",
        stderr(&out)
    );
    let bad = fails(&w, &["import", &tarball, "Upper:Case"]);
    assert!(bad.contains("must be lowercase"), "{bad}");
}

/// `rwasm ARGS` with `input` on its stdin, stdout and stderr captured.
fn piped(w: &World, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut c = w
        .cmd(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = c.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

#[test]
fn save_load_and_import_stream_through_stdout_and_stdin_as_docker_does() {
    let w = World::new();
    w.setup_image();
    // `save IMAGE > FILE`: the same archive as `save -o FILE IMAGE`.
    let file = w.path("bb.tar");
    ok(&w, &["save", "-o", file.to_str().unwrap(), "busybox"]);
    let out = w.rwasm(&["save", "busybox"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());
    // `load < FILE`, also gzip'd.
    let w2 = World::new();
    let out = piped(&w2, &["load"], &gzip(&out.stdout));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Loaded image: busybox:latest\n");
    assert_eq!(ok(&w2, &["run", "--rm", "busybox", "echo", "in"]), "in\n");
    let out = piped(&w2, &["load"], b"not an archive");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("standard input"), "{}", stderr(&out));
    // `import - NAME`.
    let tarball = gzip(&busybox_layer(w.tmp.path()));
    let out = piped(&w2, &["import", "-", "streamed:1"], &tarball);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    assert_eq!(
        ok(&w2, &["run", "--rm", "streamed:1", "echo", "imported"]),
        "imported\n"
    );
    // Docker's refusals on a terminal: no archive to it, none from it.
    let pty = nix::pty::openpty(None, None).unwrap();
    let tty = || std::process::Stdio::from(pty.slave.try_clone().unwrap());
    let out = w
        .cmd(&["save", "busybox"])
        .stdout(tty())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{}",
        stderr(&out)
    );
    let out = w.cmd(&["load"]).stdin(tty()).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("requested load from stdin, but stdin is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tag_then_rmi_untags_or_deletes_and_collects_the_blobs() {
    let w = World::new();
    w.setup_image();
    ok(&w, &["tag", "busybox", "localhost:5000/me/box:1"]);
    let rows = ok(&w, &["images"]);
    assert!(rows.contains("localhost:5000/me/box   1 "), "{rows}");
    assert_eq!(
        ok(&w, &["run", "--rm", "localhost:5000/me/box:1", "true"]),
        ""
    );
    // `images REPOSITORY[:TAG]` lists only that repository (tag).
    let short = ok(&w, &["images", "-q"]).trim().to_string();
    let listed = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["images", "--format", "json"];
        a.extend_from_slice(args);
        ok(&w, &a)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                format!(
                    "{}:{}",
                    v["Repository"].as_str().unwrap(),
                    v["Tag"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(listed(&["busybox"]), ["busybox:latest"]);
    assert_eq!(
        listed(&["docker.io/library/busybox:latest"]),
        ["busybox:latest"]
    );
    assert_eq!(
        listed(&["localhost:5000/me/box"]),
        ["localhost:5000/me/box:1"]
    );
    assert!(listed(&["busybox:1"]).is_empty());
    assert!(listed(&["nosuch"]).is_empty());
    assert_eq!(
        ok(&w, &["images", "-q", "localhost:5000/me/box:1"]).trim(),
        short
    );
    // By ID, an image with two tags needs -f (Docker's conflict).
    let err = fails(&w, &["rmi", &short]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{err}"
    );
    assert_eq!(verify_blobs(&w), 3);
    assert_eq!(
        ok(&w, &["rmi", "localhost:5000/me/box:1"]),
        "Untagged: localhost:5000/me/box:1\n"
    );
    assert_eq!(verify_blobs(&w), 3, "untagging keeps the image");
    let id: Value = serde_json::from_str(&ok(&w, &["image", "inspect", "busybox"])).unwrap();
    let id = id[0]["Id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(&w, &["rmi", "busybox"]),
        format!("Untagged: busybox:latest\nDeleted: {id}\n")
    );
    assert_eq!(verify_blobs(&w), 0, "every blob collected");
    assert_eq!(
        std::fs::read_dir(w.data.join("images/layers"))
            .unwrap()
            .count(),
        0
    );
    let err = fails(&w, &["rmi", "busybox"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn rmi_refuses_an_image_a_container_uses_or_one_with_child_images() {
    let w = World::new();
    w.setup_image();
    // A container that stays (no --rm) holds its image.
    assert_eq!(ok(&w, &["run", "busybox", "true"]), "");
    let err = fails(&w, &["rmi", "busybox"]);
    assert!(
        err.contains(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container"
        ) && err.contains("is using its referenced image"),
        "{err}"
    );
    let out = ok(&w, &["rmi", "-f", "busybox"]);
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert!(ok(&w, &["images", "-q"]).is_empty());
    assert_eq!(verify_blobs(&w), 3, "the container still holds the blobs");
    assert_eq!(
        std::fs::read_dir(w.data.join("images/layers"))
            .unwrap()
            .count(),
        2
    );

    // A base image and a child built on it (its layers start with the base's).
    let base = layer(&[E::File("base", b"b\n")]);
    let child = layer(&[E::File("child", b"c\n")]);
    let (ar, _) = oci_archive(
        &[(TAR, base.clone())],
        &config(&[&base], json!({})),
        Some("base:1"),
    );
    ok(&w, &["load", "-i", &put(&w, "base.tar", &ar)]);
    let (ar, _) = oci_archive(
        &[(TAR, base.clone()), (TAR, child.clone())],
        &config(&[&base, &child], json!({})),
        Some("child:1"),
    );
    ok(&w, &["load", "-i", &put(&w, "child.tar", &ar)]);
    let err = fails(&w, &["rmi", "base:1"]);
    assert!(
        err.contains("image has dependent child images (child:1)"),
        "{err}"
    );
    ok(&w, &["rmi", "child:1"]);
    ok(&w, &["rmi", "base:1"]);
    assert!(ok(&w, &["images", "-q"]).is_empty());
}

#[test]
fn a_moved_tag_leaves_a_dangling_image_that_prune_removes() {
    let w = World::new();
    let one = layer(&[E::File("v", b"1\n")]);
    let two = layer(&[E::File("v", b"2\n")]);
    let cfg1 = config(&[&one], json!({}));
    let (ar, _) = oci_archive(&[(TAR, one.clone())], &cfg1, Some("app:latest"));
    ok(&w, &["load", "-i", &put(&w, "one.tar", &ar)]);
    let (ar, _) = oci_archive(
        &[(TAR, two.clone())],
        &config(&[&two], json!({})),
        Some("app:latest"),
    );
    ok(&w, &["load", "-i", &put(&w, "two.tar", &ar)]);
    let rows = ok(&w, &["images"]);
    assert!(
        rows.contains(&format!("<none>       <none>    {}", &sha(&cfg1)[7..19])),
        "{rows}"
    );
    assert_eq!(rows.lines().count(), 3);
    // Reclaimed: the dangling image's manifest, config and layer blobs, and the 2 bytes
    // of file content of its unpacked layer.
    let inspect: Value = serde_json::from_str(&ok(&w, &["image", "inspect", &sha(&cfg1)])).unwrap();
    let manifest = inspect[0]["Descriptor"]["size"].as_u64().unwrap();
    let bytes = manifest + cfg1.len() as u64 + one.len() as u64 + 2;
    assert!((1000..10_000).contains(&bytes), "{bytes}");
    assert_eq!(
        ok(&w, &["image", "prune", "-f"]),
        format!(
            "Deleted Images:\ndeleted: {}\n\nTotal reclaimed space: {}\n",
            sha(&cfg1),
            rwasm::engine::units::human_size(bytes)
        )
    );
    assert_eq!(
        ok(&w, &["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(ok(&w, &["images", "-q"]).lines().count(), 1);
    assert_eq!(verify_blobs(&w), 3, "only the tagged image's blobs stay");
}

#[test]
fn the_image_of_a_running_container_cannot_be_deleted_even_with_force() {
    let w = World::new();
    w.setup_image();
    let mut child = w
        .cmd(&["run", "--rm", "busybox", "sleep", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The bundle directory is named by the container id; wait (bounded) for it to run.
    let containers = w.data.join("containers");
    let find = || {
        std::fs::read_dir(&containers)
            .ok()?
            .flatten()
            .find(|e| e.path().join("config.json").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
    };
    let id = (0..1000)
        .find_map(|_| {
            let id = find();
            if id.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            id
        })
        .expect("the container never appeared");
    w.wait_status(&id, "running");
    let err = fails(&w, &["rmi", "-f", "busybox"]);
    assert!(
        err.contains(&format!(
            "(cannot be forced) - image is being used by running container {}",
            &id[..12]
        )),
        "{err}"
    );
    ok(&w, &["kill", "-s", "KILL", &id]);
    child.wait().unwrap();
    assert_eq!(ok(&w, &["images", "-q"]).lines().count(), 1, "still there");
    let out = ok(&w, &["rmi", "busybox"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
}

#[test]
fn rmi_waits_for_a_run_that_resolved_the_image_and_then_sees_its_container() {
    let w = World::new();
    w.setup_image();
    // Stand in for a `run` between resolving its image and writing its config.json: the
    // store's collection lock, held shared.
    let f = std::fs::File::open(w.data.join("images/gc.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared).unwrap();
    let mut rmi = w
        .cmd(&["rmi", "busybox"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        rmi.try_wait().unwrap().is_none(),
        "rmi must wait for the collection lock"
    );
    // The container the run was making (create takes the lock shared too: no wait).
    let id = ok(&w, &["create", "busybox", "true"]).trim().to_string();
    drop(held);
    let out = rmi.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "container {} is using its referenced image",
            &id[..12]
        )),
        "{err}"
    );
    assert_eq!(ok(&w, &["images", "-q"]).lines().count(), 1, "still there");
    ok(&w, &["rm", &id]);
}

#[test]
fn prune_removes_what_killed_writers_left_and_counts_it() {
    let w = World::new();
    w.setup_image();
    let images = w.data.join("images");
    // What a `pull` killed midway, and a `load` killed while writing a blob and while
    // unpacking a layer, leave behind.
    let partial = images.join(format!("tmp/pull-{}.partial", "ab".repeat(32)));
    std::fs::write(&partial, vec![7u8; 1000]).unwrap();
    let blob_tmp = images.join("blobs/sha256/.tmp-1-00ff");
    std::fs::write(&blob_tmp, vec![7u8; 200]).unwrap();
    let layer_tmp = images.join("layers/.tmp-1-11ee");
    std::fs::create_dir_all(layer_tmp.join("etc")).unwrap();
    std::fs::write(layer_tmp.join("etc/half-written"), vec![7u8; 500]).unwrap();
    assert_eq!(
        ok(&w, &["image", "prune", "-f"]),
        "Total reclaimed space: 1.7kB\n"
    );
    for p in [&partial, &blob_tmp, &layer_tmp] {
        assert!(!p.exists(), "{} is left", p.display());
    }
    assert_eq!(verify_blobs(&w), 3, "the busybox image is untouched");
    assert_eq!(
        ok(&w, &["run", "--rm", "busybox", "echo", "still runs"]),
        "still runs\n"
    );
}
