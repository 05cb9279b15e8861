//! Finding the primary through Redis Sentinel.
//!
//! A deployment that runs Redis with Sentinel names the sentinels and the
//! monitored master's name instead of one server:
//!
//! ```text
//! redis+sentinel://[[user]:password@]host1[:port1],host2[:port2],…/MASTER[/DB][?sentinel_username=…&sentinel_password=…]
//! ```
//!
//! The user and password (percent-encoded) are those of the data nodes;
//! the sentinels take their own in the query, or none. A sentinel's port
//! defaults to 26379. The store asks the sentinels in turn
//! (`SENTINEL GET-MASTER-ADDR-BY-NAME`) and connects to the address the
//! first one that knows the master answers, after checking with `ROLE`
//! that the server there really is a primary (a sentinel that has not yet
//! seen a failover may still name the old one).

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError, Value};
use vdi_cluster_core::{Error, Result};

/// The URL scheme that selects Sentinel.
pub const SENTINEL_SCHEME: &str = "redis+sentinel";

/// A sentinel's port when the URL names none.
const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Where the sentinels are and what they monitor, read from a
/// `redis+sentinel://` URL.
#[derive(Clone)]
pub(crate) struct Sentinels {
    /// The sentinels' addresses, asked in this order.
    addresses: Vec<(String, u16)>,
    /// The monitored master's name.
    master: String,
    /// Credentials and database of the data nodes.
    data: RedisConnectionInfo,
    /// Credentials of the sentinels.
    sentinel: RedisConnectionInfo,
}

impl fmt::Debug for Sentinels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinels")
            .field("addresses", &self.addresses)
            .field("master", &self.master)
            .field("db", &self.data.db())
            .finish_non_exhaustive()
    }
}

/// A bad `redis+sentinel://` URL, naming the part that is wrong.
fn invalid(why: &str) -> Error {
    Error::invalid(
        "url",
        format!(
            "{why}: use {SENTINEL_SCHEME}://[[user]:password@]host[:port],…/master[/db][?sentinel_password=…]"
        ),
    )
}

fn decode(part: &str, what: &str) -> Result<String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| invalid(&format!("the {what} is not valid percent-encoded UTF-8")))
}

/// `host[:port]`, with an IPv6 host in brackets.
fn parse_address(text: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 sentinel address lacks its closing bracket"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("a sentinel address has no host"));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| invalid(&format!("sentinel port {port:?} is not a port")))?,
    };
    Ok((host.to_owned(), port))
}

impl Sentinels {
    /// Whether `url` selects Sentinel.
    pub(crate) fn selected_by(url: &str) -> bool {
        url.trim()
            .get(..SENTINEL_SCHEME.len() + 3)
            .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{SENTINEL_SCHEME}://")))
    }

    /// Reads a `redis+sentinel://` URL. Errors name what is wrong and never
    /// quote the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if !Self::selected_by(url) {
            return Err(invalid("not a sentinel URL"));
        }
        let rest = &url[SENTINEL_SCHEME.len() + 3..];
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("the master's name is missing"))?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let addresses = hosts
            .split(',')
            .map(parse_address)
            .collect::<Result<Vec<_>>>()?;
        let mut segments = path.split('/');
        let master = decode(segments.next().unwrap_or(""), "master's name")?;
        if master.is_empty() {
            return Err(invalid("the master's name is missing"));
        }
        let mut data = RedisConnectionInfo::default();
        if let Some(db) = segments.next().filter(|db| !db.is_empty()) {
            let db = db
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| invalid(&format!("database {db:?} is not a number")))?;
            data = data.set_db(db);
        }
        if segments.next().is_some() {
            return Err(invalid("the path has more than a master and a database"));
        }
        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                data = data.set_username(decode(user, "user")?);
            }
            if let Some(password) = password {
                data = data.set_password(decode(password, "password")?);
            }
        }
        let mut sentinel = RedisConnectionInfo::default();
        for pair in query.into_iter().flat_map(|query| query.split('&')) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sentinel_username" => {
                    sentinel = sentinel.set_username(decode(value, "sentinel user")?);
                }
                "sentinel_password" => {
                    sentinel = sentinel.set_password(decode(value, "sentinel password")?);
                }
                "" => {}
                other => {
                    return Err(invalid(&format!(
                        "unknown option {other:?} (sentinel_username and sentinel_password are known)"
                    )));
                }
            }
        }
        Ok(Self {
            addresses,
            master,
            data,
            sentinel,
        })
    }

    /// The monitored master's name.
    pub(crate) fn master(&self) -> &str {
        &self.master
    }

    /// The database on the data nodes.
    pub(crate) fn db(&self) -> i64 {
        self.data.db()
    }

    /// Asks the sentinels, in turn, where the primary is, and checks that
    /// the server there is one. Each sentinel and the primary get at most
    /// `connection_timeout` to answer.
    pub(crate) async fn locate(
        &self,
        connection_timeout: Duration,
    ) -> std::result::Result<Primary, LocateError> {
        let mut failures = Vec::new();
        for (host, port) in &self.addresses {
            match self.ask(host, *port, connection_timeout).await {
                Ok(Some(primary)) => match primary.confirm(connection_timeout).await {
                    Ok(()) => return Ok(primary),
                    Err(e) => failures.push(format!("{}: {e}", primary.address)),
                },
                Ok(None) => failures.push(format!(
                    "{host}:{port} does not know master {:?}",
                    self.master
                )),
                Err(e) => failures.push(format!("{host}:{port}: {e}")),
            }
        }
        Err(LocateError(failures))
    }

    /// One sentinel's answer: the primary's address, or `None` when it
    /// does not monitor the master.
    async fn ask(
        &self,
        host: &str,
        port: u16,
        connection_timeout: Duration,
    ) -> std::result::Result<Option<Primary>, RedisError> {
        let info = ConnectionAddr::Tcp(host.to_owned(), port)
            .into_connection_info()?
            .set_redis_settings(self.sentinel.clone());
        let client = Client::open(info)?;
        let answer = within(connection_timeout, async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        })
        .await?;
        let Some((host, port)) = answer else {
            return Ok(None);
        };
        let info = ConnectionAddr::Tcp(host.clone(), port)
            .into_connection_info()?
            .set_redis_settings(self.data.clone());
        Ok(Some(Primary {
            client: Client::open(info)?,
            address: format!("{host}:{port}"),
        }))
    }
}

/// The server a sentinel named as the primary.
#[derive(Debug, Clone)]
pub(crate) struct Primary {
    /// A client for it, with the data nodes' credentials and database.
    pub(crate) client: Client,
    /// `host:port`, for logs and readiness.
    pub(crate) address: String,
}

impl Primary {
    /// Checks with `ROLE` that the server is a primary.
    async fn confirm(&self, connection_timeout: Duration) -> std::result::Result<(), RedisError> {
        let role = within(connection_timeout, async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE").query_async::<Value>(&mut conn).await
        })
        .await?;
        match role {
            Value::Array(items) if first_word(&items).as_deref() == Some("master") => Ok(()),
            Value::Array(items) => Err(RedisError::from(std::io::Error::other(NotPrimary(
                first_word(&items).unwrap_or_default(),
            )))),
            _ => Err(RedisError::from(std::io::Error::other(NotPrimary(
                String::new(),
            )))),
        }
    }
}

fn first_word(items: &[Value]) -> Option<String> {
    match items.first()? {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The named server answered `ROLE` with something other than `master`.
#[derive(Debug, thiserror::Error)]
#[error("the server is not a primary (role {0:?})")]
struct NotPrimary(String);

/// No sentinel named a primary that answers as one; one line per
/// sentinel tried.
#[derive(Debug, thiserror::Error)]
#[error("no sentinel named a reachable primary: {}", .0.join("; "))]
pub(crate) struct LocateError(Vec<String>);

impl LocateError {
    /// One failure, at `address`.
    pub(crate) fn single(address: &str, why: &str) -> Self {
        Self(vec![format!("{address}: {why}")])
    }
}

/// Runs `future` within `limit`, a timed-out I/O error otherwise.
async fn within<T>(
    limit: Duration,
    future: impl Future<Output = std::result::Result<T, RedisError>>,
) -> std::result::Result<T, RedisError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in time",
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_master_db_and_credentials() {
        let parsed = Sentinels::parse(
            "redis+sentinel://app:p%40ss@10.0.0.1:26380,[::1],sentinel-3/exam-primary/2?sentinel_password=s3",
        )
        .unwrap();
        assert_eq!(
            parsed.addresses,
            vec![
                ("10.0.0.1".to_owned(), 26380),
                ("::1".to_owned(), 26379),
                ("sentinel-3".to_owned(), 26379),
            ]
        );
        assert_eq!(parsed.master(), "exam-primary");
        assert_eq!(parsed.data.db(), 2);
        assert_eq!(parsed.data.username(), Some("app"));
        assert_eq!(parsed.data.password(), Some("p@ss"));
        assert_eq!(parsed.sentinel.password(), Some("s3"));
        assert_eq!(parsed.sentinel.username(), None);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert!(Sentinels::selected_by("REDIS+Sentinel://h/m"));
        assert!(!Sentinels::selected_by("redis://h"));
        assert!(!Sentinels::selected_by("redis+sent"));
    }

    #[test]
    fn bad_urls_name_the_part_and_hide_the_password() {
        for (url, part) in [
            ("redis+sentinel://h1,h2", "master's name"),
            ("redis+sentinel://h1/", "master's name"),
            ("redis+sentinel://h1:0/m", "port"),
            ("redis+sentinel://h1:x/m", "port"),
            ("redis+sentinel://:secret@,h2/m", "no host"),
            ("redis+sentinel://[::1/m", "closing bracket"),
            ("redis+sentinel://h/m/x", "database"),
            ("redis+sentinel://h/m/1/2", "more than"),
            ("redis+sentinel://h/m?tls=1", "unknown option"),
            ("redis://h/m", "not a sentinel URL"),
        ] {
            let message = Sentinels::parse(url).unwrap_err().to_string();
            assert!(message.contains(part), "{url}: {message}");
            assert!(message.contains("url"), "{url}: {message}");
            assert!(!message.contains("secret"), "{url}: {message}");
        }
    }

    #[test]
    fn debug_output_hides_credentials() {
        let parsed = Sentinels::parse("redis+sentinel://:hunter2@h/m?sentinel_password=x").unwrap();
        let text = format!("{parsed:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
