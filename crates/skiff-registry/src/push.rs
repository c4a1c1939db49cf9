//! Push: upload the blobs a registry does not have (HEAD first; a cross-repository mount when the
//! blob came from another repository of the same host), then the manifests, children first, the
//! image's own manifest or index last under its tag.

use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use skiff_image::export::{image_blobs, ExportOptions};
use skiff_image::media::{kind_of, Kind, MAX_MANIFEST_SIZE};
use skiff_image::model::Desc;
use skiff_image::{Platform, Progress, Reference};
use skiff_store::{ContentStore, ImageRecord, Store};

use crate::client::{Access, Client, ClientOptions};
use crate::error::{RegistryError, Result};
use crate::pull::LABEL_DISTRIBUTION_SOURCE;

/// What a push sent.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
    pub manifests: usize,
    pub bytes_uploaded: u64,
}

fn location(resp: &reqwest::blocking::Response, base: &str, client: &Client, object: &str) -> Result<String> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| client.target(object).protocol("upload response has no Location"))?;
    Ok(if loc.starts_with("http://") || loc.starts_with("https://") { loc.to_string() } else { format!("{base}{loc}") })
}

enum Sent {
    Present,
    Mounted,
    Uploaded,
}

fn push_blob(store: &Store, client: &Client, desc: &Desc) -> Result<Sent> {
    let sent = upload_blob(store, client, desc)?;
    // Remember where the blob now lives, so a push to another repository of this host mounts it.
    let label = format!("{LABEL_DISTRIBUTION_SOURCE}{}", client.host);
    let changes = std::collections::BTreeMap::from([(label, Some(client.repository.clone()))]);
    if let Err(e) = store.content().update_labels(&desc.digest, &changes) {
        tracing::warn!(digest = %desc.digest, error = %e, "could not label pushed blob");
    }
    Ok(sent)
}

fn upload_blob(store: &Store, client: &Client, desc: &Desc) -> Result<Sent> {
    let d = format!("blob {}", desc.digest);
    let head_tail = format!("blobs/{}", desc.digest);
    match client.send(|c| c.push, &d, &|http, base| http.head(client.url(base, &head_tail))) {
        Ok(_) => return Ok(Sent::Present),
        Err(RegistryError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let from = store
        .content()
        .info(&desc.digest)
        .ok()
        .and_then(|i| i.labels.get(&format!("{LABEL_DISTRIBUTION_SOURCE}{}", client.host)).cloned())
        .filter(|repo| repo != &client.repository);
    let (resp, base) = match &from {
        Some(repo) => client.send(|c| c.push, &d, &|http, base| {
            http.post(client.url(base, "blobs/uploads/"))
                .query(&[("mount", desc.digest.as_str()), ("from", repo.as_str())])
                .header(CONTENT_LENGTH, 0)
        })?,
        None => client.send(|c| c.push, &d, &|http, base| http.post(client.url(base, "blobs/uploads/")).header(CONTENT_LENGTH, 0))?,
    };
    if resp.status().as_u16() == 201 {
        return Ok(Sent::Mounted);
    }
    let upload = location(&resp, &base, client, &d)?;
    let sep = if upload.contains('?') { '&' } else { '?' };
    let put_url = format!("{upload}{sep}digest={}", desc.digest);
    let size = desc.size;
    client.send(|c| c.push, &d, &|http, _| {
        // Reopened per attempt so a retry sends the whole blob again.
        let body = store.content().open(&desc.digest).map_or_else(|_| Body::from(Vec::new()), |blob| Body::sized(blob, size));
        http.put(put_url.as_str()).header(CONTENT_TYPE, "application/octet-stream").body(body)
    })?;
    Ok(Sent::Uploaded)
}

/// Pushes the stored image `record` as `destination`.
pub fn push(
    store: &Store,
    record: &ImageRecord,
    destination: &str,
    client_opts: &ClientOptions,
    platform: Option<Platform>,
    progress: &dyn Progress,
) -> skiff_image::Result<PushReport> {
    let reference = destination.parse::<Reference>()?.with_default_tag();
    let client = Client::new(&reference, client_opts, Access::Push)?;
    let target = Desc::from_store(&record.target);
    let blobs = image_blobs(store.content(), &target, &ExportOptions { platform })?;
    progress.total(blobs.iter().map(|b| b.size).sum());
    let mut report = PushReport::default();
    for b in &blobs {
        match kind_of(&b.media_type) {
            Some(Kind::Index | Kind::Manifest) => {
                let bytes = store.content().read_verified(&b.digest, MAX_MANIFEST_SIZE)?;
                let object = match (&reference.tag, b.digest == target.digest) {
                    (Some(tag), true) => tag.clone(),
                    _ => b.digest.to_string(),
                };
                let tail = format!("manifests/{object}");
                client.send(|c| c.push, &format!("manifest {object}"), &|http, base| {
                    http.put(client.url(base, &tail)).header(CONTENT_TYPE, b.media_type.as_str()).body(bytes.clone())
                })?;
                report.manifests += 1;
            }
            _ => match push_blob(store, &client, b)? {
                Sent::Present => report.present += 1,
                Sent::Mounted => report.mounted += 1,
                Sent::Uploaded => {
                    report.uploaded += 1;
                    report.bytes_uploaded += b.size;
                }
            },
        }
        progress.advance(b.size);
        progress.blob(b.digest.as_str(), b.size, false);
    }
    tracing::info!(destination = %reference, ?report, "pushed");
    Ok(report)
}
