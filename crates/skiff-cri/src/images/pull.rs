//! PullImage: the same pull as Skiff's own API (registry → import pipeline → unpack), with the
//! kubelet's credentials.

use base64::Engine as _;
use k8s_cri::v1 as cri;
use skiff_registry::{ClientOptions, Credentials, Tokens};

use crate::error::{CriError, Result};

/// The client options of one pull: skiffd's, with the request's credentials over them.
pub fn client_options(base: &ClientOptions, auth: Option<&cri::AuthConfig>) -> Result<ClientOptions> {
    let mut opts = base.clone();
    let Some(auth) = auth else {
        return Ok(opts);
    };
    for (field, value) in [("auth.username", &auth.username), ("auth.server_address", &auth.server_address)] {
        crate::error::text(field, value)?;
    }
    if !auth.username.is_empty() {
        opts.credentials = Some(Credentials { username: auth.username.clone(), password: auth.password.clone() });
    } else if !auth.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .map_err(|e| CriError::InvalidArgument(format!("auth.auth is not base64: {e}")))?;
        let text = String::from_utf8(raw).map_err(|_| CriError::InvalidArgument("auth.auth is not UTF-8 user:password".into()))?;
        let creds = Credentials::parse(&text).ok_or_else(|| CriError::InvalidArgument("auth.auth must encode user:password".into()))?;
        opts.credentials = Some(creds);
    }
    opts.tokens = Tokens {
        registry: Some(auth.registry_token.clone()).filter(|t| !t.is_empty()),
        identity: Some(auth.identity_token.clone()).filter(|t| !t.is_empty()),
    };
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientOptions {
        ClientOptions::new(skiff_registry::Hosts::default(), skiff_registry::AuthConfig::default())
    }

    #[test]
    fn credentials_come_from_every_form_the_kubelet_sends() {
        let plain = client_options(&base(), Some(&cri::AuthConfig { username: "u".into(), password: "p".into(), ..Default::default() })).expect("plain");
        assert_eq!(plain.credentials, Some(Credentials { username: "u".into(), password: "p".into() }));
        let encoded = cri::AuthConfig { auth: base64::engine::general_purpose::STANDARD.encode("me:secret:with:colons"), ..Default::default() };
        let encoded = client_options(&base(), Some(&encoded)).expect("auth");
        assert_eq!(encoded.credentials, Some(Credentials { username: "me".into(), password: "secret:with:colons".into() }));
        let tokens = cri::AuthConfig { identity_token: "refresh".into(), registry_token: "bearer".into(), ..Default::default() };
        let tokens = client_options(&base(), Some(&tokens)).expect("tokens");
        assert_eq!((tokens.tokens.identity.as_deref(), tokens.tokens.registry.as_deref()), (Some("refresh"), Some("bearer")));
        assert!(client_options(&base(), None).expect("none").credentials.is_none());
        for bad in ["%%%", &base64::engine::general_purpose::STANDARD.encode("no-colon")] {
            let err = client_options(&base(), Some(&cri::AuthConfig { auth: bad.to_string(), ..Default::default() })).expect_err(bad);
            assert!(err.to_string().starts_with("auth.auth"), "{err}");
        }
    }
}
