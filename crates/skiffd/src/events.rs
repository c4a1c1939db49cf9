//! The `skiff.v1.Events` service: the engine's event bus, filtered, as a stream.

use std::pin::Pin;

use skiff_api::v1;
use skiff_engine::{Event, EventBus, EventType};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::status::ApiError;

pub struct EventsService {
    pub bus: EventBus,
    /// Turns true when skiffd shuts down: subscriptions end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// Which events a subscriber wants.
struct Filter {
    containers: Vec<String>,
    types: Vec<EventType>,
}

impl Filter {
    fn new(req: v1::SubscribeEventsRequest) -> Result<Filter, ApiError> {
        let types = req
            .types
            .iter()
            .map(|t| {
                EventType::parse(t).ok_or_else(|| {
                    let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                    ApiError::BadRequest(format!("unknown event type {t:?}; known: {}", known.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter { containers: req.containers, types })
    }

    fn wants(&self, e: &Event) -> bool {
        (self.types.is_empty() || self.types.contains(&e.kind))
            && (self.containers.is_empty() || self.containers.iter().any(|c| e.container_name == *c || e.container_id.starts_with(c.as_str())))
    }
}

fn message(e: Event) -> v1::ContainerEvent {
    v1::ContainerEvent {
        r#type: e.kind.as_str().into(),
        container_id: e.container_id,
        container_name: e.container_name,
        time: e.time,
        exit_code: e.exit_code.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        lost: 0,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::ContainerEvent, Status>> + Send>>;

#[tonic::async_trait]
impl v1::events_server::Events for EventsService {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, req: Request<v1::SubscribeEventsRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let filter = Filter::new(req.into_inner())?;
        let mut rx = self.bus.subscribe();
        let mut stopping = self.stopping.clone();
        // The task feeding the stream ends when the client hangs up (the channel closes).
        let (tx, stream) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    received = rx.recv() => received,
                    _ = stopping.wait_for(|stopping| *stopping) => return,
                };
                let msg = match received {
                    Ok(e) if filter.wants(&e) => message(e),
                    Ok(_) => continue,
                    // Told, not hidden: the client learns that it missed events and how many.
                    Err(RecvError::Lagged(n)) => v1::ContainerEvent { r#type: "lagged".into(), lost: n, ..Default::default() },
                    Err(RecvError::Closed) => return,
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(stream))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, id: &str, name: &str) -> Event {
        Event { kind, container_id: id.into(), container_name: name.into(), time: String::new(), exit_code: None, reason: None, sandbox_id: None }
    }

    #[test]
    fn filters_by_container_and_type() {
        let f = Filter::new(v1::SubscribeEventsRequest { containers: vec!["web".into(), "abc".into()], types: vec!["exited".into()] }).expect("filter");
        assert!(f.wants(&event(EventType::Exited, "ffff", "web")));
        assert!(f.wants(&event(EventType::Exited, "abcdef", "db")), "an id prefix");
        assert!(!f.wants(&event(EventType::Started, "abcdef", "web")), "another type");
        assert!(!f.wants(&event(EventType::Exited, "ffff", "db")), "another container");
        let all = Filter::new(v1::SubscribeEventsRequest::default()).expect("filter");
        assert!(all.wants(&event(EventType::Deleted, "x", "y")));
        let bad = Filter::new(v1::SubscribeEventsRequest { types: vec!["exploded".into()], ..Default::default() });
        assert!(matches!(bad, Err(ApiError::BadRequest(m)) if m.contains("exploded") && m.contains("created")));
    }
}
