//! skiffd's life under a harness: started with the harness's config and its log to a file, ready
//! once it answers a gRPC call on its socket, stopped with SIGTERM or killed outright.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::VersionRequest;

use crate::cri::block_on;
use crate::error::{Error, Result};
use crate::watch;
use crate::Harness;

/// How long skiffd may take to answer after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How long a SIGTERM may take (skiffd's own default shutdown timeout is 5 s).
const STOP_WITHIN: Duration = Duration::from_secs(30);

impl Harness {
    /// Starts skiffd on the harness's config and waits until it answers.
    pub(crate) fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).map_err(Error::io(format!("open {}", self.log.display())))?;
        let log_too = log.try_clone().map_err(Error::io("duplicate the log file handle"))?;
        let child = Command::new(&self.skiffd)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log_too)
            .stderr(log)
            .spawn()
            .map_err(Error::io(format!("run {}", self.skiffd.display())))?;
        self.child = Some(child);
        self.wait_ready()?;
        watch::Watcher::start(&self.socket, &self.root, self.seen.clone()).map(drop)
    }

    /// Polls until skiffd answers a call on its socket (any answer but Unavailable: CRI Version
    /// is the cheapest call there is, and an Unimplemented still proves the server is up).
    fn wait_ready(&mut self) -> Result<()> {
        let socket = self.socket.clone();
        let Some(child) = self.child.as_mut() else { return Err(Error::NotRunning) };
        let deadline = Instant::now() + READY_WITHIN;
        let outcome = block_on("waiting for skiffd", async move {
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Some(status));
                }
                let answered = tokio::time::timeout(Duration::from_secs(2), async {
                    let channel = skiff_api::connect(&socket).await.ok()?;
                    match RuntimeServiceClient::new(channel).version(VersionRequest::default()).await {
                        Err(status) if status.code() == tonic::Code::Unavailable => None,
                        _ => Some(()),
                    }
                });
                if let Ok(Some(())) = answered.await {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(None);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })?;
        match outcome {
            Ok(()) => Ok(()),
            Err(Some(status)) => {
                self.child = None;
                Err(Error::Exited { status, log: self.log() })
            }
            Err(None) => {
                self.kill9();
                Err(Error::NotReady { socket: self.socket.clone(), secs: READY_WITHIN.as_secs(), log: self.log() })
            }
        }
    }

    /// Whether skiffd is running (it may have exited by itself).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// skiffd's pid while the harness runs it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: skiffd gets no chance to clean up; its containers keep running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits for skiffd to exit (killing it after 30 s).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else { return Err(Error::NotRunning) };
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_WITHIN;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(Error::io("wait for skiffd")(e)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(Error::StopTimeout { secs: STOP_WITHIN.as_secs(), log: self.log() })
    }

    /// Starts skiffd again on the same root and config (stopping it first when it runs).
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            self.stop()?;
        }
        self.child = None;
        self.spawn()
    }
}
