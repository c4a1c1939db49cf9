//! Progress bars for long transfers; hidden when stderr is not a terminal or with --quiet.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_stream::StreamExt;

pub fn bar(label: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(0), if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(label.to_string());
    pb
}

pub fn update(pb: &ProgressBar, total: u64, done: u64) {
    if pb.length() != Some(total) {
        pb.set_length(total);
    }
    pb.set_position(done);
}

/// What one event of a daemon's progress stream means.
pub enum Step<R> {
    /// Overall bytes moved of the total.
    Progress(u64, u64),
    /// The operation's result: the stream is over.
    Done(R),
    /// Anything else (already handled by the classifier).
    Other,
}

/// Follows a stream of progress events to its result, moving `pb` on the way; `what` names the
/// operation in the error when the stream ends without a result.
pub async fn follow<E, R>(
    stream: &mut tonic::Streaming<E>,
    pb: &ProgressBar,
    what: &str,
    mut classify: impl FnMut(E) -> Step<R>,
) -> Result<R> {
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                pb.abandon();
                return Err(crate::status(e));
            }
        };
        match classify(ev) {
            Step::Progress(total, done) => update(pb, total, done),
            Step::Done(r) => {
                pb.finish_and_clear();
                return Ok(r);
            }
            Step::Other => {}
        }
    }
    bail!("skiffd closed the {what} stream without a result")
}
