//! The connection every request goes through: a [`ConnectionManager`]
//! (multiplexed, reconnects by itself) with a deadline on every request and
//! a count of round trips.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A cheap-to-clone handle on one connection manager.
///
/// Each request (one command, one pipeline, one `MULTI … EXEC` block) is one
/// round trip: it is counted, and fails with a timed-out I/O error when no
/// answer arrives within the deadline — also while the manager is still
/// reconnecting to a server that is down.
#[derive(Clone)]
pub(crate) struct Conn {
    inner: ConnectionManager,
    deadline: Duration,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("inner", &self.inner)
            .field("deadline", &self.deadline)
            .field("round_trips", &self.round_trips.load(Ordering::Relaxed))
            .finish()
    }
}

impl Conn {
    /// Wraps `inner`, bounding every request by `deadline`.
    pub(crate) fn new(inner: ConnectionManager, deadline: Duration) -> Self {
        Self {
            inner,
            deadline,
            round_trips: Arc::default(),
        }
    }

    /// Requests sent so far through this handle and its clones.
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn timed_out(&self) -> RedisError {
        RedisError::from(io::Error::new(
            io::ErrorKind::TimedOut,
            TimedOut(self.deadline),
        ))
    }
}

/// No answer from Redis within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("no answer from Redis within {0:?}")]
struct TimedOut(Duration);

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            match tokio::time::timeout(self.deadline, self.inner.req_packed_command(cmd)).await {
                Ok(reply) => reply,
                Err(_) => Err(self.timed_out()),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let request = self.inner.req_packed_commands(pipeline, offset, count);
            match tokio::time::timeout(self.deadline, request).await {
                Ok(reply) => reply,
                Err(_) => Err(self.timed_out()),
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
