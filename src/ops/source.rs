//! Where a connection comes from, as the limits count it: the canonical
//! address (`::ffff:10.0.0.1` is `10.0.0.1`), and its *source* — the IPv4
//! address, or the IPv6 /64 (one host usually owns a whole /64). Shared by
//! the pre-auth limits, the PROXY policy and the agent-login caps.

use std::net::{IpAddr, Ipv6Addr};

/// `::ffff:10.0.0.1` is `10.0.0.1` (dual-stack listeners report the former).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The source an address counts under: itself, or its /64 for IPv6.
pub fn source(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v4_is_v4_and_v6_is_grouped_by_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(canonical(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(source(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
