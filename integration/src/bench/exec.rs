//! `--calls exec`: what `kubectl exec` and the kubelet's exec probes cost. In one running
//! container, `true` run N times by ExecSync, then N times by Exec through the runtime's streaming
//! server over SPDY (the CRI call, the upgrade, the streams, the exit status: all a client waits
//! for). One call at a time.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use k8s_cri::v1 as cri;

use crate::bench::args::RunArgs;
use crate::bench::pods::{self, create_request, make_log_dirs, pod_config, Namer};
use crate::bench::stats::Recorder;
use crate::cri::CriClients;
use crate::stream::{Remote, Transport, Wanted};

/// Runs before the timed ones (first connections, first helper processes).
const WARMUP: usize = 3;

pub async fn measure(cri: &mut CriClients, args: &RunArgs, names: &mut Namer, rec: &mut Recorder) -> Result<()> {
    let rt = &mut cri.runtime;
    let pod = pod_config(&names.next("exec"), args.log_dir.as_deref());
    let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.context("RunPodSandbox")?.into_inner().pod_sandbox_id;
    make_log_dirs(&pod, "c")?;
    let id = rt.create_container(create_request(&pod_id, &pod, "c", &args.image)).await.context("CreateContainer")?.into_inner().container_id;
    rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.context("StartContainer")?;
    let measured = async {
        for sample in 0..WARMUP + args.samples {
            let mut warm = Recorder::default();
            let rec: &mut Recorder = if sample < WARMUP { &mut warm } else { &mut *rec };
            let answer = rec.time("ExecSync true", rt.exec_sync(cri::ExecSyncRequest { container_id: id.clone(), cmd: vec!["true".into()], timeout: 10 })).await?;
            if answer.exit_code != 0 {
                bail!("ExecSync true exited {}: {}", answer.exit_code, String::from_utf8_lossy(&answer.stderr));
            }
        }
        let wanted = Wanted { stdout: true, stderr: true, ..Default::default() };
        for sample in 0..WARMUP + args.samples {
            let started = Instant::now();
            let req = cri::ExecRequest { container_id: id.clone(), cmd: vec!["true".into()], tty: false, stdin: false, stdout: true, stderr: true };
            let url = rt.exec(req).await.context("Exec")?.into_inner().url;
            let done = Remote::connect(&url, &Transport::spdy(), wanted).await?.finish().await?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let code = done.exit_code().with_context(|| format!("the exec's status: {:?}", done.error))?;
            if code != 0 {
                bail!("the streamed exec of true exited {code}");
            }
            if sample >= WARMUP {
                rec.push("Exec true (SPDY)", ms);
            }
        }
        Ok(())
    }
    .await;
    pods::remove_all(rt).await?;
    measured
}
