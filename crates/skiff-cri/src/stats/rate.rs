//! CPU use as a rate (nanocores: 10^9 is one core busy), from the cumulative CPU time of two
//! samples of one cgroup. The previous sample of each container and pod is kept in memory; the
//! first sample has no rate, as with containerd (the kubelet computes one itself then).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug)]
struct Point {
    /// Nanoseconds since the epoch.
    at: i64,
    usage_ns: u64,
    rate: Option<u64>,
}

#[derive(Default)]
pub struct Rates {
    last: Mutex<HashMap<String, Point>>,
}

impl Rates {
    /// The rate between the previous sample of `id` and this one (taken at `at`, `usage_ns` of CPU
    /// time in all), which becomes the previous one. A sample not newer than the kept one (two
    /// calls at once) gets the kept rate and is dropped; a usage below the kept one (a counter
    /// that restarted) starts again without a rate.
    pub fn nano_cores(&self, id: &str, at: i64, usage_ns: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let rate = match last.get(id) {
            Some(prev) if at <= prev.at => return prev.rate,
            Some(prev) if usage_ns >= prev.usage_ns => {
                let used = u128::from(usage_ns - prev.usage_ns);
                let elapsed = (at - prev.at) as u128;
                Some(u64::try_from(used * 1_000_000_000 / elapsed).unwrap_or(u64::MAX))
            }
            _ => None,
        };
        last.insert(id.to_string(), Point { at, usage_ns, rate });
        rate
    }

    /// Forgets the samples of what is gone.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).retain(|id, _| live(id));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::Rates;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn the_first_sample_has_no_rate_the_next_one_does() {
        let rates = Rates::default();
        assert_eq!(rates.nano_cores("a", 10 * SEC, 5_000_000_000), None);
        // Half a core for two seconds: one second of CPU.
        assert_eq!(rates.nano_cores("a", 12 * SEC, 6_000_000_000), Some(500_000_000));
        // Two cores busy.
        assert_eq!(rates.nano_cores("a", 13 * SEC, 8_000_000_000), Some(2_000_000_000));
        // Idle.
        assert_eq!(rates.nano_cores("a", 14 * SEC, 8_000_000_000), Some(0));
    }

    #[test]
    fn containers_are_kept_apart() {
        let rates = Rates::default();
        assert_eq!(rates.nano_cores("a", SEC, 0), None);
        assert_eq!(rates.nano_cores("b", SEC, 0), None, "b's first sample, whatever a has");
        assert_eq!(rates.nano_cores("a", 2 * SEC, SEC as u64), Some(1_000_000_000));
        assert_eq!(rates.nano_cores("b", 2 * SEC, 250_000_000), Some(250_000_000));
    }

    #[test]
    fn a_sample_not_newer_keeps_the_rate_and_the_point() {
        let rates = Rates::default();
        rates.nano_cores("a", 10 * SEC, 0);
        assert_eq!(rates.nano_cores("a", 11 * SEC, 1_000_000_000), Some(1_000_000_000));
        assert_eq!(rates.nano_cores("a", 11 * SEC, 1_000_000_500), Some(1_000_000_000), "same instant: no division by zero");
        assert_eq!(rates.nano_cores("a", 10 * SEC, 2_000_000_000), Some(1_000_000_000), "older: ignored");
        // The rate is against the kept point (11 s, 1 s of CPU), not the ignored ones.
        assert_eq!(rates.nano_cores("a", 12 * SEC, 1_500_000_000), Some(500_000_000));
    }

    #[test]
    fn a_counter_that_went_back_starts_over() {
        let rates = Rates::default();
        rates.nano_cores("a", SEC, 9_000_000_000);
        assert_eq!(rates.nano_cores("a", 2 * SEC, 1_000), None);
        assert_eq!(rates.nano_cores("a", 3 * SEC, 1_000 + 100_000_000), Some(100_000_000));
    }

    #[test]
    fn what_is_gone_is_forgotten() {
        let rates = Rates::default();
        rates.nano_cores("a", SEC, 0);
        rates.nano_cores("b", SEC, 0);
        rates.retain(|id| id == "b");
        assert_eq!(rates.len(), 1);
        assert_eq!(rates.nano_cores("a", 2 * SEC, 10), None, "a starts over");
    }
}
