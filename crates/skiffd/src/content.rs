//! The Content service.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;

use skiff_api::v1::{self, content_server::Content};
use skiff_store::{buffered, CommitOptions, ContentStore, Digest, LabelSelector, Store};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::blocking::blocking;
use crate::convert;
use crate::status::ApiError;

pub struct ContentService {
    pub store: Arc<Store>,
    pub unpacker: Arc<skiff_snapshot::Unpacker>,
    pub platform: skiff_image::Platform,
    /// Removed containers' leftovers: swept before a prune collects snapshots.
    pub removals: Arc<skiff_engine::containers::sweeper::Sweeper>,
}

fn digest(s: &str) -> Result<Digest, ApiError> {
    Ok(s.parse::<Digest>()?)
}

/// Feeds bytes arriving on a channel to blocking code as a `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[tonic::async_trait]
impl Content for ContentService {
    type ReadStream = Pin<Box<dyn Stream<Item = Result<v1::ReadContentResponse, Status>> + Send>>;

    async fn list(&self, req: Request<v1::ListContentRequest>) -> Result<Response<v1::ListContentResponse>, Status> {
        let store = self.store.clone();
        let filters = req.into_inner().filters;
        let content = blocking(move || {
            let selectors = filters.iter().map(|f| f.parse::<LabelSelector>()).collect::<Result<Vec<_>, _>>()?;
            Ok(store.content().list(&selectors)?)
        })
        .await?;
        Ok(Response::new(v1::ListContentResponse { content: content.iter().map(convert::content_info).collect() }))
    }

    async fn info(&self, req: Request<v1::ContentInfoRequest>) -> Result<Response<v1::ContentInfo>, Status> {
        let store = self.store.clone();
        let d = digest(&req.into_inner().digest)?;
        let info = blocking(move || Ok(store.content().info(&d)?)).await?;
        Ok(Response::new(convert::content_info(&info)))
    }

    async fn read(&self, req: Request<v1::ReadContentRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let store = self.store.clone();
        let d = digest(&req.into_inner().digest)?;
        let file = {
            let store = store.clone();
            let d = d.clone();
            blocking(move || Ok(store.content().open(&d)?)).await?
        };
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let mut reader = buffered(file);
            loop {
                let mut chunk = vec![0u8; 1 << 20];
                match reader.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        if tx.blocking_send(Ok(v1::ReadContentResponse { data: chunk })).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!("read blob {d}: {e}"))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delete(&self, req: Request<v1::DeleteContentRequest>) -> Result<Response<v1::DeleteContentResponse>, Status> {
        let store = self.store.clone();
        let d = digest(&req.into_inner().digest)?;
        blocking(move || Ok(store.content().delete(&d)?)).await?;
        Ok(Response::new(v1::DeleteContentResponse {}))
    }

    async fn verify(&self, req: Request<v1::VerifyContentRequest>) -> Result<Response<v1::VerifyContentResponse>, Status> {
        let store = self.store.clone();
        let digests = req.into_inner().digests;
        let results = blocking(move || {
            let list: Vec<Digest> = if digests.is_empty() {
                store.content().list(&[])?.into_iter().map(|i| i.digest).collect()
            } else {
                digests.iter().map(|d| digest(d)).collect::<Result<_, _>>()?
            };
            Ok(list
                .into_iter()
                .map(|d| match store.content().verify(&d) {
                    Ok(()) => v1::VerifyResult { digest: d.to_string(), ok: true, error: String::new() },
                    Err(e) => v1::VerifyResult { digest: d.to_string(), ok: false, error: e.to_string() },
                })
                .collect())
        })
        .await?;
        Ok(Response::new(v1::VerifyContentResponse { results }))
    }

    async fn prune(&self, _: Request<v1::PruneContentRequest>) -> Result<Response<v1::PruneContentResponse>, Status> {
        let (store, unpacker, default, removals) = (self.store.clone(), self.unpacker.clone(), self.platform.clone(), self.removals.clone());
        let (report, snapshots, leases) = blocking(move || {
            let (report, snapshots) = skiff_engine::unpack::collect_after_removals(&removals, &store, &unpacker, &default)?;
            // What the prune could not take, and why: the leases still holding content.
            let leases = crate::leases::describe(&store)?.into_iter().filter(|l| l.blobs > 0).collect::<Vec<_>>();
            Ok((report, snapshots, leases))
        })
        .await?;
        tracing::info!(blobs = report.removed.len(), snapshots = snapshots.len(), leases = leases.len(), "pruned content and snapshots");
        Ok(Response::new(v1::PruneContentResponse {
            bytes: report.removed.iter().map(|r| r.1).sum(),
            removed: report.removed.into_iter().map(|r| r.0.to_string()).collect(),
            leases,
        }))
    }

    async fn write(&self, req: Request<Streaming<v1::WriteContentRequest>>) -> Result<Response<v1::ContentInfo>, Status> {
        let mut stream = req.into_inner();
        let first = stream.next().await.ok_or_else(|| Status::invalid_argument("empty write stream"))??;
        let expected = if first.expected_digest.is_empty() { None } else { Some(digest(&first.expected_digest)?) };
        let expected_size = (first.expected_size > 0).then_some(first.expected_size);
        let opts = CommitOptions { labels: first.labels.into_iter().collect(), lease: None };
        let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
        let store = self.store.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader { rx, buf: Vec::new(), pos: 0 };
            store.content().ingest(&mut reader, expected, expected_size, opts)
        });
        let send = |data: Vec<u8>| {
            let tx = tx.clone();
            async move { !data.is_empty() && tx.send(data).await.is_err() }
        };
        let mut failed = send(first.data).await;
        while let (false, Some(msg)) = (failed, stream.next().await) {
            failed = send(msg?.data).await;
        }
        drop(tx);
        let info = job.await.map_err(|e| Status::internal(e.to_string()))?.map_err(|e| Status::from(ApiError::from(e)))?;
        Ok(Response::new(convert::content_info(&info)))
    }

    async fn update_labels(&self, req: Request<v1::UpdateLabelsRequest>) -> Result<Response<v1::ContentInfo>, Status> {
        let req = req.into_inner();
        let store = self.store.clone();
        let info = blocking(move || {
            let d = digest(&req.digest)?;
            let mut changes: std::collections::BTreeMap<String, Option<String>> =
                req.set.into_iter().map(|(k, v)| (k, Some(v))).collect();
            changes.extend(req.remove.into_iter().map(|k| (k, None)));
            Ok(store.content().update_labels(&d, &changes)?)
        })
        .await?;
        Ok(Response::new(convert::content_info(&info)))
    }
}
