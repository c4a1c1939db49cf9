//! The CRI benchmark behind `hack/bench cri` (the `skiff-cri-bench` binary): the kubelet's calls
//! timed one at a time against any CRI runtime on a unix socket, the per-stage timings a runtime
//! reports in its verbose statuses, and the memory of the daemon and its per-pod supervisors.
//! A run writes one JSON result; `compare` prints two results side by side, so both runtimes are
//! measured with the same client, pods and images.

pub mod args;
pub mod compare;
pub mod driver;
pub mod exec;
pub mod memory;
pub mod pods;
pub mod result;
pub mod stats;
pub mod timings;
