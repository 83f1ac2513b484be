//! What the API and the scheduler ask of billing: take a verified delivery, apply it once,
//! repair a lost one from the billing system, describe an account's billing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use domain::{Account, AccountStatus, BillingSource, LedgerEntry, Plan, Platform};
use serde::Serialize;
use storage::{NewWebhookEvent, PlanChange, Storage};
use uuid::Uuid;

use crate::wix::{WixEvent, WixEventKind};
use crate::BillingError;

/// The provider name of Wix deliveries in `webhook_events`.
pub const WIX_PROVIDER: &str = "wix";

/// The Wix app, as billing needs it: the instance API for reconciliation and the app id
/// for the upgrade link.
#[derive(Clone)]
pub struct WixBillingApp {
    pub app_id: String,
    pub app_secret: String,
    pub api_base_url: String,
}

impl std::fmt::Debug for WixBillingApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixBillingApp")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .finish()
    }
}

/// The operator's billing configuration.
#[derive(Debug, Clone, Default)]
pub struct BillingConfig {
    /// Billing-system plan names (Wix `vendorProductId`s) → our plan ids.
    pub plan_aliases: HashMap<String, String>,
    pub wix: Option<WixBillingApp>,
    /// Stripe, for standalone accounts.
    pub stripe: Option<crate::stripe::StripeBillingApp>,
    /// Where merchants reach the service (Checkout returns there).
    pub public_url: String,
}

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// First seen: recorded, to be processed.
    New,
    /// Seen before and processed: nothing more to do.
    Duplicate,
    /// Seen before but its processing never finished (a crash): process it again.
    Unfinished,
}

/// A plan as the billing page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub id: String,
    pub name: String,
    pub price_monthly_cents: i64,
    pub monthly_credits: i64,
}

impl From<&Plan> for PlanSummary {
    fn from(plan: &Plan) -> Self {
        PlanSummary {
            id: plan.id.clone(),
            name: plan.name.clone(),
            price_monthly_cents: plan.price_monthly_cents,
            monthly_credits: plan.monthly_credits,
        }
    }
}

/// How the merchant changes plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UpgradeOffer {
    /// The Wix pricing page of this install (docs/protocols.md, Wix §5.3).
    Wix { url: String },
    /// Standalone accounts check out with Stripe (`POST /api/billing/checkout`).
    Stripe,
    /// No billing system is configured here: plans are set by the operator.
    None,
}

/// An account's billing at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingOverview {
    pub account: Account,
    pub plan: Plan,
    pub plans: Vec<Plan>,
    pub upgrade: UpgradeOffer,
    pub history: Vec<LedgerEntry>,
    pub history_cursor: Option<String>,
}

/// What a billing system says an account has, read by a reconciliation.
pub(crate) struct ObservedPlan {
    pub plan_id: String,
    pub billing_source: BillingSource,
    pub period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

/// Billing operations over one storage.
#[derive(Clone)]
pub struct Billing {
    storage: Arc<dyn Storage>,
    config: BillingConfig,
}

impl Billing {
    pub fn new(storage: Arc<dyn Storage>, config: BillingConfig) -> Self {
        Billing { storage, config }
    }

    pub fn config(&self) -> &BillingConfig {
        &self.config
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The plan a billing system names, or the free plan (logged) when nobody knows it:
    /// a merchant is never locked out by a typo in the operator's plan mapping.
    async fn plan_named(&self, name: Option<&str>) -> Result<Plan, BillingError> {
        let plans = self.storage.list_plans().await?;
        if let Some(plan) = name
            .and_then(|name| domain::plan::resolve_plan(name, &plans, &self.config.plan_aliases))
        {
            return Ok(plan.clone());
        }
        tracing::warn!(
            billing.plan = name.unwrap_or(""),
            "a billing event names a plan nobody maps; the account is put on the free plan"
        );
        Ok(self.storage.get_plan(domain::plan::FREE_PLAN_ID).await?)
    }

    /// Records a verified Wix delivery once (`webhook_events`, keyed by instance, type and
    /// operation time) and says whether it still needs processing.
    pub async fn record_wix_delivery(
        &self,
        event: &WixEvent,
        now: DateTime<Utc>,
    ) -> Result<Delivery, BillingError> {
        let key = event.dedupe_key();
        let recorded = self
            .storage
            .record_webhook_event(
                NewWebhookEvent {
                    provider: WIX_PROVIDER.into(),
                    dedupe_key: key.clone(),
                    event_type: event.event_type.clone(),
                    account_id: None,
                    payload: event.envelope.clone(),
                },
                now,
            )
            .await?;
        if recorded {
            return Ok(Delivery::New);
        }
        match self
            .storage
            .webhook_event_processed(WIX_PROVIDER, &key)
            .await?
        {
            Some(false) => Ok(Delivery::Unfinished),
            _ => Ok(Delivery::Duplicate),
        }
    }

    /// Applies a Wix event to the instance's account (created on first sight) and marks
    /// the delivery processed. Safe to run twice for one delivery: a plan change is keyed
    /// by the delivery and never older than the account's newest.
    pub async fn process_wix_event(
        &self,
        event: &WixEvent,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        self.apply_wix_event(event, &event.dedupe_key(), now).await
    }

    /// [`Billing::process_wix_event`] for the delivery recorded under `key`.
    async fn apply_wix_event(
        &self,
        event: &WixEvent,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        let provisioned = self
            .storage
            .provision_wix_instance(&event.instance_id, now)
            .await?;
        let account = provisioned.account;
        let result = match &event.kind {
            WixEventKind::AppInstalled => {
                if account.status == AccountStatus::Inactive {
                    self.storage
                        .set_account_status(account.id, AccountStatus::Active, now)
                        .await?;
                    "reactivated".to_owned()
                } else {
                    "installed".to_owned()
                }
            }
            WixEventKind::AppRemoved => {
                self.storage
                    .set_account_status(account.id, AccountStatus::Inactive, now)
                    .await?;
                "deactivated".to_owned()
            }
            WixEventKind::PaidPlanPurchased
            | WixEventKind::PaidPlanChanged
            | WixEventKind::PlanConvertedToPaid
            | WixEventKind::PlanReactivated
            | WixEventKind::PlanTransferred => {
                let plan = self.plan_named(event.vendor_product_id()).await?;
                let change = PlanChange {
                    plan_id: plan.id,
                    billing_source: BillingSource::Wix,
                    effective_at: Some(event.operation_at().unwrap_or(now)),
                    // A plan change names no end: the period the purchase gave goes on.
                    period_end: event.expires_on().or(account.period_end),
                    cancel_at_period_end: false,
                    reference: format!("wix:{key}"),
                };
                applied_or_stale(
                    self.storage
                        .apply_plan_change(account.id, change, now)
                        .await?
                        .applied,
                )
            }
            WixEventKind::PaidPlanAutoRenewalCancelled => {
                // Access is kept until the paid period ends; then the scheduler moves the
                // account to the free plan. The event names no end: the one the purchase
                // gave, or the end of the current credit month.
                let plan = match event.vendor_product_id() {
                    Some(name) => self.plan_named(Some(name)).await?,
                    None => self.storage.get_plan(&account.plan_id).await?,
                };
                let period_end = account
                    .period_end
                    .or(event.expires_on())
                    .unwrap_or_else(|| end_of_credit_month(account.credits_reset_on));
                let change = PlanChange {
                    plan_id: plan.id,
                    billing_source: BillingSource::Wix,
                    effective_at: Some(event.operation_at().unwrap_or(now)),
                    period_end: Some(period_end),
                    cancel_at_period_end: true,
                    reference: format!("wix:{key}"),
                };
                applied_or_stale(
                    self.storage
                        .apply_plan_change(account.id, change, now)
                        .await?
                        .applied,
                )
            }
            WixEventKind::Other(event_type) => {
                tracing::info!(wix.event_type = %event_type, "ignored a Wix event this app does not handle");
                "ignored".to_owned()
            }
        };
        self.storage
            .finish_webhook_event(WIX_PROVIDER, key, Some(account.id), &result, now)
            .await?;
        Ok(result)
    }

    /// Processes Wix deliveries recorded more than `grace` ago whose processing never
    /// finished (the process stopped between the answer and the effect). Returns how many.
    pub async fn process_wix_backlog(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<u64, BillingError> {
        let pending = self
            .storage
            .pending_webhook_events(WIX_PROVIDER, now - grace, 100)
            .await?;
        let mut processed = 0;
        for delivery in pending {
            match WixEvent::from_envelope(&delivery.payload) {
                Ok(event) => {
                    // Finished under the key it was recorded with (the token's `iat` is
                    // not in the envelope).
                    self.apply_wix_event(&event, &delivery.dedupe_key, now)
                        .await?;
                }
                Err(err) => {
                    self.storage
                        .finish_webhook_event(
                            WIX_PROVIDER,
                            &delivery.dedupe_key,
                            None,
                            &format!("unreadable: {err}"),
                            now,
                        )
                        .await?;
                }
            }
            processed += 1;
        }
        Ok(processed)
    }

    /// Reads the instance's billing from Wix and corrects the account's plan: the repair
    /// when a webhook was lost. What Wix says now wins over any older delivery.
    pub async fn sync_wix_credits(
        &self,
        account_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Account, BillingError> {
        let app = self
            .config
            .wix
            .as_ref()
            .ok_or(BillingError::NotConfigured("Wix"))?;
        let account = self.storage.get_account(account_id).await?;
        let stores = self.storage.list_stores(account_id).await?;
        let Some(store) = stores.iter().find(|store| store.platform == Platform::Wix) else {
            return Err(BillingError::NotApplicable(
                "this account is not billed through Wix".into(),
            ));
        };
        let mut config =
            connectors::wix::WixConfig::new(&app.app_id, &app.app_secret, &store.external_id);
        config.base_url = app.api_base_url.clone();
        let instance = connectors::wix::WixClient::new(config)?
            .app_instance()
            .await?;
        let (plan, cancel, period_end) = match (&instance.billing, instance.is_free) {
            (Some(billing), false) => (
                self.plan_named(billing.package_name.as_deref()).await?,
                billing.auto_renewing == Some(false),
                billing.expiration_date.or(account.period_end),
            ),
            _ => (
                self.storage.get_plan(domain::plan::FREE_PLAN_ID).await?,
                false,
                None,
            ),
        };
        let period_end = if cancel {
            Some(period_end.unwrap_or_else(|| end_of_credit_month(account.credits_reset_on)))
        } else {
            period_end
        };
        self.correct_from_billing_system(
            account,
            ObservedPlan {
                plan_id: plan.id,
                billing_source: BillingSource::Wix,
                period_end,
                cancel_at_period_end: cancel,
            },
            now,
        )
        .await
    }

    /// Applies what a reconciliation read from the billing system, dated `now` (so a
    /// later delivery of an older event cannot undo it); writes nothing when the account
    /// already says the same.
    pub(crate) async fn correct_from_billing_system(
        &self,
        account: Account,
        observed: ObservedPlan,
        now: DateTime<Utc>,
    ) -> Result<Account, BillingError> {
        if observed.plan_id == account.plan_id
            && observed.cancel_at_period_end == account.cancel_at_period_end
            && observed.period_end == account.period_end
            && observed.billing_source == account.billing_source
        {
            return Ok(account);
        }
        tracing::info!(
            account.id = %account.id,
            billing.from = %account.plan_id,
            billing.to = %observed.plan_id,
            billing.source = observed.billing_source.as_str(),
            "reconciliation corrected the plan from the billing system"
        );
        let change = PlanChange {
            reference: format!(
                "{}-sync:{}",
                observed.billing_source.as_str(),
                now.timestamp_millis()
            ),
            plan_id: observed.plan_id,
            billing_source: observed.billing_source,
            effective_at: Some(now),
            period_end: observed.period_end,
            cancel_at_period_end: observed.cancel_at_period_end,
        };
        Ok(self
            .storage
            .apply_plan_change(account.id, change, now)
            .await?
            .account)
    }

    /// The account's plan, credits, how to upgrade, and the newest usage history.
    pub async fn overview(
        &self,
        account_id: Uuid,
        history_limit: i64,
    ) -> Result<BillingOverview, BillingError> {
        let account = self.storage.get_account(account_id).await?;
        let plans = self.storage.list_plans().await?;
        let plan = plans
            .iter()
            .find(|plan| plan.id == account.plan_id)
            .cloned()
            .ok_or(BillingError::Storage(storage::StorageError::NotFound {
                entity: "plan",
            }))?;
        let upgrade = match account.billing_source {
            BillingSource::Wix => match (&self.config.wix, self.wix_instance(account_id).await?) {
                (Some(app), Some(instance)) => UpgradeOffer::Wix {
                    url: wix_upgrade_url(&app.app_id, &instance),
                },
                _ => UpgradeOffer::None,
            },
            _ if self.sells_through_stripe(&account) => UpgradeOffer::Stripe,
            _ => UpgradeOffer::None,
        };
        let page = self
            .storage
            .ledger_page(account_id, None, history_limit)
            .await?;
        Ok(BillingOverview {
            account,
            plan,
            plans,
            upgrade,
            history: page.entries,
            history_cursor: page.next_cursor,
        })
    }

    async fn wix_instance(&self, account_id: Uuid) -> Result<Option<String>, BillingError> {
        Ok(self
            .storage
            .list_stores(account_id)
            .await?
            .into_iter()
            .find(|store| store.platform == Platform::Wix)
            .map(|store| store.external_id))
    }
}

fn applied_or_stale(applied: bool) -> String {
    if applied { "applied" } else { "stale" }.to_owned()
}

/// The Wix pricing page of one install, the pattern public Wix apps use (they cite
/// <https://dev.wix.com/docs/build-apps/launch-your-app/pricing-and-billing/set-up-a-freemium-business-model>;
/// docs/protocols.md, Wix §5.3).
pub fn wix_upgrade_url(app_id: &str, instance_id: &str) -> String {
    format!("https://www.wix.com/apps/upgrade/{app_id}?appInstanceId={instance_id}")
}

/// The instant the current credit month ends: the start (UTC) of the reset day.
pub fn end_of_credit_month(reset_on: NaiveDate) -> DateTime<Utc> {
    reset_on.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}
