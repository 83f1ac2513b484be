//! Standalone accounts (`/api/v1/auth/*`): for WooCommerce and local-catalog merchants who
//! do not come through Wix.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::sessions::{
    self, AccountSummary, LinkLoginRequest, LoginRequest, RefreshRequest, RegisterRequest, Session,
    UserView,
};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub user: UserView,
    pub account: AccountSummary,
}

/// Create an account with an email and password; answers with a signed-in session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in", body = Session),
        (status = 400, description = "Invalid or weak input, with `details.fields`", body = ErrorBody),
        (status = 409, description = "The email is already registered (`email_taken`)", body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this address (`OPTIMIZER_REGISTRATIONS_PER_IP` an hour); see `Retry-After`", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let ip = client_ip(&state, peer, &headers);
    let session = sessions::register(&state, request, ip).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Sign in with email and password. Attempts are rate limited per email and per client IP.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody),
        (status = 429, description = "Too many attempts; see `Retry-After`", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<Session>> {
    let ip = client_ip(&state, peer, &headers);
    Ok(Json(sessions::login(&state, request, Some(ip)).await?))
}

/// Exchange a refresh token for a new session. The presented token is spent; presenting it
/// again signs out every session descending from the same login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New session", body = Session),
        (status = 401, description = "Unknown, expired or reused refresh token", body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Session>> {
    Ok(Json(sessions::refresh(&state, request).await?))
}

/// Sign out: revokes the refresh token's session family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let user_id = caller.user_id.ok_or_else(|| {
        ApiError::unauthorized(
            "not_a_session",
            "Wix sessions end when the dashboard closes",
        )
    })?;
    sessions::logout(&state, user_id, &request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign in with a single-use login link (the demo account's link printed by `serve --demo`).
#[utoipa::path(post, path = "/api/v1/auth/demo-login", tag = "auth", request_body = LinkLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Unknown, used or expired link (`invalid_login_link`)", body = ErrorBody)))]
pub async fn demo_login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LinkLoginRequest>,
) -> ApiResult<Json<Session>> {
    Ok(Json(sessions::link_login(&state, request).await?))
}

/// The signed-in user of a standalone session.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", operation_id = "auth_me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user and account", body = WhoAmI),
        (status = 401, description = "Not signed in, or not a standalone session", body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Authenticated) -> ApiResult<Json<WhoAmI>> {
    let user_id = caller.user_id.ok_or_else(|| {
        ApiError::unauthorized("not_a_session", "Wix sessions have no standalone user")
    })?;
    let user = state.storage.get_user(caller.account_id, user_id).await?;
    let account = state.storage.get_account(caller.account_id).await?;
    Ok(Json(WhoAmI {
        user: (&user).into(),
        account: (&account).into(),
    }))
}

fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if state.settings.trust_proxy {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}
