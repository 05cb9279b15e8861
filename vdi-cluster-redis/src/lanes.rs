//! A server's connections, as lanes.
//!
//! Without `WAIT` one multiplexed connection carries every request: Redis
//! answers each in turn and nothing blocks. `WAIT` does block: the server
//! holds back every later command *of that connection* until enough
//! replicas acknowledged or the wait's timeout passed. On one shared
//! connection, one step waiting for an absent replica would then hold
//! every other request of the control plane behind it — heartbeats and
//! reads included — until they all time out. So a store that waits for
//! replicas opens [`WAIT_LANES`] connections to its server, and each
//! request takes one lane for itself, from its first command to its
//! `WAIT`: a step waits for its own replicas, never for another step's.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Pipeline, RedisError, RedisResult, Value};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinSet;

/// Connections a store that waits for replicas opens to its server: as
/// many steps can wait for their replicas at once.
pub(crate) const WAIT_LANES: usize = 16;

/// One server's connections: one shared lane, or several taken one
/// request at a time.
#[derive(Clone)]
pub(crate) struct Lanes {
    lanes: Arc<[Lane]>,
    next: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Lane {
    manager: ConnectionManager,
    turn: Arc<Mutex<()>>,
}

impl fmt::Debug for Lanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

impl Lanes {
    /// Opens `count` connections to `client`'s server now (at least one),
    /// all at once: a store that moves to a new primary has them within
    /// one connection's time, not `count` of them end to end.
    pub(crate) async fn connect(
        client: Client,
        config: ConnectionManagerConfig,
        count: usize,
    ) -> RedisResult<Self> {
        let mut opening = JoinSet::new();
        for _ in 0..count.max(1) {
            opening.spawn(ConnectionManager::new_with_config(
                client.clone(),
                config.clone(),
            ));
        }
        let mut lanes = Vec::with_capacity(count.max(1));
        while let Some(opened) = opening.join_next().await {
            lanes.push(opened.map_err(|e| RedisError::from(io::Error::other(e)))??);
        }
        Ok(Self::of(lanes))
    }

    /// `count` connections to `client`'s server, each opened on first use.
    pub(crate) fn lazy(
        client: Client,
        config: ConnectionManagerConfig,
        count: usize,
    ) -> RedisResult<Self> {
        let lanes = (0..count.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<RedisResult<Vec<_>>>()?;
        Ok(Self::of(lanes))
    }

    fn of(managers: Vec<ConnectionManager>) -> Self {
        Self {
            lanes: managers
                .into_iter()
                .map(|manager| Lane {
                    manager,
                    turn: Arc::default(),
                })
                .collect(),
            next: Arc::default(),
        }
    }

    /// The database the connections use.
    pub(crate) fn db(&self) -> i64 {
        self.lanes[0].manager.get_db()
    }

    /// A lane for one request: the shared one, or the first free of
    /// several (waiting for one in turn when all are taken).
    pub(crate) async fn take(&self) -> Taken {
        if let [lane] = &*self.lanes {
            return Taken {
                manager: lane.manager.clone(),
                _turn: None,
            };
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let order = self.lanes[start..].iter().chain(&self.lanes[..start]);
        for lane in order {
            if let Ok(turn) = Arc::clone(&lane.turn).try_lock_owned() {
                return Taken {
                    manager: lane.manager.clone(),
                    _turn: Some(turn),
                };
            }
        }
        let lane = &self.lanes[start];
        let turn = Arc::clone(&lane.turn).lock_owned().await;
        Taken {
            manager: lane.manager.clone(),
            _turn: Some(turn),
        }
    }
}

/// A lane held by one request until dropped.
pub(crate) struct Taken {
    manager: ConnectionManager,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Taken {
    /// Sends one command on the lane.
    pub(crate) async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.manager.req_packed_command(cmd).await
    }

    /// Sends `count` of `pipeline`'s replies' commands on the lane.
    pub(crate) async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.manager
            .req_packed_commands(pipeline, offset, count)
            .await
    }
}
