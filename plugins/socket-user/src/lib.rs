//! socket-user: a hook plugin that opens a TCP connection with `std::net`, so its
//! component imports `wasi:sockets/*`. rwasm grants plugins no sockets: loading it must
//! fail, naming the import, before it ever runs.

use std::io::Write;
use std::net::TcpStream;

use rwasm_plugin_sdk::prelude::*;

struct SocketUser;

impl Hook for SocketUser {
    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        let mut stream = TcpStream::connect("127.0.0.1:9")
            .map_err(|e| Error::from(format!("socket-user: connect: {e}")))?;
        stream
            .write_all(call.state.id.as_bytes())
            .map_err(|e| Error::from(format!("socket-user: write: {e}")))?;
        Ok(Verdict::allow())
    }
}

rwasm_plugin_sdk::export_hook!(SocketUser);
