//! The HTTP behaviour every platform client shares: a timeout on every call, retries with
//! exponential backoff and jitter for timeouts, dropped connections and 5xx answers, and
//! `Retry-After` honoured on 429. Platform errors keep the platform's own code and message.

use std::time::Duration;

use rand::Rng;
use reqwest::{RequestBuilder, Response, StatusCode};

/// Why a call to a store platform failed, in terms the API can pass on to the merchant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("the store address {0:?} is not a valid URL")]
    InvalidUrl(String),
    #[error("the store must be reached over HTTPS: {0}")]
    InsecureUrl(String),
    /// The store address is (or resolves to) a private or local network address.
    #[error("the store address {0} is on a private or local network; connect a store on the public internet")]
    PrivateAddress(String),
    #[error("the store refused the credentials ({code}): {message}")]
    Unauthorized { code: String, message: String },
    #[error("the store answered {status} ({code}): {message}")]
    Platform {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the store could not be reached: {0}")]
    Unreachable(String),
    #[error("the store's answer could not be read: {0}")]
    InvalidResponse(String),
    /// The product changed in the store since the revision the caller read.
    #[error("the product changed in the store since it was read ({code}): {message}")]
    Conflict {
        code: String,
        message: String,
        current_revision: Option<String>,
    },
    #[error("the store has no product {0}")]
    NotFound(String),
    /// Stripe refused or failed a billing call, with the fields of Stripe's error object so
    /// the caller can tell a bad parameter (`param`) from a throttled or failing Stripe.
    /// `kind` is Stripe's `type` (`invalid_request_error`, `api_error`, `card_error`,
    /// `idempotency_error`); answers without Stripe's error body read as `api_error`.
    #[error("Stripe answered {status} ({kind}): {message}")]
    Stripe {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
        param: Option<String>,
    },
}

impl ConnectorError {
    /// Whether the same call may succeed later: the platform could not be reached, was
    /// throttling (429) or failing (5xx). These are the answers [`send_with_retries`]
    /// retries, so an error that still carries them means the retries ran out.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectorError::Unreachable(_) => true,
            ConnectorError::Platform { status, .. } | ConnectorError::Stripe { status, .. } => {
                *status == 429 || *status >= 500
            }
            _ => false,
        }
    }
}

/// Retry schedule: delays double from `base_delay` (1 s, 2 s, 4 s by default), each with up
/// to 25% jitter; `Retry-After` overrides the delay for 429 answers, capped at `max_delay`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let base = self.base_delay.saturating_mul(1 << attempt.min(16));
        let jitter = rand::thread_rng().gen_range(0.0..0.25);
        base.mul_f64(1.0 + jitter).min(self.max_delay)
    }
}

/// Sends the request built by `build` until it succeeds, fails for good, or retries run out.
/// `parse_error` turns a platform's error answer into a [`ConnectorError`].
pub async fn send_with_retries<F, E, Fut>(
    policy: &RetryPolicy,
    build: F,
    parse_error: E,
) -> Result<Response, ConnectorError>
where
    F: Fn() -> RequestBuilder,
    E: Fn(StatusCode, String) -> Fut,
    Fut: std::future::Future<Output = ConnectorError>,
{
    let mut attempt = 0;
    loop {
        let outcome = build().timeout(policy.timeout).send().await;
        let retry_in = match outcome {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if !retryable || attempt >= policy.max_retries {
                    let body = response.text().await.unwrap_or_default();
                    return Err(parse_error(status, body).await);
                }
                match (status, retry_after) {
                    (StatusCode::TOO_MANY_REQUESTS, Some(wait)) => wait.min(policy.max_delay),
                    _ => policy.backoff(attempt),
                }
            }
            Err(err) => {
                if attempt >= policy.max_retries
                    || !(err.is_timeout() || err.is_connect() || err.is_request())
                {
                    return Err(ConnectorError::Unreachable(describe(&err)));
                }
                policy.backoff(attempt)
            }
        };
        tracing::debug!(
            attempt,
            retry_in_ms = retry_in.as_millis() as u64,
            "retrying store request"
        );
        tokio::time::sleep(retry_in).await;
        attempt += 1;
    }
}

/// A transport error without the URL (which may carry credentials in query strings).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
