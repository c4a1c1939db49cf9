//! A loopback HTTP/1.1 proxy in front of a real registry that injects faults the registry itself
//! never produces: server errors, a connection dropped in the middle of a body, a redirect loop.
//! It also counts requests per path, so tests can see how often a blob was fetched.
//! One request per connection (`Connection: close`), which every HTTP client handles.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A fault for requests whose path contains `path`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer 500 to the first `times` matching requests.
    ServerError { path: String, times: usize },
    /// Forward, but close the connection after `after` body bytes, for the first `times` requests.
    DropMidBody { path: String, after: usize, times: usize },
    /// Always answer 302 to the same URL.
    RedirectLoop { path: String },
    /// Token authentication as registries do it: without `Authorization: Bearer <token>` a request
    /// gets 401 with a Bearer challenge whose realm is this proxy's `/token`, which hands out the
    /// token to Basic `user:password`.
    BearerAuth { user: String, password: String, token: String },
    /// Answer matching requests with this status line, headers and body (a HEAD gets no body).
    Respond { path: String, status: String, headers: Vec<(String, String)>, body: Vec<u8> },
}

#[derive(Default)]
struct State {
    faults: Vec<(Fault, usize)>,
    counts: HashMap<String, usize>,
}

pub struct FaultProxy {
    /// `127.0.0.1:<port>`
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str, faults: Vec<Fault>) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let host = listener.local_addr()?.to_string();
        let state = Arc::new(Mutex::new(State { faults: faults.into_iter().map(|f| (f, 0)).collect(), counts: HashMap::new() }));
        let (st, up) = (state.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (st, up) = (st.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &st);
                });
            }
        });
        Ok(FaultProxy { host, state })
    }

    /// How many `method` requests had a path containing `needle`.
    pub fn count(&self, method: &str, needle: &str) -> usize {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.counts.iter().filter(|(k, _)| k.starts_with(&format!("{method} ")) && k.contains(needle)).map(|(_, n)| n).sum()
    }
}

fn read_head(r: &mut impl BufRead) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in head"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn content_length(head: &[String]) -> usize {
    head.iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<State>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let head = read_head(&mut reader)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut body = vec![0u8; content_length(&head)];
    reader.read_exact(&mut body)?;

    let fault = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        *st.counts.entry(format!("{method} {path}")).or_insert(0) += 1;
        let mut chosen = None;
        for (f, used) in st.faults.iter_mut() {
            let (p, limit) = match f {
                Fault::ServerError { path, times } | Fault::DropMidBody { path, times, .. } => (path.clone(), *times),
                Fault::RedirectLoop { path } => (path.clone(), usize::MAX),
                Fault::BearerAuth { .. } => (String::new(), usize::MAX),
                Fault::Respond { path, .. } => (path.clone(), usize::MAX),
            };
            if path.contains(&p) && *used < limit {
                *used += 1;
                chosen = Some(f.clone());
                break;
            }
        }
        chosen
    };
    match &fault {
        Some(Fault::ServerError { .. }) => {
            return client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 12\r\nConnection: close\r\n\r\ninjected 500");
        }
        Some(Fault::RedirectLoop { .. }) => {
            let resp = format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return client.write_all(resp.as_bytes());
        }
        Some(Fault::Respond { status, headers, body, .. }) => {
            let mut resp = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
            for (k, v) in headers {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            client.write_all(resp.as_bytes())?;
            return if method == "HEAD" { Ok(()) } else { client.write_all(body) };
        }
        Some(Fault::BearerAuth { user, password, token }) => {
            let header = |name: &str| {
                head.iter().filter_map(|l| l.split_once(':')).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
            };
            let authorization = header("authorization").unwrap_or_default();
            if path.starts_with("/token") {
                let basic = base64_encode(format!("{user}:{password}").as_bytes());
                let (status, body) = if authorization == format!("Basic {basic}") && path.contains("scope=repository") {
                    ("200 OK", format!("{{\"token\":\"{token}\"}}"))
                } else {
                    ("401 Unauthorized", "{}".to_string())
                };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                return client.write_all(resp.as_bytes());
            }
            if authorization != format!("Bearer {token}") {
                let host = header("host").unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"skiff-test\",scope=\"repository:demo:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                return client.write_all(resp.as_bytes());
            }
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    let mut out = String::new();
    for (i, line) in head.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0 && lower.starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut up_reader = BufReader::new(up);
    let resp_head = read_head(&mut up_reader)?;
    let mut resp = String::new();
    for line in &resp_head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        resp.push_str(line);
        resp.push_str("\r\n");
    }
    resp.push_str("Connection: close\r\n\r\n");
    client.write_all(resp.as_bytes())?;
    match fault {
        Some(Fault::DropMidBody { after, .. }) => {
            io::copy(&mut (&mut up_reader).take(after as u64), &mut client)?;
            client.flush()?;
            client.shutdown(std::net::Shutdown::Both)
        }
        _ => {
            io::copy(&mut up_reader, &mut client)?;
            Ok(())
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
