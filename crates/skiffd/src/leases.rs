//! The `skiff.v1.Leases` service: what keeps content from garbage collection, and releasing it.

use std::sync::Arc;

use skiff_api::v1::{self, leases_server::Leases};
use skiff_store::{ContentStore, Lease, LeaseId, Store};
use tonic::{Request, Response, Status};

use crate::blocking::blocking;
use crate::status::ApiError;

pub struct LeasesService {
    pub store: Arc<Store>,
}

/// Every lease with the blobs it holds and their bytes (a blob no longer stored counts nothing).
pub fn describe(store: &Store) -> Result<Vec<v1::Lease>, ApiError> {
    let mut out = Vec::new();
    for lease in store.leases().list()? {
        let held = store.leases().content(&lease.id)?;
        let bytes = held.iter().filter_map(|c| store.content().info(&c.digest).ok()).map(|i| i.size).sum();
        out.push(message(lease, held.len() as u32, bytes));
    }
    Ok(out)
}

fn message(l: Lease, blobs: u32, bytes: u64) -> v1::Lease {
    v1::Lease {
        id: l.id.to_string(),
        created_at: l.created_at,
        expires_at: l.expires_at.unwrap_or_default(),
        temporary: l.temporary,
        labels: l.labels.into_iter().collect(),
        blobs,
        bytes,
    }
}

#[tonic::async_trait]
impl Leases for LeasesService {
    async fn list(&self, _: Request<v1::ListLeasesRequest>) -> Result<Response<v1::ListLeasesResponse>, Status> {
        let store = self.store.clone();
        let leases = blocking(move || describe(&store)).await?;
        Ok(Response::new(v1::ListLeasesResponse { leases }))
    }

    async fn delete(&self, req: Request<v1::DeleteLeaseRequest>) -> Result<Response<v1::DeleteLeaseResponse>, Status> {
        let id = req.into_inner().id;
        crate::validate::text("lease id", &id)?;
        let store = self.store.clone();
        blocking(move || {
            store.leases().delete(&LeaseId(id.clone()))?;
            tracing::info!(lease = %id, "lease released");
            Ok(())
        })
        .await?;
        Ok(Response::new(v1::DeleteLeaseResponse {}))
    }
}
