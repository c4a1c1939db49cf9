//! `skiff-mkimage`: writes a busybox test image (or a large random-data image for benchmarks).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use skiff_testimage::{dir_layer, random_layer, write_docker_archive, write_layout, write_oci_archive, ImageSpec};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Layout,
    OciArchive,
    DockerArchive,
}

/// Build a test image from /usr/bin/busybox.
#[derive(Parser)]
struct Args {
    /// Output directory (layout) or file (archives).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "layout")]
    format: Format,
    /// Image name recorded in index.json.
    #[arg(long, default_value = "localhost/skiff/busybox:demo")]
    name: String,
    /// Platforms; more than one makes an image index.
    #[arg(long, value_delimiter = ',')]
    platforms: Vec<String>,
    /// Always write an image index, even for one platform.
    #[arg(long)]
    index: bool,
    #[arg(long, default_value = "/usr/bin/busybox")]
    busybox: PathBuf,
    /// KEY=VALUE on the image index.
    #[arg(long = "index-annotation")]
    index_annotations: Vec<String>,
    /// KEY=VALUE on the index entry of each manifest.
    #[arg(long = "manifest-descriptor-annotation")]
    manifest_descriptor_annotations: Vec<String>,
    /// KEY=VALUE on each manifest.
    #[arg(long = "manifest-annotation")]
    manifest_annotations: Vec<String>,
    /// Write the image with no Cmd (and no Entrypoint): it cannot run without a command.
    #[arg(long)]
    no_cmd: bool,
    /// The image's Cmd, comma-separated (default /bin/sh), e.g. `/bin/sleep,1000000` for a pod's pause image.
    #[arg(long, value_delimiter = ',', conflicts_with = "no_cmd")]
    cmd: Vec<String>,
    /// A path for the config's Volumes (repeatable).
    #[arg(long = "volume")]
    volumes: Vec<String>,
    /// Replace the busybox layers with N layers of random data (benchmarks).
    #[arg(long, default_value_t = 0)]
    random_layers: usize,
    /// Size of each random layer in MiB.
    #[arg(long, default_value_t = 20)]
    layer_mib: usize,
    /// Replace the busybox layers with one gzip layer per directory (real files, for unpack benchmarks).
    #[arg(long, value_delimiter = ',')]
    dir_layers: Vec<PathBuf>,
}

fn kv(list: &[String]) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("annotation {s:?} must be KEY=VALUE"),
        })
        .collect()
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mut spec = ImageSpec::busybox(&a.name, &a.busybox)?;
    if a.no_cmd {
        spec.cmd.clear();
    }
    if !a.cmd.is_empty() {
        spec.cmd = a.cmd.clone();
    }
    spec.volumes = a.volumes.clone();
    if a.random_layers > 0 {
        spec.layers = (0..a.random_layers).map(|i| random_layer(i as u64 + 1, a.layer_mib << 20)).collect::<Result<_>>()?;
    }
    if !a.dir_layers.is_empty() {
        spec.layers = a.dir_layers.iter().map(|d| dir_layer(d)).collect::<Result<_>>()?;
    }
    if !a.platforms.is_empty() {
        spec.platforms = a.platforms.clone();
    }
    spec.force_index = a.index;
    spec.index_annotations = kv(&a.index_annotations)?;
    spec.manifest_descriptor_annotations = kv(&a.manifest_descriptor_annotations)?;
    spec.manifest_annotations = kv(&a.manifest_annotations)?;
    match a.format {
        Format::Layout => {
            write_layout(&spec, &a.out)?;
        }
        Format::OciArchive => {
            write_oci_archive(&spec, &a.out)?;
        }
        Format::DockerArchive => write_docker_archive(&spec, &a.out)?,
    }
    println!("{}", a.out.display());
    Ok(())
}
