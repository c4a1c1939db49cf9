//! Percentiles of timing samples, and the recorder the driver times its calls with.

use std::future::Future;
use std::time::Instant;

use anyhow::{anyhow, Result};

/// The nearest-rank percentile `p` (0-100] of `sorted` (ascending): the smallest sample with at
/// least p% of the samples at or below it, as `hack/bench`'s `percentiles` computes it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// p50 and p95 of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
}

pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Summary { n: sorted.len(), p50: percentile(&sorted, 50.0)?, p95: percentile(&sorted, 95.0)? })
}

/// Wall times in ms per operation, in the order the operations were first timed.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: Vec<(&'static str, Vec<f64>)>,
}

impl Recorder {
    /// Awaits one CRI call and records its wall time under `op`; a failed call is an error
    /// naming `op` and records nothing.
    pub async fn time<R, F>(&mut self, op: &'static str, call: F) -> Result<R>
    where
        F: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let started = Instant::now();
        let answer = call.await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let answer = answer.map_err(|status| anyhow!("{op} failed: {:?}: {}", status.code(), status.message()))?;
        self.push(op, ms);
        Ok(answer.into_inner())
    }

    pub fn push(&mut self, op: &'static str, ms: f64) {
        match self.ops.iter_mut().find(|(name, _)| *name == op) {
            Some((_, samples)) => samples.push(ms),
            None => self.ops.push((op, vec![ms])),
        }
    }

    /// Each operation with the summary of its samples.
    pub fn summaries(&self) -> Vec<(&'static str, Summary)> {
        self.ops.iter().filter_map(|(op, samples)| Some((*op, summarize(samples)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_match_the_shell_helper() {
        let samples: Vec<f64> = (1..=50).map(f64::from).collect();
        // hack/bench: i50 = int((50*50+99)/100) = 25, i95 = int((50*95+99)/100) = 48
        assert_eq!(summarize(&samples), Some(Summary { n: 50, p50: 25.0, p95: 48.0 }));
        assert_eq!(summarize(&[7.0]), Some(Summary { n: 1, p50: 7.0, p95: 7.0 }));
        let five = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(summarize(&five), Some(Summary { n: 5, p50: 3.0, p95: 5.0 }), "unsorted input is sorted first");
        assert_eq!(summarize(&[]), None);
        assert_eq!(percentile(&[1.0], 0.0), None);
    }

    #[test]
    fn recorder_keeps_first_seen_order_and_groups_by_op() {
        let mut r = Recorder::default();
        for (op, ms) in [("B", 2.0), ("A", 1.0), ("B", 4.0), ("A", 3.0), ("B", 6.0)] {
            r.push(op, ms);
        }
        let got = r.summaries();
        assert_eq!(got.iter().map(|(op, s)| (*op, s.n, s.p50)).collect::<Vec<_>>(), [("B", 3, 4.0), ("A", 2, 1.0)]);
    }

    #[test]
    fn a_failed_call_is_an_error_naming_the_op_and_is_not_recorded() {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut r = Recorder::default();
        let err = rt.block_on(r.time("PullImage", async { Err::<tonic::Response<()>, _>(tonic::Status::not_found("no such image")) })).expect_err("fails");
        assert!(err.to_string().contains("PullImage failed: NotFound: no such image"), "{err}");
        rt.block_on(r.time("ListImages", async { Ok(tonic::Response::new(())) })).expect("ok");
        assert_eq!(r.summaries().iter().map(|(op, _)| *op).collect::<Vec<_>>(), ["ListImages"]);
    }
}
