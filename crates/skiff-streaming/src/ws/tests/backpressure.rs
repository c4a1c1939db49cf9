//! Bounded buffering: a consumer that stops reading stops the writer on the other end after a
//! bounded amount, and a 100 MiB stream gets through intact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

use super::within;

use crate::ws::remotecommand::{connect, serve, StreamOptions};
use crate::ws::Protocol;

const TOTAL: usize = 100 * 1024 * 1024;

/// Everything that may hold stdout bytes between the server's writer and the client's reader:
/// the outbound queue (8 messages of 32 KiB), tungstenite's write buffer (128 KiB plus a
/// message), the transport (64 KiB here), tungstenite's read buffer (128 KiB plus a message)
/// and the inbound queue (256 KiB plus a message), rounded up generously. Unbounded buffering
/// would take all 100 MiB.
const IN_FLIGHT_BOUND: usize = 2 * 1024 * 1024;

fn pattern(offset: usize, len: usize) -> impl Iterator<Item = u8> {
    (offset..offset + len).map(|i| (i % 251) as u8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_holds_the_writer_back_and_100_mib_arrive_intact() {
    let options = StreamOptions { stdout: true, ..Default::default() };
    let (a, b) = duplex(64 * 1024);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        let streams = serve(a, Protocol::V5, options).await.expect("serve");
        let mut stdout = streams.stdout.expect("stdout");
        let chunk: Vec<u8> = pattern(0, 251 * 300).collect();
        let mut sent = 0;
        while sent < TOTAL {
            // Starting at `sent % 251` keeps the pattern continuous across writes.
            let start = sent % 251;
            let end = (start + TOTAL - sent).min(chunk.len());
            let written = stdout.write(&chunk[start..end]).await.expect("stdout write");
            sent += written;
            counter.store(sent, Ordering::SeqCst);
        }
        drop(stdout);
        streams.channels.close().await;
    });
    let client = connect(b, Protocol::V5, options).expect("connect");
    let mut stdout = client.stdout.expect("stdout");

    // Nobody reads: the writer must come to a stop (no progress for a quarter second) well
    // short of the whole stream.
    let (mut stalled_at, mut unchanged) = (0, 0);
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = accepted.load(Ordering::SeqCst);
        unchanged = if now == stalled_at && now > 0 { unchanged + 1 } else { 0 };
        stalled_at = now;
        if unchanged == 5 {
            break;
        }
    }
    assert_eq!(unchanged, 5, "the writer never stopped; {stalled_at} bytes accepted");
    assert!(stalled_at <= IN_FLIGHT_BOUND, "{stalled_at} bytes accepted with nobody reading");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), stalled_at, "the writer went on while nobody read");

    // Then read it all, checking every byte (a debug build on a busy machine gets time for it).
    let mut buf = vec![0; 256 * 1024];
    let reference: Vec<u8> = pattern(0, 251 + buf.len()).collect();
    let mut received = 0;
    let reading = async {
        loop {
            let n = stdout.read(&mut buf).await.expect("stdout read");
            if n == 0 {
                break;
            }
            let start = received % 251;
            assert!(buf[..n] == reference[start..start + n], "corrupt data at offset {received}");
            received += n;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), reading).await.expect("100 MiB did not arrive in time");
    assert_eq!(received, TOTAL);
    within(server).await.expect("server");
}
