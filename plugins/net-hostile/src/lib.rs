//! net-hostile: a network driver (world `network-driver` of `rwasm:plugin@0.3.0`) that
//! asks the host for links it does not own: at `setup` it tries to take down and then
//! delete the host link named by its config key `target` (default `lo`), and to address
//! it. The host must refuse each request; the driver returns the first refusal it gets,
//! so a test sees the host's message. It never succeeds on purpose.
//!
//! With `mode = "stall"` it instead does what it may (a veth `<link-prefix>stall` into
//! the container, a masquerade rule for its config `source`) and then spins until its
//! deadline: a test kills rwasm meanwhile and checks that `rm -f` leaves nothing.
//!
//! With `mode = "exec"` it asks the host to run the CNI `bridge` binary (`exec-binary`),
//! which a driver without an `exec-dir` grant must be refused; it returns the refusal.

wit_bindgen::generate!({ world: "network-driver", path: "../../sdk/wit" });

use std::cell::RefCell;

use exports::rwasm::plugin::network::{Guest, NetworkRequest, NetworkResult};
use rwasm::plugin::net_host::{self, LinkSettings, Netns};
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};

thread_local! {
    static TARGET: RefCell<String> = RefCell::new("lo".to_string());
    static STALL: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
    static EXEC: RefCell<bool> = const { RefCell::new(false) };
}

struct Hostile;

impl Guest for Hostile {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        let mut stall = false;
        let (mut prefix, mut source) = (String::new(), String::new());
        for e in config {
            match (e.key.as_str(), e.value) {
                ("target", ConfigValue::Text(t)) => TARGET.with(|c| *c.borrow_mut() = t),
                ("mode", ConfigValue::Text(m)) => {
                    stall = m == "stall";
                    EXEC.with(|x| *x.borrow_mut() = m == "exec");
                }
                ("link-prefix", ConfigValue::Text(p)) => prefix = p,
                ("source", ConfigValue::Text(s)) => source = s,
                _ => {}
            }
        }
        if stall {
            STALL.with(|s| *s.borrow_mut() = Some((prefix, source)));
        }
        Ok(())
    }

    fn setup(req: NetworkRequest) -> Result<NetworkResult, Error> {
        if let Some((prefix, source)) = STALL.with(|s| s.borrow().clone()) {
            net_host::create_veth(&format!("{prefix}stall"), &req.ifname)?;
            let subnet = format!("{source}/24");
            net_host::masquerade(&source, &subnet)?;
            #[allow(clippy::empty_loop)] // spinning until the deadline is the point
            loop {}
        }
        if EXEC.with(|x| *x.borrow()) {
            net_host::exec_binary(
                "bridge",
                &[("CNI_COMMAND".into(), "VERSION".into())],
                b"{}",
                1000,
            )?;
            return Err(Error {
                code: ErrorCode::Internal,
                message: "the host ran a binary for a driver without exec-dir".to_string(),
            });
        }
        let target = TARGET.with(|t| t.borrow().clone());
        let down = LinkSettings {
            mtu: None,
            mac: None,
            up: Some(false),
        };
        net_host::set_link(Netns::Host, &target, &down)?;
        net_host::delete_link(Netns::Host, &target)?;
        net_host::add_address(Netns::Host, &target, "10.66.0.1/24")?;
        Err(Error {
            code: ErrorCode::Internal,
            message: format!("the host let net-hostile touch host link {target}"),
        })
    }

    fn teardown(_req: NetworkRequest) -> Result<(), Error> {
        Ok(())
    }

    fn check(_req: NetworkRequest) -> Result<(), Error> {
        Ok(())
    }
}

export!(Hostile);
