//! Teardown: remove every pod and container the way their users would (the CRI, the CLI), stop
//! skiffd, then look for what was left, report it, clean it up and remove the harness's dir.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use k8s_cri::v1 as cri;
use tonic::{Code, Response, Status};

use crate::cri::{block_on, connect};
use crate::error::Result;
use crate::leaks::{detect, LeakReport, Scope};
use crate::{cleanup, procfs, Harness};

/// How long one CRI call of the teardown may take (StopPodSandbox waits for its containers).
const CALL_WITHIN: Duration = Duration::from_secs(60);

impl Harness {
    /// Tears the harness down and says what leaked. Everything found is cleaned up after it is
    /// reported. Fails only when leaks cannot be checked for (our mount table is unreadable); the
    /// dir is then left in place.
    pub fn shutdown(mut self) -> Result<LeakReport> {
        self.teardown()
    }

    /// Teardown without a report, for a start that failed half-way.
    pub(crate) fn discard(&mut self) {
        let _ = self.teardown();
    }

    fn teardown(&mut self) -> Result<LeakReport> {
        if self.torn_down {
            return Ok(LeakReport::default());
        }
        self.torn_down = true;
        let mut report = LeakReport::default();
        if self.is_running() {
            self.remove_through_cri(&mut report.errors);
            self.remove_through_cli(&mut report.errors);
            if let Err(e) = self.stop() {
                report.errors.push(format!("stop skiffd: {e}"));
            }
        } else {
            // A skiffd that died under the test (not by kill9() or stop()) is a failure of its own.
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                report.errors.push(format!("skiffd exited by itself ({status}); the end of its log:\n{}", tail(&self.log(), 20)));
            }
            self.kill9();
        }
        let seen: Vec<(String, Option<String>)> = self.seen.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(id, path)| (id.clone(), path.clone())).collect();
        self.containers.extend(seen.iter().map(|(id, _)| id.clone()));
        self.cgroup_paths.extend(seen.into_iter().filter_map(|(_, path)| path));
        // A skiffd killed with containers up could not list them: their state dirs name them.
        if let Ok(dirs) = std::fs::read_dir(self.root.join("containers")) {
            self.containers.extend(dirs.flatten().filter_map(|d| d.file_name().to_str().map(str::to_string)));
        }
        let leaks = match self.leaks() {
            Ok(leaks) => leaks,
            Err(e) => {
                self.cni.release();
                return Err(e);
            }
        };
        cleanup::clean(&leaks);
        report.errors.extend(cleanup::remove_owned(&self.cni));
        match self.leaks() {
            Ok(left) => report.errors.extend(left.iter().map(|l| format!("still there after cleanup: {l}"))),
            Err(e) => report.errors.push(e.to_string()),
        }
        report.leaks = leaks;
        self.cni.release();
        if let Err(e) = remove_dir(&self.dir) {
            report.errors.push(e);
        }
        Ok(report)
    }

    fn leaks(&self) -> Result<Vec<crate::Leak>> {
        detect(&Scope { dir: &self.dir, cni: &self.cni, containers: &self.containers, cgroup_paths: &self.cgroup_paths })
    }

    /// Every pod stopped and removed, every container removed, as the kubelet would; a skiffd
    /// that does not serve pods (Unimplemented) has none.
    fn remove_through_cri(&mut self, errors: &mut Vec<String>) {
        let socket = self.socket.clone();
        match block_on("the cri teardown", async move { remove_pods_and_containers(&socket).await }) {
            Ok((ids, errs)) => {
                self.containers.extend(ids);
                errors.extend(errs);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }

    /// `skiff rm -f` of every container `skiff ps -aq` lists, whose ids the leak checks use.
    fn remove_through_cli(&mut self, errors: &mut Vec<String>) {
        let listed = match self.cli_ok(["ps", "-a", "-q"]) {
            Ok(out) => out,
            Err(e) => return errors.push(format!("list containers: {e}")),
        };
        for id in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.containers.insert(id.to_string());
            if let Err(e) = self.cli_ok(["rm", "-f", id]) {
                errors.push(format!("remove container {id}: {e}"));
            }
        }
    }
}

impl Drop for Harness {
    /// Tears down; panics with the report when something leaked, unless the thread is already
    /// panicking (a failed assertion), when the report is only printed.
    fn drop(&mut self) {
        let message = match self.teardown() {
            Ok(report) if report.is_clean() => return,
            Ok(report) => format!("skiff harness {} did not tear down clean: {report}", self.dir.display()),
            Err(e) => format!("skiff harness {}: teardown failed: {e}", self.dir.display()),
        };
        if std::thread::panicking() {
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes the harness's dir, unless something is still mounted below it: removing through a
/// mount would delete what it shows (a host directory bind-mounted there, say).
fn remove_dir(dir: &Path) -> Result<(), String> {
    let mounted: Vec<String> = match procfs::mounts(None) {
        Ok(table) => table.into_iter().filter(|m| procfs::under(&m.point, dir)).map(|m| m.point.display().to_string()).collect(),
        Err(e) => return Err(format!("read /proc/self/mountinfo: {e}; left {} in place", dir.display())),
    };
    if !mounted.is_empty() {
        return Err(format!("left {} in place: still mounted under it: {}", dir.display(), mounted.join(", ")));
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("remove {}: {e}", dir.display()))
}

/// The container ids seen, and the calls that failed.
async fn remove_pods_and_containers(socket: &Path) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    let mut c = match tokio::time::timeout(CALL_WITHIN, connect(socket)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return (ids, vec![format!("cri teardown: {e}")]),
        Err(_) => return (ids, vec![format!("cri teardown: no connection within {}s", CALL_WITHIN.as_secs())]),
    };
    // Containers first, for their ids: removing a pod removes its containers with it.
    let listed = call("list containers", c.runtime.list_containers(cri::ListContainersRequest::default())).await;
    ids.extend(record(listed, &mut errors).into_iter().flat_map(|r| r.containers).map(|c| c.id));
    let pods = call("list pod sandboxes", c.runtime.list_pod_sandbox(cri::ListPodSandboxRequest::default())).await;
    for pod in record(pods, &mut errors).into_iter().flat_map(|r| r.items) {
        let id = pod.id;
        let stopped = call(&format!("stop pod sandbox {id}"), c.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.clone() })).await;
        record(stopped, &mut errors);
        let removed = call(&format!("remove pod sandbox {id}"), c.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() })).await;
        record(removed, &mut errors);
    }
    let listed = call("list containers", c.runtime.list_containers(cri::ListContainersRequest::default())).await;
    for id in record(listed, &mut errors).into_iter().flat_map(|r| r.containers).map(|c| c.id) {
        let removed = call(&format!("remove container {id}"), c.runtime.remove_container(cri::RemoveContainerRequest { container_id: id.clone() })).await;
        record(removed, &mut errors);
        ids.push(id);
    }
    (ids, errors)
}

/// A CRI call with a deadline: `Ok(None)` when skiffd does not serve it.
async fn call<T>(what: &str, rpc: impl Future<Output = Result<Response<T>, Status>>) -> Result<Option<T>, String> {
    match tokio::time::timeout(CALL_WITHIN, rpc).await {
        Ok(Ok(response)) => Ok(Some(response.into_inner())),
        Ok(Err(status)) if status.code() == Code::Unimplemented => Ok(None),
        Ok(Err(status)) => Err(format!("{what}: {:?}: {}", status.code(), status.message())),
        Err(_) => Err(format!("{what}: no answer within {}s", CALL_WITHIN.as_secs())),
    }
}

fn record<T>(outcome: Result<Option<T>, String>, errors: &mut Vec<String>) -> Option<T> {
    outcome.unwrap_or_else(|e| {
        errors.push(e);
        None
    })
}
