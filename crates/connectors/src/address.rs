//! Keeps store connections on the public internet. A merchant names the store address we
//! call with their keys; without this guard, an address such as `https://10.0.0.5` or a
//! host name that resolves to `127.0.0.1` would make the service call into its own
//! network (server-side request forgery). Every address a store host resolves to is
//! checked at each connection (so a host that later re-resolves to a private address is
//! refused too), and redirects to private address literals are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::http::ConnectorError;

/// Whether `ip` can be a public host: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation, benchmarking or reserved space.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // IPv4-compatible addresses (`::a.b.c.d`), deprecated and never a public host.
        || segments[..6].iter().all(|segment| *segment == 0))
}

/// The refusal for a private address, in words a merchant can act on.
fn refusal(host: &str) -> ConnectorError {
    ConnectorError::PrivateAddress(host.to_owned())
}

/// Refuses a URL whose host is a private address literal (host names are checked when
/// they resolve, by [`PublicOnlyResolver`]).
pub fn ensure_public_literal(url: &reqwest::Url) -> Result<(), ConnectorError> {
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    match literal {
        Some(ip) if !is_public_address(ip) => Err(refusal(url.host_str().unwrap_or_default())),
        _ => Ok(()),
    }
}

/// Resolves `host` and refuses it unless every address is public: the check a store
/// connection makes before it sends credentials, for a clear answer to the merchant.
pub async fn ensure_public_host(url: &reqwest::Url) -> Result<(), ConnectorError> {
    ensure_public_literal(url)?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| ConnectorError::Unreachable(format!("{host}: {err}")))?
        .collect();
    if addresses
        .iter()
        .any(|address| !is_public_address(address.ip()))
    {
        return Err(refusal(host));
    }
    Ok(())
}

/// A DNS resolver that answers only public addresses, so no request of the client can
/// reach a private one whatever the host resolves to at the time.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved
                .filter(|address| is_public_address(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(refusal(&host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Follows up to `max` redirects, never to a private address literal.
pub fn public_redirects(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max {
            attempt.error("too many redirects")
        } else if ensure_public_literal(attempt.url()).is_err() {
            attempt.error("a redirect to a private network address")
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(!is_public_address(ip), "{address} passed as public");
        }
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(is_public_address(ip), "{address} refused");
        }
    }

    #[test]
    fn private_literals_are_refused_and_names_wait_for_resolution() {
        for url in [
            "https://10.0.0.5/",
            "https://[::1]:8443/",
            "http://169.254.169.254/latest",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(
                matches!(
                    ensure_public_literal(&parsed),
                    Err(ConnectorError::PrivateAddress(_))
                ),
                "{url}"
            );
        }
        let named = reqwest::Url::parse("https://shop.example/").unwrap();
        assert!(ensure_public_literal(&named).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let url = reqwest::Url::parse("https://localhost/").unwrap();
        assert!(matches!(
            ensure_public_host(&url).await,
            Err(ConnectorError::PrivateAddress(_))
        ));
    }
}
