//! The in-process event bus: every lifecycle change of a container (created, started, exited,
//! an OOM kill, deleted) is published once, in order, to every subscriber (`skiff events`, and
//! the CRI's `GetContainerEvents`). A subscriber that falls behind by more than the bus holds
//! loses the oldest events and is told how many (tokio's broadcast `Lagged`).

use serde::Serialize;
use tokio::sync::broadcast;

/// How many events the bus holds for a slow subscriber.
const CAPACITY: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Created,
    Started,
    /// The kernel's OOM killer ended the container's init (published before its `exited`).
    Oom,
    Exited,
    Deleted,
}

impl EventType {
    pub const ALL: [EventType; 5] = [EventType::Created, EventType::Started, EventType::Oom, EventType::Exited, EventType::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::Started => "started",
            EventType::Oom => "oom",
            EventType::Exited => "exited",
            EventType::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One event: what happened to which container, and when (RFC 3339, nanoseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: EventType,
    pub container_id: String,
    pub container_name: String,
    pub time: String,
    /// For `exited`: the exit code and reason.
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The pod sandbox the container belongs to (CRI containers), so that a subscriber can
    /// say which pod changed even once the container is gone.
    pub sandbox_id: Option<String>,
}

/// The bus; cloning shares it.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl EventBus {
    pub fn publish(&self, event: Event) {
        tracing::debug!(kind = event.kind.as_str(), id = %event.container_id, "event");
        // No subscriber is not an error: the event is simply not seen.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, id: &str) -> Event {
        Event { kind, container_id: id.into(), container_name: id.into(), time: String::new(), exit_code: None, reason: None, sandbox_id: None }
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_event_in_order() {
        let bus = EventBus::default();
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        bus.publish(event(EventType::Created, "x"));
        bus.publish(event(EventType::Started, "x"));
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.expect("event").kind, EventType::Created);
            assert_eq!(rx.recv().await.expect("event").kind, EventType::Started);
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_lost() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        for i in 0..CAPACITY + 5 {
            bus.publish(event(EventType::Created, &i.to_string()));
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(5))));
        assert_eq!(rx.recv().await.expect("event").container_id, "5");
    }

    #[test]
    fn types_parse_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("exploded"), None);
    }
}
