//! A registry repository as a blob source for Skiff's import pipeline: manifests and indexes come
//! from `/manifests/<digest>`, everything else from `/blobs/<digest>`, read through a reader that
//! resumes a dropped connection with a `Range` request from where it stopped.

use std::io::{self, Read};

use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, RANGE};
use skiff_image::media::{kind_of, Kind};
use skiff_image::model::Desc;
use skiff_image::source::Source;

use crate::client::{Client, ACCEPT_MANIFESTS};
use crate::error::RegistryError;

pub struct RegistrySource<'a> {
    pub client: &'a Client,
    name: String,
}

impl<'a> RegistrySource<'a> {
    pub fn new(client: &'a Client) -> Self {
        RegistrySource { name: format!("{}/{}", client.host, client.repository), client }
    }

    fn get(&self, desc: &Desc, offset: u64) -> Result<Response, RegistryError> {
        let is_manifest = matches!(kind_of(&desc.media_type), Some(Kind::Index | Kind::Manifest));
        let tail = if is_manifest { format!("manifests/{}", desc.digest) } else { format!("blobs/{}", desc.digest) };
        let what = format!("{} {}", if is_manifest { "manifest" } else { "blob" }, desc.digest);
        let (resp, _) = self.client.send(|c| c.pull, &what, &|http, base| {
            let mut req = http.get(self.client.url(base, &tail));
            if is_manifest {
                req = req.header(ACCEPT, format!("{}, {ACCEPT_MANIFESTS}", desc.media_type));
            }
            if offset > 0 {
                req = req.header(RANGE, format!("bytes={offset}-"));
            }
            req
        })?;
        Ok(resp)
    }
}

/// Reads a blob, reconnecting from the current offset when the connection drops mid-body.
struct ResumingReader<'s, 'a> {
    source: &'s RegistrySource<'a>,
    desc: Desc,
    resp: Response,
    pos: u64,
    resumes: u32,
}

const MAX_RESUMES: u32 = 5;

impl ResumingReader<'_, '_> {
    fn reconnect(&mut self, cause: io::Error) -> io::Result<()> {
        if self.resumes >= MAX_RESUMES {
            return Err(io::Error::new(cause.kind(), format!("{}: {cause} (gave up after {MAX_RESUMES} resumes)", self.desc.digest)));
        }
        self.resumes += 1;
        tracing::warn!(digest = %self.desc.digest, offset = self.pos, error = %cause, "blob download interrupted; resuming");
        std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(self.resumes)));
        let resp = self.source.get(&self.desc, self.pos).map_err(io::Error::other)?;
        if resp.status().as_u16() == 206 {
            self.resp = resp;
            return Ok(());
        }
        // The server ignored the range: skip what we already have.
        let mut resp = resp;
        io::copy(&mut (&mut resp).take(self.pos), &mut io::sink())?;
        self.resp = resp;
        Ok(())
    }
}

impl Read for ResumingReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos >= self.desc.size {
                return Ok(0);
            }
            match self.resp.read(buf) {
                Ok(0) => self.reconnect(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the end of the blob"))?,
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.reconnect(e)?,
            }
        }
    }
}

impl Source for RegistrySource<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self, _path: &str) -> skiff_image::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        // A registry has no layout files (index.json, oci-layout); only blobs by descriptor.
        Ok(None)
    }

    fn open_blob(&self, desc: &Desc) -> skiff_image::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let resp = match self.get(desc, 0) {
            Ok(r) => r,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if let Some(len) = resp.content_length().filter(|l| *l != desc.size) {
            return Err(skiff_store::StoreError::SizeMismatch { digest: desc.digest.to_string(), expected: desc.size, actual: len }.into());
        }
        let reader = ResumingReader { source: self, desc: desc.clone(), resp, pos: 0, resumes: 0 };
        Ok(Some((Box::new(reader), desc.size)))
    }
}
