//! A layer blob's stream, decompressed according to its media type (gzip, zstd or none), with
//! the inflating on a thread of its own so that decompression and writing files overlap.

use std::io::{self, Read};

use crate::error::{Result, SnapshotError};

/// Opens a layer blob's stream, decompressed according to its media type. Compressed layers are
/// inflated on a thread of their own, so decompression and writing files overlap.
pub fn decompress(blob: impl Read + Send + 'static, media_type: &str, layer: &str) -> Result<Box<dyn Read + Send>> {
    let buffered = io::BufReader::with_capacity(1 << 20, blob);
    if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
        Ok(Box::new(Pipelined::spawn(flate2::read::GzDecoder::new(buffered))))
    } else if media_type.ends_with("+zstd") {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered).map_err(SnapshotError::io(format!("zstd {layer}")))?;
        Ok(Box::new(Pipelined::spawn(decoder)))
    } else if media_type.ends_with(".tar") || media_type.ends_with("v1.tar") {
        Ok(Box::new(buffered))
    } else {
        Err(SnapshotError::BadLayer { layer: layer.into(), reason: format!("unsupported layer media type {media_type:?}") })
    }
}

/// Reads `inner` on a thread of its own, a few chunks ahead of the consumer. Chunks the consumer
/// is done with go back to the reader thread, so a layer allocates a handful of chunks, not one
/// per 512 KiB.
struct Pipelined {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    spent: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Pipelined {
    fn spawn(mut inner: impl Read + Send + 'static) -> Pipelined {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (spent, recycled) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || loop {
            let mut buf = recycled.try_recv().unwrap_or_default();
            buf.resize(512 << 10, 0);
            let mut filled = 0;
            // Fill whole chunks: decoders return small reads, and each send has a cost.
            while filled < buf.len() {
                match inner.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            buf.truncate(filled);
            let last = filled == 0;
            if tx.send(Ok(buf)).is_err() || last {
                return; // the consumer stopped, or the stream ended
            }
        });
        Pipelined { rx, spent, chunk: Vec::new(), pos: 0, done: false }
    }
}

impl Read for Pipelined {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.done = true,
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.chunk, chunk);
                    if spent.capacity() > 0 {
                        // The reader thread may have ended already; the chunk is then just dropped.
                        let _ = self.spent.send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "decompression thread ended")),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
