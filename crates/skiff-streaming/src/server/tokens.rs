//! The requests behind streaming URLs: `Exec`, `Attach` and `PortForward` cache their request
//! under a random token and answer `<base>/<kind>/<token>`; the client's connection to that URL
//! takes the request back out. A token serves once and lives a minute, and at most
//! [`MAX_IN_FLIGHT`] wait at a time, as the kubelet's reference server has it. What the stream
//! runs comes from the cached request only, never from the URL.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token waits for its connection.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Most tokens waiting at once; past it a request is refused (`ResourceExhausted`).
pub const MAX_IN_FLIGHT: usize = 1000;
/// Random bytes per token (the URL carries them in unpadded base64url: 22 characters).
const TOKEN_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{MAX_IN_FLIGHT} streaming requests are already waiting for their connection: try again once some were used or expired")]
    Full,
    #[error("making a streaming token: reading /dev/urandom: {0}")]
    Random(std::io::Error),
}

/// Cached requests by token, each used at most once.
pub struct TokenCache<T> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T> TokenCache<T> {
    pub fn new() -> Self {
        Self::with_ttl(TOKEN_TTL)
    }

    pub fn with_ttl(ttl: Duration) -> Self {
        TokenCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// Caches `request`; answers its token.
    pub fn insert(&self, request: T) -> Result<String, TokenError> {
        let token = random_token()?;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if entries.len() >= MAX_IN_FLIGHT {
            return Err(TokenError::Full);
        }
        entries.insert(token.clone(), (now, request));
        Ok(token)
    }

    /// The request of `token`, removed; None when it is unknown, used or expired.
    pub fn take(&self, token: &str) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (at, request) = entries.remove(token)?;
        (at.elapsed() < self.ttl).then_some(request)
    }

    /// Tokens waiting (expired ones included until the next insert sweeps them).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn random_token() -> Result<String, TokenError> {
    use base64::Engine;
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(TokenError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_serves_once() {
        let cache = TokenCache::new();
        let token = cache.insert("exec ls").expect("token");
        assert_eq!(token.len(), 22);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert_eq!(cache.take(&token), Some("exec ls"));
        assert_eq!(cache.take(&token), None);
        assert_eq!(cache.take("made-up"), None);
    }

    #[test]
    fn tokens_differ() {
        let cache = TokenCache::new();
        let a = cache.insert(1).expect("token");
        let b = cache.insert(2).expect("token");
        assert_ne!(a, b);
        assert_eq!((cache.take(&b), cache.take(&a)), (Some(2), Some(1)));
    }

    #[test]
    fn an_expired_token_is_refused_and_swept() {
        let cache = TokenCache::with_ttl(Duration::from_millis(30));
        let token = cache.insert(()).expect("token");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.take(&token), None);
        let old = cache.insert(()).expect("token");
        std::thread::sleep(Duration::from_millis(40));
        cache.insert(()).expect("token");
        assert_eq!(cache.len(), 1, "the insert swept the expired token");
        assert_eq!(cache.take(&old), None);
    }

    #[test]
    fn at_most_a_thousand_wait() {
        let cache = TokenCache::new();
        let tokens: Vec<String> = (0..MAX_IN_FLIGHT).map(|i| cache.insert(i).expect("token")).collect();
        assert!(matches!(cache.insert(MAX_IN_FLIGHT), Err(TokenError::Full)));
        assert_eq!(cache.take(&tokens[7]), Some(7));
        assert!(cache.insert(MAX_IN_FLIGHT).is_ok(), "a used token frees its place");
    }
}
