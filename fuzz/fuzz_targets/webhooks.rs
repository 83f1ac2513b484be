//! Webhook deliveries: the first byte picks the receiver (Stripe, WooCommerce or Wix),
//! the rest is split into header and body at the first newline. None may panic.
#![no_main]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

/// What billing's Wix module needs from its crate: the configuration error.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Config(String),
}

// Billing's Wix webhook decoder, compiled from its own source file: the billing crate
// would bring the storage layer and its database drivers into the fuzz build.
#[path = "../../crates/billing/src/wix.rs"]
#[allow(dead_code)]
mod wix;

/// The test key pair's public half (crates/testkit/src/keys).
const WIX_PUBLIC_KEY: &str = include_str!("../../crates/testkit/src/keys/wix_app_public.pem");

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (header, body) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
    let header = String::from_utf8_lossy(header);
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    match selector % 3 {
        0 => {
            let _ = connectors::stripe::verify_webhook(
                body,
                &header,
                "whsec_fuzz",
                Duration::from_secs(300),
                now,
            );
            // The body correctly signed at a timestamp read from the header line, so the
            // time check and the event decoding are reached too.
            let timestamp = header.trim().parse::<i64>().unwrap_or(now.timestamp());
            let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_fuzz").unwrap();
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(body);
            let signed = format!(
                "t={timestamp},v1={}",
                hex::encode(mac.finalize().into_bytes())
            );
            if let Ok(event) = connectors::stripe::verify_webhook(
                body,
                &signed,
                "whsec_fuzz",
                Duration::from_secs(300),
                now,
            ) {
                let _ = event.completed_checkout();
                let _ = event.subscription();
                let _ = event.paid_invoice();
            }
        }
        1 => {
            let _ = connectors::woocommerce::verify_webhook_signature("s3cr3t", body, &header);
        }
        _ => {
            let verifier = wix::WixWebhookVerifier::new(WIX_PUBLIC_KEY).unwrap();
            let _ = verifier.verify(&String::from_utf8_lossy(rest), now);
            let _ = wix::WixEvent::from_envelope(&String::from_utf8_lossy(rest));
        }
    }
});
