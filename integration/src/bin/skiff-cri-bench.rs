//! `skiff-cri-bench`: times the kubelet's CRI calls against a runtime on a unix socket (skiffd,
//! containerd, any other), one call at a time, and prints p50/p95 per call, the stage timings the
//! runtime reports in its verbose statuses, and the memory of the daemon and its supervisors.
//! `compare` prints two runs' results side by side. `hack/bench cri` drives it; see
//! skiff_integration::bench.

use anyhow::Result;
use skiff_integration::bench::args::{self, Command, Output};
use skiff_integration::bench::result::RunResult;
use skiff_integration::bench::{compare, driver, pods};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match args::parse(std::env::args().skip(1))? {
        Command::Help => println!("{}", args::USAGE),
        Command::Run(run) => {
            let result = driver::run(&run).await?;
            match run.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&result.to_json())?),
                Output::Text => print!("{}", compare::one(&result)),
            }
        }
        Command::Cleanup { endpoint } => {
            let mut cri = skiff_integration::cri::connect(&endpoint).await?;
            let removed = pods::remove_all(&mut cri.runtime).await?;
            if removed > 0 {
                eprintln!("skiff-cri-bench: removed {removed} pods left on {}", endpoint.display());
            }
        }
        Command::Compare { baseline, candidate, goal } => print!("{}", compare::render(&RunResult::read(&baseline)?, &RunResult::read(&candidate)?, goal)),
    }
    Ok(())
}
