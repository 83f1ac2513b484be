//! WooCommerce's key-generation flow (§B.6): the merchant is sent to
//! `{store}/wc-auth/v1/authorize`, approves, and WooCommerce POSTs the new keys to our
//! `callback_url` (which must be HTTPS and answer exactly 200, or the key is deleted), then
//! sends the merchant back to `return_url?success=1&user_id=…`.

use serde::{Deserialize, Deserializer};

use super::Credentials;

/// The permission asked for; WooCommerce accepts exactly these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    Read,
    Write,
    ReadWrite,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Write => "write",
            KeyScope::ReadWrite => "read_write",
        }
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, so every value
/// survives WooCommerce's URL-decoding as sent.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The address to send the merchant to. `user_id` is our own reference for the store
/// connection (WooCommerce echoes it back; it is not a WooCommerce user id). All five
/// parameters are mandatory and `callback_url` must be HTTPS for a real store.
pub fn authorize_url(
    store_url: &str,
    app_name: &str,
    scope: KeyScope,
    user_id: &str,
    return_url: &str,
    callback_url: &str,
) -> String {
    format!(
        "{}/wc-auth/v1/authorize?app_name={}&scope={}&user_id={}&return_url={}&callback_url={}",
        store_url.trim().trim_end_matches('/'),
        encode(app_name),
        scope.as_str(),
        encode(user_id),
        encode(return_url),
        encode(callback_url),
    )
}

/// What WooCommerce POSTs to `callback_url` (`application/json;charset=UTF-8`). Its Debug
/// output hides the keys, so logging the callback cannot leak them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct AuthorizeCallback {
    pub key_id: i64,
    /// Echoed from the request. The docs show a number; WooCommerce sends the request's
    /// string, so both are accepted.
    #[serde(deserialize_with = "string_or_number")]
    pub user_id: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    /// `read`, `write` or `read_write`.
    pub key_permissions: String,
}

impl std::fmt::Debug for AuthorizeCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeCallback")
            .field("key_id", &self.key_id)
            .field("user_id", &self.user_id)
            .field("key_permissions", &self.key_permissions)
            .finish_non_exhaustive()
    }
}

impl AuthorizeCallback {
    /// The keys, in the form stores' credentials are kept.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            consumer_key: self.consumer_key.clone(),
            consumer_secret: self.consumer_secret.clone(),
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "user_id must be a string or a number, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_authorize_url_with_encoded_values() {
        let url = authorize_url(
            "https://shop.example/",
            "Ultimate Optimizer",
            KeyScope::ReadWrite,
            "store 42",
            "https://app.example/woo/return?x=1",
            "https://app.example/woo/callback",
        );
        assert_eq!(
            url,
            "https://shop.example/wc-auth/v1/authorize?app_name=Ultimate%20Optimizer&scope=read_write\
             &user_id=store%2042&return_url=https%3A%2F%2Fapp.example%2Fwoo%2Freturn%3Fx%3D1\
             &callback_url=https%3A%2F%2Fapp.example%2Fwoo%2Fcallback"
        );
    }

    #[test]
    fn accepts_user_id_as_string_or_number_and_hides_keys() {
        for user_id in [r#""123""#, "123"] {
            let body = format!(
                r#"{{"key_id":1,"user_id":{user_id},"consumer_key":"ck_a","consumer_secret":"cs_b","key_permissions":"read"}}"#
            );
            let callback: AuthorizeCallback = serde_json::from_str(&body).unwrap();
            assert_eq!(callback.user_id, "123");
            let shown = format!("{callback:?}");
            assert!(!shown.contains("ck_a") && !shown.contains("cs_b"));
        }
    }
}
