//! The billing page's API: plan, credits, how to upgrade, usage history, and the
//! reconciliation the dashboard runs on load (the repair when a webhook was lost).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::BillingSource;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody};
use crate::routes::account::{credits_view, plan_view, CreditsView, PlanView};
use crate::AppState;

/// How many history entries the billing overview carries.
const OVERVIEW_HISTORY: i64 = 20;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeView {
    /// `wix` (open `url`, the Wix pricing page of this install), `stripe` (check out
    /// through `POST /api/billing/checkout`) or `none` (plans are set by the operator).
    pub kind: String,
    pub url: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntryView {
    pub id: Uuid,
    /// Credits added (positive) or taken (negative).
    pub delta: i64,
    /// `monthly_grant`, `plan_change`, `reserve`, `refund` or `adjustment`.
    pub reason: String,
    /// What the entry is about: a job, a billing event, a period.
    pub reference: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPageView {
    pub items: Vec<LedgerEntryView>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingView {
    /// `none`, `wix` or `stripe`.
    pub billing_source: String,
    pub plan: PlanView,
    /// Every plan, for the comparison on the billing page.
    pub plans: Vec<PlanView>,
    pub credits: CreditsView,
    /// When the paid period ends (renewal, or the downgrade when canceled).
    pub period_end: Option<DateTime<Utc>>,
    /// Auto-renewal is off: the plan stays until `periodEnd`, then the account is free.
    pub cancel_at_period_end: bool,
    pub upgrade: UpgradeView,
    /// The newest usage entries; read on with `GET /api/billing/history`.
    pub history: HistoryPageView,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// `nextCursor` of the previous page; absent: the first page.
    #[param(
        pattern = r"^-?[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
    /// Page size (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn entry_view(entry: domain::LedgerEntry) -> LedgerEntryView {
    LedgerEntryView {
        id: entry.id,
        delta: entry.delta,
        reason: entry.reason.as_str().to_owned(),
        reference: entry.reference,
        created_at: entry.created_at,
    }
}

async fn billing_view(state: &AppState, account_id: Uuid) -> ApiResult<BillingView> {
    let overview = state.billing.overview(account_id, OVERVIEW_HISTORY).await?;
    let upgrade = match overview.upgrade {
        billing::UpgradeOffer::Wix { url } => UpgradeView {
            kind: "wix".into(),
            url: Some(url),
        },
        billing::UpgradeOffer::Stripe => UpgradeView {
            kind: "stripe".into(),
            url: None,
        },
        billing::UpgradeOffer::None => UpgradeView {
            kind: "none".into(),
            url: None,
        },
    };
    Ok(BillingView {
        billing_source: overview.account.billing_source.as_str().into(),
        plan: plan_view(&overview.plan, overview.account.billing_source),
        plans: overview
            .plans
            .iter()
            .map(|plan| plan_view(plan, overview.account.billing_source))
            .collect(),
        credits: credits_view(&overview.account),
        period_end: overview.account.period_end,
        cancel_at_period_end: overview.account.cancel_at_period_end,
        upgrade,
        history: HistoryPageView {
            items: overview.history.into_iter().map(entry_view).collect(),
            next_cursor: overview.history_cursor,
        },
    })
}

/// The account's plan, credits, how to upgrade, and its newest usage.
#[utoipa::path(get, path = "/api/billing", tag = "billing",
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = BillingView), (status = 401, body = ErrorBody)))]
pub async fn get_billing(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<BillingView>> {
    Ok(Json(billing_view(&state, caller.account_id).await?))
}

/// The account's credit ledger, newest first: grants, plan changes, job reservations and
/// refunds.
#[utoipa::path(get, path = "/api/billing/history", tag = "billing", params(HistoryParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = HistoryPageView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn billing_history(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Json<HistoryPageView>> {
    let limit = super::page_size(params.limit, 20, 100)?;
    let page = state
        .storage
        .ledger_page(caller.account_id, params.cursor.as_deref(), limit)
        .await
        .map_err(|err| match err {
            storage::StorageError::InvalidState(message) => ApiError::field("cursor", message),
            other => other.into(),
        })?;
    Ok(Json(HistoryPageView {
        items: page.entries.into_iter().map(entry_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Reads the plan from the billing system and corrects the account (Wix accounts: the app
/// instance API). Accounts no billing system bills are answered as they are.
#[utoipa::path(post, path = "/api/billing/sync-credits", tag = "billing",
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, description = "The billing after the correction", body = BillingView),
        (status = 401, body = ErrorBody),
        (status = 502, description = "The billing system could not be read", body = ErrorBody)))]
pub async fn sync_credits(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<BillingView>> {
    let account = state.storage.get_account(caller.account_id).await?;
    if account.billing_source == BillingSource::Wix && state.billing.config().wix.is_some() {
        state
            .billing
            .sync_wix_credits(caller.account_id, Utc::now())
            .await?;
    } else if state.billing.sells_through_stripe(&account) {
        state
            .billing
            .sync_stripe_credits(caller.account_id, Utc::now())
            .await?;
    }
    Ok(Json(billing_view(&state, caller.account_id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// The id of a paid plan to buy, as `GET /api/billing` lists them (`starter`, `pro`,
    /// `scale` unless the operator configures others).
    #[schema(min_length = 1)]
    pub plan: String,
}

#[derive(Serialize, ToSchema)]
pub struct RedirectView {
    /// Where to send the browser (Stripe Checkout or the customer portal).
    pub url: String,
}

/// Starts a Stripe Checkout for a plan (standalone accounts). The plan changes when
/// Stripe confirms the payment (webhook), not when this answers.
#[utoipa::path(post, path = "/api/billing/checkout", tag = "billing", request_body = CheckoutRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = RedirectView),
        (status = 400, description = "Unknown plan, a Wix account, or Stripe not configured", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 502, description = "Stripe could not be reached", body = ErrorBody)))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CheckoutRequest>,
) -> ApiResult<Json<RedirectView>> {
    let email = match caller.user_id {
        Some(user_id) => Some(
            state
                .storage
                .get_user(caller.account_id, user_id)
                .await?
                .email,
        ),
        None => None,
    };
    let url = state
        .billing
        .stripe_checkout(caller.account_id, request.plan.trim(), email, Utc::now())
        .await?;
    Ok(Json(RedirectView { url }))
}

/// Opens the Stripe customer portal (change plan, cancel, payment method, invoices).
#[utoipa::path(post, path = "/api/billing/portal", tag = "billing",
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = RedirectView),
        (status = 400, description = "No Stripe subscription, or Stripe not configured", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 502, description = "Stripe could not be reached", body = ErrorBody)))]
pub async fn portal(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<RedirectView>> {
    let url = state.billing.stripe_portal(caller.account_id).await?;
    Ok(Json(RedirectView { url }))
}
