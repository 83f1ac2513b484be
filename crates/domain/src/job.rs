//! Optimization jobs: what a merchant asks for (products × attributes), what it costs, the
//! life of a job and of its items, and how a failed attempt is retried. The engine that
//! runs items lives in the worker; the rules it follows live here, free of I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::{InfoSection, SourceProduct};

/// A content field a text job rewrites. One job item is one product × one attribute, so
/// each item costs the same, is reviewed and published on its own, and fails or is
/// refunded on its own.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    Title,
    Description,
    SeoTitle,
    SeoDescription,
    InfoSections,
}

impl Attribute {
    pub const ALL: [Attribute; 5] = [
        Attribute::Title,
        Attribute::Description,
        Attribute::SeoTitle,
        Attribute::SeoDescription,
        Attribute::InfoSections,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Title => "title",
            Attribute::Description => "description",
            Attribute::SeoTitle => "seo_title",
            Attribute::SeoDescription => "seo_description",
            Attribute::InfoSections => "info_sections",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Attribute::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// What merchants call the field.
    pub fn label(self) -> &'static str {
        match self {
            Attribute::Title => "Product title",
            Attribute::Description => "Description",
            Attribute::SeoTitle => "SEO title",
            Attribute::SeoDescription => "Meta description",
            Attribute::InfoSections => "Info sections",
        }
    }

    /// The product's current value of this field.
    pub fn read(self, product: &SourceProduct) -> ContentValue {
        match self {
            Attribute::Title => ContentValue::Text(product.title.clone()),
            Attribute::Description => ContentValue::Text(product.description_html.clone()),
            Attribute::SeoTitle => {
                ContentValue::Text(product.seo_title.clone().unwrap_or_default())
            }
            Attribute::SeoDescription => {
                ContentValue::Text(product.seo_description.clone().unwrap_or_default())
            }
            Attribute::InfoSections => ContentValue::Sections(product.info_sections.clone()),
        }
    }

    /// Writes `value` into the product's field. A value of the wrong shape (sections for a
    /// text field or the reverse) is refused, leaving the product unchanged.
    pub fn apply(self, product: &mut SourceProduct, value: &ContentValue) -> Result<(), String> {
        match (self, value) {
            (Attribute::Title, ContentValue::Text(text)) => product.title = text.clone(),
            (Attribute::Description, ContentValue::Text(text)) => {
                product.description_html = text.clone()
            }
            (Attribute::SeoTitle, ContentValue::Text(text)) => {
                product.seo_title = Some(text.clone()).filter(|t| !t.is_empty())
            }
            (Attribute::SeoDescription, ContentValue::Text(text)) => {
                product.seo_description = Some(text.clone()).filter(|t| !t.is_empty())
            }
            (Attribute::InfoSections, ContentValue::Sections(sections)) => {
                product.info_sections = sections.clone()
            }
            (attribute, _) => {
                return Err(format!(
                    "a value of the wrong shape for {}",
                    attribute.as_str()
                ))
            }
        }
        Ok(())
    }
}

/// The value of one attribute: text (HTML for descriptions) or a list of info sections.
/// Serialized as a JSON string or an array of `{title, html}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ContentValue {
    Text(String),
    Sections(Vec<InfoSection>),
}

impl ContentValue {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentValue::Text(text) => Some(text),
            ContentValue::Sections(_) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            ContentValue::Text(text) => text.trim().is_empty(),
            ContentValue::Sections(sections) => sections.is_empty(),
        }
    }
}

/// Where a job's products come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceScope {
    /// `sourceIds` are product ids.
    Products,
    /// `sourceIds` are collection ids; every product in them (once) is optimized.
    Collections,
}

impl SourceScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceScope::Products => "products",
            SourceScope::Collections => "collections",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "products" => Some(SourceScope::Products),
            "collections" => Some(SourceScope::Collections),
            _ => None,
        }
    }
}

/// What kind of work a job's items are. Image and feed enrichment jobs come later and
/// share the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Text,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Text => "text",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "text" => Some(JobKind::Text),
            _ => None,
        }
    }
}

/// A job's state, derived from its items (see [`JobCounts::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Failed,
    Canceled,
}

/// An item's state. PENDING → RUNNING (claimed) → DONE | FAILED, or back to PENDING for a
/// retry; PENDING → CANCELED when its job is canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    Running,
    Done,
    Failed,
    Canceled,
}

macro_rules! status_names {
    ($ty:ty) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::Pending => "pending",
                    Self::Running => "running",
                    Self::Done => "done",
                    Self::Failed => "failed",
                    Self::Canceled => "canceled",
                }
            }

            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    "pending" => Some(Self::Pending),
                    "running" => Some(Self::Running),
                    "done" => Some(Self::Done),
                    "failed" => Some(Self::Failed),
                    "canceled" => Some(Self::Canceled),
                    _ => None,
                }
            }

            /// No further transition happens on its own.
            pub fn is_terminal(self) -> bool {
                matches!(self, Self::Done | Self::Failed | Self::Canceled)
            }
        }
    };
}

status_names!(JobStatus);
status_names!(ItemStatus);

/// How many of a job's items are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub canceled: i64,
}

impl JobCounts {
    pub fn terminal(&self) -> i64 {
        self.done + self.failed + self.canceled
    }

    /// Share of items that reached a terminal state, 0–100.
    pub fn percent(&self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        ((self.terminal() * 100) / self.total).clamp(0, 100) as u8
    }

    /// The job's status as its items make it: RUNNING once one item was claimed, DONE
    /// when all are terminal and one succeeded, FAILED when all failed. A canceled job
    /// stays CANCELED whatever its running items do.
    pub fn status(&self, canceled: bool, started: bool) -> JobStatus {
        if canceled {
            JobStatus::Canceled
        } else if self.total > 0 && self.terminal() == self.total {
            if self.done > 0 {
                JobStatus::Done
            } else if self.failed > 0 {
                JobStatus::Failed
            } else {
                JobStatus::Canceled
            }
        } else if started {
            JobStatus::Running
        } else {
            JobStatus::Pending
        }
    }
}

/// Credits a text job costs: one per product and attribute.
pub fn text_job_cost(products: usize, attributes: usize) -> i64 {
    (products as i64).saturating_mul(attributes as i64)
}

/// How a failed attempt is retried: exponential backoff with jitter, honouring a delay the
/// provider asked for, up to a number of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// No computed delay exceeds this (a provider's `Retry-After` may, up to
    /// [`RetryPolicy::max_retry_after`]).
    pub max: Duration,
    /// A `Retry-After` longer than this is capped: a provider asking for an hour is
    /// retried sooner and backed off again if it still refuses.
    pub max_retry_after: Duration,
    /// Attempts (claims) an item may use before it fails for good.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    /// Eight attempts spread over roughly ten minutes: a provider outage of several
    /// minutes is ridden out, a permanently broken item gives up the same day.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(5 * 60),
            max_retry_after: Duration::from_secs(10 * 60),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    /// `jitter` is a random number in `[0, 1)`: the delay is spread over ±25 % of the
    /// exponential value so items failed together do not retry together. A provider's
    /// `retry_after` is a floor.
    pub fn delay(&self, attempt: i64, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exponent = (attempt.max(1) - 1).min(30) as u32;
        let exponential = self
            .base
            .checked_mul(2u32.saturating_pow(exponent))
            .unwrap_or(self.max)
            .min(self.max);
        let spread = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        let jittered = exponential.mul_f64(spread).min(self.max);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        }
    }

    /// Whether an item that has used `attempts` claims may be tried again.
    pub fn may_retry(&self, attempts: i64) -> bool {
        attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> SourceProduct {
        serde_json::from_value(serde_json::json!({
            "externalId": "p1",
            "title": "Old title",
            "descriptionHtml": "<p>Old</p>",
            "currency": "USD",
            "availability": "in_stock"
        }))
        .unwrap()
    }

    #[test]
    fn attributes_round_trip_through_their_names() {
        for attribute in Attribute::ALL {
            assert_eq!(Attribute::parse(attribute.as_str()), Some(attribute));
        }
        assert_eq!(Attribute::parse("price"), None);
    }

    #[test]
    fn attributes_read_and_write_their_field() {
        let mut product = product();
        assert_eq!(
            Attribute::SeoTitle.read(&product),
            ContentValue::Text(String::new())
        );
        Attribute::SeoTitle
            .apply(&mut product, &ContentValue::Text("New SEO".into()))
            .unwrap();
        assert_eq!(product.seo_title.as_deref(), Some("New SEO"));
        Attribute::Title
            .apply(&mut product, &ContentValue::Text("New".into()))
            .unwrap();
        assert_eq!(product.title, "New");
        let sections = ContentValue::Sections(vec![InfoSection {
            title: "Care".into(),
            html: "<p>Wash cold</p>".into(),
        }]);
        assert!(Attribute::Title.apply(&mut product, &sections).is_err());
        assert_eq!(product.title, "New", "a refused value changes nothing");
        Attribute::InfoSections
            .apply(&mut product, &sections)
            .unwrap();
        assert_eq!(Attribute::InfoSections.read(&product), sections);
    }

    #[test]
    fn content_values_serialize_as_text_or_sections() {
        let text = ContentValue::Text("Hi".into());
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"Hi\"");
        let back: ContentValue =
            serde_json::from_str(r#"[{"title":"Care","html":"<p>x</p>"}]"#).unwrap();
        assert!(matches!(back, ContentValue::Sections(ref s) if s.len() == 1));
    }

    #[test]
    fn job_status_follows_its_items() {
        let mut counts = JobCounts {
            total: 3,
            pending: 3,
            ..JobCounts::default()
        };
        assert_eq!(counts.status(false, false), JobStatus::Pending);
        assert_eq!(counts.status(false, true), JobStatus::Running);
        counts = JobCounts {
            total: 3,
            done: 1,
            failed: 2,
            ..JobCounts::default()
        };
        assert_eq!(counts.status(false, true), JobStatus::Done);
        assert_eq!(counts.percent(), 100);
        counts = JobCounts {
            total: 2,
            failed: 2,
            ..JobCounts::default()
        };
        assert_eq!(counts.status(false, true), JobStatus::Failed);
        counts = JobCounts {
            total: 4,
            done: 1,
            pending: 3,
            ..JobCounts::default()
        };
        assert_eq!(counts.status(true, true), JobStatus::Canceled);
        assert_eq!(counts.percent(), 25);
    }

    #[test]
    fn cost_is_products_times_attributes() {
        assert_eq!(text_job_cost(2, 2), 4);
        assert_eq!(text_job_cost(0, 5), 0);
    }

    #[test]
    fn backoff_grows_jitters_caps_and_honours_retry_after() {
        let policy = RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
            max_attempts: 5,
        };
        assert_eq!(policy.delay(1, None, 0.5), Duration::from_secs(2));
        assert_eq!(policy.delay(3, None, 0.5), Duration::from_secs(8));
        assert_eq!(policy.delay(1, None, 0.0), Duration::from_millis(1500));
        assert!(policy.delay(1, None, 0.999) < Duration::from_millis(2500));
        assert_eq!(policy.delay(20, None, 0.5), Duration::from_secs(60));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(30)), 0.5),
            Duration::from_secs(30)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600)), 0.5),
            Duration::from_secs(120)
        );
        assert!(policy.may_retry(4));
        assert!(!policy.may_retry(5));
    }
}
