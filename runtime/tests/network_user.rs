//! User networks (issue 6): `rwasm network create|ls|inspect|rm|prune`, containers on
//! one network reaching each other by name through /etc/hosts, isolation from other
//! networks, what stays after the containers are gone (the bridge) and what `network rm`
//! removes (bridge, rules, leases), and `--network container:NAME`. Each test uses
//! network names and subnets of its own (10.X.Y.0/24 with X in 150..199), so it runs
//! beside other engineers' tests. Real bridges, veths and nftables rules; root only.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;

/// A user network made by a test; dropped: its containers' `rm -f`, then `network rm`.
struct UserNet {
    name: String,
    subnet: String,
    root: PathBuf,
    data: PathBuf,
    containers: Vec<String>,
}

impl UserNet {
    fn create(w: &World, extra: &[&str]) -> UserNet {
        let r = rand_suffix();
        let b = u8::from_str_radix(&r[..2], 16).unwrap();
        let c = u8::from_str_radix(&r[2..4], 16).unwrap();
        let subnet = format!("10.{}.{c}.0/24", 150 + b % 50);
        let name = format!("un-{}", &r[..8]);
        let out = w.rwasm(&[&["network", "create", "--subnet", &subnet], extra, &[&name]].concat());
        assert!(out.status.success(), "create {name}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim().len(), 64, "{}", stdout(&out));
        UserNet {
            name,
            subnet,
            root: w.root.clone(),
            data: w.data.clone(),
            containers: Vec::new(),
        }
    }

    fn inspect(&self, w: &World) -> Value {
        let out = w.rwasm(&["network", "inspect", &self.name]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v[0].clone()
    }

    fn bridge(&self, w: &World) -> String {
        self.inspect(w)["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn prefix(&self) -> String {
        self.subnet.rsplit_once(".0/").unwrap().0.to_string()
    }

    /// `run -d --network NAME --name NAME ARGS...` of a long-lived container.
    fn start(&mut self, w: &World, name: &str, args: &[&str]) {
        let (code, err) = w.rwasm_detached(
            &[
                &["run", "-d", "--network", &self.name, "--name", name],
                args,
            ]
            .concat(),
        );
        assert_eq!(code, 0, "run {name}: {err}");
        self.containers.push(name.to_string());
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        let cmd = |args: &[&str]| {
            let _ = Command::new(rwasm_bin())
                .arg("--root")
                .arg(&self.root)
                .arg("--data-root")
                .arg(&self.data)
                .args(args)
                .output();
        };
        for c in &self.containers {
            cmd(&["rm", "-f", c]);
        }
        cmd(&["network", "rm", &self.name]);
    }
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

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

fn id_of(w: &World, name: &str) -> String {
    let out = w.rwasm(&["inspect", "-f", "{{.Id}}", name]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn exec(w: &World, name: &str, args: &[&str]) -> String {
    let out = w.rwasm(&[&["exec", name], args].concat());
    assert!(out.status.success(), "exec {name}: {}", stderr(&out));
    stdout(&out)
}

/// Lease files (address → container id) of a network, under its state directory.
fn leases(w: &World, net: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dir = w.data.join("networks").join(net).join("leases");
    for sub in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(std::fs::read_to_string(f.path()).unwrap_or_default());
        }
    }
    out
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_rm_cleans_up() {
    let w = World::new();
    w.setup_image();
    let mut net = UserNet::create(&w, &["--label", "team=net6b"]);
    let r = rand_suffix();
    let (web, client) = (format!("web-{r}"), format!("client-{r}"));
    net.start(
        &w,
        &web,
        &[
            "busybox",
            "sh",
            "-c",
            "mkdir /www && echo by-name-hello > /www/index.html && httpd -f -p 80 -h /www",
        ],
    );
    net.start(&w, &client, &["busybox", "sleep", "600"]);
    let (web_id, client_id) = (id_of(&w, &web), id_of(&w, &client));

    // inspect: Docker's shape, both containers with addresses in the subnet.
    let v = net.inspect(&w);
    assert_eq!(v["Name"], net.name.as_str());
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["IPAM"]["Config"][0]["Subnet"], net.subnet.as_str());
    assert_eq!(
        v["IPAM"]["Config"][0]["Gateway"],
        format!("{}.1", net.prefix())
    );
    assert_eq!(v["Labels"]["team"], "net6b");
    let web_ip = v["Containers"][&web_id]["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let client_ip = v["Containers"][&client_id]["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(web_ip.starts_with(&format!("{}.", net.prefix())), "{v}");
    assert_eq!(v["Containers"][&web_id]["Name"], web.as_str());

    // Each has the other's name in /etc/hosts (the web one got the client's on its join).
    assert!(
        exec(&w, &client, &["cat", "/etc/hosts"]).contains(&format!("{web_ip}\t{web}\n")),
        "client's hosts"
    );
    assert!(
        exec(&w, &web, &["cat", "/etc/hosts"]).contains(&format!("{client_ip}\t{client}\n")),
        "web's hosts"
    );
    // By name, through /etc/hosts (busybox nc; `exec`ed wget crashes in busybox, so nc).
    let fetch = format!(
        "for i in $(seq 50); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {web} 80 | grep by-name && exit 0; sleep 0.1; done; exit 1"
    );
    assert_eq!(exec(&w, &client, &["sh", "-c", &fetch]), "by-name-hello\n");

    // Isolation: a container on another user network does not reach the web server.
    let mut other = UserNet::create(&w, &[]);
    // (busybox wget -T crashes, so nc -w.) A control run on the web's own network reaches it.
    let probe = format!(
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {web_ip} 80 | grep -q by-name && echo reached || echo isolated"
    );
    for (network, want) in [(&other.name, "isolated\n"), (&net.name, "reached\n")] {
        let out = w.rwasm(&[
            "run",
            "--rm",
            "--network",
            network,
            "busybox",
            "sh",
            "-c",
            &probe,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), want, "from network {network}");
    }
    other.containers.clear();

    // In use: rm is refused, naming the containers.
    let out = w.rwasm(&["network", "rm", &net.name]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("network has active endpoints") && err.contains(&web) && err.contains(&client),
        "{err}"
    );

    // The client leaves: its line goes from the web's hosts.
    let out = w.rwasm(&["rm", "-f", &client]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !exec(&w, &web, &["cat", "/etc/hosts"]).contains(&client),
        "client's line stays in web's hosts"
    );
    let out = w.rwasm(&["rm", "-f", &web]);
    assert!(out.status.success(), "{}", stderr(&out));
    net.containers.clear();

    // After the containers: the bridge stays; no veth, rule or lease of theirs does.
    let bridge = net.bridge(&w);
    assert!(
        link_exists(&bridge),
        "bridge {bridge} gone with its containers"
    );
    for id in [&web_id, &client_id] {
        assert!(nft_rules_with(id).is_empty(), "{:?}", nft_rules_with(id));
    }
    let prefix = format!("rw{}", &net.inspect(&w)["Id"].as_str().unwrap()[..4]);
    let veths: Vec<_> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(veths.is_empty(), "veths left: {veths:?}");
    assert!(
        leases(&w, &net.name).is_empty(),
        "{:?}",
        leases(&w, &net.name)
    );
    assert!(
        net.inspect(&w)["Containers"]
            .as_object()
            .unwrap()
            .is_empty()
    );

    // rm removes bridge, isolation rules and the network's files.
    let id = net.inspect(&w)["Id"].as_str().unwrap().to_string();
    assert_eq!(nft_rules_with(&format!("rwasm:net-{id}")).len(), 2);
    let out = w.rwasm(&["network", "rm", &net.name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!link_exists(&bridge), "bridge {bridge} stays after rm");
    assert!(nft_rules_with(&format!("rwasm:net-{id}")).is_empty());
    assert!(!w.data.join("networks").join(&net.name).exists());
    assert!(
        !w.data
            .join("networks")
            .join(format!("{}.json", net.name))
            .exists()
    );
    let out = w.rwasm(&["network", "inspect", &net.name]);
    assert!(!out.status.success());
}

#[test]
fn network_create_checks_its_flags_and_ls_inspect_prune_follow_docker() {
    let w = World::new();
    let net = UserNet::create(&w, &[]);
    let refused = |args: &[&str], needle: &str| {
        let out = w.rwasm(&[&["network", "create"], args].concat());
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    };
    let r = rand_suffix();
    let other = format!("un2-{}", &r[..8]);
    refused(&["--subnet", &net.subnet, &other], "overlaps network");
    let wider = format!("{}.0.0/16", net.prefix().rsplit_once('.').unwrap().0);
    refused(&["--subnet", &wider, &other], "overlaps");
    refused(&["--subnet", "10.199.0.1/24", &other], "host bits are set");
    refused(
        &[
            "--subnet",
            "10.198.250.0/24",
            "--gateway",
            "10.198.251.1",
            &other,
        ],
        "not a host address of the subnet",
    );
    refused(
        &["--gateway", "10.198.250.1", &other],
        "give --subnet with it",
    );
    refused(&["--driver", "macvlan", &other], "--driver");
    refused(&[&net.name], "already exists");
    refused(&["bridge"], "pre-defined network");
    refused(&["Bad_Name"], "a-z, 0-9 and -");

    // ls -q, ls --format json, ls (table).
    let id = net.inspect(&w)["Id"].as_str().unwrap().to_string();
    let out = w.rwasm(&["network", "ls", "-q"]);
    assert_eq!(stdout(&out), format!("{}\n", &id[..12]));
    let out = w.rwasm(&["network", "ls", "--format", "json"]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["Name"], net.name.as_str());
    assert_eq!(v["ID"], &id[..12]);
    assert_eq!(v["Driver"], "bridge");
    let table = stdout(&w.rwasm(&["network", "ls"]));
    assert!(table.starts_with("NETWORK ID"), "{table}");
    assert!(table.contains(&net.name), "{table}");
    // An id prefix names it too.
    assert_eq!(
        w.rwasm(&["network", "inspect", &id[..10]]).status.code(),
        Some(0)
    );

    // A default subnet is a free 10.89.N.0/24 not overlapping the host's routes.
    let auto = format!("un3-{}", &r[..8]);
    let out = w.rwasm(&["network", "create", &auto]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.rwasm(&["network", "inspect", &auto]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let subnet = v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        subnet.starts_with("10.89.") && subnet.ends_with(".0/24"),
        "{subnet}"
    );
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let routes = Command::new("ip").args(["-4", "route"]).output().unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    let on_subnet: Vec<_> = routes.lines().filter(|l| l.starts_with(&subnet)).collect();
    assert_eq!(on_subnet.len(), 1, "{routes}");
    assert!(on_subnet[0].contains(&bridge), "{routes}");

    // prune removes both unused networks and their bridges.
    let out = w.rwasm(&["network", "prune", "-f"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Deleted Networks:\n"), "{text}");
    assert!(text.contains(&auto) && text.contains(&net.name), "{text}");
    assert!(!link_exists(&bridge));
    assert_eq!(stdout(&w.rwasm(&["network", "ls", "-q"])), "");
}

#[test]
fn network_container_name_joins_that_containers_namespace_without_a_driver() {
    let w = World::new();
    w.setup_image();
    let mut net = UserNet::create(&w, &[]);
    let r = rand_suffix();
    let (host, guest) = (format!("ns-host-{r}"), format!("ns-guest-{r}"));
    net.start(&w, &host, &["busybox", "sleep", "600"]);
    let theirs = exec(&w, &host, &["ip", "-4", "-o", "addr", "show", "eth0"]);
    let addr = theirs.split_whitespace().nth(3).unwrap().to_string();
    assert!(addr.starts_with(&format!("{}.", net.prefix())), "{theirs}");
    let mode = format!("container:{host}");
    let out = w.rwasm(&[
        "run",
        "--name",
        &guest,
        "--network",
        &mode,
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; readlink /proc/self/ns/net; cat /etc/hosts",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("inet {addr} ")), "{text}");
    let host_ns = exec(&w, &host, &["readlink", "/proc/self/ns/net"]);
    assert!(text.contains(host_ns.trim()), "{text} vs {host_ns}");
    // Its /etc/hosts is the joined container's (the one naming its address).
    assert!(
        text.contains(&format!("{}\t", addr.split('/').next().unwrap())),
        "{text}"
    );
    // No driver ran for it: no network state, no lease, not a member of the network.
    let guest_id = id_of(&w, &guest);
    assert!(
        !w.data
            .join("containers")
            .join(&guest_id)
            .join("network.json")
            .exists()
    );
    assert_eq!(
        leases(&w, &net.name).len(),
        1,
        "{:?}",
        leases(&w, &net.name)
    );
    assert!(net.inspect(&w)["Containers"].get(&guest_id).is_none());
    let out = w.rwasm(&["rm", &guest]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The joined container keeps its network after the guest is gone.
    assert_eq!(
        exec(&w, &host, &["ip", "-4", "-o", "addr", "show", "eth0"]),
        theirs
    );
    // A container that is not running cannot be joined; -p with it is refused.
    let stopped = format!("ns-stopped-{r}");
    let out = w.rwasm(&["run", "--name", &stopped, "busybox", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--network",
        &format!("container:{stopped}"),
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    let out = w.rwasm(&[
        "run",
        "--rm",
        "--network",
        &mode,
        "-p",
        "80",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("-p and -P need a network"),
        "{}",
        stderr(&out)
    );
}
