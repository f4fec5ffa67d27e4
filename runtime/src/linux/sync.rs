//! The messages the runtime and a container's init process exchange.
//!
//! Both ends speak length-prefixed JSON over a `SOCK_STREAM` unix socket: a 4-byte
//! little-endian length, then that many bytes of one [`ToInit`] or [`FromInit`] value.
//! A frame is at most [`MAX_FRAME`] bytes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Largest frame accepted, in bytes (a config.json is typically a few KiB).
pub const MAX_FRAME: usize = 16 << 20;

/// What the runtime sends to init.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// Everything init needs to build the container; sent once, after the runtime placed
    /// init in its cgroup and wrote its uid/gid maps.
    Config(Box<InitConfig>),
    /// Go on past the point init last reported.
    Continue,
    /// Give up: init exits without starting the user process.
    Abort(String),
    /// Sent by `start` on the start socket: run startContainer hooks and exec the user
    /// process. Carries the state JSON (status `created`) for the hooks.
    Start {
        /// The runtime-spec state JSON, handed to startContainer hooks on stdin.
        state: String,
    },
}

/// Where init pauses so the runtime can run hooks (runtime-spec `runtime.md`, "Lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pause {
    /// Mounts are set up, before pivot_root: the runtime runs prestart and createRuntime hooks.
    CreateRuntime,
    /// createContainer hooks ran in the container's mount namespace, before pivot_root.
    CreateContainer,
}

/// Why init failed, for the caller's exit code (Docker: 126 cannot execute, 127 not found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The process's executable was not found (`process.args[0]`).
    NotFound,
    /// The executable exists but cannot be executed.
    CannotExecute,
    /// Anything else.
    Other,
}

/// What init sends back.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// Paused at a hook point; waits for [`ToInit::Continue`].
    Paused(Pause),
    /// The container is created: init waits on the start socket.
    Created,
    /// Sent on the start socket right before `execve` of the user process.
    Exec,
    /// Init failed; it exits after sending this.
    Failed {
        /// What failed, for the caller's exit code.
        kind: FailureKind,
        /// The error and its causes, as one line.
        message: String,
    },
}

/// The part of the container's setup init does itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    /// The final spec (after plugin adjustments).
    pub spec: oci_spec::runtime::Spec,
    /// Absolute host path of the root filesystem.
    pub rootfs: PathBuf,
    /// Absolute path of the bundle (relative mount sources resolve against it).
    pub bundle: PathBuf,
    /// The state JSON (status `creating`) handed to createContainer hooks on stdin.
    pub state: String,
    /// Unshare a new cgroup namespace (after being placed in the container's cgroup).
    pub new_cgroup_ns: bool,
    /// Bring the loopback interface up (init created a new network namespace).
    pub loopback_up: bool,
    /// Keep fds 3..3+N open for the user process (runc's `--preserve-fds`).
    pub preserve_fds: u32,
}

/// Errors of the sync channel.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading or writing the socket failed, or the peer closed it in the middle of a frame.
    #[error("sync socket i/o")]
    Io(#[from] io::Error),
    /// A frame to send or receive is over [`MAX_FRAME`]; carries its length in bytes.
    #[error("sync frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// A message does not serialize, or a received frame is not a valid message.
    #[error("malformed sync message")]
    Json(#[from] serde_json::Error),
    /// The peer closed the socket before a frame started (e.g. init exited).
    #[error("the other end closed the sync socket")]
    Closed,
}

/// Write one message.
pub fn send<T: Serialize>(sock: &mut UnixStream, msg: &T) -> Result<(), SyncError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(SyncError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| SyncError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    sock.write_all(&frame)?;
    Ok(())
}

/// Read one message; [`SyncError::Closed`] when the peer closed before a frame started.
pub fn recv<T: DeserializeOwned>(sock: &mut UnixStream) -> Result<T, SyncError> {
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(SyncError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(SyncError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_is_closed() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send(&mut a, &FromInit::Paused(Pause::CreateContainer)).unwrap();
        send(
            &mut a,
            &FromInit::Failed {
                kind: FailureKind::NotFound,
                message: "x".into(),
            },
        )
        .unwrap();
        drop(a);
        assert!(matches!(
            recv(&mut b).unwrap(),
            FromInit::Paused(Pause::CreateContainer)
        ));
        match recv(&mut b).unwrap() {
            FromInit::Failed { kind, message } => {
                assert_eq!(kind, FailureKind::NotFound);
                assert_eq!(message, "x");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(recv::<FromInit>(&mut b), Err(SyncError::Closed)));
    }

    #[test]
    fn oversized_length_is_refused() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&(u32::MAX).to_le_bytes()).unwrap();
        assert!(matches!(
            recv::<FromInit>(&mut b),
            Err(SyncError::TooLarge(_))
        ));
    }
}
