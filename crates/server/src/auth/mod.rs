//! Who is calling. Two kinds of credentials resolve to an account:
//! - a Wix dashboard instance (`X-Wix-Instance: <instance>` or
//!   `Authorization: WixInstance <instance>`), verified with the app secret; an instance
//!   never seen before provisions its account and store;
//! - a standalone session's access token (`Authorization: Bearer <jwt>`).
//!
//! A request that carries both an `Authorization` header and `X-Wix-Instance` is answered
//! by the `Authorization` header alone; an empty header counts as absent.
//!
//! [`Authenticated`] is the extractor handlers take; its presence in a signature means the
//! route needs a signed-in account. It also applies the per-account rate limit.

pub mod password;
pub mod sessions;
pub mod tokens;
pub mod wix_instance;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;
use tokens::AccessTokenError;
use wix_instance::InstanceError;

/// Header the Wix dashboard iframe's requests carry the instance in.
pub const WIX_INSTANCE_HEADER: &str = "x-wix-instance";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthMethod {
    /// A standalone session (email and password, or the demo login link).
    Password,
    /// A signed Wix dashboard instance.
    WixInstance,
}

/// A verified caller: the account every query of this request is scoped to.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub account_id: Uuid,
    /// Set for standalone sessions; Wix merchants have no user row.
    pub user_id: Option<Uuid>,
    /// The login of a standalone session; Wix instances have none.
    pub session_id: Option<Uuid>,
    pub method: AuthMethod,
}

impl Authenticated {
    /// Whether the credential this caller presented still stands: its session was not
    /// signed out or revoked, and its account still exists. Long-lived answers (the job
    /// event stream) ask again while they run.
    pub async fn still_valid(&self, storage: &dyn storage::Storage) -> bool {
        let checked = match (self.user_id, self.session_id) {
            (Some(user_id), Some(session_id)) => {
                storage
                    .session_is_active(self.account_id, user_id, session_id, Utc::now())
                    .await
            }
            _ => storage.get_account(self.account_id).await.map(|_| true),
        };
        match checked {
            Ok(valid) => valid,
            Err(storage::StorageError::NotFound { .. }) => false,
            // A database hiccup is not a sign-out; the next check decides.
            Err(_) => true,
        }
    }
}

enum Credential<'a> {
    Bearer(std::borrow::Cow<'a, str>),
    WixInstance(std::borrow::Cow<'a, str>),
}

/// Routes a browser opens with `EventSource`, which cannot send headers: these alone also
/// take the credential from the query (`access_token` or `instance`). Request logs record
/// paths without queries, so the credential is not logged.
const QUERY_CREDENTIAL_PATHS: &[&str] = &["/api/jobs/events"];

fn query_credential(parts: &Parts) -> Option<Credential<'_>> {
    if !QUERY_CREDENTIAL_PATHS.contains(&parts.uri.path()) {
        return None;
    }
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find_map(|(name, value)| match name.as_ref() {
        "access_token" if !value.is_empty() => Some(Credential::Bearer(value)),
        "instance" if !value.is_empty() => Some(Credential::WixInstance(value)),
        _ => None,
    })
}

fn credential(parts: &Parts) -> Result<Credential<'_>, ApiError> {
    if let Some(found) = query_credential(parts) {
        return Ok(found);
    }
    // An empty header is no header: proxies and SDKs send them blank.
    let present = |name: &str| {
        parts
            .headers
            .get(name)
            .filter(|value| !value.as_bytes().iter().all(u8::is_ascii_whitespace))
    };
    let Some(value) = present(AUTHORIZATION.as_str()) else {
        let Some(instance) = present(WIX_INSTANCE_HEADER) else {
            return Err(ApiError::unauthorized(
                "missing_credentials",
                "sign in first: send Authorization: Bearer <token> or a Wix instance",
            ));
        };
        let token = instance.to_str().map_err(|_| {
            ApiError::unauthorized("invalid_instance", "the Wix instance is malformed")
        })?;
        return Ok(Credential::WixInstance(token.trim().into()));
    };
    let value = value.to_str().unwrap_or_default().trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header must be `Bearer <token>` or `WixInstance <instance>`",
        ));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credential::Bearer(token.into()))
    } else if scheme.eq_ignore_ascii_case("wixinstance") {
        Ok(Credential::WixInstance(token.into()))
    } else {
        Err(ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header must be `Bearer <token>` or `WixInstance <instance>`",
        ))
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = match credential(parts) {
            Ok(Credential::Bearer(token)) => {
                let identity = state.access_tokens.verify(&token).map_err(|err| {
                    tracing::debug!(auth.rejected = %err, "access token refused");
                    match err {
                        AccessTokenError::Expired => ApiError::unauthorized(
                            "token_expired",
                            "the access token has expired; refresh the session",
                        ),
                        AccessTokenError::Invalid => {
                            ApiError::unauthorized("invalid_token", "the access token is not valid")
                        }
                    }
                })?;
                let active = state
                    .storage
                    .session_is_active(
                        identity.account_id,
                        identity.user_id,
                        identity.session_id,
                        Utc::now(),
                    )
                    .await?;
                if !active {
                    tracing::debug!(account.id = %identity.account_id, "access token of an ended session");
                    return Err(ApiError::unauthorized(
                        "session_ended",
                        "this session has ended (signed out, or the account no longer exists); sign in again",
                    ));
                }
                Authenticated {
                    account_id: identity.account_id,
                    user_id: Some(identity.user_id),
                    session_id: Some(identity.session_id),
                    method: AuthMethod::Password,
                }
            }
            Ok(Credential::WixInstance(token)) => wix_caller(state, &token).await?,
            Err(err) => return Err(err),
        };
        if let Err(wait) = state.api_limiter.check(&caller.account_id.to_string()) {
            tracing::info!(account.id = %caller.account_id, "account rate limited");
            return Err(ApiError::RateLimited {
                retry_after_secs: wait.as_secs() + 1,
            });
        }
        Ok(caller)
    }
}

async fn wix_caller(state: &AppState, token: &str) -> Result<Authenticated, ApiError> {
    let Some(secret) = state.settings.wix_app_secret() else {
        return Err(ApiError::unauthorized(
            "wix_not_configured",
            "this server is not configured for Wix (WIX_APP_ID and WIX_APP_SECRET)",
        ));
    };
    let app_id = state.settings.wix.as_ref().map(|wix| wix.app_id.as_str());
    let instance =
        wix_instance::verify(token, secret.expose(), app_id, Utc::now()).map_err(|err| {
            tracing::info!(auth.rejected = %err, "Wix instance refused");
            match err {
                InstanceError::Expired => {
                    ApiError::unauthorized("instance_expired", err.to_string())
                }
                _ => ApiError::unauthorized("invalid_instance", err.to_string()),
            }
        })?;
    let provisioned = state
        .storage
        .provision_wix_instance(&instance.instance_id, Utc::now())
        .await?;
    if provisioned.created {
        tracing::info!(account.id = %provisioned.account.id, "provisioned account for a new Wix instance");
    }
    Ok(Authenticated {
        account_id: provisioned.account.id,
        user_id: None,
        session_id: None,
        method: AuthMethod::WixInstance,
    })
}
