//! One supervisor per pod: the containers of a pod share one skiff-shim, which outlives a killed
//! skiffd with all of them, serves each after the restart, survives the removal of any but the
//! last, and ends with the last; a container of another pod has a shim of its own.

use std::path::Path;
use std::time::Duration;

use skiff_integration::cri::{container_config, container_status, cri, exec, path_goes, pod_config, remove_pod, run_container, run_pod, runtime, shutdown_clean, start_with_busybox, Harness};
use skiff_integration::mounts_left_under;

const IMAGE: &str = "localhost/cri/supervised:1";
const SLEEPER: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

fn shim_of(h: &Harness, container: &str) -> String {
    std::fs::read_to_string(h.root().join("containers").join(container).join("shim.pid")).expect("shim.pid")
}

/// skiff-shim processes whose command line names this skiffd's root.
fn shims_under(root: &Path) -> Vec<u32> {
    let root = root.display().to_string();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
            !zombie && args.first().is_some_and(|a| a == "skiff-shim") && args.iter().any(|a| a.contains(&root)) && !args.iter().any(|a| a == "zygote")
        })
        .collect();
    pids.sort_unstable();
    pids
}

async fn shims_settle(root: &Path, want: usize) -> Vec<u32> {
    for _ in 0..100 {
        let found = shims_under(root);
        if found.len() == want {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shims_under(root)
}

#[test]
fn a_pods_containers_share_one_shim_that_outlives_a_killed_skiffd() {
    let mut h = start_with_busybox(IMAGE).expect("skiffd");
    let rt = runtime();
    let (pod, web, side, other_pod, other) = rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        let config = pod_config("shared");
        let pod = run_pod(&mut c, &config).await.expect("pod");
        let web = run_container(&mut c, &pod, &config, container_config("web", IMAGE, SLEEPER)).await.expect("web");
        let side = run_container(&mut c, &pod, &config, container_config("side", IMAGE, SLEEPER)).await.expect("side");
        let other_config = pod_config("alone");
        let other_pod = run_pod(&mut c, &other_config).await.expect("other pod");
        let other = run_container(&mut c, &other_pod, &other_config, container_config("solo", IMAGE, SLEEPER)).await.expect("solo");
        (pod, web, side, other_pod, other)
    });
    assert_eq!(shim_of(&h, &web), shim_of(&h, &side), "one shim for the pod's two containers");
    assert_ne!(shim_of(&h, &web), shim_of(&h, &other), "another pod, another shim");
    let pod_shim = shim_of(&h, &web);

    h.kill9();
    h.restart().expect("restart");
    rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        assert_eq!(shims_settle(h.root(), 2).await.len(), 2, "the shims outlived skiffd");
        for id in [&web, &side] {
            let st = container_status(&mut c, id).await.expect("status");
            assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32, "{id} runs on after the restart");
            let (code, out, _) = exec(&mut c, id, &["echo", "here"]).await.expect("exec after the restart");
            assert_eq!((code, out.as_str()), (0, "here\n"));
        }
        assert_eq!(shim_of(&h, &side), pod_shim, "the same shim serves the pod after the restart");

        // Removing one container leaves the shim to the other; a new container joins it.
        c.stop_container(cri::StopContainerRequest { container_id: web.clone(), timeout: 5 }).await.expect("stop web");
        c.remove_container(cri::RemoveContainerRequest { container_id: web.clone() }).await.expect("remove web");
        let (code, _, _) = exec(&mut c, &side, &["true"]).await.expect("side still served");
        assert_eq!(code, 0);
        let config = pod_config("shared");
        let late = run_container(&mut c, &pod, &config, container_config("late", IMAGE, SLEEPER)).await.expect("late");
        assert_eq!(shim_of(&h, &late), pod_shim, "a later container is adopted by the pod's shim");

        remove_pod(&mut c, &pod).await.expect("remove the pod");
        let left = shims_settle(h.root(), 1).await;
        assert_eq!(left.len(), 1, "the pod's shim ended with its last container: {left:?}");
        // Its dir goes when the removal's sweep (after the answer) finds it idle.
        assert!(path_goes(&h.root().join("supervisors").join(&pod), Duration::from_secs(5)).await, "and its group dir went");
        remove_pod(&mut c, &other_pod).await.expect("remove the other pod");
        assert!(shims_settle(h.root(), 0).await.is_empty(), "no shim left");
    });
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}

#[test]
fn a_pods_supervisor_starts_with_the_pod_and_ends_with_it_when_no_container_came() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    let rt = runtime();
    rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        let config = pod_config("early");
        let pod = run_pod(&mut c, &config).await.expect("pod");
        // Started while the pod's network was set up, before any container.
        let group = h.root().join("supervisors").join(&pod);
        let early = std::fs::read_to_string(group.join("shim.pid")).expect("the pod's supervisor is up with the pod").trim().to_string();
        assert_eq!(shims_under(h.root()).len(), 1, "one supervisor for the pod");
        let web = run_container(&mut c, &pod, &config, container_config("web", IMAGE, SLEEPER)).await.expect("web");
        assert_eq!(shim_of(&h, &web).trim(), early, "the first container's start found it waiting");
        remove_pod(&mut c, &pod).await.expect("remove the pod");
        assert!(shims_settle(h.root(), 0).await.is_empty(), "it ended with its last container");

        // A pod that never gets a container: its supervisor ends when the pod stops.
        let idle = run_pod(&mut c, &pod_config("idle")).await.expect("idle pod");
        assert_eq!(shims_settle(h.root(), 1).await.len(), 1, "the idle pod's supervisor");
        c.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: idle.clone() }).await.expect("stop the idle pod");
        assert!(shims_settle(h.root(), 0).await.is_empty(), "ended with the pod's stop");
        remove_pod(&mut c, &idle).await.expect("remove the idle pod");
        assert!(!h.root().join("supervisors").join(&idle).exists(), "and its group dir went");
    });
    shutdown_clean(h);
}
