//! `skiff attach`: this terminal joins a running container's stdio, beside its log and any other
//! attached client, until the container exits or we detach.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use skiff_api::v1::{self, containers_client::ContainersClient};

use super::attach::{Attach, Copying, RawTerminal, ResizeForwarder};
use super::inspect::inspect_doc;
use crate::output::StdoutClosed;
use crate::{status, Ctx};

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach stdin (it is attached when the container keeps it open: skiff run -i).
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

/// How long skiffd may take to record the exit once the container's output ended.
const EXIT_TOLD_WITHIN: Duration = Duration::from_secs(5);

pub async fn attach(ctx: &Ctx, args: AttachArgs) -> Result<i32> {
    let doc = inspect_doc(ctx.channel.clone(), args.container.clone()).await.map_err(status)?;
    let id = doc["Id"].as_str().context("skiffd's inspect document has no Id")?.to_string();
    let tty = doc["Spec"]["process"]["terminal"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && doc["OpenStdin"].as_bool().unwrap_or(false);
    let stdin_once = doc["StdinOnce"].as_bool().unwrap_or(false);
    let attach = Attach::new(ctx, stdin, tty).await?;
    let mut client = ContainersClient::new(ctx.channel.clone());
    client.attach(v1::AttachContainerRequest { id: id.clone(), stdio: Some(attach.stdio()) }).await.map_err(status)?;
    let raw = RawTerminal::enter(tty && stdin);
    // In raw mode ctrl-c goes to the container: the detach keys are the way out.
    let Copying { threads, mut stdout_closed, mut detached, mut stdin_ended } = attach.copy_with(tty && stdin)?;
    let _resize = ResizeForwarder::start(ctx, tty, &id, "");
    let mut output = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    });
    // Each signal is looked at until it fired or its sender went (a oneshot is polled once to
    // its end).
    let (mut watch_detach, mut watch_stdout, mut watch_stdin) = (true, true, true);
    let mut our_stdin_ended = false;
    loop {
        tokio::select! {
            _ = &mut output => break,
            fired = &mut detached, if watch_detach => {
                watch_detach = false;
                if fired.is_ok() {
                    // The container runs on; the shim drops this attachment as its FIFOs close.
                    drop(raw);
                    return Ok(0);
                }
            }
            fired = &mut stdout_closed, if watch_stdout => {
                watch_stdout = false;
                if fired.is_ok() {
                    drop(raw);
                    return Err(StdoutClosed.into());
                }
            }
            fired = &mut stdin_ended, if watch_stdin => {
                watch_stdin = false;
                our_stdin_ended = fired.is_ok();
            }
        }
    }
    drop(raw);
    // Our stdin's end comes before the output end it causes, but the loop may have seen the
    // output end first: look once more.
    if watch_stdin {
        our_stdin_ended = stdin_ended.try_recv().is_ok();
    }
    // The output ended: the container exited, or this attachment ended while the container runs
    // on — our stdin's end does that unless the container closes its stdin then (stdin_once).
    // The record tells which: a Wait would hold a request in skiffd and the shim until the exit.
    let ended_by_us = our_stdin_ended && !stdin_once;
    match recorded_exit(ctx, &id, if ended_by_us { Duration::ZERO } else { EXIT_TOLD_WITHIN }).await? {
        Some(code) => Ok(code),
        None if ended_by_us => Ok(0),
        None => {
            eprintln!("skiff: the attachment to {} ended while it runs on (its output outpaced this client)", args.container);
            Ok(1)
        }
    }
}

/// The container's exit code once skiffd recorded its exit, looking for up to `patience`; None
/// while it runs.
async fn recorded_exit(ctx: &Ctx, id: &str, patience: Duration) -> Result<Option<i32>> {
    let deadline = Instant::now() + patience;
    loop {
        match inspect_doc(ctx.channel.clone(), id.to_string()).await {
            Ok(doc) if doc["Status"] == "exited" => return Ok(Some(doc["ExitCode"].as_i64().unwrap_or(0) as i32)),
            Ok(_) => {}
            // Removed with its exit (auto-removed): its code went with it.
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(Some(0)),
            Err(s) => return Err(status(s)),
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
