//! The `cni` network driver (plugins/net-cni, issue 6): real CNI plugins from Debian's
//! containernetworking-plugins (/usr/lib/cni: `bridge` with `host-local` IPAM) run by the
//! host's `exec-binary` for a conflist, ADD at setup and DEL at teardown; and the grant:
//! a driver without `exec-dir` is refused. Bridge, subnet and IPAM directory unique to
//! each test; root only.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A CNI network: its conflist, the driver's manifest, and the bridge the CNI `bridge`
/// plugin makes (deleted on drop).
struct Cni {
    name: String,
    bridge: String,
    prefix: String,
    manifest: PathBuf,
    ipam: PathBuf,
    state: PathBuf,
}

impl Cni {
    fn new(w: &World, exec_grant: bool) -> Cni {
        let r = rand_suffix();
        let b = u8::from_str_radix(&r[..2], 16).unwrap();
        let c = u8::from_str_radix(&r[2..4], 16).unwrap();
        let prefix = format!("10.{}.{c}", 150 + b % 50);
        let (conf, state, ipam) = (w.path("cni-conf"), w.path("cni-state"), w.path("cni-ipam"));
        for d in [&conf, &state, &ipam] {
            std::fs::create_dir_all(d).unwrap();
        }
        let net = Cni {
            name: format!("cni{}", &r[..6]),
            bridge: format!("cnb{}", &r[..6]),
            prefix,
            manifest: w.path("cni.toml"),
            ipam,
            state,
        };
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": net.name,
            "plugins": [{
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{}.0/24", net.prefix)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": net.ipam,
                },
            }],
        });
        std::fs::write(conf.join("net.conflist"), conflist.to_string()).unwrap();
        let grant = if exec_grant {
            "[plugin.grants.network]\nexec-dir = \"/usr/lib/cni\"\n"
        } else {
            ""
        };
        std::fs::write(
            &net.manifest,
            format!(
                r#"[[plugin]]
name = "{name}"
path = "{wasm}"
kind = "network-driver"
timeout-ms = 30000
[plugin.config]
conflist = "/conf/net.conflist"
[plugin.grants]
dirs = {{ "{conf}" = "/conf", "{state}" = "/state:rw" }}
{grant}"#,
                name = net.name,
                wasm = plugin_wasm("net_cni").display(),
                conf = conf.display(),
                state = net.state.display(),
            ),
        )
        .unwrap();
        net
    }

    fn rwasm(&self, w: &World, args: &[&str]) -> std::process::Output {
        w.rwasm(&[&["--plugins", self.manifest.to_str().unwrap()], args].concat())
    }

    /// host-local's lease files (named by address) of this network.
    fn leases(&self) -> Vec<String> {
        std::fs::read_dir(self.ipam.join(&self.name))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(&self.prefix))
            .collect()
    }

    /// Host links attached to the bridge.
    fn ports(&self) -> Vec<String> {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    }

    /// Waits (at most 10 s) until the bridge has `n` ports. A container that exited before
    /// its DEL leaves no process in its network namespace, so the kernel destroys that
    /// namespace's veth pair in its own time (cleanup_net runs from a workqueue after an
    /// RCU grace period), not before `rm` or `run --rm` returns.
    fn wait_for_ports(&self, n: usize) {
        let t = std::time::Instant::now();
        while self.ports().len() != n {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "expected {n} bridge ports: {:?}",
                self.ports()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Cni {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

#[test]
fn the_cni_driver_runs_the_reference_bridge_and_host_local_plugins() {
    let w = World::new();
    w.setup_image();
    let net = Cni::new(&w, true);
    let name = format!("cni-srv-{}", rand_suffix());
    // A server, kept running, then a client that reaches it and pings the gateway.
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        net.manifest.to_str().unwrap(),
        "run",
        "-d",
        "--network",
        &net.name,
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "while true; do echo cni-hello | nc -l -p 7000; done",
    ]);
    assert_eq!(code, 0, "{err}");
    let leases = net.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let server_ip = leases[0].clone();
    let id = stdout(&w.rwasm(&["inspect", "-f", "{{.Id}}", &name]))
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(net.ipam.join(&net.name).join(&server_ip))
            .unwrap()
            .lines()
            .next(),
        Some(id.as_str()),
        "host-local's lease names the container"
    );
    assert!(
        net.state.join(format!("{id}.json")).is_file(),
        "cached ADD result"
    );
    assert_eq!(net.ports().len(), 1, "{:?}", net.ports());
    let script = format!(
        "ip -4 -o addr show eth0; ip route | grep default; ping -c1 -W2 {p}.1 >/dev/null && echo gateway-ok; \
         for i in $(seq 50); do nc {server_ip} 7000 </dev/null && exit 0; sleep 0.1; done",
        p = net.prefix
    );
    let out = net.rwasm(
        &w,
        &[
            "run",
            "--rm",
            "--network",
            &net.name,
            "busybox",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("inet {}.", net.prefix)), "{text}");
    assert!(
        text.contains(&format!("default via {}.1 dev eth0", net.prefix)),
        "{text}"
    );
    assert!(text.contains("gateway-ok"), "{text}");
    assert!(text.ends_with("cni-hello\n"), "{text}");
    // DEL of the client ran: one lease and one bridge port remain, the server's (the
    // client had exited: its port goes when the kernel destroys its namespace).
    assert_eq!(net.leases(), vec![server_ip.clone()]);
    net.wait_for_ports(1);
    let out = net.rwasm(&w, &["rm", "-f", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    // `rm -f` killed the server first, so its network namespace was gone at DEL.
    net.wait_for_ports(0);
    assert!(!net.state.join(format!("{id}.json")).exists());
}

#[test]
fn running_a_host_binary_is_refused_without_an_exec_dir_grant() {
    let w = World::new();
    w.setup_image();
    // The CNI driver itself, without the grant.
    let net = Cni::new(&w, false);
    let out = net.rwasm(
        &w,
        &["run", "--rm", "--network", &net.name, "busybox", "true"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is not granted") && err.contains("exec-dir"),
        "{err}"
    );
    assert!(net.leases().is_empty());
    // A non-CNI driver asking to run the CNI bridge binary.
    let body = format!(
        r#"[[plugin]]
name = "hostile-exec"
path = "{}"
kind = "network-driver"
[plugin.config]
mode = "exec"
[plugin.grants.network]
link-prefix = "rhx"
"#,
        plugin_wasm("net_hostile").display()
    );
    let m = manifest(&w, "hostile.toml", &body);
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "hostile-exec",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("running host binary `bridge` is not granted"),
        "{err}"
    );
    assert!(!err.contains("the host ran a binary"), "{err}");
}
