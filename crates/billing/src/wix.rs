//! Wix app webhooks
//! (<https://dev.wix.com/docs/build-apps/develop-your-app/access/authentication/verify-requests-received-from-wix>;
//! sections: docs/protocols.md, Wix §3): the whole request body is a compact
//! JWS signed RS256 with the app's key pair; Wix publishes no JWKS, so the app's public key
//! comes from configuration (PEM, or the PEM base64-encoded on one line, §3.1). The claims
//! carry `data`, a JSON *string* holding the envelope, whose own `data` is a JSON string
//! holding the event's payload (§3.1 "Decoding").

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::BillingError;

/// The entity of Stores V3 product events (npm `@wix/auto_sdk_stores_products-v-3`;
/// docs/protocols.md, Wix §3.4).
pub const CATALOG_PRODUCT_ENTITY: &str = "wix.stores.catalog.v3.product";

/// Why a delivery was refused. Every variant answers 401 or 400 and changes nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookRejection {
    #[error("the webhook signature does not verify with the app's public key")]
    BadSignature,
    #[error("the webhook token has expired")]
    Expired,
    #[error("the webhook body is not a signed token: {0}")]
    Malformed(String),
    #[error("the webhook payload is not the JSON Wix sends: {0}")]
    BadPayload(String),
}

/// Verifies webhook tokens with the app's public key.
#[derive(Clone)]
pub struct WixWebhookVerifier {
    key: DecodingKey,
}

impl std::fmt::Debug for WixWebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WixWebhookVerifier")
    }
}

impl WixWebhookVerifier {
    /// `public_key` is the SPKI PEM from the app dashboard, or that PEM base64-encoded.
    pub fn new(public_key: &str) -> Result<Self, BillingError> {
        let trimmed = public_key.trim();
        let pem = if trimmed.starts_with("-----BEGIN") {
            trimmed.to_owned()
        } else {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(trimmed.replace(['\n', '\r', ' '], ""))
                .map_err(|_| {
                    BillingError::Config("WIX_PUBLIC_KEY is neither PEM nor base64 PEM".into())
                })?;
            String::from_utf8(decoded).map_err(|_| {
                BillingError::Config("WIX_PUBLIC_KEY is neither PEM nor base64 PEM".into())
            })?
        };
        // Literal `\n` sequences appear when a PEM is pasted into one environment line.
        let pem = pem.replace("\\n", "\n");
        let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|err| {
            BillingError::Config(format!("WIX_PUBLIC_KEY is not an RSA public key: {err}"))
        })?;
        Ok(WixWebhookVerifier { key })
    }

    /// Checks the signature (RS256 only: `none` and HMAC tokens are refused) and the
    /// expiry when the token has one, then decodes the nested envelope.
    pub fn verify(&self, body: &str, now: DateTime<Utc>) -> Result<WixEvent, WebhookRejection> {
        let token = body.trim();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| WebhookRejection::Malformed(err.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(WebhookRejection::BadSignature);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry is checked below against `now` (the library would read the clock), and
        // Wix's webhooks carry no audience.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &validation).map_err(
            |err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => WebhookRejection::BadSignature,
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    WebhookRejection::BadPayload("the claims are not a JSON object".into())
                }
                _ => WebhookRejection::Malformed(err.to_string()),
            },
        )?;
        if let Some(exp) = claims.claims.exp {
            if exp < now.timestamp() {
                return Err(WebhookRejection::Expired);
            }
        }
        let envelope = match claims.claims.data {
            Value::String(text) => text,
            Value::Object(_) => claims.claims.data.to_string(),
            _ => {
                return Err(WebhookRejection::BadPayload(
                    "`data` is not a JSON string".into(),
                ))
            }
        };
        let mut event = WixEvent::from_envelope(&envelope)?;
        event.issued_at = claims.claims.iat;
        Ok(event)
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    data: Value,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    instance_id: String,
    event_type: String,
    #[serde(default)]
    data: Value,
}

/// The app lifecycle and billing events Wix sends (§3.3); anything else is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WixEventKind {
    AppInstalled,
    AppRemoved,
    PaidPlanPurchased,
    PaidPlanChanged,
    PaidPlanAutoRenewalCancelled,
    PlanConvertedToPaid,
    PlanReactivated,
    PlanTransferred,
    Other(String),
}

impl WixEventKind {
    fn parse(event_type: &str) -> Self {
        match event_type {
            "AppInstalled" => WixEventKind::AppInstalled,
            "AppRemoved" => WixEventKind::AppRemoved,
            "PaidPlanPurchased" => WixEventKind::PaidPlanPurchased,
            "PaidPlanChanged" => WixEventKind::PaidPlanChanged,
            "PaidPlanAutoRenewalCancelled" => WixEventKind::PaidPlanAutoRenewalCancelled,
            "PlanConvertedToPaid" => WixEventKind::PlanConvertedToPaid,
            "PlanReactivated" => WixEventKind::PlanReactivated,
            "PlanTransferred" => WixEventKind::PlanTransferred,
            other => WixEventKind::Other(other.to_owned()),
        }
    }
}

/// A verified delivery, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct WixEvent {
    pub instance_id: String,
    pub event_type: String,
    pub kind: WixEventKind,
    /// The event's payload (`envelope.data` parsed).
    pub payload: Value,
    /// The envelope as it arrived (kept in `webhook_events` so an interrupted delivery
    /// can be processed again without its token).
    pub envelope: String,
    /// The token's `iat`, when it had one.
    pub issued_at: Option<i64>,
}

impl WixEvent {
    /// Decodes an envelope (the JSON text of the token's `data` claim).
    pub fn from_envelope(envelope: &str) -> Result<Self, WebhookRejection> {
        let parsed: Envelope = serde_json::from_str(envelope)
            .map_err(|err| WebhookRejection::BadPayload(format!("envelope: {err}")))?;
        if parsed.instance_id.trim().is_empty() {
            return Err(WebhookRejection::BadPayload(
                "the envelope names no instance".into(),
            ));
        }
        let payload = match parsed.data {
            Value::String(text) if text.trim().is_empty() => Value::Object(Default::default()),
            Value::String(text) => serde_json::from_str(&text)
                .map_err(|err| WebhookRejection::BadPayload(format!("event data: {err}")))?,
            Value::Null => Value::Object(Default::default()),
            object @ Value::Object(_) => object,
            _ => {
                return Err(WebhookRejection::BadPayload(
                    "event data is not an object".into(),
                ))
            }
        };
        if !payload.is_object() {
            return Err(WebhookRejection::BadPayload(
                "event data is not an object".into(),
            ));
        }
        Ok(WixEvent {
            kind: WixEventKind::parse(&parsed.event_type),
            instance_id: parsed.instance_id,
            event_type: parsed.event_type,
            payload,
            envelope: envelope.to_owned(),
            issued_at: None,
        })
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    fn instant(&self, field: &str) -> Option<DateTime<Utc>> {
        self.text(field)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|instant| instant.with_timezone(&Utc))
    }

    /// When Wix made the change (`operationTimeStamp`), for plan events.
    pub fn operation_at(&self) -> Option<DateTime<Utc>> {
        self.instant("operationTimeStamp")
    }

    /// The plan the event names (`vendorProductId`).
    pub fn vendor_product_id(&self) -> Option<&str> {
        self.text("vendorProductId")
    }

    /// When the paid period ends (`expiresOn`), when the event says.
    pub fn expires_on(&self) -> Option<DateTime<Utc>> {
        self.instant("expiresOn")
    }

    /// What makes two deliveries the same delivery (§3.2): a domain event's own `id`;
    /// for app events, instance, event type and operation time. Events without an
    /// operation time (install, removal) use the token's `iat`, else a digest of the
    /// payload.
    pub fn dedupe_key(&self) -> String {
        if let (Some(_), Some(id)) = (self.text("entityFqdn"), self.text("id")) {
            return format!("{}:{}:event:{id}", self.instance_id, self.event_type);
        }
        let moment = match (self.text("operationTimeStamp"), self.issued_at) {
            (Some(stamp), _) => stamp.to_owned(),
            (None, Some(iat)) => format!("iat:{iat}"),
            (None, None) => hex::encode(Sha256::digest(self.envelope.as_bytes())),
        };
        format!("{}:{}:{moment}", self.instance_id, self.event_type)
    }

    /// The product a Stores catalog domain event is about (§3.4: `entityFqdn`
    /// `wix.stores.catalog.v3.product`, `entityId` the product id), for created, updated
    /// and deleted products alike: each becomes a sync of that one product.
    pub fn catalog_product_id(&self) -> Option<&str> {
        (self.text("entityFqdn") == Some(CATALOG_PRODUCT_ENTITY))
            .then(|| self.text("entityId"))
            .flatten()
    }
}
