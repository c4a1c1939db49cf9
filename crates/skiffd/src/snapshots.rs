//! The Snapshots service.

use std::sync::Arc;

use skiff_api::v1::{self, snapshots_server::Snapshots};
use skiff_snapshot::{Backend, Info, Kind, Unpacker};
use tonic::{Request, Response, Status};

use crate::blocking::blocking;
use crate::status::ApiError;

pub struct SnapshotsService {
    pub unpacker: Arc<Unpacker>,
    pub backend: Backend,
}

fn snapshot(i: &Info) -> v1::Snapshot {
    v1::Snapshot {
        key: i.key.clone(),
        kind: match i.kind {
            Kind::Active => "active",
            Kind::View => "view",
            Kind::Committed => "committed",
        }
        .into(),
        parent: i.parent.clone().unwrap_or_default(),
        created_at: i.created_at.clone(),
        labels: i.labels.clone().into_iter().collect(),
        id: i.id,
    }
}

fn snap_err(e: skiff_snapshot::SnapshotError) -> ApiError {
    ApiError::Snapshot(e)
}

#[tonic::async_trait]
impl Snapshots for SnapshotsService {
    async fn list(&self, _: Request<v1::ListSnapshotsRequest>) -> Result<Response<v1::ListSnapshotsResponse>, Status> {
        let u = self.unpacker.clone();
        let list = blocking(move || u.snapshotter().list().map_err(snap_err)).await?;
        let backend = match self.backend {
            Backend::Overlay => "overlayfs",
            Backend::Native => "native",
        };
        Ok(Response::new(v1::ListSnapshotsResponse { snapshots: list.iter().map(snapshot).collect(), backend: backend.into() }))
    }

    async fn usage(&self, req: Request<v1::SnapshotUsageRequest>) -> Result<Response<v1::SnapshotUsageResponse>, Status> {
        let u = self.unpacker.clone();
        let keys = req.into_inner().keys;
        let usage = blocking(move || {
            let s = u.snapshotter();
            let keys = if keys.is_empty() { s.list().map_err(snap_err)?.into_iter().map(|i| i.key).collect() } else { keys };
            keys.into_iter()
                .map(|key| {
                    let use_ = s.usage(&key).map_err(snap_err)?;
                    Ok(v1::SnapshotUsage { key, bytes: use_.bytes, inodes: use_.inodes })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
        Ok(Response::new(v1::SnapshotUsageResponse { usage }))
    }

    async fn remove(&self, req: Request<v1::RemoveSnapshotRequest>) -> Result<Response<v1::RemoveSnapshotResponse>, Status> {
        let u = self.unpacker.clone();
        let key = req.into_inner().key;
        blocking(move || u.snapshotter().remove(&key).map_err(snap_err)).await?;
        Ok(Response::new(v1::RemoveSnapshotResponse {}))
    }

    async fn mounts(&self, req: Request<v1::SnapshotMountsRequest>) -> Result<Response<v1::SnapshotMountsResponse>, Status> {
        let u = self.unpacker.clone();
        let key = req.into_inner().key;
        let mounts = blocking(move || u.snapshotter().mounts(&key).map_err(snap_err)).await?;
        Ok(Response::new(v1::SnapshotMountsResponse {
            mounts: mounts
                .into_iter()
                .map(|m| v1::SnapshotMount { r#type: m.kind, source: m.source, options: m.options, chdir: m.chdir.unwrap_or_default() })
                .collect(),
        }))
    }
}
