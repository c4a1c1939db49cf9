//! The command line, parsed by hand: the integration crate carries no argument parser, and the
//! flags are few.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

pub const USAGE: &str = "usage:
  skiff-cri-bench --endpoint unix:///PATH.sock --image REF --pull-image REF [--pre-pull REF]...
      [--samples N] [--warmup N] [--list-containers N] [--memory-pods N] [--memory-containers N] [--log-dir DIR]
      [--daemon-pid PID [--shim-name NAME] [--shim-marker TEXT]] [--calls pods|exec] [--output json|text]
  skiff-cri-bench cleanup --endpoint unix:///PATH.sock
  skiff-cri-bench compare BASELINE.json CANDIDATE.json [--goal RATIO]";

/// Which calls a run times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    /// A pod's life, the image calls, the lists and memory (`hack/bench cri`).
    Pods,
    /// ExecSync and a streamed exec over SPDY in one running container (`hack/bench exec`).
    Exec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Text,
}

/// What one measuring run does.
#[derive(Clone, Debug, PartialEq)]
pub struct RunArgs {
    pub endpoint: PathBuf,
    /// The containers' image (busybox): pulled first when the runtime lacks it.
    pub image: String,
    /// The image PullImage is timed with, removed after each sample.
    pub pull_image: String,
    /// Images pulled before anything is timed (containerd's sandbox image).
    pub pre_pull: Vec<String>,
    pub samples: usize,
    pub warmup: usize,
    /// Containers present while ListContainers is timed.
    pub list_containers: usize,
    /// Running pods while memory is read, and the running containers of each.
    pub memory_pods: usize,
    pub memory_containers: usize,
    /// The pods' log directories go here (the kubelet's /var/log/pods); none: no container logs.
    pub log_dir: Option<PathBuf>,
    pub daemon_pid: Option<u32>,
    /// argv[0] (basename) of the runtime's per-pod or per-container supervisors.
    pub shim_name: Option<String>,
    /// Text one of a supervisor's arguments holds (the daemon's root or socket), so that the
    /// supervisors of other daemons on the host are not counted; their children are counted too.
    pub shim_marker: Option<String>,
    pub calls: Calls,
    pub output: Output,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Run(Box<RunArgs>),
    /// Stops and removes every pod this benchmark made on the endpoint (a failed run's leftovers).
    Cleanup { endpoint: PathBuf },
    /// Prints the baseline's and the candidate's results side by side.
    Compare { baseline: PathBuf, candidate: PathBuf, goal: f64 },
    Help,
}

/// `unix:///run/x.sock` (the kubelet's form) or an absolute path.
pub fn endpoint(text: &str) -> Result<PathBuf> {
    let path = text.strip_prefix("unix://").unwrap_or(text);
    if !path.starts_with('/') {
        bail!("endpoint {text:?} must be unix:///ABSOLUTE/PATH.sock");
    }
    Ok(PathBuf::from(path))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| anyhow!("{flag} takes a number, not {value:?}"))
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args: Vec<String> = args.into_iter().collect();
    let sub = match args.first().map(String::as_str) {
        Some("cleanup") | Some("compare") => Some(args.remove(0)),
        _ => None,
    };
    // `--flag=value` and `--flag value` alike; anything else is a positional argument.
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut positional = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        match arg.strip_prefix("--") {
            Some(flag) => match flag.split_once('=') {
                Some((k, v)) => flags.push((k.to_string(), v.to_string())),
                None => {
                    let value = it.next().with_context(|| format!("--{flag} needs a value"))?;
                    flags.push((flag.to_string(), value));
                }
            },
            None => positional.push(arg),
        }
    }
    let allowed: &[&str] = match sub.as_deref() {
        Some("cleanup") => &["endpoint"],
        Some("compare") => &["goal"],
        _ => &["endpoint", "image", "pull-image", "pre-pull", "samples", "warmup", "list-containers", "memory-pods", "memory-containers", "log-dir", "daemon-pid", "shim-name", "shim-marker", "calls", "output"],
    };
    if let Some((flag, _)) = flags.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        bail!("unknown flag --{flag}\n{USAGE}");
    }
    let last = |name: &str| flags.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let required = |name: &str| last(name).with_context(|| format!("--{name} is required\n{USAGE}"));
    match sub.as_deref() {
        Some("compare") => {
            let [baseline, candidate] = <[String; 2]>::try_from(positional).map_err(|_| anyhow!("compare takes two result files\n{USAGE}"))?;
            let goal = last("goal").map(|g| number::<f64>("--goal", &g)).transpose()?.unwrap_or(3.0);
            if goal.is_nan() || goal <= 0.0 {
                bail!("--goal must be above 0, not {goal}");
            }
            Ok(Command::Compare { baseline: baseline.into(), candidate: candidate.into(), goal })
        }
        _ if !positional.is_empty() => bail!("unexpected argument {:?}\n{USAGE}", positional[0]),
        Some("cleanup") => Ok(Command::Cleanup { endpoint: endpoint(&required("endpoint")?)? }),
        _ => {
            let output = match last("output").as_deref() {
                None | Some("text") => Output::Text,
                Some("json") => Output::Json,
                Some(other) => bail!("--output is json or text, not {other:?}"),
            };
            let calls = match last("calls").as_deref() {
                None | Some("pods") => Calls::Pods,
                Some("exec") => Calls::Exec,
                Some(other) => bail!("--calls is pods or exec, not {other:?}"),
            };
            let count = |name: &str, default: usize| last(name).map(|v| number::<usize>(&format!("--{name}"), &v)).transpose().map(|v| v.unwrap_or(default));
            let samples = count("samples", 50)?;
            if samples == 0 {
                bail!("--samples must be at least 1");
            }
            let shim_name = last("shim-name");
            let daemon_pid = last("daemon-pid").map(|p| number::<u32>("--daemon-pid", &p)).transpose()?;
            if shim_name.is_some() && daemon_pid.is_none() {
                bail!("--shim-name needs --daemon-pid (memory is read for both)");
            }
            Ok(Command::Run(Box::new(RunArgs {
                endpoint: endpoint(&required("endpoint")?)?,
                image: required("image")?,
                pull_image: required("pull-image")?,
                pre_pull: flags.iter().filter(|(k, _)| k == "pre-pull").map(|(_, v)| v.clone()).collect(),
                samples,
                warmup: count("warmup", 2)?,
                list_containers: count("list-containers", 100)?,
                memory_pods: count("memory-pods", 10)?,
                memory_containers: count("memory-containers", 1)?.max(1),
                log_dir: last("log-dir").map(PathBuf::from),
                daemon_pid,
                shim_name,
                shim_marker: last("shim-marker"),
                calls,
                output,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn a_run_takes_the_kubelet_endpoint_form_and_defaults() {
        let Command::Run(run) = parse_str("--endpoint unix:///tmp/c.sock --image b:1 --pull-image=p:1 --pre-pull x:1 --pre-pull y:1 --output json").expect("parse") else {
            panic!("not a run")
        };
        assert_eq!(run.endpoint, PathBuf::from("/tmp/c.sock"));
        assert_eq!((run.image.as_str(), run.pull_image.as_str()), ("b:1", "p:1"));
        assert_eq!(run.pre_pull, ["x:1", "y:1"]);
        assert_eq!((run.samples, run.warmup, run.list_containers, run.memory_pods, run.memory_containers), (50, 2, 100, 10, 1));
        assert_eq!((run.output, run.daemon_pid, run.log_dir), (Output::Json, None, None));
        let Command::Run(run) = parse_str("--endpoint /tmp/c.sock --image b:1 --pull-image p:1 --memory-pods 4 --memory-containers 3").expect("parse") else {
            panic!("not a run")
        };
        assert_eq!((run.memory_pods, run.memory_containers), (4, 3));
    }

    #[test]
    fn bad_flags_are_errors_a_user_can_act_on() {
        for (line, needle) in [
            ("--endpoint tcp://x --image a --pull-image b", "must be unix:///ABSOLUTE/PATH.sock"),
            ("--endpoint /s --image a", "--pull-image is required"),
            ("--endpoint /s --image a --pull-image b --samples many", "--samples takes a number, not \"many\""),
            ("--endpoint /s --image a --pull-image b --samples 0", "at least 1"),
            ("--endpoint /s --image a --pull-image b --colour red", "unknown flag --colour"),
            ("--endpoint /s --image a --pull-image b --output yaml", "json or text"),
            ("--endpoint /s --image a --pull-image b --shim-name skiff-shim", "needs --daemon-pid"),
            ("--endpoint /s --image a --pull-image", "--pull-image needs a value"),
            ("compare one.json", "two result files"),
            ("compare a b --goal -1", "above 0"),
            ("compare a b --goal NaN", "above 0"),
            ("cleanup --endpoint /s --image a", "unknown flag --image"),
        ] {
            let err = parse_str(line).expect_err(line).to_string();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn cleanup_and_compare() {
        assert_eq!(parse_str("cleanup --endpoint unix:///a.sock").expect("cleanup"), Command::Cleanup { endpoint: "/a.sock".into() });
        assert_eq!(
            parse_str("compare c.json s.json --goal 2.5").expect("compare"),
            Command::Compare { baseline: "c.json".into(), candidate: "s.json".into(), goal: 2.5 }
        );
        assert_eq!(parse_str("compare c.json s.json").map(|c| matches!(c, Command::Compare { goal, .. } if goal == 3.0)).ok(), Some(true));
        assert_eq!(parse_str("--help").expect("help"), Command::Help);
    }
}
