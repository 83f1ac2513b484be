//! OAuth 1.0a "one-legged" signing for stores reached over plain HTTP. WooCommerce honours
//! Basic auth only when WordPress's `is_ssl()` is true; over HTTP it authenticates OAuth 1.0a
//! alone: no token, the key is the consumer secret and `&`, HMAC-SHA1 or HMAC-SHA256, a
//! timestamp within 15 minutes and a nonce used once (woocommerce/woocommerce,
//! `plugins/woocommerce/includes/class-wc-rest-authentication.php`,
//! `perform_oauth_authentication`). The parameters travel in the query string, as
//! WooCommerce's own documentation and JavaScript client send them: some hosts strip the
//! `Authorization` header before PHP sees it.
//!
//! Our own code rather than a crate: `oauth1-request` 0.6, the maintained Rust OAuth 1.0
//! client, models requests as derived structs with a token and offers HMAC-SHA1 only, while
//! this is a token-less signer over a dynamic query; it is a few lines over `hmac`, `sha2`
//! and `percent-encoding`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::distributions::{Alphanumeric, DistString};
use sha2::Sha256;

/// RFC 5849 §3.6: everything but the unreserved `A-Z a-z 0-9 - . _ ~` is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The `oauth_*` query parameters that sign a request to `url` (scheme, host, port and path;
/// no query) carrying `query`, at `timestamp` with `nonce` (RFC 5849 §3.4.1: the base string
/// is `METHOD&url&parameters`, the parameters sorted after encoding).
pub(super) fn signature_parameters(
    method: &str,
    url: &str,
    query: &[(&str, String)],
    consumer_key: &str,
    consumer_secret: &str,
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let mut oauth = vec![
        ("oauth_consumer_key", consumer_key.to_owned()),
        ("oauth_nonce", nonce.to_owned()),
        ("oauth_signature_method", "HMAC-SHA256".to_owned()),
        ("oauth_timestamp", timestamp.to_string()),
    ];
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .chain(
            oauth
                .iter()
                .map(|(name, value)| (encode(name), encode(value))),
        )
        .collect();
    pairs.sort();
    let normalized = pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(url),
        encode(&normalized)
    );
    // WooCommerce keys the HMAC with the secret as stored, not percent-encoded as RFC 5849
    // says; WooCommerce secrets (`cs_` and hex) read the same either way.
    let mut mac = Hmac::<Sha256>::new_from_slice(format!("{consumer_secret}&").as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(base.as_bytes());
    oauth.push((
        "oauth_signature",
        STANDARD.encode(mac.finalize().into_bytes()),
    ));
    oauth
}

/// A fresh nonce: 32 alphanumeric characters, as WooCommerce's documentation suggests.
pub(super) fn nonce() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 §3.4.1.1's worked example for the base string, signed as WooCommerce checks
    /// it: with the consumer secret and `&` as the key.
    #[test]
    fn the_signature_covers_method_url_query_and_oauth_parameters() {
        let parameters = signature_parameters(
            "get",
            "http://shop.example/wp-json/wc/v3/products",
            &[("per_page", "100".into()), ("search", "a b".into())],
            "ck_1",
            "cs_1",
            1_700_000_000,
            "abc",
        );
        let names: Vec<&str> = parameters.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "oauth_consumer_key",
                "oauth_nonce",
                "oauth_signature_method",
                "oauth_timestamp",
                "oauth_signature"
            ]
        );
        let base = "GET&http%3A%2F%2Fshop.example%2Fwp-json%2Fwc%2Fv3%2Fproducts&oauth_consumer_key%3Dck_1%26oauth_nonce%3Dabc%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1700000000%26per_page%3D100%26search%3Da%2520b";
        let mut mac = Hmac::<Sha256>::new_from_slice(b"cs_1&").unwrap();
        mac.update(base.as_bytes());
        assert_eq!(
            parameters[4].1,
            STANDARD.encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
