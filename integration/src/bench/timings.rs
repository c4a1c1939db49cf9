//! The per-stage timings a runtime reports in a verbose status: `info["timings"]`, a JSON object
//! of phases, each a list of `{"stage": TEXT, "ms": NUMBER}` (skiffd's `{"run": [...], "stop":
//! [...]}` for a pod, `{"create": [...], "start": [...]}` for a container). Runtimes without it
//! (containerd) answer no such key, which is not an error.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use crate::bench::stats::summarize;

/// The key of the verbose info holding the timings.
pub const KEY: &str = "timings";

/// One stage's time in one report.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub phase: String,
    pub stage: String,
    pub ms: f64,
}

/// Parses one `info["timings"]` document.
pub fn parse(text: &str) -> Result<Vec<Stage>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| anyhow!("timings are not JSON: {e}"))?;
    let Value::Object(phases) = doc else { bail!("timings must be a JSON object of phases") };
    let mut stages = Vec::new();
    for (phase, list) in phases {
        let Value::Array(list) = list else { bail!("timings phase {phase:?} must be a list") };
        for entry in list {
            let stage = entry.get("stage").and_then(Value::as_str).ok_or_else(|| anyhow!("a timing of phase {phase:?} has no \"stage\" text: {entry}"))?;
            let ms = entry.get("ms").and_then(Value::as_f64).ok_or_else(|| anyhow!("timing {stage:?} of phase {phase:?} has no \"ms\" number: {entry}"))?;
            stages.push(Stage { phase: phase.clone(), stage: stage.to_string(), ms });
        }
    }
    Ok(stages)
}

/// The median of each (phase, stage) over the reports collected.
#[derive(Clone, Debug, PartialEq)]
pub struct StageMedian {
    pub phase: String,
    pub stage: String,
    pub n: usize,
    pub p50: f64,
}

/// Timings collected over a run, stages in the order first seen.
#[derive(Debug, Default)]
pub struct Collector {
    stages: Vec<((String, String), Vec<f64>)>,
    /// Reports that held timings.
    pub reports: usize,
    /// The first report that could not be read, if any (the run goes on without it).
    pub malformed: Option<String>,
}

impl Collector {
    /// Adds the timings of one verbose status's info, when it has any.
    pub fn add(&mut self, info: &HashMap<String, String>) {
        let Some(text) = info.get(KEY) else { return };
        match parse(text) {
            Ok(stages) => {
                self.reports += 1;
                for s in stages {
                    let key = (s.phase, s.stage);
                    match self.stages.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, values)) => values.push(s.ms),
                        None => self.stages.push((key, vec![s.ms])),
                    }
                }
            }
            Err(e) => {
                self.malformed.get_or_insert_with(|| format!("{e}"));
            }
        }
    }

    pub fn medians(&self) -> Vec<StageMedian> {
        self.stages
            .iter()
            .filter_map(|((phase, stage), values)| Some(StageMedian { phase: phase.clone(), stage: stage.clone(), n: values.len(), p50: summarize(values)?.p50 }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> HashMap<String, String> {
        HashMap::from([(KEY.to_string(), text.to_string()), ("info".to_string(), "{}".to_string())])
    }

    #[test]
    fn medians_per_phase_and_stage_in_the_order_reported() {
        let mut c = Collector::default();
        c.add(&info(r#"{"run":[{"stage":"pin","ms":4.0},{"stage":"cni bridge ADD","ms":12.0}],"stop":[{"stage":"cni DEL","ms":40}]}"#));
        c.add(&info(r#"{"run":[{"stage":"pin","ms":6.0},{"stage":"cni bridge ADD","ms":10.0}],"stop":[{"stage":"cni DEL","ms":44}]}"#));
        c.add(&info(r#"{"run":[{"stage":"pin","ms":5.0}]}"#));
        let got: Vec<(String, String, usize, f64)> = c.medians().into_iter().map(|m| (m.phase, m.stage, m.n, m.p50)).collect();
        assert_eq!(
            got,
            [("run".into(), "pin".into(), 3, 5.0), ("run".into(), "cni bridge ADD".into(), 2, 10.0), ("stop".into(), "cni DEL".into(), 2, 40.0)]
        );
        assert_eq!((c.reports, c.malformed), (3, None));
    }

    #[test]
    fn a_runtime_without_timings_adds_nothing() {
        let mut c = Collector::default();
        c.add(&HashMap::from([("info".to_string(), r#"{"pid":1}"#.to_string())]));
        c.add(&HashMap::new());
        assert_eq!((c.reports, c.medians().len(), c.malformed), (0, 0, None));
    }

    #[test]
    fn malformed_timings_are_noted_not_fatal() {
        for (text, needle) in [
            ("not json", "not JSON"),
            (r#"[1,2]"#, "JSON object of phases"),
            (r#"{"run":{"pin":1}}"#, "phase \"run\" must be a list"),
            (r#"{"run":[{"ms":1}]}"#, "no \"stage\" text"),
            (r#"{"run":[{"stage":"pin","ms":"fast"}]}"#, "timing \"pin\" of phase \"run\" has no \"ms\" number"),
        ] {
            let mut c = Collector::default();
            c.add(&info(text));
            let noted = c.malformed.clone().unwrap_or_default();
            assert!(noted.contains(needle), "{text}: {noted}");
            assert_eq!(c.reports, 0);
        }
    }
}
