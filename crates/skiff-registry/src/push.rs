//! Push: check that everything to send is stored, then upload the blobs a registry does not have
//! (HEAD first; a cross-repository mount when the blob came from another repository of the same
//! host), then the manifests, children first, the image's own manifest or index last under its tag.

use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use skiff_image::media::{kind_of, Kind, MAX_MANIFEST_SIZE};
use skiff_image::model::{parse_index, Desc};
use skiff_image::stored::{stored, stored_platform, Stored};
use skiff_image::{ImageError, Platform, Progress, Reference};
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

/// What a push sends, decided before anything is sent. With a platform, that platform's manifest
/// alone goes under the tag (as `ctr push --platform` and `skopeo copy` do); without one, the whole
/// image, which needs every platform of its index stored: a registry refuses an index whose
/// manifests it lacks, and would be left with the blobs and no tag.
pub fn push_plan(store: &Store, record: &ImageRecord, platform: Option<&Platform>) -> skiff_image::Result<Stored> {
    let target = Desc::from_store(&record.target);
    let part = match platform {
        Some(p) => stored_platform(store.content(), &target, p)?,
        None => stored(store.content(), &target)?,
    };
    if !part.missing.is_empty() {
        return Err(ImageError::MissingBlob {
            what: "content",
            digest: format!("of {} for {}", record.name, part.missing_platforms()),
            source_name: format!(
                "the content store (a registry refuses an index whose manifests it lacks): pull every platform first \
                 (skiff images pull --all-platforms {}) or push one with --platform",
                record.name
            ),
        });
    }
    Ok(part)
}

/// The image a push of `name` sends when `name` is `REPO@sha256:…`: the image of that repository
/// (else any) whose target has the digest, or a platform manifest listed by such an image's index.
/// The record returned is named `name`, so that by default the push goes by digest, untagged.
/// `None` when `name` has no digest or names a record as it is.
pub fn push_source(store: &Store, name: &str) -> skiff_image::Result<Option<ImageRecord>> {
    let Ok(reference) = name.parse::<Reference>() else { return Ok(None) };
    let Some(digest) = reference.digest.clone() else { return Ok(None) };
    let full = reference.to_string();
    match store.images().get(&full) {
        Ok(_) => return Ok(None),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let mut records = store.images().list()?;
    // Prefer the images of the same repository.
    records.sort_by_key(|r| r.name.parse::<Reference>().map_or(true, |o| o.name() != reference.name()));
    let as_source = |mut r: ImageRecord, target: skiff_store::Descriptor, platforms| {
        r.name = full.clone();
        r.target = target;
        r.platforms = platforms;
        r
    };
    if let Some(r) = records.iter().find(|r| r.target.digest == digest) {
        return Ok(Some(as_source(r.clone(), r.target.clone(), r.platforms.clone())));
    }
    for r in &records {
        let target = Desc::from_store(&r.target);
        if kind_of(&target.media_type) != Some(Kind::Index) || store.content().info(&target.digest).is_err() {
            continue;
        }
        let index = parse_index(&store.content().read_verified(&target.digest, MAX_MANIFEST_SIZE)?, &target)?;
        if let Some(entry) = index.manifests.iter().find(|m| m.digest == digest) {
            let platforms = entry.platform.iter().map(|p| p.to_string()).collect();
            let mut desc = entry.to_store();
            desc.annotations.clear();
            return Ok(Some(as_source(r.clone(), desc, platforms)));
        }
    }
    Err(skiff_store::StoreError::NotFound { kind: "image with digest", name: full }.into())
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
    let part = push_plan(store, record, platform.as_ref())?;
    if let Some(d) = reference.digest.as_ref().filter(|d| **d != part.top.digest) {
        return Err(ImageError::InvalidArgument(format!(
            "destination {reference} names digest {d}, but what {} pushes is {}",
            record.name, part.top.digest
        )));
    }
    let client = Client::new(&reference, client_opts, Access::Push)?;
    progress.total(part.blobs.iter().map(|b| b.size).sum());
    let mut report = PushReport::default();
    for b in &part.blobs {
        match kind_of(&b.media_type) {
            Some(Kind::Index | Kind::Manifest) => {
                let bytes = store.content().read_verified(&b.digest, MAX_MANIFEST_SIZE)?;
                let object = match (&reference.tag, b.digest == part.top.digest) {
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
