//! Pin helpers started ahead of the pods that use them. A RunPodSandbox hands its request to a
//! `skiff-shim pin` already past its exec and start-up (about a third of a pin here), and the
//! next one is started behind it, off the caller's path. The first pin starts without a spare,
//! so a daemon that never runs a pod keeps no helper.
//!
//! A spare does nothing but wait for its request on stdin: when skiffd ends, even by kill -9,
//! that pipe closes, the spare reads an empty request and exits.

use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};

use super::client::{pin_with, spawn};
use super::{validate, PinRequest, Pinned};
use crate::RuntimeError;

pub struct PinHelpers {
    shim: PathBuf,
    spare: Arc<Mutex<Option<Child>>>,
}

impl PinHelpers {
    /// Helpers run from `shim` (skiffd's sealed skiff-shim, `/proc/self/fd/N`).
    pub fn new(shim: PathBuf) -> PinHelpers {
        PinHelpers { shim, spare: Arc::default() }
    }

    /// Pins what `req` asks for, as [`super::pin`] does, through the waiting spare when there is
    /// one; then starts the next spare.
    pub fn pin(&self, req: &PinRequest) -> Result<Pinned, RuntimeError> {
        validate(req)?;
        let helper = match self.take() {
            Some(helper) => helper,
            None => spawn(&self.shim)?,
        };
        let pinned = pin_with(helper, &self.shim, req);
        self.start_spare();
        pinned
    }

    /// The spare, if it is still there to be asked (one killed meanwhile is reaped).
    fn take(&self) -> Option<Child> {
        let mut helper = lock(&self.spare).take()?;
        match helper.try_wait() {
            Ok(None) => Some(helper),
            _ => {
                let _ = helper.wait();
                None
            }
        }
    }

    /// Starts a spare on a thread of its own, unless one is waiting already (concurrent pins).
    fn start_spare(&self) {
        let (shim, spare) = (self.shim.clone(), self.spare.clone());
        let started = std::thread::Builder::new().name("pin-spare".into()).spawn(move || {
            let helper = match spawn(&shim) {
                Ok(helper) => helper,
                Err(e) => {
                    tracing::warn!(error = %e, "starting a spare pin helper; the next pod starts its own");
                    return;
                }
            };
            let mut slot = lock(&spare);
            match slot.as_ref() {
                None => *slot = Some(helper),
                Some(_) => {
                    drop(slot);
                    end(helper);
                }
            }
        });
        if let Err(e) = started {
            tracing::warn!(error = %e, "starting the thread of a spare pin helper");
        }
    }

    /// The waiting spare's pid, if there is one.
    pub fn spare_pid(&self) -> Option<u32> {
        lock(&self.spare).as_ref().map(Child::id)
    }
}

impl Drop for PinHelpers {
    fn drop(&mut self) {
        if let Some(helper) = lock(&self.spare).take() {
            end(helper);
        }
    }
}

fn lock(spare: &Mutex<Option<Child>>) -> std::sync::MutexGuard<'_, Option<Child>> {
    spare.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets a spare go: its stdin closes, it reads an empty request, exits, and is reaped here.
fn end(mut helper: Child) {
    drop(helper.stdin.take());
    let _ = helper.wait();
}
