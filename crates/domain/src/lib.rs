//! The domain of Ultimate Optimizer: what an account, a plan, a store and a credit balance
//! are, and the rules that govern them. Nothing here performs I/O, so every rule can be
//! tested in isolation and reused by the server, the worker and the CLI alike.

pub mod account;
pub mod catalog;
pub mod content;
pub mod credits;
pub mod job;
pub mod plan;
pub mod text;
pub mod validation;

pub use account::{Account, AccountStatus, BillingSource, Platform, Store, User};
pub use catalog::{
    is_valid_gtin, Availability, InfoSection, Money, OptionValue, ProductAttribute, ProductImage,
    SourceProduct, Variant,
};
pub use content::{repair, sanitize_html, ContentError, FieldLimits, SectionLimits};
pub use credits::{next_reset_date, CreditBalance, LedgerEntry, LedgerReason};
pub use job::{
    text_job_cost, Attribute, ContentValue, ItemStatus, JobCounts, JobKind, JobStatus, RetryPolicy,
    SourceScope,
};
pub use plan::{default_plans, Plan, PlanId};
pub use text::{check_text, FieldPath, TextFieldError, TextFix, TextProblem};
pub use validation::{validate_account_name, validate_email, validate_password, FieldErrors};
