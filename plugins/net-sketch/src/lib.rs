//! net-sketch: a component of the `network-driver` world of `rwasm:plugin@0.2.0` (frozen in
//! `sdk/wit-compat/0.2.0`; the
//! operations only sketched so far). Listed in a manifest as `kind = "hook"` it must be
//! refused at load, naming the interface it exports and the one a hook needs.

wit_bindgen::generate!({ world: "network-driver", path: "../../sdk/wit-compat/0.2.0" });

use exports::rwasm::plugin::network::{Guest, NetworkRequest, NetworkResult};
use rwasm::plugin::types::{ConfigEntry, Error, ErrorCode};

struct NetSketch;

fn unsupported(what: &str) -> Error {
    Error {
        code: ErrorCode::Unsupported,
        message: format!("net-sketch is a fixture; it does not {what}"),
    }
}

impl Guest for NetSketch {
    fn configure(_config: Vec<ConfigEntry>) -> Result<(), Error> {
        Ok(())
    }

    fn setup(_request: NetworkRequest) -> Result<NetworkResult, Error> {
        Err(unsupported("set up networks"))
    }

    fn teardown(_request: NetworkRequest) -> Result<(), Error> {
        Err(unsupported("tear down networks"))
    }

    fn check(_request: NetworkRequest) -> Result<(), Error> {
        Ok(())
    }
}

export!(NetSketch);
