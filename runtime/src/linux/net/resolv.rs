//! The container's `/etc/resolv.conf` (resolv.conf(5)): the host's, minus the loopback
//! resolvers a container cannot reach (Docker's behaviour: moby `libnetwork/resolvconf`,
//! `FilterResolvDNS`), with Google's public resolvers when none is left, as Docker does.

/// Docker's fallback when the host has no usable resolver.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `host` (the text of the host's resolv.conf) without `nameserver` lines for
/// `127.0.0.0/8` or `::1`; `FALLBACK_NAMESERVERS` added when no nameserver remains.
/// Every other line (`search`, `options`, comments) is kept.
pub fn for_container(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or_default();
            let loopback = addr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
            if loopback || addr.is_empty() {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for s in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

/// A resolv.conf from explicit settings (a network driver's CNI `dns` result).
pub fn from_settings(
    nameservers: &[String],
    domain: Option<&str>,
    search: &[String],
    options: &[String],
) -> String {
    let mut out = String::new();
    for s in nameservers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if let Some(d) = domain {
        out.push_str(&format!("domain {d}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_dropped() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch example.com\noptions edns0\n";
        assert_eq!(
            for_container(host),
            "# generated\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\n"
        );
    }

    #[test]
    fn no_resolver_left_falls_back_as_docker() {
        assert_eq!(
            for_container("nameserver 127.0.0.1\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
