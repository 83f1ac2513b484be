//! Standalone sessions: registration, login, refresh-token rotation, logout and the demo
//! account's single-use login link. Handlers call these; they hold the rules.

use std::net::IpAddr;

use chrono::{Duration, Utc};
use domain::{
    validate_account_name, validate_email, validate_password, Account, FieldErrors, User,
};
use serde::{Deserialize, Serialize};
use storage::{NewLoginLink, NewRefreshToken, NewUser, RefreshOutcome, TokenReplacement};
use utoipa::ToSchema;
use uuid::Uuid;

use super::password;
use super::tokens::{self, AccessIdentity, ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL};
use crate::error::ApiError;
use crate::AppState;

/// How long a printed demo login link stays usable.
pub const LOGIN_LINK_TTL: Duration = Duration::hours(24);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 10 to 256 characters, at least four of them different; not the email address and
    /// not a commonly used password.
    #[schema(min_length = 10, max_length = 256, format = "password")]
    pub password: String,
    /// Shown in the dashboard; defaults to the email's domain. 1 to 100 characters once
    /// trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub account_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 1024, format = "password")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LinkLoginRequest {
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    pub id: Uuid,
    pub name: String,
}

/// A signed-in session: a short-lived access token and a rotating refresh token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    pub user: UserView,
    pub account: AccountSummary,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id,
            email: user.email.clone(),
        }
    }
}

impl From<&Account> for AccountSummary {
    fn from(account: &Account) -> Self {
        AccountSummary {
            id: account.id,
            name: account.name.clone(),
        }
    }
}

pub async fn register(
    state: &AppState,
    request: RegisterRequest,
    client_ip: IpAddr,
) -> Result<Session, ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate_email(&request.email)
        .map_err(|message| errors.insert("email".into(), message))
        .ok();
    if let Err(message) = validate_password(&request.password, &request.email) {
        errors.insert("password".into(), message);
    }
    let default_name = email
        .as_deref()
        .and_then(|email| email.split('@').nth(1))
        .unwrap_or("My store")
        .to_owned();
    let account_name =
        validate_account_name(request.account_name.as_deref().unwrap_or(&default_name))
            .map_err(|message| errors.insert("accountName".into(), message))
            .ok();
    let (Some(email), Some(account_name), true) = (email, account_name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    // Counted before the email is looked up, so the limit also bounds address probing.
    state
        .registration_ip_limiter
        .check(&client_ip.to_string())
        .map_err(|wait| {
            tracing::info!("registration refused: too many sign-ups from one address");
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs() + 1,
            }
        })?;
    if state.storage.find_user_by_email(&email).await?.is_some() {
        return Err(storage::StorageError::EmailTaken.into());
    }
    let password_hash = password::hash(request.password).await?;
    let (user, account) = state
        .storage
        .register_user(
            NewUser {
                email,
                password_hash,
                account_name,
            },
            Utc::now(),
        )
        .await?;
    tracing::info!(account.id = %account.id, user.id = %user.id, "account registered");
    start_session(state, &user, &account).await
}

pub async fn login(
    state: &AppState,
    request: LoginRequest,
    client_ip: Option<IpAddr>,
) -> Result<Session, ApiError> {
    let email =
        validate_email(&request.email).map_err(|message| ApiError::field("email", message))?;
    if request.password.is_empty() {
        return Err(ApiError::field("password", "is required"));
    }
    if request.password.chars().count() > 1024 {
        return Err(ApiError::field("password", "is too long"));
    }
    let limited = |wait: std::time::Duration| ApiError::RateLimited {
        retry_after_secs: wait.as_secs() + 1,
    };
    if let Some(ip) = client_ip {
        state
            .login_ip_limiter
            .check(&ip.to_string())
            .map_err(limited)?;
    }
    state.login_email_limiter.check(&email).map_err(limited)?;

    let user = state.storage.find_user_by_email(&email).await?;
    let stored_hash = user.as_ref().and_then(|user| user.password_hash.clone());
    let valid = password::verify(request.password, stored_hash).await?;
    let Some(user) = user.filter(|_| valid) else {
        tracing::info!("login refused: wrong email or password");
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "the email or password is not correct",
        ));
    };
    let account = state.storage.get_account(user.account_id).await?;
    start_session(state, &user, &account).await
}

pub async fn refresh(state: &AppState, request: RefreshRequest) -> Result<Session, ApiError> {
    let presented = tokens::hash_token(request.refresh_token.trim());
    let refresh_token = tokens::random_token();
    let replacement = TokenReplacement {
        id: Uuid::now_v7(),
        token_hash: tokens::hash_token(&refresh_token),
        expires_at: Utc::now() + REFRESH_TOKEN_TTL,
    };
    match state
        .storage
        .rotate_refresh_token(&presented, replacement, Utc::now())
        .await?
    {
        RefreshOutcome::Rotated {
            user,
            account,
            family_id,
        } => Ok(session(state, &user, &account, family_id, refresh_token)),
        RefreshOutcome::SessionEnded => Err(ApiError::unauthorized(
            "session_ended",
            "this session was signed out; sign in again",
        )),
        RefreshOutcome::Reused => Err(ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; all sessions from that login were signed out",
        )),
        RefreshOutcome::Expired => Err(ApiError::unauthorized(
            "refresh_token_expired",
            "the session has expired; sign in again",
        )),
        RefreshOutcome::Unknown => Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "the refresh token is not valid",
        )),
    }
}

/// Ends the session family of `refresh_token` if it belongs to `user_id`. Answers the same
/// either way, so a caller learns nothing about other users' tokens.
pub async fn logout(state: &AppState, user_id: Uuid, refresh_token: &str) -> Result<(), ApiError> {
    let presented = tokens::hash_token(refresh_token.trim());
    state
        .storage
        .revoke_refresh_family(user_id, &presented, Utc::now())
        .await?;
    Ok(())
}

pub async fn link_login(state: &AppState, request: LinkLoginRequest) -> Result<Session, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "invalid_login_link",
            "this login link was already used or has expired",
        )
    };
    if !state.demo_mode {
        return Err(refused());
    }
    let hash = tokens::hash_token(request.token.trim());
    let Some((user, account)) = state.storage.consume_login_link(&hash, Utc::now()).await? else {
        return Err(refused());
    };
    start_session(state, &user, &account).await
}

/// Creates a single-use login link token for the demo account (the caller prints it).
pub async fn create_demo_login_link(state: &AppState) -> Result<String, ApiError> {
    let (user, account) = state.storage.ensure_demo_account(Utc::now()).await?;
    let token = tokens::random_token();
    let link = NewLoginLink {
        token_hash: tokens::hash_token(&token),
        user_id: user.id,
        account_id: account.id,
        expires_at: Utc::now() + LOGIN_LINK_TTL,
    };
    state.storage.create_login_link(link, Utc::now()).await?;
    Ok(token)
}

async fn start_session(
    state: &AppState,
    user: &User,
    account: &Account,
) -> Result<Session, ApiError> {
    let refresh_token = tokens::random_token();
    let now = Utc::now();
    let family_id = Uuid::now_v7();
    state
        .storage
        .insert_refresh_token(
            NewRefreshToken {
                id: Uuid::now_v7(),
                family_id,
                user_id: user.id,
                account_id: account.id,
                token_hash: tokens::hash_token(&refresh_token),
                expires_at: now + REFRESH_TOKEN_TTL,
            },
            now,
        )
        .await?;
    Ok(session(state, user, account, family_id, refresh_token))
}

fn session(
    state: &AppState,
    user: &User,
    account: &Account,
    family_id: Uuid,
    refresh_token: String,
) -> Session {
    let access_token = state.access_tokens.issue(
        AccessIdentity {
            user_id: user.id,
            account_id: account.id,
            session_id: family_id,
        },
        Utc::now(),
    );
    Session {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL.num_seconds(),
        user: user.into(),
        account: account.into(),
    }
}
