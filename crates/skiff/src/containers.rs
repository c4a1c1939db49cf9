//! `skiff run|ps|logs|exec|start|stop|kill|rm` and `skiff containers ...`: standalone containers.
//!
//! A foreground process's stdio travels through FIFOs this client makes (as `ctr` does): skiff-shim
//! opens them beside the container's log, so output reaches the terminal and the log alike.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skiff_api::v1::{self, containers_client::ContainersClient};
use tokio_stream::StreamExt;

use crate::output::{print_rows, Row};
use crate::registry::RegistryFlags;
use crate::{status, Ctx};

#[derive(Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container's id.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Keep stdin attached.
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long)]
    name: Option<String>,
    /// KEY=VALUE, over the image's environment.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// Bind mount SOURCE:DEST[:ro|rw].
    #[arg(long = "volume", short = 'v')]
    volumes: Vec<String>,
    /// KEY=VALUE annotation for the runtime spec (over the image's).
    #[arg(long = "annotation", short = 'a')]
    annotations: Vec<String>,
    /// KEY=VALUE label on the container record.
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// Runtime handler ([runtime.handlers.NAME]); default: skiffd's default handler.
    #[arg(long)]
    runtime: Option<String>,
    /// USER[:GROUP] (names or ids) to run as.
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Replace the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// none (a network namespace with loopback only) or host.
    #[arg(long = "net", default_value = "none")]
    network: String,
    /// Memory limit, e.g. 64m, 1g, or bytes.
    #[arg(long, short = 'm')]
    memory: Option<String>,
    #[arg(long)]
    read_only: bool,
    /// Pull over plain HTTP if the image must be pulled (hosts without a hosts.toml).
    #[arg(long)]
    plain_http: bool,
    image: String,
    /// The command (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct ExecArgs {
    #[arg(long, short = 'i')]
    interactive: bool,
    #[arg(long, short = 't')]
    tty: bool,
    /// Start it and print its pid, without waiting.
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long, short = 'e')]
    env: Vec<String>,
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
pub enum ContainersCommand {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls {
        /// Include containers that are not running.
        #[arg(long, short = 'a')]
        all: bool,
        /// Only ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// The container's record, runtime annotations (with sources) and runtime spec, as JSON.
    Inspect {
        /// A Go template over each container's document, e.g. '{{json .Spec.annotations}}'.
        #[arg(long, short = 'f')]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    #[command(alias = "remove")]
    Rm {
        #[arg(long, short = 'f')]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
}

/// `KEY=VALUE` pairs (annotations, labels).
pub fn key_values(items: &[String], what: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("{what} {item:?} must be KEY=VALUE"),
        }
    }
    Ok(out)
}

fn parse_volume(text: &str) -> Result<v1::BindMount> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, destination, readonly) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => bail!("volume {text:?} must be SOURCE:DEST[:ro|rw]"),
    };
    let source = crate::absolute(Path::new(source))?;
    Ok(v1::BindMount { source: source.display().to_string(), destination: destination.into(), readonly })
}

fn parse_memory(text: &str) -> Result<i64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let n: i64 = digits.parse().with_context(|| format!("memory {text:?} must be a number with an optional unit (k, m, g)"))?;
    let scale = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => bail!("memory {text:?}: unknown unit {unit:?}"),
    };
    n.checked_mul(scale).filter(|v| *v > 0).with_context(|| format!("memory {text:?} out of range"))
}

/// The FIFOs of one attached process, and the threads copying to and from them.
struct Attach {
    dir: PathBuf,
    paths: v1::StdioPaths,
    // Held open until the shim opened its ends (so its opens do not block or see EOF).
    holders: Vec<File>,
    stdin: Option<File>,
}

fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).with_context(|| format!("mkfifo {}", path.display()))
}

fn open_rdwr(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).with_context(|| format!("open {}", path.display()))
}

impl Attach {
    /// The request's stdio: this attachment's FIFOs, or none (detached; the log only).
    fn paths(attach: &Option<Attach>, tty: bool) -> v1::StdioPaths {
        attach.as_ref().map(|a| a.paths.clone()).unwrap_or(v1::StdioPaths { tty, ..Default::default() })
    }

    fn new(stdin: bool, tty: bool) -> Result<Attach> {
        let dir = std::env::temp_dir().join(format!("skiff-io-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut paths = v1::StdioPaths { tty, ..Default::default() };
        let mut holders = Vec::new();
        let mut stdin_file = None;
        let make = |name: &str| -> Result<String> {
            let p = dir.join(name);
            mkfifo(&p)?;
            Ok(p.display().to_string())
        };
        paths.stdout = make("stdout")?;
        holders.push(open_rdwr(Path::new(&paths.stdout))?);
        if !tty {
            paths.stderr = make("stderr")?;
            holders.push(open_rdwr(Path::new(&paths.stderr))?);
        }
        if stdin {
            paths.stdin = make("stdin")?;
            stdin_file = Some(open_rdwr(Path::new(&paths.stdin))?);
        }
        if tty && std::io::stdout().is_terminal() {
            if let Some((terminal_size::Width(w), terminal_size::Height(h))) = terminal_size::terminal_size() {
                paths.rows = h as u32;
                paths.columns = w as u32;
            }
        }
        Ok(Attach { dir, paths, holders, stdin: stdin_file })
    }

    /// Once the shim opened its ends: start copying. The returned threads end at the process's EOF.
    fn copy(mut self) -> Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::new();
        // Fresh read-only fds, so EOF arrives when the shim closes its write ends.
        threads.push(copy_thread(open_reader(&self.paths.stdout)?, std::io::stdout()));
        if !self.paths.stderr.is_empty() {
            threads.push(copy_thread(open_reader(&self.paths.stderr)?, std::io::stderr()));
        }
        self.holders.clear();
        if let Some(mut fifo) = self.stdin.take() {
            // Not joined: reading our stdin can block after the process ended.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut fifo);
            });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(threads)
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A FIFO opened for reading without waiting for a writer, then made blocking.
fn open_reader(path: &str) -> Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(path).with_context(|| format!("open {path}"))?;
    if let Ok(flags) = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK));
    }
    Ok(file)
}

fn copy_thread(mut from: File, mut to: impl Write + Send + 'static) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Raw mode on our terminal while a `-t` process runs; restored on drop.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter(tty: bool) -> RawTerminal {
        let stdin = std::io::stdin();
        if !tty || !stdin.is_terminal() {
            return RawTerminal(None);
        }
        match nix::sys::termios::tcgetattr(&stdin) {
            Ok(saved) => {
                let mut raw = saved.clone();
                nix::sys::termios::cfmakeraw(&mut raw);
                let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
                RawTerminal(Some(saved))
            }
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Forwards our terminal's size changes (SIGWINCH) to the process's pty until dropped.
struct ResizeForwarder(Option<tokio::task::JoinHandle<()>>);

impl ResizeForwarder {
    fn start(ctx: &Ctx, tty: bool, id: &str, exec_id: &str) -> ResizeForwarder {
        if !tty || !std::io::stdout().is_terminal() {
            return ResizeForwarder(None);
        }
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return ResizeForwarder(None);
        };
        let mut client = ContainersClient::new(ctx.channel.clone());
        let (id, exec_id) = (id.to_string(), exec_id.to_string());
        ResizeForwarder(Some(tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some((terminal_size::Width(w), terminal_size::Height(h))) = terminal_size::terminal_size() {
                    let req = v1::ResizeContainerRequest { id: id.clone(), exec_id: exec_id.clone(), rows: h as u32, columns: w as u32 };
                    let _ = client.resize(req).await;
                }
            }
        })))
    }
}

impl Drop for ResizeForwarder {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

async fn create(ctx: &Ctx, req: v1::CreateContainerRequest, registry: &RegistryFlags) -> Result<v1::Container> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    match client.create(req.clone()).await {
        Ok(r) => r.into_inner().container.context("skiffd answered no container"),
        Err(s) if s.code() == tonic::Code::NotFound && s.message().contains("image") => {
            // Not stored yet: pull it, as `docker run` does.
            let pull = v1::PullImageRequest { reference: req.image.clone(), registry: Some(registry.options()?), ..Default::default() };
            crate::registry::pull(ctx.channel.clone(), pull, false).await?;
            client.create(req).await.map_err(status)?.into_inner().container.context("skiffd answered no container")
        }
        Err(s) => Err(status(s)),
    }
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let annotations = key_values(&args.annotations, "annotation")?;
    let labels = key_values(&args.labels, "label")?;
    let mounts = args.volumes.iter().map(|v| parse_volume(v)).collect::<Result<Vec<_>>>()?;
    let memory_limit = args.memory.as_deref().map(parse_memory).transpose()?.unwrap_or(0);
    let attach = if args.detach { None } else { Some(Attach::new(args.interactive, args.tty)?) };
    let entrypoint: Vec<String> = args.entrypoint.iter().filter(|e| !e.is_empty()).cloned().collect();
    let req = v1::CreateContainerRequest {
        image: args.image.clone(),
        name: args.name.clone().unwrap_or_default(),
        args: args.command.clone(),
        has_entrypoint: args.entrypoint.is_some(),
        entrypoint,
        env: args.env.clone(),
        mounts,
        annotations,
        labels,
        runtime: args.runtime.clone().unwrap_or_default(),
        stdio: Some(Attach::paths(&attach, args.tty)),
        user: args.user.clone().unwrap_or_default(),
        workdir: args.workdir.clone().unwrap_or_default(),
        hostname: args.hostname.clone().unwrap_or_default(),
        network: args.network.clone(),
        memory_limit,
        auto_remove: args.rm && args.detach,
        readonly_rootfs: args.read_only,
    };
    let registry = RegistryFlags { plain_http: args.plain_http, user: None };
    let container = create(ctx, req, &registry).await?;
    let mut client = ContainersClient::new(ctx.channel.clone());
    let Some(attach) = attach else {
        client.start(v1::StartContainerRequest { id: container.id.clone() }).await.map_err(status)?;
        println!("{}", container.id);
        return Ok(0);
    };
    let raw = RawTerminal::enter(args.tty && args.interactive);
    let threads = attach.copy()?;
    let _resize = ResizeForwarder::start(ctx, args.tty, &container.id, "");
    let started = client.start(v1::StartContainerRequest { id: container.id.clone() }).await;
    let outcome = match started {
        Ok(_) => client.wait(v1::WaitContainerRequest { id: container.id.clone(), exec_id: String::new() }).await,
        Err(s) => Err(s),
    };
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    if args.rm {
        client.delete(v1::DeleteContainerRequest { id: container.id.clone(), force: true }).await.map_err(status)?;
    }
    let exit = outcome.map_err(status)?.into_inner();
    Ok(exit.exit_code)
}

pub async fn exec(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let attach = if args.detach { None } else { Some(Attach::new(args.interactive, args.tty)?) };
    let req = v1::ExecContainerRequest {
        id: args.container.clone(),
        args: args.command.clone(),
        env: args.env.clone(),
        user: args.user.clone().unwrap_or_default(),
        workdir: args.workdir.clone().unwrap_or_default(),
        stdio: Some(Attach::paths(&attach, args.tty)),
    };
    let started = client.exec(req).await.map_err(status)?.into_inner();
    let Some(attach) = attach else {
        println!("{}", started.pid);
        return Ok(0);
    };
    let raw = RawTerminal::enter(args.tty && args.interactive);
    let threads = attach.copy()?;
    let _resize = ResizeForwarder::start(ctx, args.tty, &args.container, &started.exec_id);
    let exit = client.wait(v1::WaitContainerRequest { id: args.container.clone(), exec_id: started.exec_id }).await;
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    Ok(exit.map_err(status)?.into_inner().exit_code)
}

#[derive(Serialize)]
struct ContainerRow {
    id: String,
    name: String,
    image: String,
    command: Vec<String>,
    status: String,
    exit_code: i32,
    reason: String,
    runtime: String,
    pid: i32,
    created_at: String,
    started_at: String,
    finished_at: String,
    labels: HashMap<String, String>,
}

impl Row for ContainerRow {
    const HEADERS: &'static [&'static str] = &["CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS", "RUNTIME"];
    fn cells(&self) -> Vec<String> {
        let status = match self.status.as_str() {
            "exited" => format!("Exited ({}) {}", self.exit_code, self.reason),
            "running" => format!("Up (pid {})", self.pid),
            other => other.to_string(),
        };
        let mut command = self.command.join(" ");
        if command.chars().count() > 30 {
            command = command.chars().take(29).collect::<String>() + "…";
        }
        vec![self.id[..12.min(self.id.len())].to_string(), self.name.clone(), self.image.clone(), command, status, self.runtime.clone()]
    }
}

pub async fn ps(ctx: &Ctx, all: bool, quiet: bool) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let list = client.list(v1::ListContainersRequest { all }).await.map_err(status)?.into_inner();
    if quiet {
        for c in &list.containers {
            println!("{}", c.id);
        }
        return Ok(());
    }
    let rows: Vec<ContainerRow> = list
        .containers
        .into_iter()
        .map(|c| ContainerRow {
            id: c.id,
            name: c.name,
            image: c.image,
            command: c.command,
            status: c.status,
            exit_code: c.exit_code,
            reason: c.reason,
            runtime: c.runtime,
            pid: c.pid,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            labels: c.labels,
        })
        .collect();
    print_rows(&rows, ctx.output)
}

pub async fn logs(ctx: &Ctx, id: String, follow: bool, tail: u64) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let mut stream = client.logs(v1::ContainerLogsRequest { id, follow, tail }).await.map_err(status)?.into_inner();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status)?;
        if chunk.stream == "stderr" {
            err.write_all(&chunk.data)?;
        } else {
            out.write_all(&chunk.data)?;
            out.flush()?;
        }
    }
    Ok(())
}

pub async fn start(ctx: &Ctx, ids: Vec<String>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.start(v1::StartContainerRequest { id: id.clone() }).await.map_err(status)?;
        println!("{id}");
    }
    Ok(())
}

pub async fn stop(ctx: &Ctx, ids: Vec<String>, timeout: Option<i64>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.stop(v1::StopContainerRequest { id: id.clone(), timeout: timeout.unwrap_or(-1) }).await.map_err(status)?;
        println!("{id}");
    }
    Ok(())
}

pub async fn kill(ctx: &Ctx, ids: Vec<String>, signal: String) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.kill(v1::KillContainerRequest { id: id.clone(), signal: signal.clone(), all: false }).await.map_err(status)?;
        println!("{id}");
    }
    Ok(())
}

pub async fn rm(ctx: &Ctx, ids: Vec<String>, force: bool) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.delete(v1::DeleteContainerRequest { id: id.clone(), force }).await.map_err(status)?;
        println!("{id}");
    }
    Ok(())
}

pub async fn inspect(ctx: &Ctx, ids: Vec<String>, format: Option<String>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let mut docs = Vec::new();
    for id in ids {
        let r = client.inspect(v1::InspectContainerRequest { id }).await.map_err(status)?.into_inner();
        docs.push(serde_json::from_slice::<serde_json::Value>(&r.json)?);
    }
    match format {
        Some(t) => {
            for doc in &docs {
                println!("{}", crate::template::render(&t, doc)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&docs)?),
    }
    Ok(())
}

pub async fn containers(ctx: &Ctx, cmd: ContainersCommand) -> Result<()> {
    match cmd {
        ContainersCommand::Ls { all, quiet } => ps(ctx, all, quiet).await,
        ContainersCommand::Inspect { format, containers } => inspect(ctx, containers, format).await,
        ContainersCommand::Rm { force, containers } => rm(ctx, containers, force).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_or_say_why() {
        assert_eq!(parse_memory("64m").expect("64m"), 64 << 20);
        assert_eq!(parse_memory("1G").expect("1G"), 1 << 30);
        assert_eq!(parse_memory("4096").expect("bytes"), 4096);
        assert!(parse_memory("12x").is_err());
        assert!(parse_memory("0").is_err());
        assert_eq!(key_values(&["a=b=c".into()], "annotation").expect("kv")["a"], "b=c");
        let err = key_values(&["novalue".into()], "annotation").expect_err("no =");
        assert_eq!(err.to_string(), "annotation \"novalue\" must be KEY=VALUE");
        assert!(parse_volume("/a:/b:ro").expect("vol").readonly);
        assert!(parse_volume("/a").is_err());
    }
}
