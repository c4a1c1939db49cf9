//! A real OCI registry for tests: Debian's `docker-registry` on 127.0.0.1 with a free port, plain
//! HTTP, or TLS (a CA and server certificate made with openssl at test time) with htpasswd auth.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Registry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`
    pub host: String,
    /// The CA that signed the server certificate (TLS registries).
    pub ca: Option<PathBuf>,
    child: Child,
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Makes a CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(Command::new("openssl").current_dir(dir).args(["req", "-x509"]).args(ec).args([
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=skiff test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]))?;
    run(Command::new("openssl").current_dir(dir).arg("req").args(ec).args([
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
    ]))?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    run(Command::new("openssl").current_dir(dir).args([
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt",
        "-days", "2", "-extfile", "ext.cnf",
    ]))
}

impl Registry {
    /// A plain-HTTP registry with no auth.
    pub fn plain() -> Result<Registry> {
        Registry::start(None)
    }

    /// A TLS registry with htpasswd basic auth for `user:password`.
    pub fn tls_with_auth(user: &str, password: &str) -> Result<Registry> {
        Registry::start(Some((user, password)))
    }

    fn start(auth: Option<(&str, &str)>) -> Result<Registry> {
        let dir = tempfile::Builder::new().prefix("skiff-registry-").tempdir()?;
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut ca = None;
        if let Some((user, password)) = auth {
            make_certs(dir.path())?;
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().context("htpasswd (apt-get install apache2-utils)")?;
            std::fs::write(dir.path().join("htpasswd"), &out.stdout)?;
            config.push_str(&format!(
                "  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\nauth:\n  htpasswd:\n    realm: skiff-test\n    path: {d}/htpasswd\n",
                d = dir.path().display()
            ));
            ca = Some(dir.path().join("ca.crt"));
        }
        std::fs::write(dir.path().join("config.yml"), config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start docker-registry (apt-get install docker-registry)")?;
        let reg = Registry { dir, host, ca, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&reg.host).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on {}: {}", reg.host, std::fs::read_to_string(reg.dir.path().join("registry.log"))?);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(reg)
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
