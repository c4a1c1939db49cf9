//! Header blocks: the name/value map SYN_STREAM, SYN_REPLY and HEADERS carry, and its zlib
//! compression.
//!
//! ```text
//!  +------------------------------------+
//!  | number of name/value pairs (32)    |
//!  +------------------------------------+
//!  | length of name (32) | name bytes   |   names lowercase, unique within a block
//!  | length of value (32)| value bytes  |   several values of one name joined by NUL
//!  +------------------------------------+   ... repeated
//! ```
//!
//! The block is then deflated against the SPDY/3 [dictionary](super::dictionary) and flushed
//! with Z_SYNC_FLUSH, so each frame's block inflates on its own, but the zlib stream is one per
//! direction of the session: every block is compressed with the context the previous ones left.
//! A session therefore owns one [`HeaderCompressor`] for what it sends and one
//! [`HeaderDecompressor`] for what it receives, and must feed them frames in wire order.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::{DICTIONARY, DICTIONARY_ID};
use super::error::FrameError;
use super::frame::MAX_HEADER_BLOCK;

/// A header map with SPDY's rules built in: names are lowercased on the way in, and one name
/// holds all its values (sent NUL-joined). Order of names is kept; equality ignores it, since
/// Go peers send their maps in random order.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    entries: Vec<(String, Vec<String>)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value to `name`, after the values it already has.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.into()),
            None => self.entries.push((name, vec![value.into()])),
        }
    }

    /// Sets `name` to the single `value`, dropping what it had.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.append(name, value);
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of `name`, as Go's `http.Header.Get` answers.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).first().map(String::as_str)
    }

    pub fn get_all(&self, name: &str) -> &[String] {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or(&[], |(_, v)| v.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The number of distinct names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(name, values)| other.get_all(name) == values)
    }
}

impl Eq for Headers {}

impl<'a, V: Into<String>> FromIterator<(&'a str, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(name, value);
        }
        headers
    }
}

/// Serialises `headers` uncompressed, appending to `out`.
pub fn write_block(headers: &Headers, out: &mut Vec<u8>) -> Result<(), FrameError> {
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, values) in headers.iter() {
        if values.iter().any(|v| v.contains('\0')) {
            return Err(FrameError::NulInHeaderValue { name: name.to_owned() });
        }
        let value = values.join("\0");
        for part in [name.as_bytes(), value.as_bytes()] {
            let len = u32::try_from(part.len()).map_err(|_| FrameError::TooLarge { kind: "header", length: part.len(), max: MAX_HEADER_BLOCK })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    Ok(())
}

/// Parses an inflated header block, which must be exactly one block.
pub fn parse_block(block: &[u8]) -> Result<Headers, FrameError> {
    let mut rest = block;
    let count = take_u32(&mut rest, "no pair count")?;
    // Each pair takes at least 8 bytes: a count past that is a lie, and must not size an
    // allocation.
    if count as usize > rest.len() / 8 {
        return Err(FrameError::TruncatedHeaderBlock { reason: "fewer bytes than the pair count needs" });
    }
    let mut headers = Headers { entries: Vec::with_capacity(count as usize) };
    for _ in 0..count {
        let name = take_str(&mut rest, "name cut short", None)?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(FrameError::UppercaseHeaderName { name });
        }
        if headers.entries.iter().any(|(n, _)| *n == name) {
            return Err(FrameError::DuplicateHeader { name });
        }
        let value = take_str(&mut rest, "value cut short", Some(&name))?;
        let values = value.split('\0').map(str::to_owned).collect();
        headers.entries.push((name, values));
    }
    if !rest.is_empty() {
        return Err(FrameError::TrailingHeaderBytes { extra: rest.len() });
    }
    Ok(headers)
}

fn take_u32(rest: &mut &[u8], reason: &'static str) -> Result<u32, FrameError> {
    let (head, tail) = rest.split_first_chunk::<4>().ok_or(FrameError::TruncatedHeaderBlock { reason })?;
    *rest = tail;
    Ok(u32::from_be_bytes(*head))
}

fn take_str(rest: &mut &[u8], reason: &'static str, name: Option<&str>) -> Result<String, FrameError> {
    let len = take_u32(rest, reason)? as usize;
    if len > rest.len() {
        return Err(FrameError::TruncatedHeaderBlock { reason });
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    String::from_utf8(bytes.to_vec()).map_err(|err| FrameError::NonUtf8Header { name: name.map_or_else(|| String::from_utf8_lossy(err.as_bytes()).into_owned(), str::to_owned) })
}

/// The sending half of a session's header compression.
pub struct HeaderCompressor {
    zlib: Compress,
    block: Vec<u8>,
}

impl HeaderCompressor {
    pub fn new() -> Self {
        // Go's framer compresses at its best level; any level inflates the same.
        let mut zlib = Compress::new(Compression::best(), true);
        // A fresh deflate stream takes a dictionary before its first byte; this cannot fail.
        let _ = zlib.set_dictionary(DICTIONARY);
        Self { zlib, block: Vec::new() }
    }

    /// Compresses `headers` as the next block of this session's stream, appending to `out`.
    pub fn compress(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.block.clear();
        write_block(headers, &mut self.block)?;
        if self.block.len() > MAX_HEADER_BLOCK {
            return Err(FrameError::TooLarge { kind: "header block", length: self.block.len(), max: MAX_HEADER_BLOCK });
        }
        let mut consumed = 0;
        loop {
            out.reserve(64 + (self.block.len() - consumed) / 2);
            let before = self.zlib.total_in();
            self.zlib.compress_vec(&self.block[consumed..], out, FlushCompress::Sync).map_err(|err| FrameError::Compress { message: err.to_string() })?;
            consumed += (self.zlib.total_in() - before) as usize;
            // A sync flush is complete once deflate stops short of filling the output.
            if consumed == self.block.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// The receiving half of a session's header compression.
pub struct HeaderDecompressor {
    zlib: Decompress,
    block: Vec<u8>,
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        Self { zlib: Decompress::new(true), block: Vec::new() }
    }

    /// Inflates one frame's compressed header block and parses it.
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Headers, FrameError> {
        self.block.clear();
        let mut consumed = 0;
        loop {
            if self.block.len() == self.block.capacity() {
                if self.block.len() >= MAX_HEADER_BLOCK {
                    return Err(FrameError::TooLarge { kind: "inflated header block", length: self.block.len(), max: MAX_HEADER_BLOCK });
                }
                self.block.reserve_exact((self.block.len() + 256).min(MAX_HEADER_BLOCK - self.block.len()).max(1));
            }
            let (before_in, before_out) = (self.zlib.total_in(), self.zlib.total_out());
            let result = self.zlib.decompress_vec(&compressed[consumed..], &mut self.block, FlushDecompress::Sync);
            consumed += (self.zlib.total_in() - before_in) as usize;
            let progressed = self.zlib.total_in() != before_in || self.zlib.total_out() != before_out;
            match result {
                Ok(Status::Ok | Status::BufError | Status::StreamEnd) => {}
                Err(err) => match err.needs_dictionary() {
                    Some(DICTIONARY_ID) => {
                        self.zlib.set_dictionary(DICTIONARY).map_err(|err| FrameError::Decompress { message: err.to_string() })?;
                        continue;
                    }
                    Some(other) => return Err(FrameError::Decompress { message: format!("the peer compressed against dictionary {other:#010x}, not the SPDY/3 one") }),
                    None => return Err(FrameError::Decompress { message: err.to_string() }),
                },
            }
            if consumed == compressed.len() && self.block.len() < self.block.capacity() {
                break;
            }
            if !progressed && self.block.len() < self.block.capacity() {
                return Err(FrameError::TruncatedHeaderBlock { reason: "the compressed block ends mid-stream" });
            }
        }
        parse_block(&self.block)
    }
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}
