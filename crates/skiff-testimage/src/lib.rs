//! Test images built from Debian's `busybox-static`: an OCI layout (optionally an image index with
//! several platforms), an oci-archive or a docker-archive, with annotations at every level.
//! Nothing is pulled from a network.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Applets linked (hard links, so masking one path never masks busybox itself) in the test image.
pub const APPLETS: &[&str] = &["sh", "ls", "cat", "echo", "true", "false", "sleep", "env", "id", "mkdir", "rm", "sync"];

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One layer's bytes and media type.
#[derive(Clone, Debug)]
pub struct Layer {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

impl Layer {
    /// A layer from raw tar bytes, gzip-compressed when `gzip`.
    pub fn from_tar(bytes: Vec<u8>, gzip: bool) -> Result<Layer> {
        Layer::tar(bytes, gzip)
    }

    fn tar(bytes: Vec<u8>, gzip: bool) -> Result<Layer> {
        let diff_id = sha256(&bytes);
        if !gzip {
            return Ok(Layer { bytes, media_type: OCI_LAYER, diff_id });
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes)?;
        Ok(Layer { bytes: gz.finish()?, media_type: OCI_LAYER_GZIP, diff_id })
    }
}

fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    Ok(h)
}

/// The busybox layer: `/bin/busybox` with applets as hard links.
pub fn busybox_layer(busybox: &Path, gzip: bool) -> Result<Layer> {
    let bin = fs::read(busybox).with_context(|| format!("read {} (apt-get install busybox-static)", busybox.display()))?;
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin/", "tmp/", "etc/"] {
        b.append(&header(dir, 0, 0o755, tar::EntryType::Directory)?, std::io::empty())?;
    }
    b.append(&header("bin/busybox", bin.len() as u64, 0o755, tar::EntryType::Regular)?, &bin[..])?;
    for applet in APPLETS {
        let mut h = header(&format!("bin/{applet}"), 0, 0o755, tar::EntryType::Link)?;
        h.set_link_name("bin/busybox")?;
        h.set_cksum();
        b.append(&h, std::io::empty())?;
    }
    Layer::tar(b.into_inner()?, gzip)
}

/// A layer of small files (`/etc/passwd`, `/etc/group`, and the given extras).
pub fn files_layer(files: &[(&str, &[u8])], gzip: bool) -> Result<Layer> {
    let mut b = tar::Builder::new(Vec::new());
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    let group = b"root:x:0:\nnogroup:x:65534:\n";
    let base: [(&str, &[u8]); 2] = [("etc/passwd", passwd), ("etc/group", group)];
    for (path, data) in base.iter().chain(files) {
        b.append(&header(path, data.len() as u64, 0o644, tar::EntryType::Regular)?, *data)?;
    }
    Layer::tar(b.into_inner()?, gzip)
}

/// A gzip layer holding the directory `dir` (as `dir` without its leading `/`), symlinks kept as links.
pub fn dir_layer(dir: &Path) -> Result<Layer> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let name = dir.strip_prefix("/").unwrap_or(dir);
    b.append_dir_all(name, dir).with_context(|| format!("tar {}", dir.display()))?;
    Layer::tar(b.into_inner()?, true)
}

/// A layer of `size` pseudo-random bytes (incompressible, deterministic per `seed`), in files of 8 MiB.
pub fn random_layer(seed: u64, size: usize) -> Result<Layer> {
    let mut b = tar::Builder::new(Vec::new());
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size;
    let mut n = 0;
    while left > 0 {
        let chunk = left.min(8 << 20);
        let mut data = vec![0u8; chunk];
        for w in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        b.append(&header(&format!("data/{seed}-{n}.bin"), chunk as u64, 0o644, tar::EntryType::Regular)?, &data[..])?;
        left -= chunk;
        n += 1;
    }
    Layer::tar(b.into_inner()?, false)
}

/// What to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub name: String,
    pub layers: Vec<Layer>,
    /// `os/arch[/variant]`; more than one makes an image index.
    pub platforms: Vec<String>,
    /// Wrap a single platform in an index too.
    pub force_index: bool,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// The config's `Volumes`.
    pub volumes: Vec<String>,
    pub index_descriptor_annotations: BTreeMap<String, String>,
    pub index_annotations: BTreeMap<String, String>,
    pub manifest_descriptor_annotations: BTreeMap<String, String>,
    pub manifest_annotations: BTreeMap<String, String>,
}

impl ImageSpec {
    /// The busybox image: a busybox layer and a files layer, for the host platform.
    pub fn busybox(name: &str, busybox: &Path) -> Result<ImageSpec> {
        Ok(ImageSpec {
            name: name.to_string(),
            layers: vec![busybox_layer(busybox, true)?, files_layer(&[("hello.txt", b"hello from skiff\n")], true)?],
            platforms: vec![host_platform()],
            force_index: false,
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            volumes: Vec::new(),
            index_descriptor_annotations: BTreeMap::new(),
            index_annotations: BTreeMap::new(),
            manifest_descriptor_annotations: BTreeMap::new(),
            manifest_annotations: BTreeMap::new(),
        })
    }

    fn has_index(&self) -> bool {
        self.force_index || self.platforms.len() > 1
    }
}

pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

fn platform_json(p: &str) -> Result<Value> {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(json!({"os": os, "architecture": arch})),
        [os, arch, v] => Ok(json!({"os": os, "architecture": arch, "variant": v})),
        _ => bail!("platform {p:?} is not os/arch[/variant]"),
    }
}

/// The blobs of an image and the `index.json` entry naming it.
pub struct Built {
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub top: Value,
    pub manifest_digests: Vec<String>,
    pub config: Vec<u8>,
}

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

fn with_annotations(mut v: Value, a: &BTreeMap<String, String>) -> Value {
    if !a.is_empty() {
        v["annotations"] = json!(a);
    }
    v
}

pub fn build(spec: &ImageSpec) -> Result<Built> {
    let mut blobs = BTreeMap::new();
    for l in &spec.layers {
        blobs.insert(sha256(&l.bytes), l.bytes.clone());
    }
    let mut manifests = Vec::new();
    let mut first_config = Vec::new();
    for p in &spec.platforms {
        let mut config = json!({
            "created": "2024-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": spec.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "config": {"Cmd": spec.cmd, "Env": spec.env, "WorkingDir": "/"},
            "history": spec.layers.iter().enumerate().map(|(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("skiff-mkimage layer {i}")})).collect::<Vec<_>>(),
        });
        if !spec.volumes.is_empty() {
            config["config"]["Volumes"] = spec.volumes.iter().map(|v| (v.clone(), json!({}))).collect::<serde_json::Map<_, _>>().into();
        }
        let plat = platform_json(p)?;
        for (k, v) in plat.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        let config = serde_json::to_vec(&config)?;
        let manifest = with_annotations(
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, &config),
                "layers": spec.layers.iter().map(|l| desc(l.media_type, &l.bytes)).collect::<Vec<_>>(),
            }),
            &spec.manifest_annotations,
        );
        let manifest = serde_json::to_vec(&manifest)?;
        let mut md = with_annotations(desc(OCI_MANIFEST, &manifest), &spec.manifest_descriptor_annotations);
        md["platform"] = plat;
        manifests.push((md, sha256(&manifest)));
        if first_config.is_empty() {
            first_config = config.clone();
        }
        blobs.insert(sha256(&config), config);
        blobs.insert(sha256(&manifest), manifest);
    }
    let mut top_annotations = spec.index_descriptor_annotations.clone();
    top_annotations.insert("io.containerd.image.name".into(), spec.name.clone());
    if let Some((_, tag)) = spec.name.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        top_annotations.insert("org.opencontainers.image.ref.name".into(), tag.to_string());
    }
    let manifest_digests = manifests.iter().map(|(_, d)| d.clone()).collect();
    let top = if spec.has_index() {
        let index = with_annotations(
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>()}),
            &spec.index_annotations,
        );
        let index = serde_json::to_vec(&index)?;
        let top = with_annotations(desc(OCI_INDEX, &index), &top_annotations);
        blobs.insert(sha256(&index), index);
        top
    } else {
        let (mut m, _) = manifests.into_iter().next().context("no platforms")?;
        if let Some(o) = m.as_object_mut() {
            o.remove("platform");
        }
        let mut ann = spec.manifest_descriptor_annotations.clone();
        ann.extend(top_annotations);
        m["annotations"] = json!(ann);
        m
    };
    Ok(Built { blobs, top, manifest_digests, config: first_config })
}

/// Writes an OCI layout directory.
pub fn write_layout(spec: &ImageSpec, dir: &Path) -> Result<Built> {
    let built = build(spec)?;
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    for (d, bytes) in &built.blobs {
        fs::write(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:")), bytes)?;
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [built.top]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(built)
}

/// Tars a directory's files (sorted, relative paths) into `out`.
pub fn tar_dir(dir: &Path, out: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut b = tar::Builder::new(fs::File::create(out)?);
    for rel in files {
        let data = fs::read(dir.join(&rel))?;
        b.append(&header(&rel.to_string_lossy(), data.len() as u64, 0o644, tar::EntryType::Regular)?, &data[..])?;
    }
    b.into_inner()?.sync_all()?;
    Ok(())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// Writes an oci-archive (an OCI layout as one tar).
pub fn write_oci_archive(spec: &ImageSpec, out: &Path) -> Result<Built> {
    let tmp = PathBuf::from(format!("{}.layout", out.display()));
    let built = write_layout(spec, &tmp)?;
    tar_dir(&tmp, out)?;
    fs::remove_dir_all(&tmp)?;
    Ok(built)
}

/// Writes a docker-archive in the pre-25 `docker save` format (`manifest.json`, `<n>/layer.tar`).
/// Layers are written uncompressed, as docker saves them.
pub fn write_docker_archive(spec: &ImageSpec, out: &Path) -> Result<()> {
    let built = build(spec)?;
    let config_name = format!("{}.json", sha256(&built.config).trim_start_matches("sha256:"));
    let mut b = tar::Builder::new(fs::File::create(out)?);
    b.append(&header(&config_name, built.config.len() as u64, 0o644, tar::EntryType::Regular)?, &built.config[..])?;
    let mut layer_paths = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let raw = if l.media_type == OCI_LAYER_GZIP {
            let mut d = flate2::read::GzDecoder::new(&l.bytes[..]);
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut v)?;
            v
        } else {
            l.bytes.clone()
        };
        let path = format!("{i}/layer.tar");
        b.append(&header(&path, raw.len() as u64, 0o644, tar::EntryType::Regular)?, &raw[..])?;
        layer_paths.push(path);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [spec.name], "Layers": layer_paths}]);
    let manifest = serde_json::to_vec(&manifest)?;
    b.append(&header("manifest.json", manifest.len() as u64, 0o644, tar::EntryType::Regular)?, &manifest[..])?;
    b.into_inner()?.sync_all()?;
    Ok(())
}
