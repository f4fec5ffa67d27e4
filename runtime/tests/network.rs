//! Container networks through a WASM network driver (issue 6): the first-party net-bridge
//! driver on a bridge, subnet and link prefix unique to each test (so tests run in
//! parallel, beside other engineers' runs), `--network none`, what is left after the
//! containers are gone, 20 parallel containers, a published port from 127.0.0.1, and a
//! hostile driver. Real: veths, bridges, nftables rules in `inet rwasm`; root only.

mod common;
mod images_common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use images_common::ok;

/// A test network: its own bridge, /24, link prefix, driver manifest and lease directory.
struct Net {
    name: String,
    bridge: String,
    prefix: String,
    subnet: (u8, u8),
    manifest: PathBuf,
    state: PathBuf,
}

impl Net {
    fn new(w: &World) -> Net {
        let r = rand_suffix();
        let b = u8::from_str_radix(&r[..2], 16).unwrap();
        let c = u8::from_str_radix(&r[2..4], 16).unwrap();
        let net = Net {
            name: format!("t{}", &r[..6]),
            bridge: format!("rwb{}", &r[..6]),
            prefix: format!("rv{}", &r[..4]),
            subnet: (200 + b % 50, c),
            manifest: w.path("net.toml"),
            state: w.path("net-state"),
        };
        std::fs::create_dir_all(&net.state).unwrap();
        let body = format!(
            r#"[[plugin]]
name = "{name}"
path = "{wasm}"
kind = "network-driver"
timeout-ms = 20000
[plugin.config]
bridge = "{bridge}"
subnet = "{cidr}"
link-prefix = "{prefix}"
[plugin.grants]
dirs = {{ "{state}" = "/state:rw" }}
[plugin.grants.network]
bridges = ["{bridge}"]
subnets = ["{cidr}"]
link-prefix = "{prefix}"
nat = true
"#,
            name = net.name,
            wasm = plugin_wasm("net_bridge").display(),
            bridge = net.bridge,
            cidr = net.cidr(),
            prefix = net.prefix,
            state = net.state.display(),
        );
        std::fs::write(&net.manifest, body).unwrap();
        net
    }

    fn cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.subnet.0, self.subnet.1)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let o = ip.octets();
        o[0] == 10 && o[1] == self.subnet.0 && o[2] == self.subnet.1
    }

    fn run(&self, w: &World, args: &[&str]) -> std::process::Output {
        let m = self.manifest.to_str().unwrap();
        w.rwasm(&[&["--plugins", m, "run", "--network", &self.name], args].concat())
    }

    /// The leases: (address, container id).
    fn leases(&self) -> Vec<(String, String)> {
        let dir = self
            .state
            .join(format!("10.{}.{}.0-24", self.subnet.0, self.subnet.1));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Host links whose names start with the driver's prefix.
    fn links(&self) -> Vec<String> {
        host_links()
            .into_iter()
            .filter(|l| l.starts_with(&self.prefix))
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// Names of the host's links (`ip -o link`).
fn host_links() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            Some(name.split('@').next()?.to_string())
        })
        .collect()
}

/// The `inet rwasm` rules mentioning `needle` (`nft -a list table inet rwasm`).
fn nft_rules_with(needle: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["-a", "list", "table", "inet", "rwasm"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn host_has_address(ip: &str) -> bool {
    let out = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {ip}/"))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn none_has_only_loopback_and_is_the_default() {
    let w = World::new();
    w.setup_image();
    for args in [
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "/sys/class/net",
        ][..],
        &["run", "--rm", "busybox", "ls", "/sys/class/net"][..],
    ] {
        let out = w.rwasm(args);
        assert_eq!(stdout(&out), "lo\n", "{args:?}: {}", stderr(&out));
    }
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/sys/class/net/lo/operstate",
    ]);
    // `lo` is up (operstate of loopback reads "unknown" when up).
    assert_eq!(stdout(&out), "unknown\n", "{}", stderr(&out));
    let out = w.rwasm(&["run", "--rm", "--network", "container:x", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    // `container:NAME` of no such container fails before anything is made.
    assert!(
        stderr(&out).contains("No such container: x"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(w.data.join("containers")).map_or(0, |d| d.count()),
        0,
        "a refused --network leaves no bundle"
    );
}

#[test]
fn host_network_shares_the_hosts_links() {
    let w = World::new();
    w.setup_image();
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let inside: BTreeSet<String> = stdout(&out).lines().map(str::to_string).collect();
    assert!(
        inside.len() > 1 && inside.contains("lo"),
        "{inside:?} {}",
        stderr(&out)
    );
}

#[test]
fn a_container_on_the_bridge_gets_address_route_hosts_and_resolv_conf() {
    let w = World::new();
    w.setup_image();
    let net = Net::new(&w);
    let out = net.run(
        &w,
        &[
            "--rm",
            "-h",
            "web1",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let gw = format!("10.{}.{}.1", net.subnet.0, net.subnet.1);
    let ip = format!("10.{}.{}.2", net.subnet.0, net.subnet.1);
    assert!(text.contains(&format!("inet {ip}/24")), "{text}");
    assert!(
        text.contains(&format!("default via {gw} dev eth0")),
        "{text}"
    );
    assert!(text.contains(&format!("{ip}\tweb1")), "{text}");
    assert!(text.contains("nameserver "), "{text}");
    assert!(!text.contains("nameserver 127."), "{text}");
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    assert!(net.links().is_empty(), "{:?}", net.links());
}

#[test]
fn two_containers_on_a_bridge_exchange_data_and_nothing_of_theirs_remains() {
    let w = World::new();
    w.setup_image();
    let net = Net::new(&w);
    let m = net.manifest.to_str().unwrap().to_string();
    let name = format!("srv-{}", rand_suffix());
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        &m,
        "run",
        "-d",
        "--network",
        &net.name,
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo hello-over-the-bridge | nc -l -p 7000; sleep 100",
    ]);
    assert_eq!(code, 0, "{err}");
    wait_for("the server's lease", || net.leases().len() == 1);
    let (ip, id) = net.leases().remove(0);
    assert!(net.contains(ip.parse().unwrap()), "{ip}");
    wait_for("the server's veth", || net.links().len() == 1);
    assert_eq!(
        nft_rules_with(&format!("rwasm:{id}")).len(),
        1,
        "one masquerade rule"
    );

    let client = format!("for i in $(seq 100); do nc {ip} 7000 && exit 0; sleep 0.1; done; exit 1");
    let out = net.run(&w, &["--rm", "busybox", "sh", "-c", &client]);
    assert_eq!(stdout(&out), "hello-over-the-bridge\n", "{}", stderr(&out));

    let out = w.rwasm(&["--plugins", &m, "rm", "-f", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
    assert!(net.links().is_empty(), "veths left: {:?}", net.links());
    assert!(
        nft_rules_with(&id).is_empty(),
        "rules left: {:?}",
        nft_rules_with(&id)
    );
    assert!(!host_has_address(&ip), "address {ip} left on the host");
    let routes = Command::new("ip").args(["-4", "route"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&routes.stdout).contains(&format!("{ip} ")),
        "a route to {ip} is left"
    );
}

#[test]
fn twenty_containers_in_parallel_get_twenty_distinct_addresses() {
    let w = World::new();
    w.setup_image();
    let net = Net::new(&w);
    let m = net.manifest.to_str().unwrap().to_string();
    let r = rand_suffix();
    let names: Vec<String> = (0..20).map(|i| format!("par{i}-{r}")).collect();
    // All twenty started at once, detached, so they hold their addresses together.
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            w.cmd(&[
                "--plugins",
                &m,
                "run",
                "-d",
                "--network",
                &net.name,
                "--name",
                name,
                "busybox",
                "sleep",
                "120",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let leases = net.leases();
    let addresses: BTreeSet<Ipv4Addr> = leases.iter().map(|(ip, _)| ip.parse().unwrap()).collect();
    let ids: BTreeSet<&String> = leases.iter().map(|(_, id)| id).collect();
    assert_eq!((addresses.len(), ids.len()), (20, 20), "{leases:?}");
    assert!(
        addresses.iter().all(|ip| net.contains(*ip)),
        "{addresses:?}"
    );
    assert_eq!(net.links().len(), 20, "{:?}", net.links());
    // What the containers see is what was leased.
    let out = w.rwasm(&["exec", &names[0], "ip", "-4", "-o", "addr", "show", "eth0"]);
    let seen = stdout(&out);
    assert!(
        addresses
            .iter()
            .any(|ip| seen.contains(&format!("inet {ip}/24"))),
        "{seen} {}",
        stderr(&out)
    );
    let mut rm = vec!["--plugins", &m, "rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    let out = w.rwasm(&rm);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
    assert!(net.links().is_empty(), "veths left: {:?}", net.links());
    for id in ids {
        assert!(nft_rules_with(id).is_empty(), "rules of {id} left");
    }
}

#[test]
fn a_driver_asking_for_a_host_link_it_does_not_own_is_refused() {
    let w = World::new();
    w.setup_image();
    let r = rand_suffix();
    let m = manifest(
        &w,
        "hostile.toml",
        &format!(
            r#"[[plugin]]
name = "hostile"
path = "{}"
kind = "network-driver"
[plugin.grants.network]
bridges = ["rwh{r}"]
subnets = ["10.251.0.0/24"]
link-prefix = "rh{}"
"#,
            plugin_wasm("net_hostile").display(),
            &r[..4],
        ),
    );
    let out = w.rwasm(&[
        "--plugins",
        m.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "hostile",
        "busybox",
        "true",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("network driver `hostile` failed to setup in its invoke phase")
            && err.contains("invalid-input: refused: host link `lo` is not the driver's")
            && err.contains(&format!("links starting with `rh{}`", &r[..4])),
        "{err}"
    );
    let lo = std::fs::read_to_string("/sys/class/net/lo/flags").unwrap();
    let flags = u32::from_str_radix(lo.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "host lo is still up");
    assert!(
        std::fs::read_dir(w.data.join("containers")).map_or(0, |d| d.count()) == 0,
        "the failed run left its bundle"
    );
}

#[test]
fn a_published_port_answers_from_the_hosts_loopback() {
    let w = World::new();
    w.setup_image();
    let net = Net::new(&w);
    let m = net.manifest.to_str().unwrap().to_string();
    let r = rand_suffix();
    let port = 20000 + u16::from_str_radix(&r[..4], 16).unwrap() % 20000;
    let name = format!("web-{r}");
    let publish = format!("127.0.0.1:{port}:8000");
    // The same server on every host address, one port up: another container reaches it
    // through the gateway's address (hairpin).
    let publish_all = format!("{}:8000", port + 1);
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        &m,
        "run",
        "-d",
        "--network",
        &net.name,
        "-p",
        &publish,
        "-p",
        &publish_all,
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo published-hello > /www/index.html && httpd -f -p 8000 -h /www",
    ]);
    assert_eq!(code, 0, "{err}");
    wait_for("the server's lease", || net.leases().len() == 1);
    let (_, id) = net.leases().remove(0);
    assert_eq!(
        nft_rules_with(&format!("rwasm:{id} tcp/{port}\"")).len(),
        4,
        "{:?}",
        nft_rules_with(&id)
    );
    let mut body = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))
        {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("published-hello") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let gw = format!("10.{}.{}.1", net.subnet.0, net.subnet.1);
    let fetch = format!(
        "for i in $(seq 50); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {gw} {} | grep published && exit 0; sleep 0.1; done; exit 1",
        port + 1
    );
    let hairpin = net.run(&w, &["--rm", "busybox", "sh", "-c", &fetch]);
    let out = w.rwasm(&["--plugins", &m, "rm", "-f", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(body.contains("published-hello"), "answer: {body:?}");
    assert_eq!(
        stdout(&hairpin),
        "published-hello\n",
        "from another container: {}",
        stderr(&hairpin)
    );
    assert!(
        nft_rules_with(&id).is_empty(),
        "rules left: {:?}",
        nft_rules_with(&id)
    );
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
}

#[test]
fn bridge_is_the_builtin_driver_without_a_manifest() {
    let w = World::new();
    w.setup_image();
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("inet 10.88."), "{text}");
    assert!(text.contains("default via 10.88.0.1 dev eth0"), "{text}");
    assert!(w.data.join("net/bridge.toml").is_file());
    let kind = std::fs::read_to_string("/sys/class/net/rwasm0/uevent").unwrap_or_default();
    assert!(kind.contains("DEVTYPE=bridge"), "rwasm0: {kind:?}");
}

#[test]
fn killing_rwasm_mid_setup_then_rm_f_leaves_nothing() {
    let w = World::new();
    w.setup_image();
    let r = rand_suffix();
    let prefix = format!("rk{}", &r[..4]);
    let source = format!("10.252.{}.9", u8::from_str_radix(&r[4..6], 16).unwrap());
    let m = manifest(
        &w,
        "stall.toml",
        &format!(
            r#"[[plugin]]
name = "stall"
path = "{}"
kind = "network-driver"
timeout-ms = 30000
[plugin.config]
mode = "stall"
link-prefix = "{prefix}"
source = "{source}"
[plugin.grants.network]
subnets = ["10.252.0.0/16"]
link-prefix = "{prefix}"
nat = true
"#,
            plugin_wasm("net_hostile").display(),
        ),
    );
    let name = format!("stall-{r}");
    let mut child = w
        .cmd(&[
            "--plugins",
            m.to_str().unwrap(),
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "stall",
            "busybox",
            "true",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let veth = format!("{prefix}stall");
    wait_for("the stalled driver's veth and rule", || {
        host_links().contains(&veth) && !nft_rules_with(&format!("saddr {source} ")).is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let out = w.rwasm(&["--plugins", m.to_str().unwrap(), "rm", "-f", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the veth to go with the container's namespace", || {
        !host_links().contains(&veth)
    });
    assert!(
        nft_rules_with(&format!("saddr {source} ")).is_empty(),
        "rule left: {:?}",
        nft_rules_with(&source)
    );
    assert_eq!(
        std::fs::read_dir(w.data.join("containers")).map_or(0, |d| d.count()),
        0,
        "bundle left"
    );
}

#[test]
fn plugin_commands_show_network_drivers_and_their_grants() {
    let w = World::new();
    let net = Net::new(&w);
    let m = net.manifest.to_str().unwrap();
    let out = w.rwasm(&["--plugins", m, "plugin", "ls"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&net.name) && l.contains(" network-driver ")),
        "{text}{}",
        stderr(&out)
    );
    let out = w.rwasm(&["--plugins", m, "plugin", "inspect", &net.name]);
    let text = stdout(&out);
    for line in [
        "world:       network-driver".to_string(),
        "exports:     rwasm:plugin/network@0.3.0".to_string(),
        format!(
            "             network bridges {}; subnets {}; links {}*; nat",
            net.bridge,
            net.cidr(),
            net.prefix
        ),
        "loads:       yes".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    let out = w.rwasm(&["plugin", "validate", m]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // `info` lists it after the built-in network drivers.
    let out = w.rwasm(&["--plugins", m, "info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        info["NetworkDrivers"],
        serde_json::json!(["none", "host", "bridge", net.name]),
        "{}",
        stderr(&out)
    );
    // The 0.2.0 sketch of the world is refused as a network driver, saying what to do.
    let old = manifest(
        &w,
        "old.toml",
        &format!(
            "[[plugin]]\nname = \"old\"\npath = \"{}\"\nkind = \"network-driver\"\n",
            plugin_wasm("net_sketch").display()
        ),
    );
    let out = w.rwasm(&["plugin", "validate", old.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("cannot link as a network driver: the component exports `rwasm:plugin/network@0.2.0`, whose network interface was only sketched; rebuild it against rwasm:plugin@0.3.0"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// An image whose config exposes 8000/tcp and 53/udp and serves /www on 8000 and 8001.
fn exposing_image(w: &World, name: &str) {
    use images_common::*;
    let bb = busybox_layer(w.tmp.path());
    let cfg = config(
        &[&bb],
        serde_json::json!({
            "Cmd": ["sh", "-c", "mkdir /www && echo random-hello > /www/index.html && httpd -p 8001 -h /www && httpd -f -p 8000 -h /www"],
            "Env": ["PATH=/bin"],
            "ExposedPorts": {"8000/tcp": {}, "53/udp": {}},
        }),
    );
    let (ar, _) = oci_archive(
        &[("application/vnd.oci.image.layer.v1.tar", bb)],
        &cfg,
        Some(name),
    );
    ok(w, &["load", "-i", &put(w, "exposing.tar", &ar)]);
}

/// GET /index.html from 127.0.0.1:`port`, retried for 20 s; the answer.
fn fetch_local(port: u16) -> String {
    let mut body = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))
        {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("hello") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    body
}

#[test]
fn publish_all_and_random_ports_are_reported_by_port_and_ps_and_answer() {
    let w = World::new();
    w.setup_image();
    let img = format!("exposing-{}:1", rand_suffix());
    exposing_image(&w, &img);
    let net = Net::new(&w);
    let m = net.manifest.to_str().unwrap().to_string();
    let name = format!("rnd-{}", rand_suffix());
    let (code, err) = w.rwasm_detached(&[
        "--plugins",
        &m,
        "run",
        "-d",
        "--network",
        &net.name,
        "-P",
        "-p",
        "127.0.0.1::8001",
        "--name",
        &name,
        &img,
    ]);
    assert_eq!(code, 0, "{err}");
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let (lo, hi) = range.split_once(char::is_whitespace).unwrap();
    let (lo, hi): (u16, u16) = (lo.trim().parse().unwrap(), hi.trim().parse().unwrap());
    let lines = ok(&w, &["port", &name]);
    // -p 127.0.0.1::8001 first, then -P's 53/udp and 8000/tcp (sorted as the image has them).
    let got: Vec<(String, String, u16)> = lines
        .lines()
        .map(|l| {
            let (private, public) = l.split_once(" -> ").unwrap();
            let (ip, port) = public.rsplit_once(':').unwrap();
            (private.to_string(), ip.to_string(), port.parse().unwrap())
        })
        .collect();
    let shape: Vec<(&str, &str)> = got
        .iter()
        .map(|(p, i, _)| (p.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("8001/tcp", "127.0.0.1"),
            ("53/udp", "0.0.0.0"),
            ("8000/tcp", "0.0.0.0")
        ],
        "{lines}"
    );
    for (_, _, port) in &got {
        assert!((lo..=hi).contains(port), "{port} outside {lo}-{hi}");
    }
    assert_ne!(got[0].2, got[2].2, "two tcp mappings, one port: {lines}");
    assert_eq!(
        ok(&w, &["port", &name, "8000/tcp"]),
        format!("0.0.0.0:{}\n", got[2].2)
    );
    assert_eq!(
        ok(&w, &["port", &name, "8001"]),
        format!("127.0.0.1:{}\n", got[0].2)
    );
    let missing = w.rwasm(&["port", &name, "9/tcp"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("No public port '9/tcp' published for"),
        "{}",
        stderr(&missing)
    );
    let ps = ok(
        &w,
        &[
            "ps",
            "--format",
            "{{.Ports}}",
            "--filter",
            &format!("name={name}"),
        ],
    );
    assert!(
        ps.contains(&format!("0.0.0.0:{}->8000/tcp", got[2].2))
            && ps.contains(&format!("127.0.0.1:{}->8001/tcp", got[0].2))
            && ps.contains(&format!("0.0.0.0:{}->53/udp", got[1].2)),
        "{ps}"
    );
    let random = fetch_local(got[2].2);
    let local = fetch_local(got[0].2);
    let out = w.rwasm(&["--plugins", &m, "rm", "-f", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        random.contains("random-hello"),
        "-P port {}: {random:?}",
        got[2].2
    );
    assert!(
        local.contains("random-hello"),
        "127.0.0.1:: port {}: {local:?}",
        got[0].2
    );
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
}
