//! Signs Wix dashboard instances the way Wix does
//! (<https://dev.wix.com/docs/build-apps/develop-your-app/access/app-instances/parse-encoded-app-instance-data>;
//! docs/protocols.md, Wix §1.2): the
//! payload is the instance JSON in URL-safe base64 without padding, the signature is
//! HMAC-SHA256 keyed by the app secret over the payload segment text, URL-safe base64
//! without padding, and the token is `signature.payload`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The fields of a signed instance that tests vary.
#[derive(Debug, Clone)]
pub struct InstanceClaims {
    pub instance_id: String,
    pub app_def_id: String,
    pub sign_date: DateTime<Utc>,
    pub expiration: DateTime<Utc>,
    pub vendor_product_id: Option<String>,
}

impl InstanceClaims {
    /// A fresh instance for `instance_id`, valid for four hours like Wix's.
    pub fn new(instance_id: &str, app_def_id: &str) -> Self {
        let now = Utc::now();
        InstanceClaims {
            instance_id: instance_id.to_owned(),
            app_def_id: app_def_id.to_owned(),
            sign_date: now,
            expiration: now + Duration::hours(4),
            vendor_product_id: None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut value = serde_json::json!({
            "instanceId": self.instance_id,
            "appDefId": self.app_def_id,
            "signDate": iso(self.sign_date),
            "uid": "5e1bfa2c-7a59-4d1b-9a8e-3c52d1c1a001",
            "permissions": "OWNER",
            "demoMode": false,
            "siteOwnerId": "5e1bfa2c-7a59-4d1b-9a8e-3c52d1c1a001",
            "siteMemberId": "5e1bfa2c-7a59-4d1b-9a8e-3c52d1c1a002",
            "expirationDate": iso(self.expiration),
            "loginAccountId": "5e1bfa2c-7a59-4d1b-9a8e-3c52d1c1a001",
        });
        if let Some(vendor_product_id) = &self.vendor_product_id {
            value["vendorProductId"] = vendor_product_id.clone().into();
        }
        value
    }
}

/// Signs `claims` with `app_secret` as Wix does.
pub fn sign_instance(claims: &InstanceClaims, app_secret: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(claims.to_json().to_string());
    sign_payload_segment(&payload, app_secret)
}

/// Signs an already-encoded payload segment exactly as given (for padded or
/// standard-alphabet variants).
pub fn sign_payload_segment(payload_segment: &str, app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(payload_segment.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signature}.{payload_segment}")
}

/// The app's webhook key pair
/// (<https://dev.wix.com/docs/build-apps/develop-your-app/access/authentication/verify-requests-received-from-wix>;
/// docs/protocols.md, Wix §3.1): Wix signs with the
/// private half; the app verifies with the public half (`WIX_PUBLIC_KEY`). A test key,
/// generated for this kit and used nowhere else.
pub const WEBHOOK_PUBLIC_KEY: &str = include_str!("keys/wix_app_public.pem");
const WEBHOOK_PRIVATE_KEY: &str = include_str!("keys/wix_app_private.pem");
/// A key pair that is not the app's: tokens signed with it must be refused.
const OTHER_PRIVATE_KEY: &str = include_str!("keys/wix_other_private.pem");

/// Which key signs a test webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKey {
    App,
    Other,
}

/// A webhook body as Wix sends it (§3.1 and Wix's own test kit): a compact RS256 JWS with
/// header `kid`, claims `{"data": JSON(envelope), "iat", "exp": iat + 300000}`, where the
/// envelope's `data` is the payload as a JSON string.
pub fn webhook_body(instance_id: &str, event_type: &str, payload: &serde_json::Value) -> String {
    let iat = Utc::now().timestamp();
    webhook_token(
        &serde_json::json!({
            "data": webhook_envelope(instance_id, event_type, payload),
            "iat": iat,
            "exp": iat + 300_000,
        }),
        WebhookKey::App,
    )
}

/// The envelope text of a webhook (the token's `data` claim).
pub fn webhook_envelope(
    instance_id: &str,
    event_type: &str,
    payload: &serde_json::Value,
) -> String {
    serde_json::json!({
        "instanceId": instance_id,
        "eventType": event_type,
        "data": payload.to_string(),
    })
    .to_string()
}

/// Signs any claims (expired ones, ones whose `data` is not JSON, …) with `key`.
pub fn webhook_token(claims: &serde_json::Value, key: WebhookKey) -> String {
    let pem = match key {
        WebhookKey::App => WEBHOOK_PRIVATE_KEY,
        WebhookKey::Other => OTHER_PRIVATE_KEY,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("qG1kD2dz".into());
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("the kit's key parses");
    jsonwebtoken::encode(&header, claims, &key).expect("claims serialize")
}

/// A token with `alg: none` and no signature, which no verifier may accept.
pub fn unsigned_webhook_token(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A token whose signed payload segment is `raw` exactly (e.g. text that is not JSON).
pub fn webhook_token_over_raw_payload(raw: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"qG1kD2dz"}"#);
    let payload = URL_SAFE_NO_PAD.encode(raw);
    let message = format!("{header}.{payload}");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(WEBHOOK_PRIVATE_KEY.as_bytes())
        .expect("the kit's key parses");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::RS256)
            .expect("signs");
    format!("{message}.{signature}")
}
