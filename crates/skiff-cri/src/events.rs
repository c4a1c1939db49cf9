//! GetContainerEvents, the kubelet's evented PLEG: a stream of created, started, stopped and
//! deleted events, each with its pod's status and the statuses of the pod's containers, so that
//! the kubelet updates its cache without relisting. Containers' events come from the engine's
//! bus (an exit is seen by the engine's watcher, not by a CRI call), but for `created`, which
//! CreateContainer publishes once the CRI's record of the container is written (the engine's
//! comes before it, when the container's CRI status cannot be told yet). A sandbox has no
//! container of its own here, so its started, stopped and deleted events are published by the
//! CRI calls that make them, with the sandbox id as the container id (as containerd's pause
//! container).
//! A subscriber that falls behind loses the oldest events, logged; the kubelet's periodic relist
//! covers them.

use k8s_cri::v1 as cri;
use skiff_engine::EventType;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::runtime::CriRuntime;

/// How many sandbox events wait for a slow subscriber.
const CAPACITY: usize = 1024;
/// How many converted events wait for the client to read them.
const STREAM_BUFFER: usize = 256;

/// An event the CRI layer publishes itself.
#[derive(Clone, Debug)]
pub enum CriEvent {
    /// A sandbox's own, with its status as of the change (it may be gone when it is read).
    Sandbox { kind: cri::ContainerEventType, status: Box<cri::PodSandboxStatus> },
    /// A container made by CreateContainer, its CRI record written.
    Created { container_id: String, sandbox_id: String },
}

/// The CRI layer's events' bus; cloning shares it.
#[derive(Clone)]
pub struct CriEvents {
    tx: broadcast::Sender<CriEvent>,
}

impl Default for CriEvents {
    fn default() -> Self {
        CriEvents { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl CriEvents {
    pub fn sandbox(&self, kind: cri::ContainerEventType, status: cri::PodSandboxStatus) {
        let _ = self.tx.send(CriEvent::Sandbox { kind, status: Box::new(status) });
    }

    pub fn created(&self, container_id: &str, sandbox_id: &str) {
        let _ = self.tx.send(CriEvent::Created { container_id: container_id.to_string(), sandbox_id: sandbox_id.to_string() });
    }
}

/// The CRI's type for an engine event; None for those the CRI has no word for (an OOM kill is
/// told by the stopped event's status reason).
fn cri_kind(kind: EventType) -> Option<cri::ContainerEventType> {
    match kind {
        EventType::Created => Some(cri::ContainerEventType::ContainerCreatedEvent),
        EventType::Started => Some(cri::ContainerEventType::ContainerStartedEvent),
        EventType::Exited => Some(cri::ContainerEventType::ContainerStoppedEvent),
        EventType::Deleted => Some(cri::ContainerEventType::ContainerDeletedEvent),
        EventType::Oom => None,
    }
}

impl CriRuntime {
    /// The answer for an engine event of a CRI container; None for Skiff's own containers.
    fn container_event(&self, e: &skiff_engine::Event) -> Option<cri::ContainerEventResponse> {
        let sandbox_id = e.sandbox_id.as_ref()?;
        if e.kind == EventType::Created {
            // Told by CreateContainer once its record is written.
            return None;
        }
        Some(self.pod_event(&e.container_id, cri_kind(e.kind)?, sandbox_id, crate::rfc3339_ns(&e.time).unwrap_or_else(crate::now_ns)))
    }

    fn pod_event(&self, container_id: &str, kind: cri::ContainerEventType, sandbox_id: &str, at: i64) -> cri::ContainerEventResponse {
        cri::ContainerEventResponse {
            container_id: container_id.to_string(),
            container_event_type: kind as i32,
            created_at: at,
            pod_sandbox_status: self.sandboxes.get(sandbox_id).map(|r| crate::sandbox::status::status_of(&r)),
            containers_statuses: self.pod_container_statuses(sandbox_id),
        }
    }

    fn cri_event(&self, e: CriEvent) -> cri::ContainerEventResponse {
        match e {
            CriEvent::Sandbox { kind, status } => cri::ContainerEventResponse {
                container_id: status.id.clone(),
                container_event_type: kind as i32,
                created_at: crate::now_ns(),
                containers_statuses: self.pod_container_statuses(&status.id),
                pod_sandbox_status: Some(*status),
            },
            CriEvent::Created { container_id, sandbox_id } => self.pod_event(&container_id, cri::ContainerEventType::ContainerCreatedEvent, &sandbox_id, crate::now_ns()),
        }
    }

    /// A new subscriber's stream: it lasts until the client goes.
    pub fn container_events(&self) -> ReceiverStream<Result<cri::ContainerEventResponse, tonic::Status>> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut engine = self.parts.manager.events().subscribe();
        let mut own = self.cri_events.tx.subscribe();
        let runtime = self.clone();
        tokio::spawn(async move {
            loop {
                let answer = tokio::select! {
                    e = engine.recv() => match e {
                        Ok(e) => runtime.container_event(&e),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(lost = n, "a container events subscriber fell behind; the kubelet's relist covers the lost events");
                            None
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    e = own.recv() => match e {
                        Ok(e) => Some(runtime.cri_event(e)),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(lost = n, "a container events subscriber fell behind on the CRI's own events");
                            None
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tx.closed() => break,
                };
                if let Some(answer) = answer {
                    if tx.send(Ok(answer)).await.is_err() {
                        break;
                    }
                }
            }
        });
        ReceiverStream::new(rx)
    }
}
