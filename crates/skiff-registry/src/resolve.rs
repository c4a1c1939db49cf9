//! From a reference to the descriptor of its manifest or index, two ways:
//! - `resolve` asks with HEAD, which registries answer with the digest, size and media type and
//!   which Docker Hub does not count as a pull: right when the manifest may be stored already;
//! - `fetch_manifest` GETs the manifest by its tag or digest and describes the bytes it got:
//!   one request fewer when they will be needed anyway (a name not in the store yet).

use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use skiff_image::media::{self, MAX_MANIFEST_SIZE};
use skiff_image::model::Desc;
use skiff_image::Reference;
use skiff_store::Digest;

use crate::client::{Client, ACCEPT_MANIFESTS};
use crate::error::{Result, Target};
use crate::hosts::Capabilities;

/// What a manifest request asks for: the object (tag or digest), its name in messages, and the
/// capability a host needs to answer it.
struct Asked {
    what: String,
    tail: String,
    capability: fn(&Capabilities) -> bool,
}

fn asked(reference: &Reference) -> Asked {
    let (object, what) = match (&reference.digest, &reference.tag) {
        (Some(d), _) => (d.to_string(), format!("manifest {d}")),
        (None, Some(t)) => (t.clone(), format!("tag {t}")),
        (None, None) => ("latest".to_string(), "tag latest".to_string()),
    };
    // A tag is resolved only by hosts trusted to resolve; a digest names its bytes, which any
    // host that serves pulls may answer (the pipeline checks them), as containerd does.
    let capability: fn(&Capabilities) -> bool = if reference.digest.is_some() { |c| c.pull } else { |c| c.resolve };
    Asked { what, tail: format!("manifests/{object}"), capability }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The media type a response declares, without parameters; schema 1 is refused by name.
fn media_type_of(resp: &Response, target: &Target) -> Result<String> {
    let media_type = header(resp, CONTENT_TYPE.as_str()).map(|t| t.split(';').next().unwrap_or("").trim().to_string()).unwrap_or_default();
    if media::is_schema1(&media_type) {
        return Err(target.protocol(format!("{media_type} is Docker schema 1, which Skiff does not support")));
    }
    Ok(media_type)
}

/// The digest the registry says its answer has (`Docker-Content-Digest`), if it says one.
fn said_digest(resp: &Response, target: &Target) -> Result<Option<Digest>> {
    header(resp, "docker-content-digest").map(|d| d.parse::<Digest>()).transpose().map_err(|e| target.protocol(e.to_string()))
}

/// The checks every answer gets: the digest asked for, and a media type said.
fn checked(reference: &Reference, target: &Target, desc: Desc) -> Result<Desc> {
    if let Some(want) = &reference.digest {
        if want != &desc.digest {
            return Err(target.protocol(format!("registry answered with digest {}", desc.digest)));
        }
    }
    if desc.media_type.is_empty() {
        return Err(target.protocol("registry did not say the manifest's media type"));
    }
    Ok(desc)
}

impl Client {
    /// Resolves a tag (or digest) to the descriptor of its manifest or index, with HEAD (and a GET
    /// when the HEAD answer lacks the digest, size or media type).
    pub fn resolve(&self, reference: &Reference) -> Result<Desc> {
        let asked = asked(reference);
        let target = self.target(&asked.what);
        let (resp, _) = self.send(asked.capability, &asked.what, &|http, base| http.head(self.url(base, &asked.tail)).header(ACCEPT, ACCEPT_MANIFESTS))?;
        let media_type = media_type_of(&resp, &target)?;
        let size: Option<u64> = header(&resp, CONTENT_LENGTH.as_str()).and_then(|l| l.parse().ok());
        if let Some(size) = size.filter(|s| *s > MAX_MANIFEST_SIZE) {
            return Err(target.protocol(format!("manifest is {size} bytes, over the {MAX_MANIFEST_SIZE}-byte limit")));
        }
        match (said_digest(&resp, &target)?, size) {
            (Some(digest), Some(size)) if !media_type.is_empty() => {
                checked(reference, &target, Desc { media_type, digest, size, annotations: Default::default(), platform: None })
            }
            // No usable HEAD answer: fetch the manifest and describe it ourselves.
            _ => self.fetch_asked(reference, &asked).map(|(desc, _)| desc),
        }
    }

    /// Fetches the manifest or index a tag (or digest) names: its descriptor, from the bytes
    /// received, and the bytes. A `Docker-Content-Digest` that does not match them is refused.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<(Desc, Vec<u8>)> {
        self.fetch_asked(reference, &asked(reference))
    }

    fn fetch_asked(&self, reference: &Reference, asked: &Asked) -> Result<(Desc, Vec<u8>)> {
        let target = self.target(&asked.what);
        let (resp, _) = self.send(asked.capability, &asked.what, &|http, base| http.get(self.url(base, &asked.tail)).header(ACCEPT, ACCEPT_MANIFESTS))?;
        let media_type = media_type_of(&resp, &target)?;
        let said = said_digest(&resp, &target)?;
        if let Some(size) = resp.content_length().filter(|s| *s > MAX_MANIFEST_SIZE) {
            return Err(target.protocol(format!("manifest is {size} bytes, over the {MAX_MANIFEST_SIZE}-byte limit")));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(resp, MAX_MANIFEST_SIZE + 1), &mut bytes)
            .map_err(|e| target.protocol(format!("read manifest: {e}")))?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(target.protocol(format!("manifest is over the {MAX_MANIFEST_SIZE}-byte limit")));
        }
        // The digest of what came is the one to trust; a registry's other claim is an error, not
        // a choice. A claim in another algorithm is checked in that algorithm's terms by the
        // pipeline when it reads the blob by that digest, so only like is compared with like here.
        let digest = Digest::of(&bytes);
        if let Some(said) = said.filter(|d| d.algorithm() == digest.algorithm()) {
            if said != digest {
                return Err(target.protocol(format!("registry says the manifest is {said}, but its bytes are {digest}")));
            }
        }
        let desc = Desc { media_type, digest, size: bytes.len() as u64, annotations: Default::default(), platform: None };
        Ok((checked(reference, &target, desc)?, bytes))
    }
}
