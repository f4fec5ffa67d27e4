//! `rwasm run IMAGE` applies the image config as Docker does: Entrypoint + Cmd (and
//! `--entrypoint`), Env under `-e`, WorkingDir, User by name through the image's
//! /etc/passwd and /etc/group, ExposedPorts recorded. Root only.

mod common;
mod images_common;

use common::*;
use images_common::*;
use serde_json::{Value, json};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

fn app_image(w: &World) {
    let bb = busybox_layer(w.tmp.path());
    let users = layer(&[
        E::Dir("etc"),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/srv:/bin/sh\n",
        ),
        E::File("etc/group", b"root:x:0:\napp:x:1001:\nstaff:x:2002:\n"),
        E::Dir("srv"),
    ]);
    let cfg = config(
        &[&bb, &users],
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING $ONLY_IMAGE; pwd; id -u; id -g"],
            "Env": ["PATH=/bin", "GREETING=hello", "ONLY_IMAGE=img"],
            "WorkingDir": "/srv",
            "User": "app:staff",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "StopSignal": "SIGUSR1",
        }),
    );
    let (ar, _) = oci_archive(&[(TAR, bb), (TAR, users)], &cfg, Some("app:1"));
    ok(w, &["load", "-i", &put(w, "app.tar", &ar)]);
}

#[test]
fn the_image_config_shapes_the_container() {
    let w = World::new();
    app_image(&w);
    assert_eq!(
        ok(&w, &["run", "--rm", "app:1"]),
        "hello img\n/srv\n1001\n2002\n",
        "Entrypoint+Cmd, Env, WorkingDir, User by names"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "-e",
                "GREETING=bye",
                "-w",
                "/tmp",
                "-u",
                "0",
                "app:1"
            ]
        ),
        "bye img\n/tmp\n0\n0\n",
        "-e over the image's Env, -w and -u over WorkingDir and User"
    );
    assert_eq!(
        ok(
            &w,
            &["run", "--rm", "app:1", "echo args replace Cmd; echo $PATH"]
        ),
        "args replace Cmd\n/bin\n"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "run",
                "--rm",
                "--entrypoint",
                "echo",
                "app:1",
                "plain",
                "args"
            ]
        ),
        "plain args\n",
        "--entrypoint replaces Entrypoint"
    );
    assert_eq!(
        ok(&w, &["run", "--rm", "--entrypoint", "pwd", "app:1"]),
        "/srv\n",
        "--entrypoint drops the image's Cmd"
    );
    let out = w.rwasm(&["run", "--rm", "--entrypoint", "", "app:1"]);
    assert_eq!(out.status.code(), Some(125), "nothing left to run");
    assert!(
        stderr(&out).contains("no command given"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ok(&w, &["run", "--rm", "-u", "app", "app:1", "id -u; id -g"]),
        "1001\n1001\n",
        "a user name alone takes its primary group"
    );
}

#[test]
fn exposed_ports_and_the_image_are_recorded_on_the_container() {
    let w = World::new();
    app_image(&w);
    ok(&w, &["run", "--name", "kept", "app:1", "true"]);
    let dir = std::fs::read_dir(w.data.join("containers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let a = &spec["annotations"];
    assert_eq!(a["org.rwasm.exposed-ports"], "53/udp,8080/tcp");
    assert_eq!(a["org.rwasm.image"], "app:1");
    let inspect: Value = serde_json::from_str(&ok(&w, &["image", "inspect", "app:1"])).unwrap();
    assert_eq!(a["org.rwasm.image-id"], inspect[0]["Id"]);
    assert_eq!(
        a["org.rwasm.image-manifest"],
        inspect[0]["Descriptor"]["digest"]
    );
}

#[test]
fn stop_sends_the_images_stop_signal_unless_stop_signal_is_given() {
    let w = World::new();
    app_image(&w);
    // PID 1 gets only the signals it handles: USR1 ends it with 7, TERM with 8.
    let script = "trap 'exit 7' USR1; trap 'exit 8' TERM; echo up; while :; do sleep 0.1; done";
    for (name, flags, signal, code) in [
        ("img", &[][..], "SIGUSR1", "7"),
        ("flag", &["--stop-signal", "TERM"][..], "TERM", "8"),
    ] {
        let args = [&["run", "-d", "--name", name], flags, &["app:1", script]].concat();
        let (c, err) = w.rwasm_detached(&args);
        assert_eq!(c, 0, "{err}");
        let t = std::time::Instant::now();
        while !ok(&w, &["logs", name]).contains("up") {
            assert!(t.elapsed().as_secs() < 20, "{name} never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(
            ok(&w, &["inspect", "-f", "{{.Config.StopSignal}}", name]).trim(),
            signal
        );
        ok(&w, &["stop", "-t", "20", name]);
        assert_eq!(
            ok(&w, &["inspect", "-f", "{{.State.ExitCode}}", name]).trim(),
            code,
            "{name}: ended by {signal}, not by SIGKILL after the timeout"
        );
        ok(&w, &["rm", name]);
    }
}
