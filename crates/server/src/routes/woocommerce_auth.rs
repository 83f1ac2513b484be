//! Connecting a WooCommerce store without copying keys: the merchant is sent to the
//! store's `/wc-auth/v1/authorize` screen (`woocommerce/woocommerce-rest-api-docs`
//! `source/includes/wp-api-v3/_authentication.md`; docs/protocols.md, WooCommerce §B.6),
//! approves, and WooCommerce posts a new key pair to our callback, naming the request by
//! the `user_id` we gave it: a random single-use token whose hash is all we keep. The
//! callback verifies the keys against the store, saves them encrypted and connects the
//! store exactly as pasted keys would.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use connectors::woocommerce::{
    authorize_url, ensure_allowed_store_address, normalize_store_url, AuthorizeCallback, KeyScope,
};
use serde::{Deserialize, Serialize};
use storage::WooAuthorization;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{read_body, ApiError, ApiJson, ApiResult, ErrorBody};

/// WooCommerce's key callback is a small JSON object; nothing legitimate comes near this.
const KEY_CALLBACK_LIMIT: usize = 64 * 1024;
use crate::routes::catalog::connect_woocommerce;
use crate::AppState;

/// How long the merchant has to approve on the store's screen.
const AUTHORIZATION_TTL: chrono::Duration = chrono::Duration::hours(1);
/// The app name the merchant sees on WooCommerce's grant screen and in the key list.
const APP_NAME: &str = "Ultimate Optimizer";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    /// The store's address, e.g. `https://shop.example`.
    #[schema(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub url: String,
    /// Default: the store's host name.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// ISO 4217 code of the store's prices, any case; default `USD`.
    #[schema(pattern = r"^\s*[A-Za-z]{3}\s*$")]
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeStart {
    /// Send the merchant here to approve read/write access.
    pub authorize_url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeysReceived {
    pub store_id: Uuid,
}

/// The key callback WooCommerce posts (`application/json;charset=UTF-8`), as the document
/// describes it; the handler reads it as [`AuthorizeCallback`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KeyCallback {
    key_id: i64,
    /// The `user_id` of the authorization URL (a string; a number is accepted too).
    user_id: String,
    consumer_key: String,
    consumer_secret: String,
    key_permissions: KeyPermissions,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum KeyPermissions {
    Read,
    Write,
    ReadWrite,
}

fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!(
        "woocommerce-authorize:{token}"
    )))
}

/// Start connecting a WooCommerce store through its key-approval screen.
#[utoipa::path(post, path = "/api/stores/woocommerce/authorize", tag = "catalog",
    request_body = AuthorizeRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, body = AuthorizeStart),
        (status = 400, description = "Not a store address (HTTPS required)", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn start_authorization(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<AuthorizeRequest>,
) -> ApiResult<Json<AuthorizeStart>> {
    domain::check_text(&request.url, domain::text::URL_MAX_CHARS)
        .map_err(|problem| ApiError::field("url", problem.to_string()))?;
    let url =
        normalize_store_url(&request.url).map_err(|err| ApiError::field("url", err.to_string()))?;
    let scheme_ok = url.starts_with("https://")
        || (url.starts_with("http://") && state.settings.woocommerce_allow_http);
    if !scheme_ok {
        return Err(ApiError::field(
            "url",
            "the store must be reached over HTTPS: WooCommerce hands out API keys only over HTTPS",
        ));
    }
    // The address guard of connecting by key, before the merchant is sent anywhere: the
    // keys WooCommerce posts back would be verified against this address.
    ensure_allowed_store_address(&url, &state.connector_settings().woocommerce)
        .await
        .map_err(|err| match err {
            err @ connectors::http::ConnectorError::PrivateAddress(_) => {
                ApiError::field("url", err.to_string())
            }
            other => ApiError::Store(other),
        })?;
    let name = match request.name.as_deref() {
        Some(name) => domain::validate_account_name(name)
            .map_err(|message| ApiError::field("name", message))?,
        None => String::new(),
    };
    let currency = request
        .currency
        .as_deref()
        .unwrap_or("USD")
        .trim()
        .to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "currency",
            "must be a three-letter ISO 4217 code like USD",
        ));
    }
    let token = {
        use rand::RngCore;
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let now = Utc::now();
    let expires_at = now + AUTHORIZATION_TTL;
    state
        .storage
        .create_woo_authorization(
            WooAuthorization {
                token_hash: token_hash(&token),
                account_id: caller.account_id,
                store_url: url.clone(),
                name,
                currency,
                expires_at,
                store_id: None,
            },
            now,
        )
        .await?;
    let public = state.settings.public_base_url();
    let authorize_url = authorize_url(
        &url,
        APP_NAME,
        KeyScope::ReadWrite,
        &token,
        &format!("{public}/stores?woocommerce=returned"),
        &format!("{public}/api/woocommerce/keys"),
    );
    Ok(Json(AuthorizeStart {
        authorize_url,
        expires_at,
    }))
}

/// Where WooCommerce posts the approved keys. Answers exactly 200 once the keys work and
/// the store is connected; any other answer makes WooCommerce delete the key again.
#[utoipa::path(post, path = "/api/woocommerce/keys", tag = "webhooks",
    request_body(content = KeyCallback, content_type = "application/json"),
    responses(
        (status = 200, body = KeysReceived),
        (status = 400, description = "Not a key callback, or keys without write access", body = ErrorBody),
        (status = 404, description = "No such (unexpired) request", body = ErrorBody),
        (status = 409, description = "That store is connected already", body = ErrorBody),
        (status = 502, description = "The keys do not work on the store", body = ErrorBody)))]
pub async fn receive_keys(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<KeysReceived>)> {
    // Anyone can post here; a key callback is a few hundred bytes.
    let body = read_body(&headers, body, KEY_CALLBACK_LIMIT).await?;
    crate::error::refuse_nul_in_json(&body)?;
    let callback: AuthorizeCallback = serde_json::from_slice(&body)
        .map_err(|err| ApiError::InvalidJson(format!("not a WooCommerce key callback: {err}")))?;
    let hash = token_hash(&callback.user_id);
    let Some(authorization) = state
        .storage
        .find_woo_authorization(&hash, Utc::now())
        .await?
    else {
        return Err(ApiError::NotFound("key request"));
    };
    if let Some(store_id) = authorization.store_id {
        return Err(ApiError::Conflict {
            code: "already_connected",
            message: format!("this request already connected store {store_id}"),
        });
    }
    if callback.key_permissions != "read_write" {
        return Err(ApiError::field(
            "key_permissions",
            "publishing needs a read_write key",
        ));
    }
    let credentials = callback.credentials();
    let store = connect_woocommerce(
        &state,
        authorization.account_id,
        authorization.name,
        authorization.currency,
        authorization.store_url,
        credentials.consumer_key,
        credentials.consumer_secret,
    )
    .await?;
    state
        .storage
        .complete_woo_authorization(&hash, store.id)
        .await?;
    tracing::info!(account.id = %store.account_id, store.id = %store.id, "WooCommerce store connected by key approval");
    Ok((StatusCode::OK, Json(KeysReceived { store_id: store.id })))
}
