//! Terminal resizes: a stream of JSON objects `{"Width":80,"Height":24}` (SPDY's resize
//! stream, back to back; WebSocket's channel 4, one per message).

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// A terminal's size in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Most bytes one resize object may take before the stream is judged broken.
const MAX_PENDING: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    #[error("the resize stream carried something that is not a {{\"Width\":…,\"Height\":…}} object: {0}")]
    Malformed(serde_json::Error),
    #[error("the resize stream sent {MAX_PENDING} bytes without a complete size")]
    TooLong,
}

/// Cuts resize objects out of bytes as they come, however the reads split them.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
}

impl ResizeDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; answers every size they completed.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<TermSize>, ResizeError> {
        self.pending.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.pending).into_iter::<TermSize>();
        let mut used = 0;
        loop {
            match stream.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    used = stream.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(ResizeError::Malformed(e)),
                None => {
                    used = stream.byte_offset();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        if self.pending.len() > MAX_PENDING {
            return Err(ResizeError::TooLong);
        }
        Ok(sizes)
    }
}

/// Sizes read off a resize stream (either transport's), for as long as it lasts.
pub fn spawn_reader<R: AsyncRead + Send + Unpin + 'static>(mut reader: R) -> mpsc::Receiver<TermSize> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut decoder = ResizeDecoder::new();
        let mut buf = [0u8; 512];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            match decoder.push(&buf[..n]) {
                Ok(sizes) => {
                    for size in sizes {
                        if tx.send(size).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "ignoring the rest of a resize stream");
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_across_reads() {
        let mut d = ResizeDecoder::new();
        assert_eq!(d.push(br#"{"Width":80,"Hei"#).expect("sizes"), vec![]);
        let sizes = d.push(br#"ght":24}{"Width":100,"Height":40}  {"Wi"#).expect("sizes");
        assert_eq!(sizes, vec![TermSize { width: 80, height: 24 }, TermSize { width: 100, height: 40 }]);
        assert_eq!(d.push(br#"dth":1,"Height":2}"#).expect("sizes"), vec![TermSize { width: 1, height: 2 }]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(ResizeDecoder::new().push(br#""wide""#), Err(ResizeError::Malformed(_))));
        assert!(matches!(ResizeDecoder::new().push(br#"{"Width":-1,"Height":2}"#), Err(ResizeError::Malformed(_))));
        let mut d = ResizeDecoder::new();
        let long = format!(r#"{{"Width":{}"#, "1".repeat(5000));
        assert!(d.push(long.as_bytes()).is_err());
    }
}
