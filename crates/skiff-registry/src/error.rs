//! Registry errors, each naming the host, repository and object (tag or digest) concerned.

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{host}/{repository} {object}: not found (HTTP 404)")]
    NotFound { host: String, repository: String, object: String },

    #[error("{host}/{repository} {object}: unauthorized (HTTP {status}){message}; {hint}")]
    Unauthorized { host: String, repository: String, object: String, status: u16, message: String, hint: String },

    #[error("{host}/{repository} {object}: HTTP {status}: {message}")]
    Http { host: String, repository: String, object: String, status: u16, message: String },

    #[error("{host}/{repository} {object}: {message}: {source}")]
    Transport {
        host: String,
        repository: String,
        object: String,
        message: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{host}/{repository} {object}: {message}")]
    Protocol { host: String, repository: String, object: String, message: String },

    #[error("registry configuration {path}: {message}")]
    Config { path: String, message: String },
}

impl RegistryError {
    /// Whether a retry might succeed (server errors and broken connections, never auth or content errors).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429,
            RegistryError::Transport { source, .. } => !source.is_redirect() && !source.is_builder(),
            _ => false,
        }
    }
}

/// Where a request went, for error messages.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub repository: String,
    pub object: String,
}

impl Target {
    pub fn http(&self, status: u16, message: impl Into<String>) -> RegistryError {
        let t = self.clone();
        match status {
            404 => RegistryError::NotFound { host: t.host, repository: t.repository, object: t.object },
            401 | 403 => {
                let message = message.into();
                RegistryError::Unauthorized {
                    host: t.host,
                    repository: t.repository,
                    object: t.object,
                    status,
                    message: if message.is_empty() { message } else { format!(": {message}") },
                    hint: "check credentials (skiffd config [registry.auths], a Docker config.json, or --user)".into(),
                }
            }
            _ => RegistryError::Http { host: t.host, repository: t.repository, object: t.object, status, message: message.into() },
        }
    }

    pub fn transport(&self, message: impl Into<String>, source: reqwest::Error) -> RegistryError {
        let t = self.clone();
        RegistryError::Transport { host: t.host, repository: t.repository, object: t.object, message: message.into(), source }
    }

    pub fn protocol(&self, message: impl Into<String>) -> RegistryError {
        let t = self.clone();
        RegistryError::Protocol { host: t.host, repository: t.repository, object: t.object, message: message.into() }
    }
}

impl From<RegistryError> for skiff_image::ImageError {
    fn from(e: RegistryError) -> Self {
        skiff_image::ImageError::Remote { kind: skiff_types::HasKind::kind(&e), source: Box::new(e) }
    }
}

impl skiff_types::HasKind for RegistryError {
    fn kind(&self) -> skiff_types::ErrorKind {
        use skiff_types::ErrorKind as K;
        match self {
            RegistryError::NotFound { .. } => K::NotFound,
            RegistryError::Unauthorized { status: 403, .. } => K::PermissionDenied,
            RegistryError::Unauthorized { .. } => K::Unauthenticated,
            RegistryError::Http { status: 429, .. } => K::ResourceExhausted,
            RegistryError::Http { .. } | RegistryError::Transport { .. } => K::Unavailable,
            // The registry answered something this client cannot use (a bad manifest, a digest
            // that does not match): not a failure of the request's form.
            RegistryError::Protocol { .. } => K::FailedPrecondition,
            RegistryError::Config { .. } => K::InvalidArgument,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
