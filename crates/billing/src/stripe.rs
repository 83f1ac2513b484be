//! Stripe for standalone accounts (<https://docs.stripe.com/api>; sections: docs/protocols.md,
//! Stripe): Checkout starts a subscription, the customer portal manages it, and webhooks
//! tell us what happened. The subscription is the truth: every event that concerns one
//! leads to the subscription's current state (read from the event, or from the API when the
//! event only names it), applied as a plan change that is never older than the newest one
//! applied (§6: events arrive out of order and more than once).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use connectors::stripe::{
    CheckoutCustomer, CheckoutParams, Event, StripeClient, StripeConfig, Subscription,
    SubscriptionStatus,
};
use domain::{Account, BillingSource};
use storage::{NewWebhookEvent, PlanChange, StripeLink};
use uuid::Uuid;

use crate::service::{Billing, ObservedPlan};
use crate::BillingError;

/// The provider name of Stripe deliveries in `webhook_events`.
pub const STRIPE_PROVIDER: &str = "stripe";

/// The Stripe account the operator configured.
#[derive(Clone)]
pub struct StripeBillingApp {
    pub secret_key: String,
    pub webhook_secret: String,
    pub api_base_url: String,
    /// Our plan id → the Stripe price that sells it.
    pub prices: HashMap<String, String>,
}

impl std::fmt::Debug for StripeBillingApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeBillingApp")
            .field("secret_key", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .field("prices", &self.prices)
            .finish()
    }
}

impl StripeBillingApp {
    fn client(&self) -> Result<StripeClient, BillingError> {
        let mut config = StripeConfig::new(&self.secret_key);
        config.base_url = self.api_base_url.clone();
        Ok(StripeClient::new(config)?)
    }

    /// Our plan for a Stripe price, if the operator sells one with it.
    fn plan_of_price(&self, price_id: &str) -> Option<&str> {
        self.prices
            .iter()
            .find(|(_, price)| price.as_str() == price_id)
            .map(|(plan, _)| plan.as_str())
    }
}

/// What a subscription grants: its plan while it is in good standing, the free plan once
/// it ended or was never paid.
fn granted_plan<'a>(app: &'a StripeBillingApp, subscription: &Subscription) -> &'a str {
    match subscription.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue => {
            app.plan_of_price(&subscription.price_id).unwrap_or_else(|| {
                tracing::warn!(
                    stripe.price = %subscription.price_id,
                    "a Stripe subscription names a price STRIPE_PRICES does not map; the account is put on the free plan"
                );
                domain::plan::FREE_PLAN_ID
            })
        }
        _ => domain::plan::FREE_PLAN_ID,
    }
}

impl Billing {
    fn stripe_app(&self) -> Result<&StripeBillingApp, BillingError> {
        self.config()
            .stripe
            .as_ref()
            .ok_or(BillingError::NotConfigured("Stripe"))
    }

    /// Whether this account buys its plan through Stripe (standalone accounts, when the
    /// operator configured Stripe).
    pub fn sells_through_stripe(&self, account: &Account) -> bool {
        self.config().stripe.is_some() && account.billing_source != BillingSource::Wix
    }

    /// A Checkout Session for `plan_id`; returns the URL to send the browser to. A repeat
    /// within the same minute (a double click) gets the same session.
    pub async fn stripe_checkout(
        &self,
        account_id: Uuid,
        plan_id: &str,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        let app = self.stripe_app()?;
        let account = self.storage().get_account(account_id).await?;
        if account.billing_source == BillingSource::Wix {
            return Err(BillingError::NotApplicable(
                "this account is billed through Wix; upgrade from the Wix dashboard".into(),
            ));
        }
        let Some(price_id) = app.prices.get(plan_id) else {
            return Err(BillingError::UnknownPlan(plan_id.to_owned()));
        };
        let link = self.storage().stripe_link(account_id).await?;
        let customer = match (link.customer_id, email) {
            (Some(customer), _) => CheckoutCustomer::Existing(customer),
            (None, Some(email)) => CheckoutCustomer::Email(email),
            (None, None) => {
                return Err(BillingError::NotApplicable(
                    "a checkout needs the account's email address".into(),
                ))
            }
        };
        let public_url = self.config().public_url.trim_end_matches('/');
        let session = app
            .client()?
            .create_checkout_session(&CheckoutParams {
                price_id: price_id.clone(),
                success_url: format!("{public_url}/billing?upgrade=success"),
                cancel_url: format!("{public_url}/billing"),
                account_id: account_id.to_string(),
                plan: plan_id.to_owned(),
                customer,
                idempotency_key: format!(
                    "checkout:{account_id}:{plan_id}:{}",
                    now.timestamp() / 60
                ),
            })
            .await?;
        Ok(session.url)
    }

    /// A customer portal session (change plan, cancel, payment method, invoices).
    pub async fn stripe_portal(&self, account_id: Uuid) -> Result<String, BillingError> {
        let app = self.stripe_app()?;
        let Some(customer) = self.storage().stripe_link(account_id).await?.customer_id else {
            return Err(BillingError::NotApplicable(
                "this account has no Stripe subscription to manage yet".into(),
            ));
        };
        let public_url = self.config().public_url.trim_end_matches('/');
        let session = app
            .client()?
            .create_portal_session(&customer, &format!("{public_url}/billing"))
            .await?;
        Ok(session.url)
    }

    /// Applies a verified Stripe event once (by event id). Returns what happened. An
    /// error leaves the delivery unfinished: Stripe's retry processes it again.
    pub async fn process_stripe_event(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        let app = self.stripe_app()?;
        let recorded = self
            .storage()
            .record_webhook_event(
                NewWebhookEvent {
                    provider: STRIPE_PROVIDER.into(),
                    dedupe_key: event.id.clone(),
                    event_type: event.kind.clone(),
                    account_id: None,
                    payload: event.data.object.to_string(),
                },
                now,
            )
            .await?;
        if !recorded
            && self
                .storage()
                .webhook_event_processed(STRIPE_PROVIDER, &event.id)
                .await?
                == Some(true)
        {
            return Ok("duplicate".into());
        }
        let reference = format!("stripe:{}", event.id);
        // Which account the event concerns, and its subscription as it stands.
        let target: Option<(Uuid, Subscription)> = match event.kind.as_str() {
            "checkout.session.completed" => {
                let checkout = event
                    .completed_checkout()
                    .map_err(|err| BillingError::Event(err.to_string()))?;
                let account_id = checkout
                    .client_reference_id
                    .as_deref()
                    .or(checkout.metadata.get("account_id").map(String::as_str))
                    .and_then(|id| Uuid::parse_str(id).ok());
                match (account_id, checkout.subscription) {
                    (Some(account_id), Some(subscription_id)) => {
                        let account = match self.storage().get_account(account_id).await {
                            Ok(account) => account,
                            // An account deleted since its checkout: nothing to apply.
                            Err(storage::StorageError::NotFound { .. }) => {
                                return self.finish_ignored(event, now).await;
                            }
                            Err(err) => return Err(err.into()),
                        };
                        self.storage()
                            .link_stripe(
                                account.id,
                                &StripeLink {
                                    customer_id: checkout.customer.clone(),
                                    subscription_id: Some(subscription_id.clone()),
                                },
                                now,
                            )
                            .await?;
                        // The session only names the subscription; its state is read.
                        let subscription = app
                            .client()?
                            .retrieve_subscription(&subscription_id)
                            .await?;
                        Some((account.id, subscription))
                    }
                    _ => None,
                }
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let subscription = event
                    .subscription()
                    .map_err(|err| BillingError::Event(err.to_string()))?;
                self.account_of_subscription(&subscription)
                    .await?
                    .map(|account| (account.id, subscription))
            }
            "invoice.paid" => {
                let invoice = event
                    .paid_invoice()
                    .map_err(|err| BillingError::Event(err.to_string()))?;
                let account = self
                    .storage()
                    .find_account_by_stripe_customer(&invoice.customer)
                    .await?;
                match (account, invoice.subscription) {
                    (Some(account), Some(subscription_id)) => {
                        let subscription = app
                            .client()?
                            .retrieve_subscription(&subscription_id)
                            .await?;
                        Some((account.id, subscription))
                    }
                    _ => None,
                }
            }
            other => {
                tracing::info!(stripe.event_type = %other, "ignored a Stripe event this app does not handle");
                None
            }
        };
        let (account, result) = match target {
            Some((account_id, subscription)) => {
                let result = self
                    .apply_subscription(
                        app,
                        account_id,
                        &subscription,
                        event.created,
                        &reference,
                        now,
                    )
                    .await?;
                (Some(account_id), result)
            }
            None => (None, "ignored".to_owned()),
        };
        self.storage()
            .finish_webhook_event(STRIPE_PROVIDER, &event.id, account, &result, now)
            .await?;
        Ok(result)
    }

    async fn finish_ignored(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        self.storage()
            .finish_webhook_event(STRIPE_PROVIDER, &event.id, None, "ignored", now)
            .await?;
        Ok("ignored".to_owned())
    }

    /// The account a subscription belongs to: by the `account_id` our checkout put in its
    /// metadata, else by its customer.
    async fn account_of_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Option<Account>, BillingError> {
        if let Some(id) = subscription
            .metadata
            .get("account_id")
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            match self.storage().get_account(id).await {
                Ok(account) => {
                    self.storage()
                        .link_stripe(
                            id,
                            &StripeLink {
                                customer_id: Some(subscription.customer.clone()),
                                subscription_id: Some(subscription.id.clone()),
                            },
                            Utc::now(),
                        )
                        .await?;
                    return Ok(Some(account));
                }
                Err(storage::StorageError::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(self
            .storage()
            .find_account_by_stripe_customer(&subscription.customer)
            .await?)
    }

    async fn apply_subscription(
        &self,
        app: &StripeBillingApp,
        account_id: Uuid,
        subscription: &Subscription,
        observed_at: DateTime<Utc>,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<String, BillingError> {
        let plan_id = granted_plan(app, subscription);
        let ended = plan_id == domain::plan::FREE_PLAN_ID;
        let change = PlanChange {
            plan_id: plan_id.to_owned(),
            billing_source: BillingSource::Stripe,
            effective_at: Some(observed_at),
            period_end: (!ended).then_some(subscription.current_period_end),
            cancel_at_period_end: !ended && subscription.cancel_at_period_end,
            reference: reference.to_owned(),
        };
        let outcome = self
            .storage()
            .apply_plan_change(account_id, change, now)
            .await?;
        Ok(if outcome.applied { "applied" } else { "stale" }.to_owned())
    }

    /// Reads the customer's subscriptions from Stripe and corrects the account: the repair
    /// when a webhook was lost.
    pub async fn sync_stripe_credits(
        &self,
        account_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Account, BillingError> {
        let app = self.stripe_app()?;
        let account = self.storage().get_account(account_id).await?;
        let Some(customer) = self.storage().stripe_link(account_id).await?.customer_id else {
            return Ok(account);
        };
        let subscriptions = app.client()?.list_subscriptions(&customer).await?;
        // The subscription in good standing that grants the most, else none (free).
        let best = subscriptions
            .iter()
            .filter(|subscription| granted_plan(app, subscription) != domain::plan::FREE_PLAN_ID)
            .max_by_key(|subscription| subscription.current_period_end);
        let (plan_id, period_end, cancel) = match best {
            Some(subscription) => (
                granted_plan(app, subscription).to_owned(),
                Some(subscription.current_period_end),
                subscription.cancel_at_period_end,
            ),
            None => (domain::plan::FREE_PLAN_ID.to_owned(), None, false),
        };
        self.correct_from_billing_system(
            account,
            ObservedPlan {
                plan_id,
                billing_source: BillingSource::Stripe,
                period_end,
                cancel_at_period_end: cancel,
            },
            now,
        )
        .await
    }
}
