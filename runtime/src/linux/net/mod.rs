//! The privileged network work of the core: loopback in a new network namespace, and the
//! netlink, sysctl and nftables operations a network driver plugin asks for (the plugin
//! host checks every request against the driver's grants before it reaches this module;
//! nothing here knows of plugins).
//!
//! - [`loopback`]: `lo` up (`--network none`, and the start of every other mode).
//! - [`netlink`]: links, addresses and routes through rtnetlink (the `rtnetlink` crate,
//!   `RTM_NEWLINK`/`RTM_NEWADDR`/`RTM_NEWROUTE`), in the host's namespace or a container's.
//! - [`nft`]: NAT rules in rwasm's own nftables table `inet rwasm`, each tagged with a
//!   container id.
//! - [`sysctl`]: `/proc/sys/net/...` writes.
//! - [`resolv`]: the container's `/etc/resolv.conf` from the host's.
//!
//! IPv4 only in this version.

mod loopback;
pub mod netlink;
pub mod nft;
pub mod resolv;
pub mod sysctl;

pub use loopback::loopback_up;

use std::io;
use std::path::PathBuf;

/// A failed network operation, naming the link, rule or file it was about.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed (the kernel's errno, or the socket).
    #[error("netlink: cannot {what}")]
    Netlink {
        /// What was asked, e.g. `create veth rwv1a2b3c4d`.
        what: String,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// The named link does not exist.
    #[error("no link named `{0}`")]
    NoLink(String),
    /// A link exists but is not of the kind asked for (a bridge was asked, say).
    #[error("link `{name}` exists but is a {kind}, not a {wanted}")]
    WrongKind {
        /// The link's name.
        name: String,
        /// What it is (`veth`, `device`, ...).
        kind: String,
        /// What was asked.
        wanted: &'static str,
    },
    /// Opening or joining a network namespace, or the netlink thread, failed.
    #[error("cannot {what}")]
    Namespace {
        /// e.g. `join network namespace /proc/42/ns/net`.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file (sysctl, resolv.conf) could not be read or written.
    #[error("cannot {what} {path}")]
    File {
        /// `read` or `write`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `nft` could not be run or refused the ruleset.
    #[error("nftables: cannot {what}")]
    Nft {
        /// e.g. `add masquerade for 10.88.0.2`.
        what: String,
        /// The crate's error (it carries nft's stderr).
        #[source]
        source: nftables::helper::NftablesError,
    },
    /// A ruleset document did not have the shape the nftables crate's schema expects
    /// (a bug in this module).
    #[error("nftables: malformed {what}")]
    NftSchema {
        /// What was being built.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A value (MAC address, sysctl name) is malformed.
    #[error("invalid {what} `{value}`: {reason}")]
    Invalid {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}
