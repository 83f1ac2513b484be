//! The Wix instance token (`X-Wix-Instance`): any header value, under a fixed secret and
//! under one taken from the input, must be refused or verified without a panic.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

// The verifier is compiled from its own source file: it uses only hashing, base64 and
// JSON, and the server crate would bring its database drivers into the fuzz build.
#[path = "../../crates/server/src/auth/wix_instance.rs"]
#[allow(dead_code)]
mod wix_instance;

const SECRET: &str = "c8175096-0c39-4adc-9c93-2eccf3c9f6d5";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let _ = wix_instance::verify(text, SECRET, None, now);
    // The first line as the secret, the rest as the token.
    if let Some((secret, token)) = text.split_once('\n') {
        let _ = wix_instance::verify(token, secret, Some("app"), now);
    }
    // The input as a correctly signed payload segment, so decoding the payload (base64,
    // JSON, dates) is reached too.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let _ = wix_instance::verify(&format!("{signature}.{text}"), SECRET, Some("app"), now);
});
