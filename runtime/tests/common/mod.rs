//! Helpers for the real-container tests: they run the built `rwasm` binary as root
//! against busybox bundles made in temp directories.
#![allow(dead_code)] // each test binary uses a different subset

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Panics (fails the test) unless we are root: these tests create namespaces, cgroups
/// and mounts, and must never pass by skipping.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates real namespaces, cgroups and mounts and must run as root (it does not skip)"
    );
}

/// The rwasm binary under test.
pub fn rwasm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rwasm"))
}

/// Directory holding the built plugins (`make plugins` sets RWASM_PLUGIN_DIR).
pub fn plugin_dir() -> PathBuf {
    let dir = std::env::var_os("RWASM_PLUGIN_DIR").map(PathBuf::from).expect(
        "RWASM_PLUGIN_DIR is not set: run the tests through `make test`, which builds the plugins",
    );
    for p in ["env_inject", "policy", "audit", "misbehave"] {
        let f = dir.join(format!("{p}.wasm"));
        assert!(f.exists(), "{} is missing: run `make plugins`", f.display());
    }
    dir
}

/// The built component `NAME.wasm` in [`plugin_dir`], e.g. `plugin_wasm("legacy_v0_1")`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins`",
        path.display()
    );
    path
}

/// A scratch world for one test: its own state root, data root and bundle.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
}

impl World {
    pub fn new() -> Self {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("rwasm-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = tmp.path().join("state");
        let data = tmp.path().join("data");
        World { tmp, root, data }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// `rwasm --root R --data-root D ARGS...`, stdin closed, output captured.
    pub fn rwasm(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run rwasm")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rwasm_bin());
        c.arg("--root")
            .arg(&self.root)
            .arg("--data-root")
            .arg(&self.data)
            .args(args);
        c.stdin(Stdio::null()).env_remove("RWASM_PLUGINS");
        c
    }

    /// Like `rwasm` for commands that leave a container running: its stdio must not be a
    /// pipe we wait on, so output goes to files.
    pub fn rwasm_detached(&self, args: &[&str]) -> (i32, String) {
        let err = self.path(&format!("stderr-{}", rand_suffix()));
        let status = self
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("run rwasm");
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&err).unwrap_or_default(),
        )
    }

    /// Make a busybox bundle at `name` with `config` merged over the defaults.
    pub fn bundle(&self, name: &str, args: &[&str], patch: Value) -> PathBuf {
        let dir = self.path(name);
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let mut spec = default_spec(args);
        merge(&mut spec, patch);
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        dir
    }

    /// `rwasm setup` in this world's data root (the busybox image).
    pub fn setup_image(&self) {
        let out = self.rwasm(&["setup"]);
        assert!(
            out.status.success(),
            "setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.rwasm(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Wait (bounded) until `state ID` reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let t = Instant::now();
        loop {
            let out = self.rwasm(&["state", id]);
            if out.status.success()
                && serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"] == status
            {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{id} never became {status}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Best-effort cleanup of anything a failed test left running.
        if let Ok(out) = self.cmd(&["list", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.cmd(&["delete", "--force", id]).output();
            }
        }
    }
}

pub fn rand_suffix() -> String {
    use std::io::Read;
    let mut b = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A unique container id for a test.
pub fn id(prefix: &str) -> String {
    format!("{prefix}-{}", rand_suffix())
}

/// busybox-static with one relative symlink per applet.
pub fn busybox_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("copy /bin/busybox (apt busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        let _ = symlink("busybox", rootfs.join("bin").join(a));
    }
}

/// A minimal runc-like spec: pid, mount, uts, ipc, net namespaces, /proc, /dev.
pub fn default_spec(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]
        }
    })
}

/// Deep-merge `patch` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every cgroup directory named `name` under /sys/fs/cgroup.
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let out = Command::new("find")
        .args(["/sys/fs/cgroup", "-type", "d", "-name", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Lines of /proc/self/mountinfo mentioning `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Write a plugin manifest into the world and return its path.
pub fn manifest(w: &World, name: &str, body: &str) -> PathBuf {
    let p = w.path(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Sets the window size of the terminal `fd` (a pty master) to `rows` x `cols`.
pub fn set_winsize(fd: &impl std::os::fd::AsRawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a pointer to a live local.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
    assert_eq!(rc, 0);
}
