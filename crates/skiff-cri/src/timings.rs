//! Where the time of a sandbox's or a container's lifecycle calls went, stage by stage (pinning
//! the namespaces, each CNI plugin, the record writes, the shim), kept in memory for the last
//! call of each phase and shown in the `verbose` info of PodSandboxStatus and ContainerStatus as
//!
//! ```text
//! info["timings"] = {"run": [{"stage": "pin", "ms": 4.9}, {"stage": "cni bridge ADD", "ms": 12.1}, ...], "stop": [...]}
//! ```
//!
//! so that a benchmark can show Skiff's own time beside the plugins' without reading logs. Not
//! persisted: after a restart an object shows the phases it went through since.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use skiff_cni::PluginTiming;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stage {
    pub stage: String,
    pub ms: f64,
}

/// Laps of one call: each stage is the time since the previous lap.
pub struct Stopwatch {
    last: Instant,
    stages: Vec<Stage>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch { last: Instant::now(), stages: Vec::new() }
    }

    /// Ends a stage named `stage` now.
    pub fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        self.stages.push(Stage { stage: stage.to_string(), ms: ms(now - self.last) });
        self.last = now;
    }

    /// Ends a stage that ran CNI plugins: one stage per plugin, and what the invoker itself took
    /// around them (config loading, the cache, locks) as `cni <command> (skiff)`.
    pub fn lap_plugins(&mut self, command: &str, plugins: &[PluginTiming]) {
        let now = Instant::now();
        let total = now - self.last;
        let mut spent = Duration::ZERO;
        for t in plugins {
            self.stages.push(Stage { stage: format!("cni {} {command}", t.plugin), ms: ms(t.duration) });
            spent += t.duration;
        }
        self.stages.push(Stage { stage: format!("cni {command} (skiff)"), ms: ms(total.saturating_sub(spent)) });
        self.last = now;
    }

    pub fn stages(self) -> Vec<Stage> {
        self.stages
    }
}

/// The last call's stages of each phase, per object id.
#[derive(Default)]
pub struct Timings {
    by_id: Mutex<HashMap<String, BTreeMap<&'static str, Vec<Stage>>>>,
}

impl Timings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<&'static str, Vec<Stage>>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, id: &str, phase: &'static str, watch: Stopwatch) {
        self.lock().entry(id.to_string()).or_default().insert(phase, watch.stages());
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The JSON the verbose info carries; None when nothing was timed.
    pub fn json(&self, id: &str) -> Option<String> {
        let map = self.lock();
        let phases = map.get(id)?;
        serde_json::to_string(phases).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_and_plugins_add_up_to_the_call() {
        let mut w = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(5));
        w.lap("pin");
        let plugins = [
            PluginTiming { plugin: "bridge".into(), command: skiff_cni::Command::Add, duration: Duration::from_millis(3) },
            PluginTiming { plugin: "portmap".into(), command: skiff_cni::Command::Add, duration: Duration::from_millis(2) },
        ];
        std::thread::sleep(Duration::from_millis(6));
        w.lap_plugins("ADD", &plugins);
        let stages = w.stages();
        let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["pin", "cni bridge ADD", "cni portmap ADD", "cni ADD (skiff)"]);
        assert!(stages[0].ms >= 5.0, "{stages:?}");
        assert_eq!((stages[1].ms, stages[2].ms), (3.0, 2.0));
        // The invoker's own share is what the plugins did not take of the lap.
        assert!(stages[3].ms >= 1.0 && stages[3].ms < 50.0, "{stages:?}");
    }

    #[test]
    fn the_last_call_of_each_phase_is_kept_until_forgotten() {
        let t = Timings::default();
        assert_eq!(t.json("a"), None);
        let mut w = Stopwatch::start();
        w.lap("first");
        t.record("a", "run", w);
        let mut w = Stopwatch::start();
        w.lap("second");
        t.record("a", "run", w);
        let mut w = Stopwatch::start();
        w.lap("kill");
        t.record("a", "stop", w);
        let doc: serde_json::Value = serde_json::from_str(&t.json("a").expect("timed")).expect("json");
        assert_eq!(doc["run"][0]["stage"], "second");
        assert_eq!(doc["run"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["stop"][0]["stage"], "kill");
        t.forget("a");
        assert_eq!(t.json("a"), None);
    }
}
