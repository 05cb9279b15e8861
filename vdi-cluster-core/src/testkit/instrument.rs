//! A store wrapper that counts every call per method and the time spent in
//! it: the breakdown behind `vdi-loadgen --breakdown`, and what the
//! service tests count round trips with.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Reservation;
use crate::{Result, Store};

/// Calls of one store method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodStats {
    /// Calls made.
    pub calls: u64,
    /// Time spent in them, summed (wall time, so concurrent calls overlap).
    pub total: Duration,
}

/// Per-method counts shared by every wrapper of one run.
#[derive(Debug, Clone, Default)]
pub struct Breakdown(Arc<Mutex<BTreeMap<&'static str, MethodStats>>>);

impl Breakdown {
    /// A new, empty breakdown.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, method: &'static str, took: Duration) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry(method).or_default();
        s.calls += 1;
        s.total += took;
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The counts so far, by method name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, MethodStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A [`Store`] that delegates every call to `inner` and counts it in a
/// [`Breakdown`].
#[derive(Debug)]
pub struct Instrumented {
    inner: Arc<dyn Store>,
    breakdown: Breakdown,
}

impl Instrumented {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, breakdown: Breakdown) -> Self {
        Self { inner, breakdown }
    }

    /// Runs `call`, the inner store's `method`, and counts it under that
    /// name; a reservation under its outcome (a `full` is a contention
    /// retry).
    async fn timed<T: Any>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let t = Instant::now();
        let out = call.await;
        self.breakdown
            .add(reservation(&out).unwrap_or(method), t.elapsed());
        out
    }
}

/// The name a reservation's answer is counted under; `None` for any other
/// answer.
fn reservation(out: &dyn Any) -> Option<&'static str> {
    Some(match out.downcast_ref::<Result<Reservation>>()? {
        Ok(Reservation::Reserved { .. }) => "reserve → reserved",
        Ok(Reservation::Full) => "reserve → full",
        Ok(Reservation::NotAccepting) => "reserve → not accepting",
        Ok(Reservation::Existing(_)) => "reserve → existing",
        Ok(Reservation::Ended) => "reserve → ended",
        Err(_) => "reserve → error",
    })
}

crate::delegate_store!(Instrumented, inner, timed);
