//! Following the primary across failovers.
//!
//! [`Failover`] holds the connection to the server the sentinels last
//! named. A request that fails because that server is gone (refused,
//! dropped, timed out) makes the store ask the sentinels again; one that a
//! replica refused (`READONLY`, whether the reply is the command's own, a
//! script's, one of a pipeline's or a `MULTI` block's, or the refusal of
//! a `WAIT`) waits for that look and is sent again to the primary found.
//! The server a sentinel names is used only once it answers `ROLE` as a
//! primary (a sentinel that has not yet seen the failover names the old
//! one, back as a replica), and it is given every script before the first
//! request. When the sentinels name another server, a new connection
//! replaces the old one for every handle at once. Only one look runs at a
//! time, and looks are at least [`LOOK_INTERVAL`] apart, so a burst of
//! failing requests does not become a burst of sentinel queries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{RedisError, RedisResult, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::lanes::Lanes;
use crate::scripts;
use crate::sentinel::{LocateError, Sentinels};

/// The shortest time between two looks for the primary.
pub(crate) const LOOK_INTERVAL: Duration = Duration::from_millis(200);

/// The connection to the current primary and how to find the next one.
pub(crate) struct Failover {
    sentinels: Sentinels,
    config: ConnectionManagerConfig,
    lanes: usize,
    connection_timeout: Duration,
    current: RwLock<Option<Current>>,
    /// Held while looking; the last look: the failed generation that
    /// caused it, and when.
    looking: Mutex<Option<(Option<u64>, Instant)>>,
    switches: AtomicU64,
}

/// One primary's connections; `generation` counts the switches so far.
#[derive(Clone)]
pub(crate) struct Current {
    pub(crate) generation: u64,
    pub(crate) lanes: Lanes,
    pub(crate) address: Arc<str>,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("sentinels", &self.sentinels)
            .field("primary", &self.primary())
            .field("switches", &self.switches())
            .finish()
    }
}

impl Failover {
    /// Nothing connected yet: the first request looks for the primary,
    /// and opens `lanes` connections to it.
    pub(crate) fn new(
        sentinels: Sentinels,
        config: ConnectionManagerConfig,
        lanes: usize,
        connection_timeout: Duration,
    ) -> Self {
        Self {
            sentinels,
            config,
            lanes,
            connection_timeout,
            current: RwLock::new(None),
            looking: Mutex::new(None),
            switches: AtomicU64::new(0),
        }
    }

    /// The connection to the primary, looking for it first when there is
    /// none yet.
    pub(crate) async fn current(&self) -> Result<Current, LocateError> {
        if let Some(current) = self.snapshot() {
            return Ok(current);
        }
        self.look(None).await
    }

    fn snapshot(&self) -> Option<Current> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The primary's `host:port`, once found.
    pub(crate) fn primary(&self) -> Option<String> {
        self.snapshot().map(|current| current.address.to_string())
    }

    /// The database the store uses on the primary.
    pub(crate) fn db(&self) -> i64 {
        self.sentinels.db()
    }

    /// Times the store has moved to another primary.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// Asks the sentinels again because the connection of `failed`
    /// generation failed; returns the connection to use now. Does nothing
    /// when another request already moved past that generation, and asks
    /// about one generation at most once per [`LOOK_INTERVAL`] (returning
    /// the current connection in between).
    pub(crate) async fn look(&self, failed: Option<u64>) -> Result<Current, LocateError> {
        self.look_with(failed, false).await
    }

    /// Asks the sentinels again because a server of `failed` generation
    /// refused a request as a replica: as [`Failover::look`], except that
    /// it waits for the end of the [`LOOK_INTERVAL`] and asks then rather
    /// than answer with a connection known to reach a replica.
    pub(crate) async fn look_again(&self, failed: u64) -> Result<Current, LocateError> {
        self.look_with(Some(failed), true).await
    }

    async fn look_with(&self, failed: Option<u64>, patient: bool) -> Result<Current, LocateError> {
        let mut last = self.looking.lock().await;
        if let Some(current) = self.snapshot() {
            if failed != Some(current.generation) {
                return Ok(current);
            }
            if let Some((about, at)) = *last
                && about == failed
                && at.elapsed() < LOOK_INTERVAL
            {
                if !patient {
                    return Ok(current);
                }
                tokio::time::sleep_until(at + LOOK_INTERVAL).await;
            }
        }
        *last = Some((failed, Instant::now()));
        let primary = self.sentinels.locate(self.connection_timeout).await?;
        let previous = self.snapshot();
        if let Some(current) = previous
            .as_ref()
            .filter(|current| *current.address == *primary.address)
        {
            return Ok(current.clone());
        }
        let lanes = tokio::time::timeout(self.connection_timeout, async {
            let lanes = Lanes::connect(primary.client, self.config.clone(), self.lanes).await?;
            load_scripts(&lanes).await?;
            Ok::<_, RedisError>(lanes)
        })
        .await
        .map_err(|_| LocateError::single(&primary.address, "no connection in time"))?
        .map_err(|e| LocateError::single(&primary.address, &e.to_string()))?;
        let generation = previous
            .as_ref()
            .map_or(0, |current| current.generation + 1);
        let current = Current {
            generation,
            lanes,
            address: primary.address.into(),
        };
        match &previous {
            Some(old) => {
                self.switches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    master = self.sentinels.master(),
                    from = %old.address,
                    to = %current.address,
                    "the Redis primary moved; requests now go to the new one"
                );
            }
            None => tracing::info!(
                master = self.sentinels.master(),
                primary = %current.address,
                "found the Redis primary through Sentinel"
            ),
        }
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(current.clone());
        Ok(current)
    }
}

/// Loads every script on the server of `lanes`, so that no request sent
/// there after a failover is refused for a script the server does not
/// know yet (a request sent again after a replica's refusal could not load
/// it and retry).
async fn load_scripts(lanes: &Lanes) -> RedisResult<()> {
    let load = scripts::load_all();
    let replies = lanes.take().await.commands(&load, 0, load.len()).await?;
    Value::Array(replies).extract_error().map(drop)
}
