//! `loopback_trust` (ADMISSION, priority -10: before `owner_resolution`):
//! a request from a trusted network neighbour that carries no owner header is
//! attributed to a policy owner instead of being refused.
//!
//! Trusted: 127.0.0.0/8 and ::1 (`trust_loopback`, true), 100.64.0.0/10
//! (`trust_tailscale`, false), `extra_trusted_cidrs` ([]); IPv4-mapped IPv6
//! addresses count as their IPv4 address. Owners: `policy:internal-loopback`,
//! `policy:internal-tailnet:<ip>`, `policy:internal-trusted:<ip>`.
//!
//! Never overrides an owner: if an owner was already resolved, or any owner
//! header is present (valid or not — an invalid one is `owner_resolution`'s
//! to refuse), this check does nothing. So it works placed before or after
//! `owner_resolution` (after it, that check needs `require_owner = false`).
//!
//! Proxies: `X-Forwarded-For` is honoured only when the direct peer is in
//! `trusted_proxies`; then the client is the right-most address not in
//! `trusted_proxies`. A forwarding header (`X-Forwarded-For`, `Forwarded`,
//! `X-Real-IP`) from any other peer means the request was relayed by a hop we
//! do not know — e.g. a reverse proxy on this host, whose peer address is
//! 127.0.0.1 — and no trust is granted. `Request::client_ip` must be the
//! direct TCP peer for this to hold.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::settings::Settings;
use super::{
    Check, Factory, Hook, Hooks, Owner, OwnerType, Request, Scratch, Source, Stage, Verdict,
};

const NAME: &str = "loopback_trust";
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];
const MAX_HOPS: usize = 64;

/// An address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address as a peer or forwarded entry may spell it (`1.2.3.4`, `::1`,
/// `[::1]`, `1.2.3.4:5678`, `[::1]:80`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.len() > 64 {
        return None;
    }
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(canonical)
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.trim().parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return None;
    }
    // ::ffff:a.b.c.d/n (n >= 96) is an IPv4 block.
    if let IpAddr::V6(v6) = addr {
        if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
            return Some(Cidr {
                net: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
    }
    Some(Cidr { net: addr, prefix })
}

#[derive(Debug)]
struct Range {
    cidr: Cidr,
    owner: fn(IpAddr) -> String,
}

#[derive(Debug)]
struct LoopbackTrust {
    trusted: Vec<Range>,
    proxies: Vec<Cidr>,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: -10,
        hooks: Hooks::PRE_REQUEST,
        description:
            "attributes owner-less requests from loopback / trusted networks to a policy owner"
                .into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

fn cidr_list(s: &Settings<'_>, key: &str) -> Result<Vec<Cidr>, String> {
    s.str_list(key)?
        .unwrap_or_default()
        .iter()
        .map(|c| {
            parse_cidr(c).ok_or_else(|| {
                s.err(
                    key,
                    format!("{c:?} is not an address or CIDR block"),
                    "write entries like \"10.0.0.0/8\", \"fd00::/8\" or \"192.168.1.10\"",
                )
            })
        })
        .collect()
}

fn build(cfg: &serde_json::Value) -> Result<LoopbackTrust, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &[
            "trust_loopback",
            "trust_tailscale",
            "extra_trusted_cidrs",
            "trusted_proxies",
        ],
    )?;
    let mut trusted = Vec::new();
    if s.bool("trust_loopback", true)? {
        for net in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            trusted.push(Range {
                cidr: Cidr {
                    net,
                    prefix: if net.is_ipv4() { 8 } else { 128 },
                },
                owner: |_| "internal-loopback".into(),
            });
        }
    }
    if s.bool("trust_tailscale", false)? {
        trusted.push(Range {
            cidr: Cidr {
                net: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
                prefix: 10,
            },
            owner: |ip| format!("internal-tailnet:{ip}"),
        });
    }
    for cidr in cidr_list(&s, "extra_trusted_cidrs")? {
        trusted.push(Range {
            cidr,
            owner: |ip| format!("internal-trusted:{ip}"),
        });
    }
    Ok(LoopbackTrust {
        trusted,
        proxies: cidr_list(&s, "trusted_proxies")?,
    })
}

impl LoopbackTrust {
    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }

    /// The client address to judge, or `None` when it cannot be trusted.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        let peer = parse_ip(&req.client_ip)?;
        let has = |h: &str| req.headers.iter().any(|(n, _)| n == h);
        if !self.is_proxy(peer) {
            return if FORWARDING_HEADERS.iter().any(|h| has(h)) {
                None
            } else {
                Some(peer)
            };
        }
        if !has("x-forwarded-for") {
            return if has("forwarded") || has("x-real-ip") {
                None
            } else {
                Some(peer)
            };
        }
        let hops: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n == "x-forwarded-for")
            .flat_map(|(_, v)| v.split(','))
            .collect();
        if hops.is_empty() || hops.len() > MAX_HOPS {
            return None;
        }
        let mut leftmost = None;
        for hop in hops.iter().rev() {
            let ip = parse_ip(hop)?;
            if !self.is_proxy(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        leftmost
    }

    fn decide(&self, req: &Request) -> Verdict {
        if req.owner.kind != OwnerType::Unresolved {
            return Verdict::allow();
        }
        // Any owner header, valid or not, is owner_resolution's to judge.
        if !matches!(super::owner_resolution::resolve(req), Ok(None)) {
            return Verdict::allow();
        }
        let Some(ip) = self.client(req) else {
            return Verdict::allow();
        };
        match self.trusted.iter().find(|r| r.cidr.contains(ip)) {
            Some(r) => Verdict::allow().resolving(Owner {
                kind: OwnerType::Policy,
                id: (r.owner)(ip),
            }),
            None => Verdict::allow(),
        }
    }
}

impl Check for LoopbackTrust {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        Hook::Ready(Ok(self.decide(req)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;

    fn from(ip: &str, headers: &[(&str, &str)]) -> Request {
        let mut r = Request::clone(&req(headers));
        r.client_ip = ip.into();
        r
    }

    fn owner(c: &LoopbackTrust, r: &Request) -> Option<String> {
        let v = c.decide(r);
        assert!(v.is_allow(), "loopback_trust never refuses");
        v.owner.map(|o| o.qualified())
    }

    #[test]
    fn loopback_forms_are_trusted() {
        let c = build(&json!({})).unwrap();
        for ip in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "::ffff:127.0.0.1",
            "[::1]:5000",
            "127.0.0.1:80",
        ] {
            assert_eq!(
                owner(&c, &from(ip, &[])).as_deref(),
                Some("policy:internal-loopback"),
                "{ip}"
            );
        }
        for ip in [
            "10.0.0.1",
            "100.64.0.1",
            "::2",
            "",
            "garbage",
            "::127.0.0.1",
            "128.0.0.1",
        ] {
            assert_eq!(owner(&c, &from(ip, &[])), None, "{ip}");
        }
        let off = build(&json!({"trust_loopback": false})).unwrap();
        assert_eq!(owner(&off, &from("127.0.0.1", &[])), None);
    }

    #[test]
    fn tailscale_and_extra_cidrs() {
        let c = build(&json!({"trust_tailscale": true, "extra_trusted_cidrs": ["10.1.0.0/16", "fd00::/8", "::ffff:192.168.0.0/112"]}))
            .unwrap();
        assert_eq!(
            owner(&c, &from("100.100.1.2", &[])).as_deref(),
            Some("policy:internal-tailnet:100.100.1.2")
        );
        assert_eq!(owner(&c, &from("100.128.0.1", &[])), None);
        assert_eq!(
            owner(&c, &from("10.1.200.3", &[])).as_deref(),
            Some("policy:internal-trusted:10.1.200.3")
        );
        assert!(owner(&c, &from("fd12::1", &[])).is_some());
        assert!(owner(&c, &from("192.168.4.4", &[])).is_some());
        assert_eq!(owner(&c, &from("10.2.0.1", &[])), None);
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x"] {
            let e = build(&json!({ "extra_trusted_cidrs": [bad] })).unwrap_err();
            assert!(
                e.contains(NAME) && e.contains("extra_trusted_cidrs") && e.contains("fix"),
                "{e}"
            );
        }
        assert!(build(&json!({"trust_tailnet": true}))
            .unwrap_err()
            .contains("trust_tailnet"));
    }

    #[test]
    fn an_owner_header_always_wins() {
        let c = build(&json!({})).unwrap();
        assert_eq!(
            owner(&c, &from("127.0.0.1", &[("x-commit-owner", "human:alice")])),
            None
        );
        assert_eq!(
            owner(&c, &from("127.0.0.1", &[("x-policy-name", "p")])),
            None
        );
        // Invalid header: left for owner_resolution to refuse.
        assert_eq!(
            owner(&c, &from("127.0.0.1", &[("x-commit-owner", "alice")])),
            None
        );
        // Placed after owner_resolution: an owner already resolved stands.
        let mut r = from("127.0.0.1", &[]);
        r.owner = Owner {
            kind: OwnerType::Agent,
            id: "bot".into(),
        };
        assert_eq!(owner(&c, &r), None);
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let plain = build(&json!({})).unwrap();
        // A local reverse proxy relaying a remote caller: not trusted.
        assert_eq!(
            owner(
                &plain,
                &from("127.0.0.1", &[("x-forwarded-for", "203.0.113.9")])
            ),
            None
        );
        assert_eq!(
            owner(
                &plain,
                &from("127.0.0.1", &[("forwarded", "for=203.0.113.9")])
            ),
            None
        );
        // A remote caller claiming to be loopback: not trusted.
        assert_eq!(
            owner(
                &plain,
                &from("203.0.113.9", &[("x-forwarded-for", "127.0.0.1")])
            ),
            None
        );

        let c = build(&json!({"trusted_proxies": ["127.0.0.1", "10.9.0.0/16"], "extra_trusted_cidrs": ["10.5.0.0/16"]}))
            .unwrap();
        assert_eq!(
            owner(
                &c,
                &from("127.0.0.1", &[("x-forwarded-for", "203.0.113.9")])
            ),
            None
        );
        assert_eq!(
            owner(
                &c,
                &from("127.0.0.1", &[("x-forwarded-for", "10.5.1.1, 10.9.0.3")])
            )
            .as_deref(),
            Some("policy:internal-trusted:10.5.1.1")
        );
        // Spoofed left-most entry: the right-most untrusted hop decides.
        assert_eq!(
            owner(
                &c,
                &from("127.0.0.1", &[("x-forwarded-for", "10.5.1.1, 203.0.113.9")])
            ),
            None
        );
        assert_eq!(
            owner(
                &c,
                &from("127.0.0.1", &[("x-forwarded-for", "10.5.1.1, junk")])
            ),
            None
        );
        // The trusted proxy itself, with nothing forwarded.
        assert_eq!(
            owner(&c, &from("127.0.0.1", &[])).as_deref(),
            Some("policy:internal-loopback")
        );
    }

    #[test]
    fn compliance() {
        for cfg in [
            json!({}),
            json!({"trust_tailscale": true, "trusted_proxies": ["0.0.0.0/0", "::/0"]}),
        ] {
            let c: Arc<dyn Check> = Arc::new(build(&cfg).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
