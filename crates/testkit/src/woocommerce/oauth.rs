//! WooCommerce's OAuth 1.0a "one-legged" check, the only authentication WooCommerce tries
//! for requests over plain HTTP (Basic auth and `consumer_key`/`consumer_secret` in the query
//! are honoured only when `is_ssl()`). Follows `WC_REST_Authentication` step by step
//! (woocommerce/woocommerce, `plugins/woocommerce/includes/class-wc-rest-authentication.php`:
//! `get_oauth_parameters`, `parse_header`, `perform_oauth_authentication`,
//! `check_oauth_signature`, `normalize_parameters`, `join_with_equals_sign`,
//! `check_oauth_timestamp_and_nonce`), so the fake refuses what WooCommerce refuses and
//! accepts what the official clients send.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// PHP's `rawurlencode` (RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` is encoded), which
/// `wc_rest_urlencode_rfc3986` applies.
const RAWURLENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parameters WooCommerce requires, in the order it names missing ones.
const REQUIRED: [&str; 5] = [
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
];

/// WooCommerce's replay window: timestamps within 15 minutes of now, nonces kept 15 minutes.
pub(super) const VALID_WINDOW_SECS: i64 = 15 * 60;

/// A refusal, answered as 401 with this code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refused(message: &str) -> Refusal {
    Refusal {
        code: "woocommerce_rest_authentication_error",
        message: message.to_owned(),
    }
}

pub(super) fn rawurlencode(text: &str) -> String {
    utf8_percent_encode(text, RAWURLENCODE).to_string()
}

/// PHP's `urldecode`: `+` is a space, then `%XX` sequences are decoded.
fn urldecode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// PHP's `rawurldecode`: `%XX` sequences only.
fn rawurldecode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `parse_header`: the `oauth_*` pairs of an `Authorization: OAuth …` header, matched as
/// WooCommerce's `/(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))/` does and `urldecode`d.
fn parse_header(header: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let Some(mut rest) = header.strip_prefix("OAuth ") else {
        return params;
    };
    while let Some(start) = rest.find("oauth_") {
        rest = &rest[start..];
        let name_len = rest["oauth_".len()..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == '-'))
            .map_or(rest.len(), |end| end + "oauth_".len());
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        let Some(value_text) = after.strip_prefix('=') else {
            rest = &rest["oauth_".len()..];
            continue;
        };
        let quoted = value_text
            .strip_prefix(":\"")
            .or_else(|| value_text.strip_prefix('"'))
            .and_then(|inner| {
                inner
                    .find('"')
                    .map(|end| (&inner[..end], &inner[end + 1..]))
            });
        let (value, remainder) = match quoted {
            Some((value, remainder)) => (value, remainder),
            None => {
                let end = value_text.find(',').unwrap_or(value_text.len());
                (&value_text[..end], &value_text[end..])
            }
        };
        params.insert(name.to_owned(), urldecode(value));
        rest = remainder;
    }
    params
}

/// PHP's `empty()` on a request string: missing, `""` and `"0"` are all empty.
fn is_empty(value: Option<&String>) -> bool {
    value.is_none_or(|v| v.is_empty() || v == "0")
}

/// `get_oauth_parameters`: the query parameters (PHP's `$_GET`, the last of a repeated name
/// winning) overlaid with the `Authorization: OAuth` header's. `Ok(None)` when no OAuth
/// parameter is present at all (the request is not trying OAuth).
pub(super) fn parameters(
    query: &[(String, String)],
    authorization: Option<&str>,
) -> Result<Option<BTreeMap<String, String>>, Refusal> {
    let mut params: BTreeMap<String, String> = query.iter().cloned().collect();
    if let Some(header) = authorization {
        params.extend(parse_header(header.trim()));
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|name| is_empty(params.get(*name)))
        .collect();
    if missing.len() == REQUIRED.len() {
        return Ok(None);
    }
    if !missing.is_empty() {
        let noun = if missing.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        return Err(Refusal {
            code: "woocommerce_rest_authentication_missing_parameter",
            message: format!("Missing OAuth {noun} {}", missing.join(", ")),
        });
    }
    Ok(Some(params))
}

/// `check_oauth_signature`: the base string is `METHOD&rawurlencode(home_url + path)&` and the
/// parameters (the signature left out) sorted by name with `strcmp`, each name and value
/// `rawurlencode`d, joined as `name=value`, encoded once more and joined with `%26`. The key
/// is the consumer secret and `&`; HMAC-SHA1 or HMAC-SHA256, base64.
pub(super) fn check_signature(
    method: &str,
    home_url: &str,
    path: &str,
    params: &BTreeMap<String, String>,
    consumer_secret: &str,
) -> Result<(), Refusal> {
    let given = params.get("oauth_signature").cloned().unwrap_or_default();
    let consumer_signature = rawurldecode(&given.replace(' ', "+"));
    // A BTreeMap of Strings iterates in byte order, which is PHP's `strcmp` order.
    let pairs: Vec<String> = params
        .iter()
        .filter(|(name, _)| name.as_str() != "oauth_signature")
        .map(|(name, value)| {
            rawurlencode(&format!("{}={}", rawurlencode(name), rawurlencode(value)))
        })
        .collect();
    let base_request_uri = rawurlencode(&format!("{home_url}{path}"));
    let string_to_sign = format!(
        "{}&{base_request_uri}&{}",
        method.to_uppercase(),
        pairs.join("%26")
    );
    let key = format!("{consumer_secret}&");
    let signature = match params.get("oauth_signature_method").map(String::as_str) {
        Some("HMAC-SHA1") => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(string_to_sign.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        }
        Some("HMAC-SHA256") => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(string_to_sign.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        }
        _ => return Err(refused("Invalid signature - signature method is invalid.")),
    };
    if signature.as_bytes() != consumer_signature.as_bytes() {
        return Err(refused(
            "Invalid signature - provided signature does not match.",
        ));
    }
    Ok(())
}

/// `check_oauth_timestamp_and_nonce`: the timestamp within 15 minutes of `now`, and the nonce
/// not among the key's used nonces. WooCommerce keeps them keyed by timestamp (a later nonce
/// with the same timestamp replaces the earlier one) and drops those older than the window.
pub(super) fn check_timestamp_and_nonce(
    used_nonces: &mut BTreeMap<i64, String>,
    timestamp: &str,
    nonce: &str,
    now: i64,
) -> Result<(), Refusal> {
    let Some(timestamp) = timestamp
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
    else {
        return Err(refused("Invalid timestamp."));
    };
    if timestamp < (now - VALID_WINDOW_SECS) as f64 || timestamp > (now + VALID_WINDOW_SECS) as f64
    {
        return Err(refused("Invalid timestamp."));
    }
    if used_nonces.values().any(|used| used == nonce) {
        return Err(refused("Invalid nonce - nonce has already been used."));
    }
    used_nonces.insert(timestamp as i64, nonce.to_owned());
    used_nonces.retain(|at, _| *at >= now - VALID_WINDOW_SECS);
    Ok(())
}

/// The refusal for an unknown `oauth_consumer_key`.
pub(super) fn unknown_key() -> Refusal {
    refused("Consumer key is invalid.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(method: &str, url: &str, params: &[(&str, &str)], secret: &str) -> String {
        let mut sorted: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sorted.sort();
        let joined: Vec<String> = sorted
            .iter()
            .map(|(k, v)| format!("{}={}", rawurlencode(k), rawurlencode(v)))
            .collect();
        let base = format!(
            "{method}&{}&{}",
            rawurlencode(url),
            rawurlencode(&joined.join("&"))
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
        mac.update(base.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn header_parameters_are_read_like_woocommerces_pattern() {
        let params = parse_header(
            r#"OAuth realm="x", oauth_consumer_key="ck_1", oauth_nonce=abc%20d, oauth_signature="a%2Bb%3D""#,
        );
        assert_eq!(params["oauth_consumer_key"], "ck_1");
        assert_eq!(params["oauth_nonce"], "abc d");
        assert_eq!(params["oauth_signature"], "a+b=");
        assert!(!params.contains_key("realm"));
        assert!(parse_header("Basic Y2s6Y3M=").is_empty());
    }

    #[test]
    fn partial_parameters_name_what_is_missing() {
        let query = vec![("oauth_consumer_key".to_owned(), "ck".to_owned())];
        let refusal = parameters(&query, None).unwrap_err();
        assert_eq!(
            refusal.code,
            "woocommerce_rest_authentication_missing_parameter"
        );
        assert_eq!(
            refusal.message,
            "Missing OAuth parameters oauth_timestamp, oauth_nonce, oauth_signature, oauth_signature_method"
        );
        assert_eq!(parameters(&[], Some("Basic abc")), Ok(None));
    }

    #[test]
    fn an_rfc5849_signature_over_query_and_oauth_parameters_is_accepted() {
        let fields = [
            ("oauth_consumer_key", "ck_1"),
            ("oauth_nonce", "n1"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1700000000"),
            ("oauth_version", "1.0"),
            ("per_page", "2"),
            ("search", "a b/c~"),
        ];
        let url = "http://shop.example/wp-json/wc/v3/products";
        let signature = sign("GET", url, &fields, "cs_1");
        let mut params: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.insert("oauth_signature".into(), signature);
        let check = |secret: &str, params: &BTreeMap<String, String>| {
            check_signature(
                "get",
                "http://shop.example",
                "/wp-json/wc/v3/products",
                params,
                secret,
            )
        };
        assert_eq!(check("cs_1", &params), Ok(()));
        assert_eq!(
            check("cs_2", &params).unwrap_err().message,
            "Invalid signature - provided signature does not match."
        );
        params.insert("oauth_signature_method".into(), "PLAINTEXT".into());
        assert_eq!(
            check("cs_1", &params).unwrap_err().message,
            "Invalid signature - signature method is invalid."
        );
    }

    #[test]
    fn stale_timestamps_and_replayed_nonces_are_refused() {
        let mut used = BTreeMap::new();
        let now = 1_700_000_000;
        assert_eq!(
            check_timestamp_and_nonce(&mut used, "1699999000", "a", now)
                .unwrap_err()
                .message,
            "Invalid timestamp."
        );
        assert_eq!(
            check_timestamp_and_nonce(&mut used, "soon", "a", now)
                .unwrap_err()
                .message,
            "Invalid timestamp."
        );
        assert_eq!(
            check_timestamp_and_nonce(&mut used, "1700000000", "a", now),
            Ok(())
        );
        assert_eq!(
            check_timestamp_and_nonce(&mut used, "1700000001", "a", now)
                .unwrap_err()
                .message,
            "Invalid nonce - nonce has already been used."
        );
        assert_eq!(
            check_timestamp_and_nonce(&mut used, "1700000001", "b", now),
            Ok(())
        );
    }
}
