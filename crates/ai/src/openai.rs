//! The `openai` provider: one `POST {base_url}/chat/completions` per item, against OpenAI
//! or any OpenAI-compatible server, with a strict JSON schema for the answer. Protocol
//! facts follow the official SDK, `openai/openai-python@e43b422` (`src/openai/_base_client.py`,
//! `_constants.py`, `types/shared/response_format_json_schema.py`); the sections below are
//! those of docs/protocols.md, OpenAI:
//!
//! * Structured outputs (§3.4): `response_format: {type: "json_schema", json_schema:
//!   {name, strict: true, schema}}`; `message.refusal` and `finish_reason: "length"` are
//!   checked even though the schema holds, and the value is still repaired
//!   ([`domain::content::repair`]), because lengths and allowed HTML are not expressible in
//!   a schema.
//! * Errors (§3.2, classified as the official SDK does): 429 is a rate limit, except
//!   `insufficient_quota`, which no wait fixes; 408, 409 and 5xx, timeouts and connection
//!   failures are transient; other 4xx are final and keep OpenAI's
//!   `{"error": {"message", "type", "param", "code"}}` message. An `x-should-retry`
//!   header overrides the status, as in the SDK.
//! * Delays (§3.1): `retry-after-ms` (milliseconds) is preferred over `retry-after`
//!   (seconds). `x-ratelimit-*` headers are kept as the last [`RateLimitSnapshot`] for the
//!   engine to pace itself with; §3.1 warns they may be missing or wrong, so backoff
//!   stays the fallback.
//!
//! **No retries here.** The SDK's two quick retries are too short for batch work (§3.2)
//! and nested retry loops multiply; the durable job engine is the one retry loop, and
//! each [`AiError`] tells it whether and when to try again. Requests carry no idempotency
//! key (OpenAI has none), so the engine stores results per item and attempt.
//!
//! The API key is sent only in the `Authorization` header: it is never logged and is
//! masked out of any error message that echoes it.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::content::repair;
use domain::ContentValue;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::prompt::{
    max_completion_tokens, parse_answer, response_format, system_message, user_message,
};
use crate::{AiError, TextOptimizer, TextTask};

/// How to reach an OpenAI-compatible Chat Completions API.
#[derive(Clone)]
pub struct OpenAiConfig {
    pub api_key: String,
    /// The API root, ending before `/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// For the whole exchange, connection included. An answer slower than this counts as
    /// unavailable and is retried by the engine.
    pub timeout: Duration,
    /// Sent as `OpenAI-Organization` when set.
    pub organization: Option<String>,
}

impl OpenAiConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";
    pub const DEFAULT_MODEL: &'static str = "gpt-4o-mini";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// OpenAI's API with the default model and timeout.
    pub fn new(api_key: impl Into<String>) -> Self {
        OpenAiConfig {
            api_key: api_key.into(),
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            model: Self::DEFAULT_MODEL.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            organization: None,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    /// The key is redacted so a logged config does not leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("organization", &self.organization)
            .finish()
    }
}

/// The `x-ratelimit-*` headers of the last answer that carried them (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    /// Until the request budget is fully replenished.
    pub reset_requests: Option<Duration>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Duration>,
    /// When the answer arrived: the reset durations count from here.
    pub observed_at: Instant,
}

impl RateLimitSnapshot {
    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| header(headers, name).and_then(|v| v.trim().parse().ok());
        let duration = |name: &str| header(headers, name).and_then(parse_reset_duration);
        let snapshot = RateLimitSnapshot {
            limit_requests: number("x-ratelimit-limit-requests"),
            remaining_requests: number("x-ratelimit-remaining-requests"),
            reset_requests: duration("x-ratelimit-reset-requests"),
            limit_tokens: number("x-ratelimit-limit-tokens"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
            reset_tokens: duration("x-ratelimit-reset-tokens"),
            observed_at: Instant::now(),
        };
        let any = snapshot.limit_requests.is_some()
            || snapshot.remaining_requests.is_some()
            || snapshot.reset_requests.is_some()
            || snapshot.limit_tokens.is_some()
            || snapshot.remaining_tokens.is_some()
            || snapshot.reset_tokens.is_some();
        any.then_some(snapshot)
    }
}

/// Parses the duration strings of `x-ratelimit-reset-*`: `12ms`, `1s`, `6m0s`, `1h2m3.5s`,
/// `0.5s` (a sequence of numbers with units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`).
pub fn parse_reset_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The delay a 429 or 503 asks for: `retry-after-ms` first, then `retry-after` in seconds
/// (§3.1). An HTTP-date `retry-after` is ignored and backoff applies.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let parse = |name: &str, scale: f64| {
        header(headers, name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .and_then(|v| Duration::try_from_secs_f64(v * scale).ok())
    };
    parse("retry-after-ms", 1e-3).or_else(|| parse("retry-after", 1.0))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// A Chat Completions client that optimizes one field per call. See the module
/// documentation.
pub struct OpenAiOptimizer {
    http: reqwest::Client,
    endpoint: String,
    config: OpenAiConfig,
    last_rate_limit: Mutex<Option<RateLimitSnapshot>>,
}

impl fmt::Debug for OpenAiOptimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiOptimizer")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn configuration_error(message: impl Into<String>) -> AiError {
    AiError::Rejected {
        status: None,
        message: message.into(),
    }
}

impl OpenAiOptimizer {
    /// Checks the configuration (a key, an http(s) base URL, a model) and builds the
    /// HTTP client.
    pub fn new(config: OpenAiConfig) -> Result<Self, AiError> {
        if config.api_key.trim().is_empty() {
            return Err(configuration_error("no OpenAI API key is configured"));
        }
        if config.model.trim().is_empty() {
            return Err(configuration_error("no OpenAI model is configured"));
        }
        let base = config.base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|_| {
            configuration_error(format!("the AI base URL {base:?} is not a valid URL"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(configuration_error(format!(
                "the AI base URL {base:?} must use http or https"
            )));
        }
        let endpoint = format!("{base}/chat/completions");
        let http = reqwest::Client::builder()
            .user_agent(concat!("UltimateOptimizer/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|err| configuration_error(format!("the HTTP client failed: {err}")))?;
        Ok(OpenAiOptimizer {
            http,
            endpoint,
            config,
            last_rate_limit: Mutex::new(None),
        })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The rate-limit headers of the last answer that carried them.
    pub fn last_rate_limit(&self) -> Option<RateLimitSnapshot> {
        *self
            .last_rate_limit
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The JSON body sent for `task`.
    pub fn request_body(&self, task: &TextTask<'_>) -> Value {
        json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": system_message(task)},
                {"role": "user", "content": user_message(task)},
            ],
            "response_format": response_format(task.attribute),
            "max_completion_tokens": max_completion_tokens(task.platform, task.attribute),
        })
    }

    /// A message without the API key, should the provider echo it.
    fn redact(&self, message: &str) -> String {
        let key = self.config.api_key.trim();
        if key.len() >= 8 {
            message.replace(key, "***")
        } else {
            message.to_owned()
        }
    }

    fn remember_rate_limit(&self, headers: &HeaderMap) {
        if let Some(snapshot) = RateLimitSnapshot::from_headers(headers) {
            *self
                .last_rate_limit
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = Some(snapshot);
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> AiError {
        let message = if err.is_timeout() {
            format!(
                "no answer within {} s",
                self.config.timeout.as_secs_f64().max(0.001)
            )
        } else if err.is_connect() {
            "could not connect to the provider".to_owned()
        } else if err.is_body() || err.is_decode() {
            "the connection broke while reading the answer".to_owned()
        } else {
            "the request could not be completed".to_owned()
        };
        AiError::Unavailable {
            retry_after: None,
            message,
        }
    }

    /// An error answer classified for the engine.
    fn error_answer(&self, status: StatusCode, headers: &HeaderMap, body: &str) -> AiError {
        let detail = serde_json::from_str::<ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        let provider_message = detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| {
                let text = domain::content::collapse_whitespace(body);
                domain::content::truncate_at_word(&text, 200)
            });
        let code = detail
            .as_ref()
            .and_then(|d| d.code.as_ref())
            .and_then(Value::as_str)
            .or_else(|| detail.as_ref().and_then(|d| d.kind.as_deref()))
            .unwrap_or_default()
            .to_owned();
        let request_id = header(headers, "x-request-id")
            .map(|id| format!(" (request {id})"))
            .unwrap_or_default();
        let message = self.redact(&if provider_message.is_empty() {
            format!("HTTP {}{request_id}", status.as_u16())
        } else {
            format!("HTTP {}: {provider_message}{request_id}", status.as_u16())
        });
        let wait = retry_after(headers);
        let should_retry = header(headers, "x-should-retry").map(|v| v.trim() == "true");
        let transient = match should_retry {
            Some(decided) => decided,
            None => {
                (status == StatusCode::TOO_MANY_REQUESTS && code != "insufficient_quota")
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::CONFLICT
                    || status.is_server_error()
            }
        };
        if !transient {
            AiError::Rejected {
                status: Some(status.as_u16()),
                message,
            }
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            AiError::RateLimited {
                retry_after: wait,
                message,
            }
        } else {
            AiError::Unavailable {
                retry_after: wait,
                message,
            }
        }
    }

    /// The value in a successful answer, repaired for the task's platform and field.
    fn read_answer(&self, task: &TextTask<'_>, body: &str) -> Result<ContentValue, AiError> {
        let invalid = |message: String| AiError::InvalidOutput { message };
        let completion: Completion = serde_json::from_str(body)
            .map_err(|_| invalid("the answer is not a chat completion".into()))?;
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| invalid("the answer has no choices".into()))?;
        let message = choice.message.unwrap_or(Message {
            content: None,
            refusal: None,
        });
        if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(AiError::Rejected {
                status: None,
                message: format!("the model refused: {}", self.redact(refusal.trim())),
            });
        }
        match choice.finish_reason.as_deref() {
            Some("length") => {
                return Err(invalid(
                    "the answer was cut off at the output token limit".into(),
                ))
            }
            Some("content_filter") => {
                return Err(AiError::Rejected {
                    status: None,
                    message: "the provider's content filter withheld the answer".into(),
                })
            }
            _ => {}
        }
        let content = message
            .content
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| invalid("the answer is empty".into()))?;
        let value = parse_answer(task.attribute, &content).map_err(invalid)?;
        repair(task.platform, task.attribute, value).map_err(|err| {
            invalid(format!(
                "nothing usable is left of the answer once repaired ({err})"
            ))
        })
    }
}

#[async_trait::async_trait]
impl TextOptimizer for OpenAiOptimizer {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn can_translate(&self) -> bool {
        true
    }

    async fn optimize(&self, task: &TextTask<'_>) -> Result<ContentValue, AiError> {
        let started = Instant::now();
        let mut request = self
            .http
            .post(&self.endpoint)
            .bearer_auth(self.config.api_key.trim())
            .json(&self.request_body(task));
        if let Some(organization) = self.config.organization.as_deref() {
            request = request.header("OpenAI-Organization", organization);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let error = self.transport_error(&err);
                tracing::warn!(
                    model = %self.config.model,
                    attribute = task.attribute.as_str(),
                    error = %error,
                    "AI request failed"
                );
                return Err(error);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        self.remember_rate_limit(&headers);
        let body = match response.text().await {
            Ok(body) => body,
            Err(err) => return Err(self.transport_error(&err)),
        };
        let request_id = header(&headers, "x-request-id").unwrap_or_default();
        let result = if status.is_success() {
            self.read_answer(task, &body)
        } else {
            Err(self.error_answer(status, &headers, &body))
        };
        match &result {
            Ok(_) => tracing::debug!(
                model = %self.config.model,
                attribute = task.attribute.as_str(),
                request_id,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "AI answer"
            ),
            Err(error) => tracing::warn!(
                model = %self.config.model,
                attribute = task.attribute.as_str(),
                status = status.as_u16(),
                request_id,
                code = error.code(),
                error = %error,
                "AI request failed"
            ),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reset_durations_parse_like_openai_writes_them() {
        assert_eq!(
            parse_reset_duration("12ms"),
            Some(Duration::from_millis(12))
        );
        assert_eq!(parse_reset_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_reset_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(
            parse_reset_duration("0.5s"),
            Some(Duration::from_millis(500))
        );
        for bad in ["", "abc", "12", "5 s", "-1s", "1d"] {
            assert_eq!(parse_reset_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "2")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.25")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
    }

    #[test]
    fn snapshots_need_at_least_one_header() {
        assert_eq!(RateLimitSnapshot::from_headers(&HeaderMap::new()), None);
        let snapshot = RateLimitSnapshot::from_headers(&headers(&[
            ("x-ratelimit-remaining-requests", "42"),
            ("x-ratelimit-reset-requests", "6m0s"),
        ]))
        .unwrap();
        assert_eq!(snapshot.remaining_requests, Some(42));
        assert_eq!(snapshot.reset_requests, Some(Duration::from_secs(360)));
        assert_eq!(snapshot.limit_tokens, None);
    }

    #[test]
    fn configuration_is_checked_and_the_key_never_shows() {
        let config = OpenAiConfig::new("sk-secret-key-123456");
        assert!(!format!("{config:?}").contains("sk-secret"));
        let optimizer = OpenAiOptimizer::new(config.clone()).unwrap();
        assert!(!format!("{optimizer:?}").contains("sk-secret"));
        assert_eq!(
            optimizer.endpoint,
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            optimizer.redact("Incorrect API key provided: sk-secret-key-123456."),
            "Incorrect API key provided: ***."
        );
        for broken in [
            OpenAiConfig::new(" "),
            OpenAiConfig {
                base_url: "not a url".into(),
                ..config.clone()
            },
            OpenAiConfig {
                base_url: "ftp://example.com/v1".into(),
                ..config.clone()
            },
            OpenAiConfig {
                model: String::new(),
                ..config.clone()
            },
        ] {
            let err = OpenAiOptimizer::new(broken).unwrap_err();
            assert!(
                matches!(err, AiError::Rejected { status: None, .. }),
                "{err:?}"
            );
        }
        let trailing = OpenAiOptimizer::new(OpenAiConfig {
            base_url: "http://localhost:8080/v1/".into(),
            ..config
        })
        .unwrap();
        assert_eq!(
            trailing.endpoint,
            "http://localhost:8080/v1/chat/completions"
        );
    }

    #[test]
    fn error_answers_are_classified() {
        let optimizer = OpenAiOptimizer::new(OpenAiConfig::new("sk-test-abcdefgh")).unwrap();
        let body = |code: &str| {
            json!({"error": {"message": "nope", "type": "x", "param": null, "code": code}})
                .to_string()
        };
        let classify = |status: u16, headers: HeaderMap, body: &str| {
            optimizer.error_answer(StatusCode::from_u16(status).unwrap(), &headers, body)
        };
        let limited = classify(
            429,
            headers(&[("retry-after", "3"), ("x-request-id", "req_1")]),
            &body("rate_limit_exceeded"),
        );
        assert_eq!(
            limited,
            AiError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
                message: "HTTP 429: nope (request req_1)".into()
            }
        );
        assert!(matches!(
            classify(429, HeaderMap::new(), &body("insufficient_quota")),
            AiError::Rejected {
                status: Some(429),
                ..
            }
        ));
        for status in [408, 409, 500, 502, 503, 504] {
            assert!(
                matches!(
                    classify(status, HeaderMap::new(), "<html>oops</html>"),
                    AiError::Unavailable { .. }
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(
                matches!(
                    classify(status, HeaderMap::new(), &body("x")),
                    AiError::Rejected { status: Some(s), .. } if s == status
                ),
                "{status}"
            );
        }
        assert!(matches!(
            classify(500, headers(&[("x-should-retry", "false")]), ""),
            AiError::Rejected { .. }
        ));
        assert!(matches!(
            classify(400, headers(&[("x-should-retry", "true")]), ""),
            AiError::Unavailable { .. }
        ));
        assert_eq!(
            classify(502, HeaderMap::new(), "").to_string(),
            "The AI provider did not answer: HTTP 502"
        );
    }
}
