//! Every container skiffd creates while the harness runs, with its cgroup: the teardown then looks
//! for the cgroups of containers the test removed itself, and under whatever parent their pod
//! put them, not only for those still listed at the end under Skiff's own `/skiff` parent.
//!
//! A thread subscribes to skiffd's event stream (Skiff's own API, `created` events) and, for each
//! container, reads `linux.cgroupsPath` from its bundle's `config.json` (written before the event
//! goes out). The subscription is made before [`Watcher::start`] returns, so no container created
//! after the harness is up is missed; it ends with skiffd, and the harness starts a new one with
//! each skiffd it starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_api::v1::events_client::EventsClient;
use skiff_api::v1::SubscribeEventsRequest;

use crate::error::{Error, Result};

/// Container id → its `linux.cgroupsPath` (None when its config.json could not be read).
pub(crate) type Seen = Arc<Mutex<BTreeMap<String, Option<String>>>>;

/// How long the subscription may take to be made.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);

pub(crate) struct Watcher;

impl Watcher {
    /// Subscribes on `socket` and records into `seen` on a thread of its own until skiffd goes.
    pub(crate) fn start(socket: &Path, root: &Path, seen: Seen) -> Result<Watcher> {
        let (socket, root) = (socket.to_path_buf(), root.to_path_buf());
        let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel::<Result<()>>();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return drop(subscribed_tx.send(Err(Error::io("start the event watcher's runtime")(e)))),
            };
            runtime.block_on(async move {
                let channel = match skiff_api::connect(&socket).await {
                    Ok(c) => c,
                    Err(source) => return drop(subscribed_tx.send(Err(Error::Connect { socket: socket.clone(), source }))),
                };
                let request = SubscribeEventsRequest { types: vec!["created".into()], ..Default::default() };
                let mut stream = match EventsClient::new(channel).subscribe(request).await {
                    Ok(s) => s.into_inner(),
                    Err(status) => return drop(subscribed_tx.send(Err(Error::Subscribe(status.message().to_string())))),
                };
                let _ = subscribed_tx.send(Ok(()));
                // Ends with skiffd (the stream breaks) or when the harness is gone.
                while let Ok(Some(event)) = stream.message().await {
                    let cgroup = cgroups_path(&root, &event.container_id);
                    seen.lock().unwrap_or_else(|e| e.into_inner()).insert(event.container_id, cgroup);
                }
            });
        });
        match subscribed_rx.recv_timeout(SUBSCRIBE_WITHIN) {
            Ok(Ok(())) => Ok(Watcher),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Subscribe(format!("no answer within {}s", SUBSCRIBE_WITHIN.as_secs()))),
        }
    }
}

/// `linux.cgroupsPath` of the container's bundle.
fn cgroups_path(root: &Path, id: &str) -> Option<String> {
    if id.is_empty() || id.contains('/') || id.contains("..") {
        return None;
    }
    let spec: PathBuf = root.join("containers").join(id).join("bundle/config.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(spec).ok()?).ok()?;
    spec["linux"]["cgroupsPath"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroups_path_is_read_from_the_bundle_and_odd_ids_are_not_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("containers/abc/bundle");
        std::fs::create_dir_all(&bundle).expect("bundle");
        std::fs::write(bundle.join("config.json"), br#"{"linux":{"cgroupsPath":"/kubepods/pod1/abc"}}"#).expect("spec");
        assert_eq!(cgroups_path(dir.path(), "abc").as_deref(), Some("/kubepods/pod1/abc"));
        assert_eq!(cgroups_path(dir.path(), "gone"), None);
        assert_eq!(cgroups_path(dir.path(), "../containers/abc"), None);
    }
}
