//! What an import or a pull stores, shared by `images import|load` and `images pull`: the flags
//! that choose it and how the result is printed.

use anyhow::Result;
use skiff_api::v1;

use crate::humanize::human_size;

/// Which content an import or pull stores, and whether it is unpacked.
#[derive(clap::Args)]
pub struct ContentFlags {
    /// Platform whose manifest to take, os/arch[/variant] (default: the daemon's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Take every platform's content.
    #[arg(long)]
    pub all_platforms: bool,
    /// Store the content only; do not unpack the layers into snapshots.
    #[arg(long)]
    pub no_unpack: bool,
}

pub fn print_stored(r: &v1::ImportResult, blob_verb: &str, quiet: bool) -> Result<()> {
    for i in &r.images {
        outln!("{} {}", i.name, i.target.as_ref().map_or("", |t| t.digest.as_str()))?;
    }
    summary(r, blob_verb, quiet);
    Ok(())
}

pub fn summary(r: &v1::ImportResult, blob_verb: &str, quiet: bool) {
    if !quiet {
        eprintln!(
            "{} image(s): {} blob(s) {blob_verb} ({}), {} already stored; {} layer(s) unpacked, {} already unpacked",
            r.images.len(),
            r.blobs_written,
            human_size(r.bytes_written),
            r.blobs_present,
            r.layers_unpacked,
            r.layers_present
        );
    }
}
