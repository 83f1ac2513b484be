//! Tenants and what belongs to them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::credits::CreditBalance;

/// Who bills the account: Wix (embedded app), Stripe (standalone paid) or nobody (free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingSource {
    None,
    Wix,
    Stripe,
}

impl BillingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingSource::None => "none",
            BillingSource::Wix => "wix",
            BillingSource::Stripe => "stripe",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(BillingSource::None),
            "wix" => Some(BillingSource::Wix),
            "stripe" => Some(BillingSource::Stripe),
            _ => None,
        }
    }
}

/// An account stays `Inactive` between an app removal and the deletion of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Inactive,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Inactive => "inactive",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(AccountStatus::Active),
            "inactive" => Some(AccountStatus::Inactive),
            _ => None,
        }
    }
}

/// The tenant. Every other record belongs to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub plan_id: String,
    pub billing_source: BillingSource,
    pub status: AccountStatus,
    pub credits_total: i64,
    pub credits_used: i64,
    pub credits_reset_on: NaiveDate,
    pub period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// When the account became inactive (the app was removed); its data is
    /// deleted once this is older than the configured grace period. `None` while active.
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Account {
    pub fn credits(&self) -> CreditBalance {
        CreditBalance {
            total: self.credits_total,
            used: self.credits_used,
            resets_on: self.credits_reset_on,
        }
    }
}

/// A standalone login. Wix merchants have no user row: the signed instance identifies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    /// `None` for users who cannot log in with a password (the demo user).
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The e-commerce platform a store lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Wix,
    Woocommerce,
    Local,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Wix => "wix",
            Platform::Woocommerce => "woocommerce",
            Platform::Local => "local",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "wix" => Some(Platform::Wix),
            "woocommerce" => Some(Platform::Woocommerce),
            "local" => Some(Platform::Local),
            _ => None,
        }
    }
}

/// A connection between an account and one store on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: Uuid,
    pub account_id: Uuid,
    pub platform: Platform,
    /// The platform's own id for the store: the Wix instance id, the WooCommerce site URL,
    /// or a generated id for local catalogs.
    pub external_id: String,
    pub name: String,
    /// ISO 4217 code of the store's prices.
    pub currency: String,
    pub created_at: DateTime<Utc>,
}
