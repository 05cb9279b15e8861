//! Polling with a deadline: a bound on how long to wait, never a
//! measurement of speed.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::DEADLINE;
use super::api::Api;

/// Polls `check` every 100 ms until it returns `Some`, or panics with
/// `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, DEADLINE, check).await
}

/// [`eventually`] with another bound, for waits that include a lease or a
/// timeout of their own.
pub async fn eventually_within<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        // A bound on how long to poll, not a measurement of speed.
        if Instant::now() >= deadline {
            panic!("gave up waiting for {what} after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the control plane lists `code` with `field == value`.
pub async fn wait_worker(api: &Api, code: &str, field: &str, value: Value) -> Value {
    eventually(&format!("{code}.{field} == {value}"), || async {
        let path = format!("/api/vdi/workers/{code}");
        match api.try_admin(Method::GET, &path, None).await {
            Ok((status, w)) if status == 200 && w[field] == value => Some(w),
            _ => None,
        }
    })
    .await
}
