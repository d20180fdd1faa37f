//! An OpenAI-compatible endpoint as the consultant (`--consultant http://host:port/v1`):
//! llama.cpp's `llama-server`, vLLM, Ollama's `/v1`, or a hosted API. A conversation goes to
//! `POST {base}/chat/completions`, a raw prompt to `POST {base}/completions`.
//!
//! This is the one place a prompt leaves the device: the `net` feature (desktop builds) compiles
//! it in, and callers say so each time ([`super::Consultant::destination`]). The key, if the
//! endpoint needs one, comes from `EMBER_CONSULTANT_API_KEY` (never from another service's
//! variable: a key is only sent where the user pointed it).

use std::time::Duration;

use serde_json::{json, Value};

use super::Question;
use crate::{Error, Result};

/// Replies larger than this are refused (a completion is text, not a download).
const MAX_REPLY_BYTES: u64 = 16 << 20;

/// A configured endpoint.
pub struct Endpoint {
    base: String,
    model: Option<String>,
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl Endpoint {
    /// `base_url` is the API root (`http://127.0.0.1:8080/v1`); `model` is sent as the request's
    /// `model` (servers that host one model ignore it). Each request may take `timeout`.
    pub fn new(base_url: &str, model: Option<String>, timeout: Duration) -> Result<Endpoint> {
        let base = base_url.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "consultant endpoint `{base_url}`: give an http:// or https:// URL"
                ))
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "consultant endpoint `{base_url}` has no host"
            )));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Read the body of an error reply: servers say what was wrong there.
            .http_status_as_error(false)
            .tls_config(crate::pull::download::system_roots())
            .build()
            .into();
        Ok(Endpoint {
            base,
            model,
            api_key: std::env::var("EMBER_CONSULTANT_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            agent,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send the question; the reply's text and, where the server reports usage, its tokens.
    pub fn complete(&self, q: &Question) -> Result<(String, Option<usize>)> {
        let (path, body) = self.request(q);
        let url = format!("{}{path}", self.base);
        let fail = |why: String| Error::Consultant(format!("{url}: {why}"));
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        let mut resp = req
            .send(body.to_string().as_str())
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_string()
            .map_err(|e| fail(format!("reading the reply: {e}")))?;
        if !(200..300).contains(&status) {
            let brief: String = text.chars().take(300).collect();
            return Err(fail(format!("HTTP {status}: {brief}")));
        }
        parse_reply(&text, q.messages.is_some()).map_err(fail)
    }

    /// The path and JSON body for `q` (OpenAI's completion and chat-completion requests).
    fn request(&self, q: &Question) -> (&'static str, Value) {
        let mut body = match q.messages {
            Some(messages) => json!({ "messages": messages }),
            None => json!({ "prompt": q.prompt }),
        };
        body["max_tokens"] = q.params.max_tokens.into();
        body["temperature"] = q.sampler.temperature.max(0.0).into();
        body["seed"] = q.sampler.seed.into();
        body["stream"] = false.into();
        if !q.params.stop.is_empty() {
            body["stop"] = json!(q.params.stop);
        }
        if let Some(m) = &self.model {
            body["model"] = m.as_str().into();
        }
        let path = if q.messages.is_some() {
            "/chat/completions"
        } else {
            "/completions"
        };
        (path, body)
    }
}

/// The text of `choices[0]` (`message.content` for chat, `text` for a completion) and
/// `usage.completion_tokens`.
fn parse_reply(text: &str, chat: bool) -> std::result::Result<(String, Option<usize>), String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("the reply is not JSON ({e})"))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("the reply has no `choices[0]`")?;
    let content = if chat {
        choice.get("message").and_then(|m| m.get("content"))
    } else {
        choice.get("text")
    };
    let content = content
        .and_then(Value::as_str)
        .ok_or(if chat {
            "`choices[0].message.content` is not a string"
        } else {
            "`choices[0].text` is not a string"
        })?
        .to_owned();
    let tokens = v
        .get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    Ok((content, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_or_refused_with_a_reason() {
        let chat = r#"{"choices":[{"message":{"role":"assistant","content":"42"}}],"usage":{"completion_tokens":2}}"#;
        assert_eq!(parse_reply(chat, true), Ok(("42".into(), Some(2))));
        let completion = r#"{"choices":[{"text":" four"}]}"#;
        assert_eq!(parse_reply(completion, false), Ok((" four".into(), None)));
        assert!(parse_reply("<html>", true)
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_reply(r#"{"choices":[]}"#, true)
            .unwrap_err()
            .contains("choices[0]"));
        assert!(parse_reply(r#"{"choices":[{"text":1}]}"#, false)
            .unwrap_err()
            .contains("text"));
    }

    #[test]
    fn endpoints_need_an_http_url_with_a_host() {
        let t = Duration::from_secs(1);
        assert!(Endpoint::new("ftp://x/v1", None, t).is_err());
        assert!(Endpoint::new("http://", None, t).is_err());
        assert!(Endpoint::new("localhost:8080", None, t).is_err());
        let e = Endpoint::new("http://127.0.0.1:1/v1/", None, t).unwrap();
        assert_eq!(e.base_url(), "http://127.0.0.1:1/v1");
    }
}
