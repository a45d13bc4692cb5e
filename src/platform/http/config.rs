//! The `[platform]` section for `kind = "http"`: checked when the upgrade
//! file loads (so a mistake points at its line), and turned into
//! [`HttpSettings`] when the platform opens (when the token is read from
//! the environment, so a plan made elsewhere never needs it).

use std::sync::Arc;

use super::client::HttpSettings;
use super::token::Token;
use crate::diag::{Diag, Diags, SourceFile};
use crate::platform::{PlatformConfig, PlatformKind};
use crate::platform::{PlatformError, PlatformErrorKind};
use crate::source::{self, DocPath, Seg, Target};

/// The environment variable the token is read from without `token_env`.
pub const DEFAULT_TOKEN_ENV: &str = "RUNBOOK_PLATFORM_TOKEN";

fn at(source: &Arc<SourceFile>, key: &str) -> std::ops::Range<usize> {
    let mut path = vec![Seg::Key("platform".into())];
    if !key.is_empty() {
        path.push(Seg::Key(key.into()));
    }
    source::locate(source, &DocPath(path), Target::Value)
}

/// Reports every problem of the platform section.
pub fn check(source: &Arc<SourceFile>, config: Option<&PlatformConfig>, diags: &mut Diags) {
    let Some(config) = config else { return };
    let mut bad = |key: &str, message: String, hint: &str| {
        diags.push(Diag::new(source, at(source, key), message).hint(hint.to_owned()));
    };
    if config.kind == PlatformKind::Sim {
        for (key, given) in [
            ("url", config.url.is_some()),
            ("token_env", config.token_env.is_some()),
            ("timeout", config.timeout.is_some()),
            ("attempts", config.attempts.is_some()),
        ] {
            if given {
                bad(
                    key,
                    format!("`{key}` is used only with kind = \"http\""),
                    "remove it, or set kind = \"http\" to drive a platform over its API",
                );
            }
        }
        return;
    }
    if config.state.is_some() {
        bad(
            "state",
            "`state` is used only with kind = \"sim\"".into(),
            "the simulator behind `runbook sim serve` takes --state instead",
        );
    }
    match config.url.as_deref() {
        None => bad(
            "",
            "kind = \"http\" needs the API's `url`".into(),
            "add url = \"http://127.0.0.1:8480\" (what `runbook sim serve` prints)",
        ),
        Some(url) => {
            if let Err(e) = check_url(url) {
                bad(
                    "url",
                    e,
                    "write it as http://HOST:PORT or https://HOST[:PORT][/PATH]",
                );
            }
        }
    }
    if let Some(name) = &config.token_env
        && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        bad(
            "token_env",
            format!("`{name}` is not an environment variable name"),
            "name the variable that holds the token, e.g. token_env = \"RUNBOOK_PLATFORM_TOKEN\"",
        );
    }
    if let Some(timeout) = &config.timeout {
        match crate::duration::parse(timeout) {
            Ok(d) if d.is_zero() => bad(
                "timeout",
                "the timeout must be longer than 0".into(),
                "e.g. timeout = \"30s\"",
            ),
            Ok(_) => {}
            Err(e) => bad("timeout", e, "e.g. timeout = \"30s\" or \"5m\""),
        }
    }
    if config.attempts == Some(0) {
        bad(
            "attempts",
            "at least one attempt is needed".into(),
            "e.g. attempts = 5",
        );
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not hold credentials; the token comes from token_env".into());
    }
    Ok(())
}

/// The client settings of a checked section, with the token read from its
/// environment variable.
pub fn settings(config: &PlatformConfig) -> Result<HttpSettings, PlatformError> {
    let refuse = |m: String| PlatformError::of(PlatformErrorKind::Unsupported, m);
    let url = config
        .url
        .clone()
        .ok_or_else(|| refuse("kind = \"http\" needs the API's `url` in [platform]".into()))?;
    let var = config.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV);
    let token = match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Token::new(t.trim()),
        _ => {
            return Err(refuse(format!(
                "the platform API token is not set: export {var}=TOKEN (the token `runbook sim serve` printed){}",
                if config.token_env.is_none() {
                    ", or name another variable with token_env in [platform]"
                } else {
                    ""
                }
            )));
        }
    };
    let mut settings = HttpSettings::new(url, token, format!("${var}"));
    if let Some(t) = &config.timeout {
        settings.timeout = crate::duration::parse(t).map_err(refuse)?;
    }
    if let Some(n) = config.attempts {
        settings.attempts = n;
    }
    Ok(settings)
}
