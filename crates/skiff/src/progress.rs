//! Progress bars for long transfers; hidden when stderr is not a terminal or with --quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
