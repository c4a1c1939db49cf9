//! A client for one repository on one registry host: its endpoints (mirrors, then upstream), TLS per
//! endpoint, authentication on challenge, and retries with backoff for server errors and broken
//! connections (never for 401/403/404 or content errors).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use skiff_image::Reference;

use crate::auth::{parse_challenge, AuthConfig, Credentials};
use crate::error::{Result, Target};
use crate::hosts::{Capabilities, Endpoint, Hosts};
use crate::tls::{answered_plain_http, PLAIN_HTTP_ANSWER};

/// Media types a manifest request accepts (schema 1 only so that it can be refused by name).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1";

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub hosts: Hosts,
    pub auth: AuthConfig,
    /// Default to http:// for hosts without a hosts.toml.
    pub plain_http: bool,
    /// Credentials for this request, over configured ones.
    pub credentials: Option<Credentials>,
    /// Tokens for this request (the CRI's AuthConfig): a registry token is sent as the bearer
    /// token itself; an identity token is an OAuth2 refresh token exchanged at the realm.
    pub tokens: Tokens,
    /// Retries of a transient failure (default 4 when 0... set explicitly).
    pub retries: u32,
    /// First backoff; doubles per retry.
    pub backoff: Duration,
}

impl ClientOptions {
    pub fn new(hosts: Hosts, auth: AuthConfig) -> ClientOptions {
        ClientOptions { hosts, auth, plain_http: false, credentials: None, tokens: Tokens::default(), retries: 4, backoff: Duration::from_millis(200) }
    }
}

/// Bearer tokens a caller already holds (see `ClientOptions::tokens`).
#[derive(Clone, Default)]
pub struct Tokens {
    pub registry: Option<String>,
    pub identity: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens(registry: {}, identity: {})", self.registry.is_some(), self.identity.is_some())
    }
}

/// What the client will do with the repository (the token scope it asks for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

struct Remote {
    endpoint: Endpoint,
    http: Http,
}

/// A client for one repository.
pub struct Client {
    pub host: String,
    pub repository: String,
    remotes: Vec<Remote>,
    credentials: Option<Credentials>,
    tokens: Tokens,
    scope: String,
    retries: u32,
    backoff: Duration,
    /// Authorization header per endpoint, once a challenge was answered.
    authorization: Mutex<HashMap<usize, String>>,
    /// The endpoint that last answered, tried first next time.
    preferred: AtomicUsize,
}

fn body_message(resp: Response) -> String {
    let text = resp.text().unwrap_or_default();
    let text = text.trim();
    if text.len() > 300 { format!("{}…", &text[..300]) } else { text.to_string() }
}

impl Client {
    pub fn new(reference: &Reference, opts: &ClientOptions, access: Access) -> Result<Client> {
        let target = Target { host: reference.domain.clone(), repository: reference.repository.clone(), object: String::new() };
        let remotes = opts
            .hosts
            .endpoints(&reference.domain, opts.plain_http)?
            .into_iter()
            .map(|endpoint| Ok(Remote { http: crate::shared_http::client_for(&endpoint, &target)?, endpoint }))
            .collect::<Result<Vec<_>>>()?;
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        Ok(Client {
            host: reference.domain.clone(),
            repository: reference.repository.clone(),
            remotes,
            credentials: opts.credentials.clone().or_else(|| opts.auth.get(&reference.domain).cloned()),
            tokens: opts.tokens.clone(),
            scope: format!("repository:{}:{actions}", reference.repository),
            retries: opts.retries,
            backoff: opts.backoff,
            authorization: Mutex::new(HashMap::new()),
            preferred: AtomicUsize::new(0),
        })
    }

    pub fn target(&self, object: impl Into<String>) -> Target {
        Target { host: self.host.clone(), repository: self.repository.clone(), object: object.into() }
    }

    /// `<base>/v2/<repository>/<tail>`
    pub fn url(&self, base: &str, tail: &str) -> String {
        format!("{base}/v2/{}/{tail}", self.repository)
    }

    /// Sends a request to the endpoints that have `capability`, preferred one first, falling back
    /// through mirrors to the upstream. Returns the response and the endpoint's base URL.
    pub fn send(
        &self,
        capability: fn(&Capabilities) -> bool,
        object: &str,
        build: &dyn Fn(&Http, &str) -> RequestBuilder,
    ) -> Result<(Response, String)> {
        let target = self.target(object);
        let usable: Vec<usize> = (0..self.remotes.len()).filter(|i| capability(&self.remotes[*i].endpoint.capabilities)).collect();
        if usable.is_empty() {
            return Err(target.protocol("no configured endpoint has the capability this request needs"));
        }
        let preferred = self.preferred.load(Ordering::Relaxed);
        let mut order = usable.clone();
        if let Some(pos) = order.iter().position(|i| *i == preferred) {
            order.rotate_left(pos);
        }
        let mut last = None;
        for i in order {
            match self.send_to(i, &target, build) {
                Ok(resp) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok((resp, self.remotes[i].endpoint.base.clone()));
                }
                Err(e) => {
                    if self.remotes[i].endpoint.mirror {
                        tracing::warn!(endpoint = %self.remotes[i].endpoint.base, error = %e, "mirror failed; trying the next endpoint");
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| target.protocol("no endpoint answered")))
    }

    fn send_to(&self, i: usize, target: &Target, build: &dyn Fn(&Http, &str) -> RequestBuilder) -> Result<Response> {
        let remote = &self.remotes[i];
        let mut attempt = 0u32;
        let mut answered_challenge = false;
        loop {
            let mut req = build(&remote.http, &remote.endpoint.base);
            for (k, v) in &remote.endpoint.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(h) = self.authorization.lock().unwrap_or_else(|p| p.into_inner()).get(&i) {
                req = req.header(AUTHORIZATION, h.as_str());
            }
            let failure = match req.send() {
                // Not retried: the registry will answer in HTTP every time.
                Err(e) if answered_plain_http(&e) => return Err(target.protocol(format!("request to {}: {PLAIN_HTTP_ANSWER}", remote.endpoint.base))),
                Err(e) => target.transport(format!("request to {}", remote.endpoint.base), e),
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().as_u16() == 401 && !answered_challenge => {
                    let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
                    self.answer_challenge(i, target, challenge.as_deref())?;
                    answered_challenge = true;
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    target.http(status, body_message(resp))
                }
            };
            if !failure.is_transient() || attempt >= self.retries {
                return Err(failure);
            }
            let wait = self.backoff * 2u32.pow(attempt);
            tracing::warn!(error = %failure, retry_in = ?wait, "transient registry error; retrying");
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn answer_challenge(&self, i: usize, target: &Target, header: Option<&str>) -> Result<()> {
        let challenge = header
            .and_then(parse_challenge)
            .ok_or_else(|| target.http(401, "unauthorized, and no WWW-Authenticate challenge to answer"))?;
        let value = match challenge.scheme.as_str() {
            "basic" => self.credentials.as_ref().ok_or_else(|| target.http(401, "registry wants credentials"))?.basic_header(),
            "bearer" => match &self.tokens.registry {
                Some(token) => format!("Bearer {token}"),
                None => format!("Bearer {}", self.fetch_token(i, target, &challenge.params)?),
            },
            other => return Err(target.protocol(format!("unsupported authentication scheme {other:?}"))),
        };
        self.authorization.lock().unwrap_or_else(|p| p.into_inner()).insert(i, value);
        Ok(())
    }

    fn fetch_token(&self, i: usize, target: &Target, params: &HashMap<String, String>) -> Result<String> {
        let realm = params.get("realm").ok_or_else(|| target.protocol("bearer challenge has no realm"))?;
        let mut query: Vec<(&str, &str)> = vec![("scope", params.get("scope").map_or(self.scope.as_str(), String::as_str))];
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        let req = match &self.tokens.identity {
            // The OAuth2 refresh-token grant of the distribution token spec, as containerd sends it.
            Some(refresh) => {
                let mut form = query.clone();
                form.extend([("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", "skiff")]);
                let body = form.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&");
                self.remotes[i].http.post(realm.as_str()).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
            }
            None => {
                let req = self.remotes[i].http.get(realm.as_str()).query(&query);
                match &self.credentials {
                    Some(c) => req.basic_auth(&c.username, Some(&c.password)),
                    None => req,
                }
            }
        };
        let resp = req.send().map_err(|e| {
            if answered_plain_http(&e) {
                target.protocol(format!("token request to {realm}: {PLAIN_HTTP_ANSWER}"))
            } else {
                target.transport(format!("token request to {realm}"), e)
            }
        })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(target.http(if status == 403 { 403 } else { 401 }, format!("token service {realm}: {}", body_message(resp))));
        }
        let body: serde_json::Value = resp.json().map_err(|e| target.transport(format!("token response from {realm}"), e))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| target.protocol(format!("token service {realm} returned no token")))
    }

}

/// Percent-encodes a form value (RFC 3986 unreserved characters pass).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
