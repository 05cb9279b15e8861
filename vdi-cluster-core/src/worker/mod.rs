//! The worker record, heartbeats applied to it, and the views derived from
//! it at a given instant.
//!
//! A [`WorkerRecord`] is what a backend stores. A heartbeat is folded into it
//! by the pure [`apply_heartbeat`]; a backend writes the result with a
//! compare-and-set on the record's version. A [`WorkerView`] adds what is
//! derived at `now`: availability, slots and the one `status` of the API.
//!
//! Split by responsibility: `record` (what is stored), `heartbeat` (folding
//! a heartbeat in), `view` (what is derived at an instant), `claim` (who
//! may move a worker to another host), `host` (host metadata), `pool` (the prewarm pool a worker reports),
//! `assign` (codes the control plane assigns), `usage` (CPU and memory in
//! use by the slot math).

mod assign;
mod claim;
mod heartbeat;
mod host;
mod pool;
mod record;
mod takeover;
mod usage;
mod view;

pub use assign::{ASSIGN_ATTEMPTS, FALLBACK_CODE, base_code, candidate, same_worker};
pub use claim::{Registrant, RelocationRefused, api_base_url_host, check_relocation};
pub use heartbeat::{Heartbeat, HeartbeatUpdate, apply_heartbeat, unrecorded};
pub use host::{HostInfo, MAX_DISK_GB, MAX_HOST_TEXT_LEN};
pub use pool::{ExamPool, MAX_POOL_EXAMS, PoolReport};
pub use record::{WorkerDescription, WorkerRecord, WorkerSnapshot};
pub use takeover::{TakeoverRefused, another_live_process, check_takeover};
pub use usage::SlotUsage;
pub use view::{WorkerStatus, WorkerView};

/// Boot ids remembered per worker to recognise late heartbeats of old boots.
pub const RETIRED_BOOTS_KEPT: usize = 4;
/// Most labels or capabilities a worker may carry.
pub const MAX_TAGS: usize = 32;
/// Longest zone, label key or value, or capability, in characters.
pub const MAX_TAG_LEN: usize = 64;
/// Most live session ids one heartbeat may carry.
pub const MAX_LIVE_SESSIONS: usize = 10_000;
/// Longest accepted boot id, in characters.
pub const MAX_BOOT_ID_LEN: usize = 128;
/// The most starts a worker may be configured to run at once.
pub const MAX_CONCURRENT_STARTS: u32 = 1_000;
