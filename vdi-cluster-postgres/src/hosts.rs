//! The store's URL: one PostgreSQL server, or several of which one is the
//! primary.
//!
//! `postgres://[user[:password]@]h1[:port],h2[:port],…/db[?…]` lists the
//! servers of one deployment (a primary and its hot standbys), as libpq
//! writes a host list. The store always needs the writable one, so with
//! several hosts `target_session_attrs` may be left out, or be
//! `read-write` or `primary`; `any` and the read-only values are refused
//! (the store writes). With one host the URL is what it always was;
//! `target_session_attrs=read-write` then makes the store refuse to use
//! that server while it is a standby.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use vdi_cluster_core::{Error, Result};

/// The query parameter naming which server of a list to use.
const TARGET: &str = "target_session_attrs";

/// The servers of the store's URL, each with the URL's other settings.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    /// One connect options per server, in the URL's order.
    pub(crate) servers: Vec<PgConnectOptions>,
    /// `host:port` of each server, for logs and `/readyz`.
    pub(crate) names: Vec<String>,
    /// Whether only a writable server may be used (several hosts, or
    /// `target_session_attrs=read-write|primary`).
    pub(crate) writable_only: bool,
}

impl Hosts {
    /// Reads `url`; an error names the field `store`.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("must be a postgres:// or postgresql:// URL"));
        };
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(invalid("must be a postgres:// or postgresql:// URL"));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, host_list) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (tail, writable_only) = take_target(tail)?;
        let entries: Vec<&str> = host_list.split(',').collect();
        if entries.len() > 1 && entries.iter().any(|entry| entry.is_empty()) {
            return Err(invalid("a host of the list is empty"));
        }
        let mut servers = Vec::with_capacity(entries.len());
        let mut names = Vec::with_capacity(entries.len());
        for entry in &entries {
            let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
            let one = format!("{scheme}://{userinfo}{entry}{tail}");
            let options = PgConnectOptions::from_str(&one).map_err(invalid)?;
            names.push(format!("{}:{}", options.get_host(), options.get_port()));
            servers.push(options);
        }
        Ok(Self {
            writable_only: writable_only || servers.len() > 1,
            servers,
            names,
        })
    }
}

/// `tail` (path and query) without `target_session_attrs`, and whether it
/// asked for a writable server.
fn take_target(tail: &str) -> Result<(String, bool)> {
    let Some((path, query)) = tail.split_once('?') else {
        return Ok((tail.to_owned(), false));
    };
    let mut writable = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((TARGET, value)) => match value {
                "read-write" | "primary" => writable = true,
                other => {
                    return Err(invalid(format!(
                        "{TARGET}={other} is not supported: the store writes, so it is \
                         read-write (or primary)"
                    )));
                }
            },
            _ => kept.push(pair),
        }
    }
    let tail = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Ok((tail, writable))
}

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::invalid("store", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(url: &str) -> Vec<String> {
        Hosts::parse(url).expect(url).names
    }

    #[test]
    fn one_host_is_what_it_always_was() {
        let hosts = Hosts::parse("postgres://vdi:pw@db.internal:5433/vdi?sslmode=disable").unwrap();
        assert_eq!(hosts.names, ["db.internal:5433"]);
        assert!(!hosts.writable_only);
        assert_eq!(hosts.servers[0].get_database(), Some("vdi"));
        assert_eq!(names("postgresql://db/x"), ["db:5432"]);
    }

    #[test]
    fn a_host_list_keeps_every_setting_for_every_host() {
        let hosts = Hosts::parse(
            "postgres://vdi:s3cret@10.0.0.1:5433,10.0.0.2,[::1]:6000/exams?application_name=a\
             &target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            hosts.names,
            ["10.0.0.1:5433", "10.0.0.2:5432", "[::1]:6000"]
        );
        assert!(hosts.writable_only);
        for server in &hosts.servers {
            assert_eq!(server.get_database(), Some("exams"));
            assert_eq!(server.get_username(), "vdi");
            assert_eq!(server.get_application_name(), Some("a"));
        }
    }

    #[test]
    fn several_hosts_always_mean_the_writable_one() {
        assert!(Hosts::parse("postgres://a,b/db").unwrap().writable_only);
        assert!(
            Hosts::parse("postgres://a/db?target_session_attrs=primary")
                .unwrap()
                .writable_only
        );
    }

    #[test]
    fn what_the_store_cannot_use_is_refused_naming_the_store() {
        for url in [
            "mysql://db/x",
            "db.internal",
            "postgres://db:port/x",
            "postgres://a,,b/db",
            "postgres://a,b/db?target_session_attrs=any",
            "postgres://a/db?target_session_attrs=read-only",
        ] {
            let err = Hosts::parse(url).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid(v) if v.field == "store"),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn a_refusal_never_repeats_the_password() {
        let err = Hosts::parse("postgres://vdi:hunter2@a:x,b/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
