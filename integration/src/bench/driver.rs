//! One measuring run against one runtime: every call timed alone (nothing else in flight), in the
//! order the kubelet makes them for a pod's life, then the image calls, the lists with many
//! containers present, and memory with pods running. Any failure removes the pods made so far.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_cri::v1 as cri;

use crate::bench::args::{Calls, RunArgs};
use crate::bench::memory;
use crate::bench::pods::{self, create_request, make_log_dirs, pod_config, Namer};
use crate::bench::result::{MemoryResult, OpResult, RunResult};
use crate::bench::stats::Recorder;
use crate::bench::timings::Collector;
use crate::cri::CriClients;

/// Containers per pod while ListContainers is timed.
const CONTAINERS_PER_POD: usize = 10;

fn image(reference: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: reference.into(), ..Default::default() })
}

struct Run<'a> {
    cri: CriClients,
    args: &'a RunArgs,
    names: Namer,
}

pub async fn run(args: &RunArgs) -> Result<RunResult> {
    let mut cri = crate::cri::connect(&args.endpoint).await.with_context(|| format!("connect to {}", args.endpoint.display()))?;
    let version = cri.runtime.version(cri::VersionRequest::default()).await.context("Version")?.into_inner();
    let mut run = Run { cri, args, names: Namer::new() };
    let measured = run.measure(format!("{} {}", version.runtime_name, version.runtime_version)).await;
    if measured.is_err() {
        // What a failed step left behind; the step's error is the one worth reporting.
        if let Err(e) = pods::remove_all(&mut run.cri.runtime).await {
            eprintln!("skiff-cri-bench: {e:#}");
        }
    }
    measured
}

impl Run<'_> {
    async fn measure(&mut self, runtime: String) -> Result<RunResult> {
        let args = self.args;
        for reference in args.pre_pull.iter().chain([&args.image]) {
            self.ensure_image(reference).await?;
        }
        if args.calls == Calls::Exec {
            let mut rec = Recorder::default();
            crate::bench::exec::measure(&mut self.cri, args, &mut self.names, &mut rec).await?;
            let ops = rec.summaries().into_iter().map(|(op, summary)| OpResult { op: op.to_string(), summary, note: "`true` in a running container".into() }).collect();
            return Ok(RunResult { runtime, samples: args.samples, ops, stages: Vec::new(), stage_reports: 0, stage_error: None, memory: None });
        }
        let idle = match args.daemon_pid {
            Some(pid) => Some(memory::of(pid).context("read the daemon's memory (--daemon-pid)")?),
            None => None,
        };
        let mut rec = Recorder::default();
        let mut timings = Collector::default();
        for _ in 0..args.warmup {
            self.pod_life(&mut Recorder::default(), &mut Collector::default()).await?;
        }
        for _ in 0..args.samples {
            self.pod_life(&mut rec, &mut timings).await?;
        }
        self.images(&mut rec).await?;
        let listed = self.lists(&mut rec).await?;
        let memory = match (args.daemon_pid, idle) {
            (Some(pid), Some(idle)) if args.memory_pods > 0 => Some(self.memory(pid, idle).await?),
            _ => None,
        };
        let ops = rec
            .summaries()
            .into_iter()
            .map(|(op, summary)| {
                let note = match op {
                    "ListContainers" => format!("{listed} containers in {} pods", listed.div_ceil(CONTAINERS_PER_POD)),
                    "ListPodSandbox" => format!("{} pods", listed.div_ceil(CONTAINERS_PER_POD)),
                    "PullImage" => "removed after each".to_string(),
                    // Constant fields: what a call costs the client, the transport and the server's
                    // gRPC stack alone, the floor under every small call.
                    "Version" => "no work: the gRPC round trip".to_string(),
                    _ => String::new(),
                };
                OpResult { op: op.to_string(), summary, note }
            })
            .collect();
        Ok(RunResult { runtime, samples: args.samples, ops, stages: timings.medians(), stage_reports: timings.reports, stage_error: timings.malformed, memory })
    }

    async fn ensure_image(&mut self, reference: &str) -> Result<()> {
        let status = self.cri.images.image_status(cri::ImageStatusRequest { image: image(reference), verbose: false }).await.with_context(|| format!("ImageStatus {reference}"))?;
        if status.into_inner().image.is_none() {
            self.cri.images.pull_image(cri::PullImageRequest { image: image(reference), ..Default::default() }).await.with_context(|| format!("pull {reference}"))?;
        }
        Ok(())
    }

    /// Runs a pod and returns its id and config, checking that CNI gave it an address.
    async fn run_pod(&mut self, rec: &mut Recorder) -> Result<(String, cri::PodSandboxConfig)> {
        let config = pod_config(&self.names.next("bench"), self.args.log_dir.as_deref());
        let id = rec.time("RunPodSandbox", self.cri.runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() })).await?.pod_sandbox_id;
        Ok((id, config))
    }

    /// One pod's life, each call timed: run, status, create, start, status, stop, remove the
    /// container, stop and remove the pod. The verbose statuses that carry stage timings are
    /// asked outside the timed calls.
    async fn pod_life(&mut self, rec: &mut Recorder, timings: &mut Collector) -> Result<()> {
        let rt = &mut self.cri.runtime.clone();
        let (pod_id, pod) = self.run_pod(rec).await?;
        let status = rec.time("PodSandboxStatus", rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: pod_id.clone(), verbose: false })).await?;
        let ip = status.status.as_ref().and_then(|s| s.network.as_ref()).map(|n| n.ip.clone()).unwrap_or_default();
        if ip.is_empty() {
            bail!("pod {pod_id} has no IP address: the runtime did not run CNI (check its CNI config)");
        }
        make_log_dirs(&pod, "c")?;
        let id = rec.time("CreateContainer", rt.create_container(create_request(&pod_id, &pod, "c", &self.args.image))).await?.container_id;
        rec.time("StartContainer", rt.start_container(cri::StartContainerRequest { container_id: id.clone() })).await?;
        let status = rec.time("ContainerStatus", rt.container_status(cri::ContainerStatusRequest { container_id: id.clone(), verbose: false })).await?;
        if status.status.as_ref().map(|s| s.state) != Some(cri::ContainerState::ContainerRunning as i32) {
            bail!("container {id} is not running after StartContainer: {:?}", status.status);
        }
        let verbose = rt.container_status(cri::ContainerStatusRequest { container_id: id.clone(), verbose: true }).await.context("verbose ContainerStatus")?;
        timings.add(&verbose.into_inner().info);
        pods::wait_ready(&pod, "c").await?;
        rec.time("StopContainer", rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 2 })).await?;
        rec.time("RemoveContainer", rt.remove_container(cri::RemoveContainerRequest { container_id: id })).await?;
        rec.time("StopPodSandbox", rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() })).await?;
        let verbose = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: pod_id.clone(), verbose: true }).await.context("verbose PodSandboxStatus")?;
        timings.add(&verbose.into_inner().info);
        rec.time("RemovePodSandbox", rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id })).await?;
        Ok(())
    }

    /// PullImage (removed again after each sample, so each pull fetches), ImageStatus, ListImages.
    async fn images(&mut self, rec: &mut Recorder) -> Result<()> {
        let images = &mut self.cri.images;
        let reference = &self.args.pull_image;
        images.remove_image(cri::RemoveImageRequest { image: image(reference) }).await.with_context(|| format!("remove {reference} before pulling it"))?;
        for sample in 0..=self.args.samples {
            // The first pull warms the connection to the registry and is not counted.
            let mut warm = Recorder::default();
            let rec: &mut Recorder = if sample == 0 { &mut warm } else { &mut *rec };
            let pulled = rec.time("PullImage", images.pull_image(cri::PullImageRequest { image: image(reference), ..Default::default() })).await?;
            if pulled.image_ref.is_empty() {
                bail!("PullImage of {reference} answered no image ref");
            }
            let status = rec.time("ImageStatus", images.image_status(cri::ImageStatusRequest { image: image(reference), verbose: false })).await?;
            if status.image.is_none() {
                bail!("ImageStatus does not find {reference} just pulled");
            }
            rec.time("ListImages", images.list_images(cri::ListImagesRequest::default())).await?;
            rec.time("RemoveImage", images.remove_image(cri::RemoveImageRequest { image: image(reference) })).await?;
        }
        Ok(())
    }

    /// ListContainers and ListPodSandbox with `list_containers` containers (created, not started)
    /// spread over pods of ten; returns how many containers were present.
    async fn lists(&mut self, rec: &mut Recorder) -> Result<usize> {
        let want = self.args.list_containers;
        if want == 0 {
            return Ok(0);
        }
        let rt = &mut self.cri.runtime.clone();
        let mut made = 0;
        while made < want {
            let (pod_id, pod) = self.run_pod(&mut Recorder::default()).await?;
            for _ in 0..CONTAINERS_PER_POD.min(want - made) {
                let name = format!("c{made}");
                make_log_dirs(&pod, &name)?;
                rt.create_container(create_request(&pod_id, &pod, &name, &self.args.image)).await.with_context(|| format!("create container {made} for ListContainers"))?;
                made += 1;
            }
        }
        for _ in 0..self.args.samples {
            let listed = rec.time("ListContainers", rt.list_containers(cri::ListContainersRequest::default())).await?;
            if listed.containers.len() < made {
                bail!("ListContainers answered {} containers of the {made} made", listed.containers.len());
            }
            rec.time("ListPodSandbox", rt.list_pod_sandbox(cri::ListPodSandboxRequest::default())).await?;
            rec.time("Version", rt.version(cri::VersionRequest::default())).await?;
        }
        pods::remove_all(rt).await?;
        Ok(made)
    }

    /// Runs `memory_pods` pods of `memory_containers` running containers each, one after the
    /// other, then reads the daemon's and its supervisors' memory and removes the pods.
    async fn memory(&mut self, pid: u32, idle: memory::Mem) -> Result<MemoryResult> {
        let rt = &mut self.cri.runtime.clone();
        let started = Instant::now();
        for _ in 0..self.args.memory_pods {
            let (pod_id, pod) = self.run_pod(&mut Recorder::default()).await?;
            for n in 0..self.args.memory_containers {
                let name = if n == 0 { "c".to_string() } else { format!("c{n}") };
                make_log_dirs(&pod, &name)?;
                let id = rt.create_container(create_request(&pod_id, &pod, &name, &self.args.image)).await.context("create a container for the memory reading")?.into_inner().container_id;
                rt.start_container(cri::StartContainerRequest { container_id: id }).await.context("start a container for the memory reading")?;
            }
        }
        let start_ms = started.elapsed().as_secs_f64() * 1e3;
        // Steady state, as a node runs: lazily started threads and first allocations settle, and
        // helpers that end after their work (skiff-shim's zygote, 2 s idle) are gone.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let snap = memory::snapshot(pid, self.args.shim_name.as_deref(), self.args.shim_marker.as_deref())?;
        pods::remove_all(rt).await?;
        Ok(MemoryResult { pods: self.args.memory_pods, containers_per_pod: self.args.memory_containers, start_ms, idle, daemon: snap.daemon, shim_name: snap.shim_name, shims: snap.shims, shims_mem: snap.shims_mem })
    }
}
