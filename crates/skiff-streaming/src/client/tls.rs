//! HTTPS for the client: which server certificates an `https://` streaming URL may present.
//!
//! kubectl reaches a runtime's streaming server through the kubelet, which checks it against the
//! system's roots; crictl does not check it at all. Both are offered, and a CA file of one's own
//! (the usual case for a runtime's self-made certificate).

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use super::error::{ClientError, Result};

/// The certificates an `https://` streaming server is checked against.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The system's roots.
    #[default]
    System,
    /// The CA certificates of a PEM file.
    Ca(PathBuf),
    /// None: any certificate is taken (crictl's way with stream URLs). The handshake's
    /// signatures are still checked, so the session is encrypted, but not authenticated.
    Insecure,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client configuration for `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| ClientError::Tls(e.to_string()))?;
    let config = match trust {
        Trust::Insecure => builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate)).with_no_client_auth(),
        Trust::System | Trust::Ca(_) => builder.with_root_certificates(roots(trust)?).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(trust: &Trust) -> Result<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    match trust {
        Trust::Ca(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| ClientError::Tls(format!("reading CA certificates from {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Tls(format!("{} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                store.add(cert).map_err(|e| ClientError::Tls(format!("a CA certificate of {}: {e}", path.display())))?;
            }
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ClientError::Tls("no system CA certificate could be loaded; give a CA file".into()));
            }
        }
        Trust::Insecure => {}
    }
    Ok(store)
}

/// Takes any server certificate, checking only that the handshake is signed by its key.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}
