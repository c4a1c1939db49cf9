//! The kubelet's side of the CRI: the tonic clients `k8s-cri` generates, connected to a
//! throwaway skiffd's socket (the one Skiff's own API is served on).

use std::path::Path;

use anyhow::Result;
pub use k8s_cri::v1 as cri;
pub use skiff_harness::CriClients;

/// The clients the kubelet would hold, with its 16 MiB message limits (skiff-harness's).
pub async fn connect(socket: &Path) -> Result<CriClients> {
    Ok(skiff_harness::connect_cri(socket).await?)
}

/// An ImageSpec naming `image`.
pub fn image_spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: image.to_string(), ..Default::default() })
}

/// A CNI network of a test's own: a bridge + host-local + portmap conflist in `<dir>/cni/net.d`
/// with a bridge name and /24 subnet no other test uses, its cache in `<dir>/cni/cache`.
pub struct CniNetwork {
    pub conf_dir: std::path::PathBuf,
    pub cache_dir: std::path::PathBuf,
    /// Searched before the system's plugin dirs: a test's own plugins go here.
    pub bin_dir: std::path::PathBuf,
    pub bridge: String,
    /// The first three octets of the subnet (`10.231.7`).
    pub prefix: String,
    pub name: String,
}

impl CniNetwork {
    pub fn new(dir: &Path) -> Result<CniNetwork> {
        // Unique per process and call: the port picker's randomness, folded into a subnet octet pair.
        let seed = crate::registry::free_port() as u32 ^ std::process::id();
        let (x, y) = (200 + seed % 50, (seed / 50) % 250 + 1);
        let bridge = format!("skt{x}x{y}");
        let name = format!("skiff-test-{x}-{y}");
        let prefix = format!("10.{x}.{y}");
        let conf_dir = dir.join("cni/net.d");
        let cache_dir = dir.join("cni/cache");
        let bin_dir = dir.join("cni/bin");
        std::fs::create_dir_all(&conf_dir)?;
        std::fs::create_dir_all(&bin_dir)?;
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": format!("{prefix}.0/24")}]], "dataDir": dir.join("cni/ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(conf_dir.join("10-test.conflist"), serde_json::to_vec_pretty(&conflist)?)?;
        Ok(CniNetwork { conf_dir, cache_dir, bin_dir, bridge, prefix, name })
    }

    /// skiffd's config text with its `[cri]` CNI keys pointed at this network.
    pub fn configure(&self, config: &str) -> String {
        config
            .replace("cni_conf_dir = \"/etc/cni/net.d\"", &format!("cni_conf_dir = \"{}\"", self.conf_dir.display()))
            .replace("cni_cache_dir = \"/var/lib/cni\"", &format!("cni_cache_dir = \"{}\"", self.cache_dir.display()))
            .replace("cni_bin_dirs = [\"/usr/lib/cni\"", &format!("cni_bin_dirs = [\"{}\", \"/usr/lib/cni\"", self.bin_dir.display()))
    }

    /// The interfaces on the bridge (one veth per attached pod).
    pub fn ports(&self) -> usize {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge)).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for CniNetwork {
    fn drop(&mut self) {
        // The bridge plugin leaves its bridge behind, as with every CNI runtime.
        let _ = std::process::Command::new("ip").args(["link", "delete", &self.bridge]).output();
    }
}

/// A pod's sandbox config as the kubelet sends it.
pub fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        labels: [("io.kubernetes.pod.name".to_string(), name.to_string())].into(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption { pid: cri::NamespaceMode::Container as i32, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
