//! Signs Wix dashboard instances the way Wix does (`../shared/reference/wix.md` §1.2): the
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
