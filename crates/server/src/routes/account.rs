//! The signed-in account: plan, credits and settings.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use domain::validate_account_name;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::sessions::UserView;
use crate::auth::{AuthMethod, Authenticated};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: Uuid,
    pub name: String,
    /// `none`, `wix` or `stripe`.
    pub billing_source: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub price_monthly_cents: i64,
    pub monthly_credits: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditsView {
    pub total: i64,
    pub used: i64,
    pub remaining: i64,
    /// The day used credits go back to zero.
    pub resets_on: NaiveDate,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    pub account: AccountView,
    pub auth_method: AuthMethod,
    /// The standalone user; `null` for Wix sessions.
    pub user: Option<UserView>,
    pub plan: PlanView,
    pub credits: CreditsView,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateAccountRequest {
    /// 1 to 100 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

/// The signed-in account with its plan and credit balance.
#[utoipa::path(get, path = "/api/me", tag = "account",
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, description = "Account, plan and credits", body = MeResponse),
        (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<MeResponse>> {
    let account = state.storage.get_account(caller.account_id).await?;
    let plan = state.storage.get_plan(&account.plan_id).await?;
    let user = match caller.user_id {
        Some(user_id) => Some((&state.storage.get_user(caller.account_id, user_id).await?).into()),
        None => None,
    };
    Ok(Json(MeResponse {
        account: account_view(&account),
        auth_method: caller.method,
        user,
        plan: plan_view(&plan, account.billing_source),
        credits: credits_view(&account),
    }))
}

/// Rename the signed-in account.
#[utoipa::path(patch, path = "/api/account", tag = "account", request_body = UpdateAccountRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, description = "The updated account", body = AccountView),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn update_account(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<UpdateAccountRequest>,
) -> ApiResult<Json<AccountView>> {
    let name =
        validate_account_name(&request.name).map_err(|message| ApiError::field("name", message))?;
    let account = state
        .storage
        .rename_account(caller.account_id, &name, chrono::Utc::now())
        .await?;
    Ok(Json(account_view(&account)))
}

fn account_view(account: &domain::Account) -> AccountView {
    AccountView {
        id: account.id,
        name: account.name.clone(),
        billing_source: account.billing_source.as_str().into(),
    }
}

/// The plan as an account billed through `source` gets it (standalone accounts may get
/// other credits on the free plan).
pub(crate) fn plan_view(plan: &domain::Plan, source: domain::BillingSource) -> PlanView {
    PlanView {
        id: plan.id.clone(),
        name: plan.name.clone(),
        price_monthly_cents: plan.price_monthly_cents,
        monthly_credits: plan.credits_for(source),
    }
}

pub(crate) fn credits_view(account: &domain::Account) -> CreditsView {
    let credits = account.credits();
    CreditsView {
        total: credits.total,
        used: credits.used,
        remaining: credits.remaining(),
        resets_on: credits.resets_on,
    }
}
