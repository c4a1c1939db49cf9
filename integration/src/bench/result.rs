//! One run's result, as the JSON `--output json` writes and `compare` reads.

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::bench::memory::Mem;
use crate::bench::stats::Summary;
use crate::bench::timings::StageMedian;

#[derive(Clone, Debug, PartialEq)]
pub struct OpResult {
    pub op: String,
    pub summary: Summary,
    /// Remarks on what was present while timing (100 containers for ListContainers).
    pub note: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemoryResult {
    pub pods: usize,
    /// Running containers in each pod.
    pub containers_per_pod: usize,
    /// Wall time to run the pods and start their containers, one after the other.
    pub start_ms: f64,
    /// The daemon before any pod ran (its images pulled).
    pub idle: Mem,
    pub daemon: Mem,
    pub shim_name: String,
    pub shims: usize,
    pub shims_mem: Mem,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Version's runtime_name and runtime_version.
    pub runtime: String,
    pub samples: usize,
    pub ops: Vec<OpResult>,
    pub stages: Vec<StageMedian>,
    /// Verbose statuses that held timings; 0 for a runtime that reports none.
    pub stage_reports: usize,
    pub stage_error: Option<String>,
    pub memory: Option<MemoryResult>,
}

fn mem_json(m: &Mem) -> Value {
    json!({"rss_kb": m.rss_kb, "pss_kb": m.pss_kb, "pss_anon_kb": m.pss_anon_kb})
}

fn field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Value> {
    v.get(key).ok_or_else(|| anyhow!("{what} has no {key:?}"))
}

fn num(v: &Value, key: &str, what: &str) -> Result<f64> {
    field(v, key, what)?.as_f64().ok_or_else(|| anyhow!("{what}: {key:?} is not a number"))
}

fn count(v: &Value, key: &str, what: &str) -> Result<u64> {
    field(v, key, what)?.as_u64().ok_or_else(|| anyhow!("{what}: {key:?} is not a count"))
}

fn text(v: &Value, key: &str, what: &str) -> Result<String> {
    Ok(field(v, key, what)?.as_str().ok_or_else(|| anyhow!("{what}: {key:?} is not text"))?.to_string())
}

fn list<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Vec<Value>> {
    field(v, key, what)?.as_array().ok_or_else(|| anyhow!("{what}: {key:?} is not a list"))
}

fn mem_from(v: &Value, what: &str) -> Result<Mem> {
    let pss_kb = count(v, "pss_kb", what)?;
    // Results of before the split count all of it as anonymous.
    let pss_anon_kb = v.get("pss_anon_kb").and_then(Value::as_u64).unwrap_or(pss_kb);
    Ok(Mem { rss_kb: count(v, "rss_kb", what)?, pss_kb, pss_anon_kb })
}

impl RunResult {
    pub fn to_json(&self) -> Value {
        json!({
            "runtime": self.runtime,
            "samples": self.samples,
            "ops": self.ops.iter().map(|o| json!({"op": o.op, "n": o.summary.n, "p50_ms": o.summary.p50, "p95_ms": o.summary.p95, "note": o.note})).collect::<Vec<_>>(),
            "stage_timings": self.stages.iter().map(|s| json!({"phase": s.phase, "stage": s.stage, "n": s.n, "p50_ms": s.p50})).collect::<Vec<_>>(),
            "stage_reports": self.stage_reports,
            "stage_error": self.stage_error,
            "memory": self.memory.as_ref().map(|m| json!({
                "pods": m.pods, "containers_per_pod": m.containers_per_pod, "start_ms": m.start_ms, "idle": mem_json(&m.idle), "daemon": mem_json(&m.daemon),
                "shim_name": m.shim_name, "shims": m.shims, "shims_mem": mem_json(&m.shims_mem),
            })),
        })
    }

    pub fn from_json(v: &Value) -> Result<RunResult> {
        let ops = list(v, "ops", "the result")?
            .iter()
            .map(|o| {
                let op = text(o, "op", "an op")?;
                let what = format!("op {op}");
                let summary = Summary { n: count(o, "n", &what)? as usize, p50: num(o, "p50_ms", &what)?, p95: num(o, "p95_ms", &what)? };
                Ok(OpResult { summary, note: o.get("note").and_then(Value::as_str).unwrap_or_default().to_string(), op })
            })
            .collect::<Result<_>>()?;
        let stages = list(v, "stage_timings", "the result")?
            .iter()
            .map(|s| Ok(StageMedian { phase: text(s, "phase", "a stage")?, stage: text(s, "stage", "a stage")?, n: count(s, "n", "a stage")? as usize, p50: num(s, "p50_ms", "a stage")? }))
            .collect::<Result<_>>()?;
        let memory = match v.get("memory") {
            None | Some(Value::Null) => None,
            Some(m) => Some(MemoryResult {
                pods: count(m, "pods", "memory")? as usize,
                // Results of before the flag existed ran one container per pod.
                containers_per_pod: m.get("containers_per_pod").and_then(Value::as_u64).unwrap_or(1) as usize,
                start_ms: num(m, "start_ms", "memory")?,
                idle: mem_from(field(m, "idle", "memory")?, "memory idle")?,
                daemon: mem_from(field(m, "daemon", "memory")?, "memory daemon")?,
                shim_name: text(m, "shim_name", "memory")?,
                shims: count(m, "shims", "memory")? as usize,
                shims_mem: mem_from(field(m, "shims_mem", "memory")?, "memory shims")?,
            }),
        };
        Ok(RunResult {
            runtime: text(v, "runtime", "the result")?,
            samples: count(v, "samples", "the result")? as usize,
            ops,
            stages,
            stage_reports: count(v, "stage_reports", "the result")? as usize,
            stage_error: v.get("stage_error").and_then(Value::as_str).map(String::from),
            memory,
        })
    }

    pub fn read(path: &std::path::Path) -> Result<RunResult> {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON (a run's --output json)", path.display()))?;
        RunResult::from_json(&v).with_context(|| format!("read the result in {}", path.display()))
    }

    pub fn op(&self, name: &str) -> Option<&OpResult> {
        self.ops.iter().find(|o| o.op == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(runtime: &str, scale: f64, stages: bool) -> RunResult {
        RunResult {
            runtime: runtime.into(),
            samples: 5,
            ops: vec![
                OpResult { op: "RunPodSandbox".into(), summary: Summary { n: 5, p50: 90.0 * scale, p95: 120.0 * scale }, note: String::new() },
                OpResult { op: "ListContainers".into(), summary: Summary { n: 5, p50: 1.5 * scale, p95: 2.0 * scale }, note: "100 containers".into() },
            ],
            stages: if stages { vec![StageMedian { phase: "run".into(), stage: "pin".into(), n: 5, p50: 4.9 }] } else { Vec::new() },
            stage_reports: if stages { 5 } else { 0 },
            stage_error: None,
            memory: Some(MemoryResult {
                pods: 10,
                containers_per_pod: 1,
                start_ms: 2200.0 * scale,
                idle: Mem { rss_kb: 40_000, pss_kb: 39_000, pss_anon_kb: 20_000 },
                daemon: Mem { rss_kb: 54_000, pss_kb: 53_000, pss_anon_kb: 30_000 },
                shim_name: "containerd-shim-runc-v2".into(),
                shims: 10,
                shims_mem: Mem { rss_kb: 134_000, pss_kb: 37_000, pss_anon_kb: 25_000 },
            }),
        }
    }

    #[test]
    fn a_result_reads_back_as_written() {
        for r in [sample("containerd 1.6.20", 1.0, false), sample("skiff 0.1.0", 0.25, true), RunResult { memory: None, stage_error: Some("bad".into()), ..sample("x", 1.0, false) }] {
            let text = serde_json::to_string(&r.to_json()).expect("json");
            assert_eq!(RunResult::from_json(&serde_json::from_str(&text).expect("parse")).expect("read"), r);
        }
    }

    #[test]
    fn a_broken_result_names_what_is_wrong() {
        let mut v = sample("c", 1.0, false).to_json();
        v["ops"][1]["p95_ms"] = json!("slow");
        let err = RunResult::from_json(&v).expect_err("broken").to_string();
        assert!(err.contains("op ListContainers: \"p95_ms\" is not a number"), "{err}");
        assert!(RunResult::from_json(&json!({"runtime": "c"})).expect_err("empty").to_string().contains("has no \"ops\""));
    }
}
