//! Tests of the WebSocket transport: our client role against our server role over
//! `tokio::io::duplex`, and each role against a bare tungstenite peer where the exact messages
//! on the wire matter.

mod backpressure;
mod channels;
mod frames;
mod handshake;
mod lifecycle;
mod portforward;
mod remotecommand;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Turns a hang into a failure.
pub(super) async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future).await.expect("the operation hung")
}

/// Whether `future` is still pending after a short while (for "nothing arrives" checks).
pub(super) async fn stays_pending<T>(future: impl Future<Output = T>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), future).await.is_err()
}

/// A transport that records being dropped, to prove the connection task let go of it.
pub(super) struct Tracked {
    inner: DuplexStream,
    dropped: Arc<AtomicBool>,
}

impl Tracked {
    pub(super) fn new(inner: DuplexStream) -> (Tracked, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        (Tracked { inner, dropped: dropped.clone() }, dropped)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Waits until `flag` is set.
pub(super) async fn until_set(flag: &AtomicBool) {
    within(async {
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Waits until the connection task of `channels` has ended.
pub(super) async fn finished(channels: &crate::ws::Channels) {
    within(async {
        while !channels.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A bare tungstenite endpoint in `role`, to send and inspect exact messages.
pub(super) struct RawPeer {
    pub(super) ws: WebSocketStream<DuplexStream>,
}

impl RawPeer {
    pub(super) async fn new(io: DuplexStream, role: WsRole) -> RawPeer {
        RawPeer { ws: WebSocketStream::from_raw_socket(io, role, None).await }
    }

    pub(super) async fn send(&mut self, message: Message) {
        within(self.ws.send(message)).await.expect("the raw peer could not send");
    }

    pub(super) async fn send_binary(&mut self, bytes: &[u8]) {
        self.send(Message::Binary(bytes.to_vec().into())).await;
    }

    /// The next data or close message (pings and pongs included), `None` at the end.
    pub(super) async fn next(&mut self) -> Option<Message> {
        within(self.ws.next()).await.and_then(Result::ok)
    }

    /// The next message; when it is a close frame, also sends tungstenite's answer to it (which
    /// goes out on the next read) and reads on until the transport ends.
    pub(super) async fn next_then_answer_close(&mut self) -> Option<Message> {
        let message = self.next().await;
        if matches!(message, Some(Message::Close(_))) {
            while self.next().await.is_some() {}
        }
        message
    }

    /// The next message's bytes, which must be a binary message.
    pub(super) async fn next_binary(&mut self) -> Vec<u8> {
        match self.next().await {
            Some(Message::Binary(bytes)) => bytes.to_vec(),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}
