//! Text optimizers: what rewrites one field of one product. The job engine picks one
//! provider and calls [`TextOptimizer::optimize`] once per item; whichever provider
//! answers, the value it returns has already been through [`domain::content::repair`], so
//! it fits the platform's limits and carries only allowed HTML.
//!
//! * [`RulesOptimizer`] (`"rules"`) works offline and deterministically: casing,
//!   whitespace, duplicate words, SEO fields built from the product's own data.
//! * [`OpenAiOptimizer`] (`"openai"`) calls an OpenAI-compatible Chat Completions API with
//!   a strict JSON schema. It never retries: the durable engine is the one retry loop, and
//!   [`AiError`] tells it whether and when to try again.

use std::time::Duration;

mod languages;
pub mod openai;
pub mod prompt;
pub mod rules;

pub use languages::{language_name, languages};
pub use openai::{OpenAiConfig, OpenAiOptimizer, RateLimitSnapshot};
pub use rules::RulesOptimizer;

/// One field of one product to rewrite.
#[derive(Debug, Clone, Copy)]
pub struct TextTask<'a> {
    pub product: &'a domain::SourceProduct,
    pub attribute: domain::Attribute,
    /// BCP-47 code such as "de"; None keeps the product's language.
    pub target_lang: Option<&'a str>,
    /// The merchant's instruction for the job (≤ 2000 characters, checked by the API).
    pub user_prompt: Option<&'a str>,
    /// The merchant's brand voice, as style guidance.
    pub brand_voice: Option<&'a str>,
    /// The store's platform: its field limits apply.
    pub platform: domain::Platform,
}

#[async_trait::async_trait]
pub trait TextOptimizer: Send + Sync {
    /// "rules" or "openai"
    fn name(&self) -> &'static str;
    /// Whether `target_lang` may be set; the API refuses translation jobs up front when
    /// it is false.
    fn can_translate(&self) -> bool;
    /// The new value for task.attribute, already passed through domain::content::repair.
    async fn optimize(&self, task: &TextTask<'_>) -> Result<domain::ContentValue, AiError>;
}

/// Why an optimization failed, classified for the engine's retry decision. Messages are
/// fit to show a merchant: they never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// 429: wait `retry_after` (from retry-after-ms / retry-after headers) if given.
    #[error("The AI provider is rate limiting requests: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx, 408, 409, timeouts, connection errors: retry later.
    #[error("The AI provider did not answer: {message}")]
    Unavailable {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The provider refused the request for good (other 4xx, e.g. 400/401/403/404), or a refusal.
    #[error("The AI provider refused the request: {message}")]
    Rejected {
        status: Option<u16>,
        message: String,
    },
    /// The answer was unusable even after repair (malformed JSON, empty, wrong shape, truncated by length).
    #[error("The AI provider's answer was unusable: {message}")]
    InvalidOutput { message: String },
}

impl AiError {
    /// Whether another attempt may succeed. An unusable answer is worth another attempt:
    /// a model samples a new answer each time, and the engine's attempt limit bounds it.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, AiError::Rejected { .. })
    }

    /// The delay the provider asked for, a floor for the engine's backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AiError::RateLimited { retry_after, .. } | AiError::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The stable code stored on a failed item and shown by the API.
    pub fn code(&self) -> &'static str {
        match self {
            AiError::RateLimited { .. } => "provider_rate_limited",
            AiError::Unavailable { .. } => "provider_unavailable",
            AiError::Rejected { .. } => "provider_rejected",
            AiError::InvalidOutput { .. } => "invalid_output",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_for_the_engine() {
        let wait = Some(Duration::from_millis(1500));
        let limited = AiError::RateLimited {
            retry_after: wait,
            message: "slow down".into(),
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), wait);
        assert_eq!(limited.code(), "provider_rate_limited");
        let down = AiError::Unavailable {
            retry_after: None,
            message: "HTTP 503".into(),
        };
        assert!(down.is_retryable());
        assert_eq!(down.code(), "provider_unavailable");
        assert_eq!(down.to_string(), "The AI provider did not answer: HTTP 503");
        let rejected = AiError::Rejected {
            status: Some(401),
            message: "bad key".into(),
        };
        assert!(!rejected.is_retryable());
        assert_eq!(rejected.retry_after(), None);
        assert_eq!(rejected.code(), "provider_rejected");
        let invalid = AiError::InvalidOutput {
            message: "not JSON".into(),
        };
        assert!(invalid.is_retryable());
        assert_eq!(invalid.code(), "invalid_output");
    }
}
