//! Plans and credits over time. The billing systems decide an account's plan — Wix for
//! accounts that came through the Wix app, Stripe for standalone ones — and tell us by
//! webhooks that are retried for days and can arrive out of order. This crate turns their
//! deliveries into [`storage::PlanChange`]s (which never roll a plan back to an older
//! event, and apply once), repairs lost deliveries by reading the billing system
//! (reconciliation), and describes an account's billing for the dashboard.

pub mod service;
pub mod wix;

pub use service::{
    Billing, BillingConfig, BillingOverview, Delivery, PlanSummary, UpgradeOffer, WixBillingApp,
};
pub use wix::{WebhookRejection, WixEvent, WixEventKind, WixWebhookVerifier};

/// Everything that can go wrong in billing, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The operator's configuration cannot work (a key that does not parse, …).
    #[error("billing configuration: {0}")]
    Config(String),
    /// The integration the request needs is not set up on this installation.
    #[error("{0} is not configured on this installation")]
    NotConfigured(&'static str),
    /// The request does not apply to this account (a Wix action on a standalone one, …).
    #[error("{0}")]
    NotApplicable(String),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Connector(#[from] connectors::http::ConnectorError),
}
