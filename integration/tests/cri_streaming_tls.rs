//! The streaming server over HTTPS (`[cri] stream_tls_cert` and `stream_tls_key`): URLs are
//! `https://`, the clients check the certificate against the trust they are given, and the CLI
//! takes `--stream-ca` / `--stream-insecure`. The certificate is made here with openssl: a CA,
//! and a server certificate for 127.0.0.1 signed by it.

use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_integration::cri::{container_config, cri, import_image, pod_config, remove_pod, run_container, run_pod, runtime, shutdown_clean, Harness, SkiffCli};
use skiff_integration::stream::{ClientError, Remote, Transport, Trust, Wanted};

const IMAGE: &str = "localhost/cri-streaming-tls/busybox:1";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes ca.pem, server.pem and server-key.pem into `dir`; answers their paths.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=skiff test CA", "-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem", "-out", "server.csr"]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").expect("ext file");
    openssl(dir, &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1", "-extfile", "server.ext", "-out", "server.pem"]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"))
}

#[test]
fn exec_over_https_checks_the_servers_certificate_against_the_trust_given() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = certificates(certs.path());
    let (cert_text, key_text) = (cert.display().to_string(), key.display().to_string());
    let h = Harness::builder()
        .config(move |c| {
            c.set("cri", "stream_tls_cert", cert_text).set("cri", "stream_tls_key", key_text);
        })
        .start()
        .expect("skiffd with a TLS streaming server");
    import_image(&h, &skiff_testimage::ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox image")).expect("import");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("tls");
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        let id = run_container(&mut rt, &pod_id, &pod, container_config("app", IMAGE, &["sleep", "3600"])).await.expect("container");
        let wanted = Wanted { stdin: true, stdout: true, stderr: true, tty: false };
        let exec_url = |rt: &mut skiff_integration::cri::RuntimeClient| {
            let req = cri::ExecRequest { container_id: id.clone(), cmd: vec!["sh".into(), "-c".into(), "cat; exit 7".into()], tty: false, stdin: true, stdout: true, stderr: true };
            let mut rt = rt.clone();
            async move { rt.exec(req).await.expect("Exec").into_inner().url }
        };

        for transport in [Transport::spdy(), Transport::websocket()] {
            for trust in [Trust::Ca(ca.clone()), Trust::Insecure] {
                let url = exec_url(&mut rt).await;
                assert!(url.starts_with("https://127.0.0.1:"), "{url}");
                let mut remote = Remote::connect(&url, &transport.clone().trusting(trust.clone()), wanted).await.unwrap_or_else(|e| panic!("{transport:?} {trust:?}: {e}"));
                remote.send_stdin(b"sealed in TLS\n").await.expect("stdin");
                let done = remote.finish().await.expect("finish");
                assert_eq!(String::from_utf8_lossy(&done.stdout), "sealed in TLS\n", "{transport:?} {trust:?}");
                assert_eq!(done.exit_code().expect("exit code"), 7, "{transport:?} {trust:?}");
            }
        }

        // The system's roots do not hold the test CA: the handshake fails, and says so.
        let url = exec_url(&mut rt).await;
        match Remote::connect(&url, &Transport::spdy().trusting(Trust::System), wanted).await {
            Err(ClientError::Tls(message)) => assert!(message.contains("handshake") && message.to_lowercase().contains("certificate"), "{message}"),
            Err(other) => panic!("expected a TLS error, got {other}"),
            Ok(_) => panic!("the server's certificate was taken without its CA"),
        }
        // A plain-HTTP client on the HTTPS port gets no upgrade.
        let plain = url.replacen("https://", "http://", 1);
        assert!(Remote::connect(&plain, &Transport::spdy(), wanted).await.is_err());

        // The CLI: --stream-ca, --stream-insecure, and neither (the system's roots).
        let ca_arg = ca.display().to_string();
        let run = h.skiff(&["pods", "exec", "-i", "--stream-ca", &ca_arg, &id, "echo", "from the CLI"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, "from the CLI\n"), "{}", run.stderr);
        let run = h.skiff(&["pods", "exec", "-i", "--stream-insecure", "--transport", "websocket", &id, "sh", "-c", "exit 4"]);
        assert_eq!(run.code, 4, "{}", run.stderr);
        let run = h.skiff(&["pods", "exec", "-i", &id, "true"]);
        assert_ne!(run.code, 0);
        assert!(run.stderr.to_lowercase().contains("certificate"), "{}", run.stderr);

        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}
