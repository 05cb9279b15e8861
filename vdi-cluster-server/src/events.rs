//! Cluster events to HTTP clients: core's [`EventSink`] → a tokio broadcast
//! channel → a `text/event-stream` per subscriber.
//!
//! Each server-sent event is named after the event's `type`
//! (`workerRegistered`, `workerAvailability`, `workerPolicy`,
//! `sessionMigrated`, `reconciled`, …; core's `EventKind::name`) and
//! carries the event as JSON (`vdi_cluster_protocol::events::EventJson`:
//! `{"at": …, "type": …, …}`). A subscriber that falls behind by more than
//! the channel's capacity receives a `lagged` event with the number of
//! events it missed, then continues. Streams end when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::{Event, EventSink};
use vdi_cluster_protocol::events::EventJson;

/// Events buffered per subscriber before it is told it lagged.
pub const EVENT_BUFFER: usize = 1024;

/// The broadcast side of the events stream. Clones share the channel.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new(EVENT_BUFFER)
    }
}

impl EventHub {
    /// A hub buffering `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Current subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl EventSink for EventHub {
    fn emit(&self, event: &Event) {
        // No subscriber is not an error: the event is simply not streamed.
        let _ = self.tx.send(Arc::new(event.clone()));
    }
}

/// The server-sent event of `event`: named after its type, with its
/// protocol body as data. `None` for a kind the wire format does not know.
fn to_sse(event: &Event) -> Option<sse::Event> {
    let body = EventJson::new(event)?;
    let data = serde_json::to_string(&body).ok()?;
    Some(sse::Event::default().event(event.kind.name()).data(data))
}

/// The stream of server-sent events for one subscriber; ends on `shutdown`.
pub fn sse_stream(
    hub: &EventHub,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send + use<> {
    let ready = futures::stream::once(async {
        Ok::<_, Infallible>(sse::Event::default().event("ready").data("{}"))
    });
    let events = BroadcastStream::new(hub.subscribe()).filter_map(|item| {
        futures::future::ready(match item {
            Ok(event) => to_sse(&event).map(Ok),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(sse::Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")))),
        })
    });
    ready.chain(events).take_until(shutdown.cancelled_owned())
}

#[cfg(test)]
mod tests {
    use vdi_cluster_core::{EventKind, Timestamp, WorkerId};

    use super::*;

    #[tokio::test]
    async fn events_reach_subscribers_until_shutdown() {
        let hub = EventHub::new(8);
        let shutdown = CancellationToken::new();
        let mut stream = Box::pin(sse_stream(&hub, shutdown.clone()));
        assert!(stream.next().await.is_some(), "ready event");
        hub.emit(&Event {
            at: Timestamp(1),
            kind: EventKind::WorkerRegistered {
                worker: WorkerId::parse("code", "w1").unwrap(),
            },
        });
        assert!(stream.next().await.is_some());
        shutdown.cancel();
        assert!(stream.next().await.is_none());
    }
}
