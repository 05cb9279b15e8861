//! The connection every request goes through: a multiplexed connection
//! that reconnects by itself (several, one per request at a time, when
//! requests wait for replicas: [`crate::lanes`]), with a deadline on every
//! request,
//! a count of round trips, and optionally
//! - the primary found through Sentinel and followed across failovers
//!   ([`Failover`]), or a Redis Cluster, every request sent to the primary
//!   of the store's one slot ([`crate::cluster`]), and
//! - `WAIT` for replicas after each request ([`WaitReplicas`]).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerError, ServerErrorKind,
    Value,
};

use crate::cluster::{self, ClusterLink};
use crate::failover::Failover;
use crate::lanes::{Lanes, Taken};

/// Where requests go.
#[derive(Clone)]
pub(crate) enum Route {
    /// One server; its connections reconnect to it by themselves.
    Fixed(Lanes),
    /// The primary the sentinels name, followed across failovers.
    Sentinel(Arc<Failover>),
    /// A Redis Cluster; every request goes to the primary of the one slot
    /// of the store's keys.
    Cluster(Arc<ClusterLink>),
}

/// Where one request is sent.
#[derive(Clone)]
enum Link {
    /// A single server's (or the current primary's) connections.
    Server(Lanes),
    /// A cluster's, routed to the store's slot.
    Cluster(ClusterConnection, redis::cluster_routing::Route),
}

impl Link {
    /// The connection the request uses from its first command to its
    /// `WAIT`.
    async fn take(self) -> Held {
        match self {
            Self::Server(lanes) => Held::Server(lanes.take().await),
            Self::Cluster(connection, slot) => Held::Cluster(connection, slot),
        }
    }
}

/// A connection one request holds.
enum Held {
    Server(Taken),
    Cluster(ClusterConnection, redis::cluster_routing::Route),
}

impl Held {
    async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Self::Server(lane) => lane.command(cmd).await,
            Self::Cluster(connection, slot) => {
                let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(*slot));
                connection.route_command(cmd.clone(), to).await
            }
        }
    }

    async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Self::Server(lane) => lane.commands(pipeline, offset, count).await,
            Self::Cluster(connection, slot) => {
                let to = SingleNodeRoutingInfo::SpecificNode(*slot);
                connection
                    .route_pipeline(pipeline.clone(), offset, count, to)
                    .await
            }
        }
    }
}

/// After each request, wait until this many replicas have acknowledged
/// the writes so far (Redis' `WAIT`), for at most `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitReplicas {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

impl WaitReplicas {
    fn cmd(self) -> Cmd {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.replicas).arg(
            u64::try_from(self.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        cmd
    }

    /// `WAIT`'s answer, the number of replicas that acknowledged, checked.
    fn check(self, acked: Value) -> RedisResult<()> {
        let acked = redis::from_redis_value::<u64>(acked.extract_error()?)?;
        if acked >= u64::from(self.replicas) {
            Ok(())
        } else {
            Err(RedisError::from(io::Error::other(NotReplicated {
                acked,
                wanted: self.replicas,
                timeout: self.timeout,
            })))
        }
    }
}

/// Fewer replicas than asked acknowledged a write in time. The write is on
/// the primary; it may be lost if the primary fails before replicating it.
#[derive(Debug, thiserror::Error)]
#[error("{acked} of {wanted} replica(s) acknowledged the write within {timeout:?}")]
struct NotReplicated {
    acked: u64,
    wanted: u32,
    timeout: Duration,
}

/// A cheap-to-clone handle on the connection.
///
/// Each request (one command, one pipeline, one `MULTI … EXEC` block) is one
/// round trip: it is counted, and fails with a timed-out I/O error when no
/// answer arrives within the deadline — also while the manager is still
/// reconnecting to a server that is down. With [`WaitReplicas`], a
/// command's `WAIT` travels in the same round trip; a pipeline's is one
/// more.
#[derive(Clone)]
pub(crate) struct Conn {
    route: Route,
    deadline: Duration,
    wait: Option<WaitReplicas>,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Conn");
        match &self.route {
            Route::Fixed(lanes) => out.field("lanes", lanes),
            Route::Sentinel(failover) => out.field("failover", failover),
            Route::Cluster(link) => out.field("cluster", link),
        };
        out.field("deadline", &self.deadline)
            .field("wait", &self.wait)
            .field("round_trips", &self.round_trips.load(Ordering::Relaxed))
            .finish()
    }
}

impl Conn {
    /// Sends requests along `route`, bounding each by `deadline`.
    pub(crate) fn new(route: Route, deadline: Duration, wait: Option<WaitReplicas>) -> Self {
        Self {
            route,
            deadline,
            wait,
            round_trips: Arc::default(),
        }
    }

    /// Requests sent so far through this handle and its clones.
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The failover state, when the primary is found through Sentinel.
    pub(crate) fn failover(&self) -> Option<&Failover> {
        match &self.route {
            Route::Sentinel(failover) => Some(failover),
            Route::Fixed(_) | Route::Cluster(_) => None,
        }
    }

    fn timed_out(&self) -> RedisError {
        RedisError::from(io::Error::new(
            io::ErrorKind::TimedOut,
            TimedOut(self.deadline),
        ))
    }

    /// One request on `manager`, within the deadline.
    async fn on<T>(&self, request: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        tokio::time::timeout(self.deadline, request)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()))
    }

    async fn command(&self, link: Link, cmd: &Cmd) -> RedisResult<Value> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let Some(wait) = self.wait else {
            return self
                .on(async { link.take().await.command(cmd).await })
                .await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone()).add_command(wait.cmd());
        let mut replies = self
            .on(async { link.take().await.commands(&pipe, 0, 2).await })
            .await?;
        let acked = replies.pop().unwrap_or_default();
        let reply = replies.pop().unwrap_or_default();
        if acked.refused_by_a_replica() {
            // A replica refuses `WAIT` whatever the command's answer was
            // (a script it does not know yet, say): that refusal is the
            // one that says where the primary is not.
            return acked.extract_error();
        }
        let reply = reply.extract_error()?;
        wait.check(acked)?;
        Ok(reply)
    }

    async fn pipeline(
        &self,
        link: Link,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let (mut held, replies) = self
            .on(async {
                let mut held = link.take().await;
                let replies = held.commands(pipeline, offset, count).await?;
                Ok((held, replies))
            })
            .await?;
        if let Some(wait) = self.wait {
            // On the same connection: `WAIT` counts that connection's writes.
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let acked = self.on(held.command(&wait.cmd())).await?;
            wait.check(acked)?;
        }
        Ok(replies)
    }

    /// Runs `send` on the current connection; through Sentinel, a failure
    /// that says the primary moved makes the store look for it again, and
    /// a replica's refusal (nothing was written) is sent once more to the
    /// primary found.
    async fn send<'a, T, F>(&'a self, send: impl Fn(&'a Self, Link) -> F) -> RedisResult<T>
    where
        T: Replies,
        F: Future<Output = RedisResult<T>> + 'a,
    {
        let failover = match &self.route {
            Route::Fixed(lanes) => return send(self, Link::Server(lanes.clone())).await,
            Route::Cluster(link) => {
                let (generation, connection) = link.current();
                let result = send(self, Link::Cluster(connection, link.slot)).await;
                if let Err(error) = &result
                    && cluster::changed(error)
                {
                    let link = Arc::clone(link);
                    tokio::spawn(async move { link.renew(generation).await });
                }
                return result;
            }
            Route::Sentinel(failover) => Arc::clone(failover),
        };
        let current = failover.current().await.map_err(unreachable)?;
        let outcome = send(self, Link::Server(current.lanes)).await;
        let refused = match &outcome {
            Ok(reply) => reply.refused_by_a_replica(),
            Err(error) => is_read_only(error),
        };
        if refused {
            let next = failover
                .look_again(current.generation)
                .await
                .map_err(unreachable)?;
            return send(self, Link::Server(next.lanes)).await;
        }
        if let Err(error) = &outcome
            && primary_gone(error)
        {
            tokio::spawn(async move {
                if let Err(e) = failover.look(Some(current.generation)).await {
                    tracing::warn!(error = %e, "could not find the Redis primary");
                }
            });
        }
        outcome
    }
}

/// Answers that may hold a replica's refusal without being an error: the
/// connection hands a command's error reply, and each of a pipeline's,
/// back as a value, and the caller's conversion turns it into an error
/// only after [`Conn::send`] has seen it.
trait Replies {
    /// Whether a replica refused (part of) the request.
    fn refused_by_a_replica(&self) -> bool;
}

impl Replies for Value {
    fn refused_by_a_replica(&self) -> bool {
        matches!(self, Value::ServerError(error) if refused_by_replica(error))
    }
}

impl Replies for Vec<Value> {
    fn refused_by_a_replica(&self) -> bool {
        self.iter().any(Replies::refused_by_a_replica)
    }
}

/// The server refused the request because it is a replica: `READONLY`
/// (a write, alone, inside a script or queued in a `MULTI` block), or a
/// `WAIT`, which names replicas. Nothing was written.
fn refused_by_replica(error: &ServerError) -> bool {
    error.kind() == Some(ServerErrorKind::ReadOnly)
        || error
            .details()
            .is_some_and(|details| details.contains("cannot be used with replica"))
}

/// The request failed because the server is a replica: the refusal alone,
/// or among a pipeline's errors or an aborted transaction's
/// (`EXECABORT`). The primary is elsewhere.
fn is_read_only(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || error
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, error)| refused_by_replica(error)))
}

/// The server did not answer: it may be gone and replaced.
fn primary_gone(error: &RedisError) -> bool {
    error.is_connection_refusal() || error.is_connection_dropped() || error.is_timeout()
}

fn unreachable(error: crate::sentinel::LocateError) -> RedisError {
    RedisError::from(io::Error::new(io::ErrorKind::NotConnected, error))
}

/// No answer from Redis within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("no answer from Redis within {0:?}")]
struct TimedOut(Duration);

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let this: &'a Self = self;
        Box::pin(this.send(move |conn, manager| conn.command(manager, cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let this: &'a Self = self;
        Box::pin(this.send(move |conn, manager| conn.pipeline(manager, pipeline, offset, count)))
    }

    fn get_db(&self) -> i64 {
        match &self.route {
            Route::Fixed(lanes) => lanes.db(),
            Route::Sentinel(failover) => failover.db(),
            Route::Cluster(_) => 0,
        }
    }
}
