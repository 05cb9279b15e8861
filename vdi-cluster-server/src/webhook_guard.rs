//! Where webhook deliveries may go: the sender's DNS resolution refuses a
//! target any of whose addresses core's rule refuses
//! ([`refused_target`]: loopback, link-local, private…), and the sender
//! checks a URL whose host is an IP address itself (which is not
//! resolved). The check runs at every connection of every delivery, on
//! the addresses then connected to, so a name that resolves elsewhere
//! later is caught; redirects are not followed. `serve
//! --webhook-allow-private` lifts it for labs, where receivers live on
//! loopback or a private network.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use vdi_cluster_core::outbox::refused_target;

/// A delivery refused because of where it would go.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "webhook target {host} is {address}, a {why} address: refused (allowed only with --webhook-allow-private)"
)]
pub struct TargetRefused {
    /// The URL's host.
    pub host: String,
    /// The refused address.
    pub address: IpAddr,
    /// Which kind of address it is.
    pub why: &'static str,
}

/// Checks `address`, the host `host` names.
pub fn check(host: &str, address: IpAddr) -> Result<(), TargetRefused> {
    match refused_target(address) {
        None => Ok(()),
        Some(why) => Err(TargetRefused {
            host: host.to_owned(),
            address,
            why,
        }),
    }
}

/// Checks the host of `url` when it is an IP address (names are checked
/// when they are resolved, by [`GuardedResolver`]).
pub fn check_literal(url: &reqwest::Url) -> Result<(), TargetRefused> {
    let Some(host) = url.host_str() else {
        return Ok(());
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(address) => check(bare, address),
        Err(_) => Ok(()),
    }
}

/// The sender's DNS resolution: the system's, then every address checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &found {
                check(&host, address.ip())?;
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The [`TargetRefused`] somewhere in `error`'s chain of sources, if any.
pub fn refusal_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e TargetRefused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<TargetRefused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}
