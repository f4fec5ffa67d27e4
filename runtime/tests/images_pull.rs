//! `rwasm pull` against a real registry (`registry_common`: Debian's `docker-registry`,
//! started by each test on a loopback port of its own, filled by `skopeo copy` from OCI
//! layouts the tests build: busybox-static layers, gzip, zstd and plain layers,
//! whiteouts, a multi-platform index, Docker v2 schema 2 media types). Root only (they
//! fail, never skip, otherwise).

mod common;
mod images_common;
mod registry_common;

use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use images_common::*;
use registry_common::*;
use serde_json::{Value, json};

#[test]
fn a_pulled_image_runs_by_tag_and_by_digest_with_dockers_output() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    // busybox (gzip), /file (zstd), then a plain layer that whites out /etc/group and
    // makes /opt opaque over a gzip layer that filled it.
    let bb = busybox_layer(&w.path("bb"));
    let img = Img::new(
        &[
            (GZ, bb),
            (ZST, file_layer("hello from the registry\n")),
            (
                GZ,
                layer(&[E::Dir("opt"), E::File("opt/old", b"old"), E::Dir("opt/sub")]),
            ),
            (
                TAR,
                layer(&[
                    E::Dir("etc"),
                    E::File("etc/.wh.group", b""),
                    E::Dir("opt"),
                    E::File("opt/.wh..wh..opq", b""),
                    E::File("opt/new", b"new"),
                ]),
            ),
        ],
        "amd64",
    );
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    // --preserve-digests: the plain layer stays plain (skopeo would gzip it).
    reg.push(&lay, "v1", "team/app:v1", &["--preserve-digests"]);
    let r = format!("{}/team/app:v1", reg.host());

    let out = pull_ok(&w, &r);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from team/app", "{out}");
    for i in 0..4 {
        let id = &img.layer_digest(i)[7..19];
        assert!(
            lines.contains(&format!("{id}: Pulling fs layer").as_str())
                && lines.contains(&format!("{id}: Download complete").as_str())
                && lines.contains(&format!("{id}: Pull complete").as_str()),
            "layer {id}: {out}"
        );
    }
    let n = lines.len();
    assert_eq!(lines[n - 3], format!("Digest: {}", img.digest()), "{out}");
    assert_eq!(
        lines[n - 2],
        format!("Status: Downloaded newer image for {r}")
    );
    assert_eq!(lines[n - 1], r);
    assert!(!out.contains("Using default tag"), "{out}");

    let run = ok(&w, &["run", "--rm", &r, "cat", "/file"]);
    assert_eq!(run, "hello from the registry\n");
    let tree = ok(
        &w,
        &[
            "run",
            "--rm",
            &r,
            "sh",
            "-c",
            "ls /opt; test -e /etc/group || echo group-gone; cat /etc/passwd",
        ],
    );
    assert_eq!(tree, "new\ngroup-gone\nroot:x:0:0:root:/root:/bin/sh\n");

    let i = inspect(&w, &r);
    assert_eq!(
        i["RepoTags"],
        json!([format!("{}/team/app:v1", reg.host())])
    );
    assert_eq!(
        i["RepoDigests"],
        json!([format!("{}/team/app@{}", reg.host(), img.digest())])
    );
    assert_eq!(i["Id"], sha(&img.config));
    assert_eq!(i["Descriptor"]["digest"], img.digest());
    let table = ok(&w, &["images"]);
    assert!(
        table.contains(&format!("{}/team/app   v1", reg.host())),
        "{table}"
    );
    let j: Value = serde_json::from_str(ok(&w, &["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Digest"], img.digest());
    // The store holds the registry's manifest as it was sent: its digest is the image's.
    assert_eq!(
        std::fs::read(w.data.join("images/blobs/sha256").join(&img.digest()[7..])).unwrap(),
        img.manifest
    );
    assert_eq!(verify_blobs(&w), 6, "manifest, config, four layers");
    assert!(partials(&w).is_empty());

    // Again: nothing downloaded.
    let gets_before = reg.blob_gets(&img.layer_digest(1)).len();
    let again = pull_ok(&w, &r);
    assert!(
        again.contains(&format!("Status: Image is up to date for {r}")),
        "{again}"
    );
    assert!(
        again.contains(&format!("{}: Already exists", &img.layer_digest(1)[7..19])),
        "{again}"
    );
    assert_eq!(reg.blob_gets(&img.layer_digest(1)).len(), gets_before);

    // By digest, into another store: no tag, found by its digest.
    let w2 = World::new();
    let by_digest = format!("{}/team/app@{}", reg.host(), img.digest());
    let out = pull_ok(&w2, &by_digest);
    assert!(
        out.starts_with(&format!("{}: Pulling from team/app\n", img.digest())),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {by_digest}\n{by_digest}\n"
        )),
        "{out}"
    );
    assert_eq!(
        ok(&w2, &["run", "--rm", &by_digest, "cat", "/file"]),
        "hello from the registry\n"
    );
    assert_eq!(inspect(&w2, &by_digest)["RepoTags"], json!([]));
    let table = ok(&w2, &["images"]);
    assert!(
        table.contains(&format!("{}/team/app   <none>", reg.host())),
        "{table}"
    );
    // Pulled by digest, so not dangling: prune keeps it.
    ok(&w2, &["image", "prune", "-f"]);
    assert_eq!(inspect(&w2, &by_digest)["Id"], sha(&img.config));
}

#[test]
fn docker_v2_schema2_media_types_and_the_default_tag() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let img = app(&w, "docker media types\n", GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "latest");
    reg.push(&lay, "latest", "dock", &["--format", "v2s2"]);
    let r = format!("{}/dock", reg.host());
    let out = pull_ok(&w, &r);
    assert!(
        out.starts_with("Using default tag: latest\nlatest: Pulling from dock\n"),
        "{out}"
    );
    assert!(out.ends_with(&format!("{r}:latest\n")), "{out}");
    let i = inspect(&w, &r);
    assert_eq!(
        i["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digest = i["Descriptor"]["digest"].as_str().unwrap().to_string();
    let stored: Value = serde_json::from_slice(
        &std::fs::read(w.data.join("images/blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stored["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        ok(&w, &["run", "--rm", &r, "cat", "/file"]),
        "docker media types\n"
    );
}

/// The index entry of `i` for linux/`arch`.
fn entry(i: &Img, arch: &str) -> Value {
    json!({"mediaType": MANIFEST, "digest": i.digest(), "size": i.manifest.len(),
           "platform": {"os": "linux", "architecture": arch}})
}

/// An index of `arm` (linux/arm64) and `amd` (linux/amd64), in an OCI layout tagged
/// `multi`: the index's bytes and the layout.
fn two_platforms(w: &World, amd: &Img, arm: &Img) -> (Vec<u8>, std::path::PathBuf) {
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX,
        "manifests": [entry(arm, "arm64"), entry(amd, "amd64")]}))
    .unwrap();
    let lay = layout(&w.path("multi"), &[arm, amd], Some(&index), "multi");
    (index, lay)
}

#[test]
fn a_multi_platform_index_resolves_to_linux_amd64() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let amd = app(&w, "amd64\n", ZST);
    let arm = Img::new(&[(GZ, file_layer("arm64\n"))], "arm64");
    let (index, lay) = two_platforms(&w, &amd, &arm);
    reg.push(&lay, "multi", "multi:v1", &["--multi-arch", "all"]);
    let r = format!("{}/multi:v1", reg.host());
    let out = pull_ok(&w, &r);
    assert!(
        out.contains(&format!("Digest: {}\n", sha(&index))),
        "the index's digest, as Docker shows it: {out}"
    );
    assert_eq!(ok(&w, &["run", "--rm", &r, "cat", "/file"]), "amd64\n");
    let i = inspect(&w, &r);
    assert_eq!(i["Descriptor"]["digest"], amd.digest());
    let by_index = format!("{}/multi@{}", reg.host(), sha(&index));
    assert_eq!(i["RepoDigests"], json!([by_index]));
    assert_eq!(
        ok(&w, &["run", "--rm", &by_index, "cat", "/file"]),
        "amd64\n"
    );
    assert!(
        !w.data
            .join("images/blobs/sha256")
            .join(&arm.layer_digest(0)[7..])
            .exists(),
        "the arm64 image's layer is not fetched"
    );

    // Another platform, as asked for (stored, not run: it has no binaries).
    let w2 = World::new();
    let r2 = format!("{}/multi:v1", reg.host());
    let out = w2
        .cmd(&["pull", "--platform", "linux/arm64", &r2])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let i = inspect(&w2, &r2);
    assert_eq!(
        (
            i["Architecture"].as_str(),
            i["Descriptor"]["digest"].as_str()
        ),
        (Some("arm64"), Some(arm.digest().as_str()))
    );
    let e = fails(&w2, &["pull", "--platform", "arm64", &r2]);
    assert!(e.contains("expected OS/ARCH"), "{e}");

    // An index without linux/amd64.
    let only_arm = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX,
        "manifests": [entry(&arm, "arm64")]}))
    .unwrap();
    let lay = layout(&w.path("arm"), &[&arm], Some(&only_arm), "arm");
    reg.push(&lay, "arm", "armonly:v1", &["--multi-arch", "all"]);
    let r = format!("{}/armonly:v1", reg.host());
    let out = pull(&w, &r, &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "no matching manifest for linux/amd64 in the manifest list entries of {r}"
        )) && e.contains("linux/arm64"),
        "{e}"
    );
    assert!(fails(&w, &["image", "inspect", &r]).contains("not found"));
}

#[test]
fn a_docker_manifest_list_resolves_to_linux_amd64() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let amd = app(&w, "amd64 from a list\n", GZ);
    let arm = Img::new(&[(GZ, file_layer("arm64\n"))], "arm64");
    let (_, lay) = two_platforms(&w, &amd, &arm);
    // skopeo converts the index and its images to Docker's media types.
    reg.push(
        &lay,
        "multi",
        "dlist:v1",
        &["--multi-arch", "all", "--format", "v2s2"],
    );
    let r = format!("{}/dlist:v1", reg.host());
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let list: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let out = pull_ok(&w, &r);
    assert!(
        out.contains(&format!("Digest: {}\n", sha(&raw.stdout))),
        "the list's digest: {out}"
    );
    assert_eq!(
        ok(&w, &["run", "--rm", &r, "cat", "/file"]),
        "amd64 from a list\n"
    );
    let i = inspect(&w, &r);
    assert_eq!(
        i["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(i["Architecture"], "amd64");
    assert_eq!(
        i["RepoDigests"],
        json!([format!("{}/dlist@{}", reg.host(), sha(&raw.stdout))])
    );
}

#[test]
fn unknown_tags_and_unreachable_registries_are_clear_errors() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let img = app(&w, "x\n", GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "app:v1", &[]);
    let r = format!("{}/app:nope", reg.host());
    let out = pull(&w, &r, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("manifest for {r} not found: manifest unknown")),
        "{}",
        stderr(&out)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = format!("127.0.0.1:{port}/app:v1");
    let e = stderr(&pull(&w, &r, &[]));
    assert!(
        e.contains(&format!("{r}: registry 127.0.0.1:{port} (plain HTTP)")),
        "{e}"
    );
    let e = fails(&w, &["pull", "Upper/Case"]);
    assert!(e.contains("must be lowercase"), "{e}");
}

#[test]
fn a_corrupted_blob_in_the_registry_is_detected_and_nothing_is_stored() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let img = app(&w, "corrupt me\n", GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "bad:v1", &[]);
    // Same size, one byte changed, in the registry's own storage.
    let bad = img.layer_digest(1);
    let f = reg.blob_file(&bad);
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();

    let r = format!("{}/bad:v1", reg.host());
    let out = pull(&w, &r, &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains(&format!("{r}: blob {bad} does not match its digest")),
        "{e}"
    );
    assert!(fails(&w, &["image", "inspect", &r]).contains("not found"));
    assert_eq!(verify_blobs(&w), 0, "no blob of the image is kept");
    assert!(partials(&w).is_empty(), "{:?}", partials(&w));
    let layers: Vec<_> = std::fs::read_dir(w.data.join("images/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(layers.is_empty(), "{layers:?}");
}

#[test]
fn an_interrupted_pull_resumes_without_fetching_finished_blobs_again() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let big = noise(192 << 20, 7);
    let img = Img::new(
        &[
            (GZ, busybox_layer(&w.path("bb"))),
            (TAR, layer(&[E::File("big", &big)])),
        ],
        "amd64",
    );
    drop(big);
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "big:v1", &["--preserve-digests"]);
    let r = format!("{}/big:v1", reg.host());
    let (small, large) = (img.layer_digest(0), img.layer_digest(1));
    let store = w.data.join("images/blobs/sha256");

    // Kill -9 once the small layer is stored and the big one is partly downloaded.
    let mut child = w
        .cmd(&["pull", &r])
        .env("HOME", w.path("home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = w
        .data
        .join("images/tmp")
        .join(format!("pull-{}.partial", &large[7..]));
    let t = Instant::now();
    loop {
        let have = std::fs::metadata(&partial).map_or(0, |m| m.len());
        if store.join(&small[7..]).exists() && have > 8 << 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it could be interrupted"
        );
        assert!(t.elapsed() < Duration::from_secs(60), "the pull stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let cut = std::fs::metadata(&partial).unwrap().len();
    let total = img.layers[1].1.len() as u64;
    assert!(cut < total, "killed midway: {cut} of {total} bytes");
    assert!(
        !store.join(&large[7..]).exists(),
        "a partial blob is never stored"
    );
    let small_mtime = std::fs::metadata(store.join(&small[7..]))
        .unwrap()
        .modified()
        .unwrap();
    assert!(fails(&w, &["image", "inspect", &r]).contains("not found"));
    assert_eq!(reg.blob_gets(&small).len(), 1);

    let out = pull_ok(&w, &r);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {r}")),
        "{out}"
    );
    assert_eq!(
        reg.blob_gets(&small).len(),
        1,
        "the finished blob is not fetched again"
    );
    assert_eq!(
        std::fs::metadata(store.join(&small[7..]))
            .unwrap()
            .modified()
            .unwrap(),
        small_mtime
    );
    let gets = reg.blob_gets(&large);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(
        gets[1],
        (206, total - cut),
        "the second pull asks for the rest only"
    );
    assert!(partials(&w).is_empty());
    assert_eq!(verify_blobs(&w), 4);
    let size = ok(&w, &["run", "--rm", &r, "wc", "-c", "/big"]);
    assert_eq!(size.trim(), format!("{} /big", 192 << 20));
}

#[test]
fn two_concurrent_pulls_of_one_image_both_succeed() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let img = Img::new(
        &[
            (GZ, busybox_layer(&w.path("bb"))),
            (ZST, layer(&[E::File("big", &noise(48 << 20, 3))])),
            (GZ, file_layer("raced\n")),
        ],
        "amd64",
    );
    let lay = layout(&w.path("layout"), &[&img], None, "v1");
    reg.push(&lay, "v1", "race:v1", &[]);
    let r = format!("{}/race:v1", reg.host());
    let spawn = || {
        w.cmd(&["pull", &r])
            .env("HOME", w.path("home"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).ends_with(&format!("{r}\n")),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(verify_blobs(&w), 5);
    assert!(partials(&w).is_empty());
    let idx = index(&w);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1, "{idx}");
    assert_eq!(ok(&w, &["run", "--rm", &r, "cat", "/file"]), "raced\n");
    // Each blob crossed the wire once: the second pull waited for the first's download.
    for i in 0..3 {
        assert_eq!(reg.blob_gets(&img.layer_digest(i)).len(), 1, "layer {i}");
    }
}

/// `rwasm ARGS` with no auth file of the machine's user, stdout and stderr captured.
fn rwasm_clean(w: &World, args: &[&str]) -> Output {
    let mut c = w.cmd(args);
    c.env("HOME", w.path("home"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG");
    c.output().unwrap()
}

/// Entries of the data root's `containers/` (none when it does not exist).
fn bundles(w: &World) -> usize {
    std::fs::read_dir(w.data.join("containers")).map_or(0, |d| d.count())
}

#[test]
fn run_and_create_pull_a_missing_image_first_as_docker_does() {
    let w = World::new();
    let reg = Registry::start(&w, None);
    let img = app(&w, "pulled by run\n", GZ);
    let lay = layout(&w.path("layout"), &[&img], None, "1");
    reg.push(&lay, "1", "x:1", &[]);
    let r = format!("{}/x:1", reg.host());

    // --pull never on an empty store: Docker's error, and nothing is made.
    let out = rwasm_clean(&w, &["run", "--rm", "--pull", "never", &r, "cat", "/file"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("No such image: {r}")),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    assert_eq!(bundles(&w), 0, "no bundle is left");
    assert!(ok(&w, &["ps", "-aq"]).trim().is_empty());
    assert!(ok(&w, &["images", "-q"]).trim().is_empty());
    assert_eq!(
        reg.blob_gets(&img.layer_digest(1)).len(),
        0,
        "nothing fetched"
    );
    let e = fails(&w, &["run", "--pull", "sometimes", &r, "true"]);
    assert!(
        e.contains(
            r#"invalid pull option: 'sometimes': must be one of "always", "missing" or "never""#
        ),
        "{e}"
    );

    // The default (missing): Docker's message, the pull reported on stderr, then the run.
    let out = rwasm_clean(&w, &["run", "--rm", &r, "cat", "/file"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        stdout(&out),
        "pulled by run\n",
        "only the container's output on stdout"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        format!("Unable to find image '{r}' locally"),
        "{err}"
    );
    assert_eq!(lines[1], "1: Pulling from x", "{err}");
    assert!(
        lines.contains(&format!("{}: Pull complete", &img.layer_digest(1)[7..19]).as_str()),
        "{err}"
    );
    assert!(
        lines.contains(&format!("Digest: {}", img.digest()).as_str()),
        "{err}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {r}").as_str()),
        "{err}"
    );
    assert_eq!(bundles(&w), 0, "--rm removed the container");
    assert_eq!(inspect(&w, &r)["Id"], sha(&img.config));
    assert_eq!(reg.blob_gets(&img.layer_digest(1)).len(), 1);

    // Present now: no pull, no message.
    let out = rwasm_clean(&w, &["run", "--rm", &r, "cat", "/file"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // --pull always asks the registry again; its layers are already there.
    let out = rwasm_clean(&w, &["run", "--rm", "--pull", "always", &r, "cat", "/file"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Status: Image is up to date for {r}")),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("Unable to find image"));
    assert_eq!(
        reg.blob_gets(&img.layer_digest(1)).len(),
        1,
        "no layer fetched again"
    );

    // `create` pulls too, into a second store, and the container runs from it.
    let w2 = World::new();
    let out = rwasm_clean(&w2, &["create", "--name", "c", &r, "cat", "/file"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("Unable to find image '{r}' locally\n")),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim().len(), 64, "create prints the id");
    assert_eq!(ok(&w2, &["start", "-a", "c"]), "pulled by run\n");
    ok(&w2, &["rm", "c"]);
}
