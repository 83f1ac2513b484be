//! Verification of the signed app instance Wix passes to our dashboard iframe
//! (<https://dev.wix.com/docs/build-apps/develop-your-app/access/app-instances/parse-encoded-app-instance-data>;
//! docs/protocols.md, Wix §1.2): `signature.payload`, where the signature is
//! HMAC-SHA256 keyed by the app secret over the payload segment exactly as received, in
//! URL-safe base64 without padding. Wix's own example verifier normalizes both sides
//! (padding removed, `+`→`-`, `/`→`_`) before comparing, so padded or standard-alphabet
//! encodings are accepted too; the comparison is constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far our clock may disagree with Wix's.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Wix instances observed carry `expirationDate = signDate + 4h`; used when only the sign
/// date is present.
const DEFAULT_LIFETIME: Duration = Duration::hours(4);

/// Tokens longer than this are refused before any work (a real instance is ~600 bytes).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The verified fields of an instance that the service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WixInstance {
    pub instance_id: String,
    pub app_def_id: Option<String>,
    pub vendor_product_id: Option<String>,
    pub is_owner: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("the Wix instance is malformed")]
    Malformed,
    #[error("the Wix instance signature does not match")]
    BadSignature,
    #[error("the Wix instance has expired; reopen the app from the Wix dashboard")]
    Expired,
    #[error("the Wix instance belongs to another app")]
    WrongApp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    instance_id: String,
    app_def_id: Option<String>,
    sign_date: Option<String>,
    expiration_date: Option<String>,
    vendor_product_id: Option<String>,
    permissions: Option<String>,
}

/// Verifies `token` with `app_secret` at time `now`. `expected_app_id`, when given, must
/// match the instance's `appDefId`.
pub fn verify(
    token: &str,
    app_secret: &str,
    expected_app_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<WixInstance, InstanceError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(InstanceError::Malformed);
    }
    let (signature, payload_segment) = token.split_once('.').ok_or(InstanceError::Malformed)?;
    if signature.is_empty() || payload_segment.is_empty() || payload_segment.contains('.') {
        return Err(InstanceError::Malformed);
    }

    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| InstanceError::BadSignature)?;
    mac.update(payload_segment.as_bytes());
    let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let presented = normalize_base64(signature);
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(InstanceError::BadSignature);
    }

    let json = URL_SAFE_NO_PAD
        .decode(normalize_base64(payload_segment))
        .map_err(|_| InstanceError::Malformed)?;
    let payload: Payload = serde_json::from_slice(&json).map_err(|_| InstanceError::Malformed)?;
    if payload.instance_id.trim().is_empty() {
        return Err(InstanceError::Malformed);
    }
    let parse = |text: &Option<String>| -> Result<Option<DateTime<Utc>>, InstanceError> {
        text.as_deref()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| InstanceError::Malformed)
            })
            .transpose()
    };
    let sign_date = parse(&payload.sign_date)?;
    let expires_at = match (parse(&payload.expiration_date)?, sign_date) {
        (Some(expiration), _) => expiration,
        (None, Some(signed)) => signed + DEFAULT_LIFETIME,
        (None, None) => return Err(InstanceError::Malformed),
    };
    if now > expires_at + CLOCK_SKEW {
        return Err(InstanceError::Expired);
    }
    if sign_date.is_some_and(|signed| signed > now + CLOCK_SKEW) {
        return Err(InstanceError::Malformed);
    }
    if let (Some(expected), Some(actual)) = (expected_app_id, payload.app_def_id.as_deref()) {
        if expected != actual {
            return Err(InstanceError::WrongApp);
        }
    }
    Ok(WixInstance {
        instance_id: payload.instance_id,
        app_def_id: payload.app_def_id,
        vendor_product_id: payload.vendor_product_id.filter(|id| !id.is_empty()),
        is_owner: payload.permissions.as_deref() == Some("OWNER"),
        expires_at,
    })
}

/// URL-safe alphabet, no padding: the form Wix signs in.
fn normalize_base64(text: &str) -> String {
    text.trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wix's published test vector (`wix-incubator/wix-developers-example-apps`
    /// `oauth-boilerplate/server/src/utils/InstanceDecoder.spec.js`; docs/protocols.md,
    /// Wix §1.2): standard base64 payload *with* padding.
    const SECRET: &str = "c8175096-0c39-4adc-9c93-2eccf3c9f6d5";
    const PAYLOAD: &str = "eyJpbnN0YW5jZUlkIjoiYWFhYSIsImFwcERlZklkIjoiYmJlYmIiLCJzaWduRGF0ZSI6IjIwMjEtMTItMjdUMTE6NTI6MDAuNjM5WiIsInVpZCI6ImFhYWEiLCJwZXJtaXNzaW9ucyI6Ik9XTkVSIiwiZGVtb01vZGUiOmZhbHNlLCJzaXRlT3duZXJJZCI6ImFhYWEiLCJzaXRlTWVtYmVySWQiOiJiYmJiIiwiZXhwaXJhdGlvbkRhdGUiOiIyMDIxLTEyLTI3VDE1OjUyOjAwLjYzOVoiLCJsb2dpbkFjY291bnRJZCI6ImFhYWEifQ==";
    const SIGNATURE: &str = "Dvlh7TlxkfER9776elfBYTLr-4Xh7xJUq2xRzmki42U";
    const SIGNATURE_UNPADDED: &str = "Wb7M_anweki1QWTDZiw7rvC_2LvrrvNq3QDjZoliVMI";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn published_test_vector_verifies() {
        let token = format!("{SIGNATURE}.{PAYLOAD}");
        let instance = verify(&token, SECRET, None, at("2021-12-27T12:00:00Z")).unwrap();
        assert_eq!(instance.instance_id, "aaaa");
        assert_eq!(instance.app_def_id.as_deref(), Some("bbebb"));
        assert!(instance.is_owner);
        assert_eq!(instance.expires_at, at("2021-12-27T15:52:00.639Z"));
    }

    #[test]
    fn mac_covers_the_segment_as_received() {
        let unpadded = PAYLOAD.trim_end_matches('=');
        let now = at("2021-12-27T12:00:00Z");
        let token = format!("{SIGNATURE_UNPADDED}.{unpadded}");
        assert_eq!(
            verify(&token, SECRET, None, now).unwrap().instance_id,
            "aaaa"
        );
        // The padded payload's MAC does not verify the unpadded segment, and vice versa.
        let mixed = format!("{SIGNATURE}.{unpadded}");
        assert_eq!(
            verify(&mixed, SECRET, None, now),
            Err(InstanceError::BadSignature)
        );
    }

    #[test]
    fn padded_or_standard_alphabet_signatures_are_accepted() {
        let standard = SIGNATURE.replace('-', "+").replace('_', "/") + "=";
        let token = format!("{standard}.{PAYLOAD}");
        assert!(verify(&token, SECRET, None, at("2021-12-27T12:00:00Z")).is_ok());
    }

    #[test]
    fn expiry_is_enforced_with_a_small_skew() {
        let token = format!("{SIGNATURE}.{PAYLOAD}");
        assert!(verify(&token, SECRET, None, at("2021-12-27T15:55:00Z")).is_ok());
        assert_eq!(
            verify(&token, SECRET, None, at("2021-12-27T16:00:00Z")),
            Err(InstanceError::Expired)
        );
    }

    #[test]
    fn tampering_other_secrets_and_garbage_are_refused() {
        let now = at("2021-12-27T12:00:00Z");
        let token = format!("{SIGNATURE}.{PAYLOAD}");
        assert_eq!(
            verify(&token, "another-secret", None, now),
            Err(InstanceError::BadSignature)
        );
        let tampered = format!("{SIGNATURE}.{}", PAYLOAD.replacen('J', "K", 1));
        assert_eq!(
            verify(&tampered, SECRET, None, now),
            Err(InstanceError::BadSignature)
        );
        for garbage in ["", "nodot", ".", "a.", ".b", "a.b.c", &"x".repeat(9000)] {
            assert!(verify(garbage, SECRET, None, now).is_err(), "{garbage:?}");
        }
        let truncated = &token[..token.len() - 10];
        assert!(verify(truncated, SECRET, None, now).is_err());
    }

    #[test]
    fn app_id_must_match_when_configured() {
        let token = format!("{SIGNATURE}.{PAYLOAD}");
        let now = at("2021-12-27T12:00:00Z");
        assert!(verify(&token, SECRET, Some("bbebb"), now).is_ok());
        assert_eq!(
            verify(&token, SECRET, Some("other"), now),
            Err(InstanceError::WrongApp)
        );
    }
}
