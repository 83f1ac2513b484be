//! Webhook receivers. They are called by the platforms, not by signed-in merchants: each
//! authenticates the delivery by its signature, records it once (a redelivery has no
//! second effect), answers quickly, and leaves the work to the background sync.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use domain::Platform;
use serde::{Deserialize, Serialize};
use storage::{NewWebhookEvent, SyncKind};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{read_body, ApiError, ApiPath, ApiResult, ErrorBody};
use crate::routes::catalog::{queue_sync, webhook_secret_context};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `ping`, `queued`, `duplicate` or `ignored`.
    pub result: String,
}

fn ack(result: &str) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    Ok((
        StatusCode::OK,
        Json(WebhookAck {
            result: result.to_owned(),
        }),
    ))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// The product fields a delivery carries that say which product changed: a variation's
/// change is its parent product's change.
#[derive(Deserialize)]
struct DeliveredProduct {
    id: i64,
    #[serde(default)]
    parent_id: i64,
}

/// WooCommerce product webhooks (`product.created`, `product.updated`, `product.deleted`).
/// The signature (`X-WC-Webhook-Signature`: base64 HMAC-SHA256 of the body with the
/// store's webhook secret) is checked in constant time; the creation ping (a form body
/// `webhook_id=N` without signature) is answered 200 as WooCommerce requires.
#[utoipa::path(post, path = "/api/webhooks/woocommerce/{storeId}", tag = "webhooks",
    params(("storeId" = Uuid, Path)),
    request_body(content = String, description = "The product as WooCommerce sends it"),
    responses(
        (status = 200, description = "Accepted (or a repeated delivery)", body = WebhookAck),
        (status = 400, description = "A signed body that is not a product", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = ErrorBody),
        (status = 404, description = "No such WooCommerce store", body = ErrorBody)))]
pub async fn woocommerce_webhook(
    State(state): State<AppState>,
    ApiPath(store_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    // Anyone can post here: the store is checked before the body is read, and the body is
    // held to the JSON limit.
    let Some((store, sealed_secret)) = state.storage.webhook_store(store_id).await? else {
        return Err(ApiError::NotFound("store"));
    };
    if store.platform != Platform::Woocommerce {
        return Err(ApiError::NotFound("store"));
    }
    let body = read_body(&headers, body, state.settings.max_body_bytes).await?;
    let Some(signature) = header(&headers, "x-wc-webhook-signature") else {
        let is_ping = std::str::from_utf8(&body)
            .ok()
            .and_then(|text| text.trim().strip_prefix("webhook_id="))
            .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()));
        if is_ping {
            return ack("ping");
        }
        return Err(ApiError::unauthorized(
            "missing_signature",
            "the delivery has no X-WC-Webhook-Signature",
        ));
    };
    let Some(sealed_secret) = sealed_secret else {
        return Err(ApiError::unauthorized(
            "invalid_signature",
            "this store has no webhook secret",
        ));
    };
    let secret = state
        .keyring
        .decrypt(&sealed_secret, &webhook_secret_context(store.id))
        .map_err(ApiError::internal)?;
    let secret = String::from_utf8(secret).map_err(ApiError::internal)?;
    if !connectors::woocommerce::verify_webhook_signature(&secret, &body, signature) {
        return Err(ApiError::unauthorized(
            "invalid_signature",
            "the webhook signature does not match",
        ));
    }
    let topic = header(&headers, "x-wc-webhook-topic").unwrap_or_default();
    if !topic.starts_with("product.") {
        tracing::info!(store.id = %store.id, webhook.topic = topic, "ignored a WooCommerce webhook topic");
        return ack("ignored");
    }
    let product: DeliveredProduct = serde_json::from_slice(&body)
        .map_err(|err| ApiError::InvalidJson(format!("not a WooCommerce product: {err}")))?;
    let product_id = if product.parent_id > 0 {
        product.parent_id
    } else {
        product.id
    };
    // WooCommerce's delivery id names one delivery; without one, the signed body does.
    let delivery = match header(&headers, "x-wc-webhook-delivery-id") {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&body))
        }
    };
    let first = state
        .storage
        .record_webhook_event(
            NewWebhookEvent {
                provider: "woocommerce".into(),
                dedupe_key: format!("{}:{delivery}", store.id),
                event_type: topic.to_owned(),
                account_id: Some(store.account_id),
                payload: format!("{{\"id\":{product_id}}}"),
            },
            Utc::now(),
        )
        .await?;
    if !first {
        return ack("duplicate");
    }
    queue_sync(
        &state,
        &store,
        SyncKind::Single,
        "webhook",
        Some(product_id.to_string()),
    )
    .await?;
    ack("queued")
}

/// A Stores product was created, updated or deleted on the site: one sync of that
/// product brings it in (or removes it), recorded once by the event's id.
async fn wix_product_event(
    state: &AppState,
    event: &billing::WixEvent,
    product_id: &str,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    let store = state
        .storage
        .provision_wix_instance(&event.instance_id, Utc::now())
        .await?
        .store;
    if state.billing.record_wix_delivery(event, Utc::now()).await? != billing::Delivery::New {
        return ack("duplicate");
    }
    queue_sync(
        state,
        &store,
        SyncKind::Single,
        "webhook",
        Some(product_id.to_owned()),
    )
    .await?;
    state
        .storage
        .finish_webhook_event(
            billing::service::WIX_PROVIDER,
            &event.dedupe_key(),
            Some(store.account_id),
            "queued",
            Utc::now(),
        )
        .await?;
    ack("queued")
}

/// How long a Wix delivery waits for its processing before it is answered anyway: Wix
/// counts an answer after 1,250 ms as a failure (`wix-incubator/wix-rest-docs`
/// `guides/Webhooks.md`; docs/protocols.md, Wix §3.2).
const WIX_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(800);

/// Wix webhooks: Stores product events (`wix.stores.catalog.v3.product_created`,
/// `_updated`, `_deleted`) queue a sync of that product; app lifecycle and billing events (`AppInstalled`, `AppRemoved`,
/// `PaidPlanPurchased`, `PaidPlanChanged`, `PaidPlanAutoRenewalCancelled`,
/// `PlanConvertedToPaid`, `PlanReactivated`, `PlanTransferred`). The body is a JWS
/// signed RS256 with the app's key (verified with `WIX_PUBLIC_KEY`). Each delivery is
/// recorded once by instance, event type and operation time; a repeated one has no second
/// effect, and an event older than the account's newest plan event does not roll the
/// plan back. Unknown event types are answered 200 and logged.
#[utoipa::path(post, path = "/api/webhooks/wix", tag = "webhooks",
    request_body(content = String, content_type = "text/plain", description = "The signed token, as Wix sends it"),
    responses(
        (status = 200, description = "Applied, recorded, ignored or a repeated delivery", body = WebhookAck),
        (status = 400, description = "Signed, but not the JSON Wix sends", body = ErrorBody),
        (status = 401, description = "Not signed by the app's key, unsigned or expired", body = ErrorBody),
        (status = 404, description = "Wix webhooks are not configured here (`WIX_PUBLIC_KEY`); Wix delivers again later", body = ErrorBody)))]
pub async fn wix_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    let Some(verifier) = &state.wix_webhooks else {
        // Not a server fault anyone may trigger: the receiver is off. Wix retries any
        // answer but 200, so deliveries wait for the operator to configure it.
        tracing::warn!(
            "a Wix webhook arrived, but Wix webhooks need WIX_APP_ID and WIX_PUBLIC_KEY"
        );
        return Err(ApiError::NotFound("Wix webhook receiver"));
    };
    let body = read_body(&headers, body, state.settings.max_body_bytes).await?;
    let token = std::str::from_utf8(&body).map_err(|_| {
        ApiError::unauthorized("invalid_signature", "the body is not a signed token")
    })?;
    let now = Utc::now();
    let event = verifier.verify(token, now).map_err(|rejection| {
        tracing::warn!(webhook.rejection = %rejection, "refused a Wix webhook");
        match rejection {
            billing::WebhookRejection::BadPayload(message) => ApiError::BadRequest {
                code: "invalid_payload",
                message,
            },
            billing::WebhookRejection::Expired => {
                ApiError::unauthorized("expired_token", rejection.to_string())
            }
            other => ApiError::unauthorized("invalid_signature", other.to_string()),
        }
    })?;
    if let Some(product_id) = event.catalog_product_id() {
        return wix_product_event(&state, &event, product_id).await;
    }
    match state.billing.record_wix_delivery(&event, now).await? {
        // A delivery seen before: done, or being processed by the request that recorded
        // it (or, if that one died, by the backlog sweep).
        billing::Delivery::Duplicate | billing::Delivery::Unfinished => return ack("duplicate"),
        billing::Delivery::New => {}
    }
    let billing = state.billing.clone();
    let processing =
        tokio::spawn(async move { billing.process_wix_event(&event, Utc::now()).await });
    match tokio::time::timeout(WIX_ANSWER_WITHIN, processing).await {
        Ok(Ok(Ok(result))) => ack(&result),
        Ok(Ok(Err(err))) => {
            // Recorded: the backlog sweep processes it again.
            tracing::error!(error.cause = %err, "a recorded Wix webhook failed to apply");
            ack("recorded")
        }
        Ok(Err(err)) => {
            tracing::error!(error.cause = %err, "a recorded Wix webhook's processing stopped");
            ack("recorded")
        }
        Err(_) => ack("recorded"),
    }
}

/// Stripe webhooks for standalone accounts (`checkout.session.completed`,
/// `customer.subscription.created|updated|deleted`, `invoice.paid`). `Stripe-Signature` is
/// checked over the raw body (HMAC-SHA256, constant time, 5 minutes of timestamp
/// tolerance); each event applies once by its id. A failure to apply answers 503, so
/// Stripe delivers it again.
#[utoipa::path(post, path = "/api/webhooks/stripe", tag = "webhooks",
    request_body(content = String, content_type = "application/json", description = "The event, as Stripe sends it"),
    responses(
        (status = 200, description = "Applied, ignored or a repeated delivery", body = WebhookAck),
        (status = 400, description = "Missing, wrong or stale signature, or not an event", body = ErrorBody),
        (status = 404, description = "Stripe webhooks are not configured here; Stripe delivers again later", body = ErrorBody),
        (status = 503, description = "The event could not be applied yet; Stripe delivers it again", body = ErrorBody)))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    let Some(secret) = state
        .settings
        .stripe
        .as_ref()
        .and_then(|stripe| stripe.webhook_secret.as_ref())
    else {
        // As for Wix: the receiver is off, and Stripe retries any answer but 2xx.
        tracing::warn!(
            "a Stripe webhook arrived, but Stripe webhooks need STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"
        );
        return Err(ApiError::NotFound("Stripe webhook receiver"));
    };
    let body = read_body(&headers, body, state.settings.max_body_bytes).await?;
    let now = Utc::now();
    let event = connectors::stripe::verify_webhook(
        &body,
        header(&headers, "stripe-signature").unwrap_or(""),
        secret.expose(),
        connectors::stripe::DEFAULT_WEBHOOK_TOLERANCE,
        now,
    )
    .map_err(|err| {
        tracing::warn!(webhook.rejection = %err, "refused a Stripe webhook");
        ApiError::BadRequest {
            code: "invalid_signature",
            message: err.to_string(),
        }
    })?;
    match state.billing.process_stripe_event(&event, now).await {
        Ok(result) => ack(&result),
        Err(err @ billing::BillingError::Storage(_)) => Err(err.into()),
        Err(err) => Err(ApiError::Unavailable(format!(
            "the Stripe event {} could not be applied yet: {err}",
            event.id
        ))),
    }
}
