//! Address hygiene: which addresses a node may publish in its address record, and which it may dial when they
//! come from the DHT or identify.
//!
//! Outside LAN mode a node publishes and dials only addresses reachable across the internet: never loopback,
//! unspecified, link-local, private (RFC 1918 `10/8`, `172.16/12`, `192.168/16`), shared (CGNAT
//! `100.64/10`), unique-local IPv6 (`fc00::/7`) or multicast addresses. A relay circuit address is judged by
//! the relay's address in front of `/p2p-circuit`. LAN mode, and tests or labs that run every node on one
//! host, allow local addresses explicitly ([`Scope::Local`]).

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// Which addresses are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only addresses reachable across the internet (the default outside LAN mode).
    Global,
    /// Local addresses too: LAN mode, or every node on one host (`NetConfig::local_addresses`).
    Local,
}

/// Whether `addr` may be published or dialled in `scope`. Unspecified and multicast addresses never are;
/// an address with no IP (a DNS name) is judged by its name only in [`Scope::Global`] (`localhost` is
/// refused).
pub fn acceptable(addr: &Multiaddr, scope: Scope) -> bool {
    let Some(first) = addr.iter().next() else {
        return false;
    };
    match first {
        Protocol::Ip4(ip) => {
            !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast())
                && (scope == Scope::Local || is_global_v4(ip))
        }
        Protocol::Ip6(ip) => {
            !(ip.is_unspecified() || ip.is_multicast())
                && (scope == Scope::Local || is_global_v6(ip))
        }
        Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name) => {
            scope == Scope::Local || !name.eq_ignore_ascii_case("localhost")
        }
        _ => false,
    }
}

/// Whether `addr` goes through a relay (`…/p2p-circuit…`).
pub fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// `addr` without a trailing `/p2p/<peer id>` (the form two addresses are compared in).
pub fn without_peer(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// The addresses of `candidates` that may be dialled for a contact in `scope`: acceptable, not one of
/// `own` (this node's own listen and external addresses: a node must never dial itself for a contact), at
/// most once each, and only circuits if `circuits_only`.
pub fn dialable(
    candidates: impl IntoIterator<Item = Multiaddr>,
    own: &[Multiaddr],
    scope: Scope,
    circuits_only: bool,
) -> Vec<Multiaddr> {
    let own: Vec<Multiaddr> = own.iter().map(without_peer).collect();
    let mut out: Vec<Multiaddr> = Vec::new();
    for addr in candidates {
        let bare = without_peer(&addr);
        if !acceptable(&bare, scope)
            || (circuits_only && !is_circuit(&bare))
            || (!is_circuit(&bare) && own.contains(&bare))
            || out.contains(&bare)
        {
            continue;
        }
        out.push(bare);
    }
    out
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let this_network = a == 0;
    !(ip.is_loopback() || ip.is_private() || ip.is_link_local() || shared || this_network)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    !(ip.is_loopback() || unique_local || link_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_addresses_are_refused_outside_local_scope() {
        for local in [
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/172.16.0.1/tcp/1",
            "/ip4/172.31.255.1/udp/1/quic-v1",
            "/ip4/192.168.1.20/tcp/1",
            "/ip4/169.254.3.4/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip4/100.127.255.254/tcp/1",
            "/ip4/0.1.2.3/tcp/1",
            "/ip6/::1/tcp/1",
            "/ip6/fe80::1/tcp/1",
            "/ip6/fd00::5/tcp/1",
            "/ip6/fc12::5/tcp/1",
            "/ip6/::ffff:192.168.0.1/tcp/1",
            "/dns4/localhost/tcp/1",
            "/ip4/192.168.1.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
        ] {
            assert!(!acceptable(&a(local), Scope::Global), "{local}");
        }
        assert!(acceptable(&a("/ip4/192.168.1.20/tcp/1"), Scope::Local));
        assert!(acceptable(&a("/ip4/127.0.0.1/tcp/1"), Scope::Local));
    }

    #[test]
    fn public_addresses_pass_and_nothing_unspecified_ever_does() {
        for public in [
            "/ip4/203.0.113.9/tcp/4001",
            "/ip4/8.8.8.8/udp/4001/quic-v1",
            "/ip4/172.32.0.1/tcp/1",
            "/ip4/100.128.0.1/tcp/1",
            "/ip6/2001:db8::1/tcp/1",
            "/dns4/relay.example.org/tcp/443",
            "/ip4/198.51.100.2/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
        ] {
            assert!(acceptable(&a(public), Scope::Global), "{public}");
        }
        for never in [
            "/ip4/0.0.0.0/tcp/1",
            "/ip6/::/tcp/1",
            "/ip4/224.0.0.251/udp/5353",
        ] {
            assert!(!acceptable(&a(never), Scope::Local), "{never}");
        }
        assert!(!acceptable(&Multiaddr::empty(), Scope::Local));
    }

    #[test]
    fn a_node_never_dials_its_own_address_for_a_contact() {
        let relay =
            "/ip4/198.51.100.2/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let circuit = a(&format!("{relay}/p2p-circuit"));
        let own = vec![a("/ip4/203.0.113.1/tcp/5"), a("/ip4/127.0.0.1/tcp/7")];
        let found = vec![
            a("/ip4/203.0.113.1/tcp/5"),
            a("/ip4/203.0.113.2/tcp/5"),
            a("/ip4/203.0.113.2/tcp/5"),
            a("/ip4/127.0.0.1/tcp/7"),
            a("/ip4/127.0.0.1/tcp/8"),
            circuit.clone(),
        ];
        assert_eq!(
            dialable(found.clone(), &own, Scope::Global, false),
            vec![a("/ip4/203.0.113.2/tcp/5"), circuit.clone()]
        );
        assert_eq!(
            dialable(found.clone(), &own, Scope::Local, false),
            vec![
                a("/ip4/203.0.113.2/tcp/5"),
                a("/ip4/127.0.0.1/tcp/8"),
                circuit.clone()
            ]
        );
        assert_eq!(dialable(found, &own, Scope::Local, true), vec![circuit]);
    }
}
