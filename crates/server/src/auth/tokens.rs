//! Session tokens. Access tokens are short-lived HS256 JWTs (15 minutes) that name their
//! login (`sid`, the refresh-token family), so signing out, a revoked login or a deleted
//! account ends them at once; refresh tokens and login links are random opaque strings of
//! which only a SHA-256 hash is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(7);
const ISSUER: &str = "ultimate-optimizer";
const ACCESS_TYPE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    acc: String,
    /// The login (refresh-token family) this token was issued for.
    sid: String,
    typ: String,
    iss: String,
    iat: i64,
    exp: i64,
}

/// Who an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessIdentity {
    pub user_id: Uuid,
    pub account_id: Uuid,
    /// The login the token belongs to; the token is good only while that login stands.
    pub session_id: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

/// Issues and verifies access tokens with one symmetric key.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl AccessTokens {
    pub fn new(key: &[u8; 32]) -> Self {
        AccessTokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        }
    }

    pub fn issue(&self, identity: AccessIdentity, now: DateTime<Utc>) -> String {
        let claims = Claims {
            sub: identity.user_id.to_string(),
            acc: identity.account_id.to_string(),
            sid: identity.session_id.to_string(),
            typ: ACCESS_TYPE.into(),
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: (now + ACCESS_TOKEN_TTL).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a small claim set cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<AccessIdentity, AccessTokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // A token without `sid` (issued before tokens named their login) fails to decode
        // and is refused; it would have expired within 15 minutes anyway.
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|err| match err
            .kind()
        {
            ErrorKind::ExpiredSignature => AccessTokenError::Expired,
            _ => AccessTokenError::Invalid,
        })?;
        if data.claims.typ != ACCESS_TYPE {
            return Err(AccessTokenError::Invalid);
        }
        let parse = |text: &str| Uuid::parse_str(text).map_err(|_| AccessTokenError::Invalid);
        Ok(AccessIdentity {
            user_id: parse(&data.claims.sub)?,
            account_id: parse(&data.claims.acc)?,
            session_id: parse(&data.claims.sid)?,
        })
    }
}

/// A new random opaque token (256 bits, URL-safe).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of an opaque token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AccessIdentity {
        AccessIdentity {
            user_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let tokens = AccessTokens::new(&[7; 32]);
        let who = identity();
        let token = tokens.issue(who, Utc::now());
        assert_eq!(tokens.verify(&token).unwrap(), who);
        let old = tokens.issue(who, Utc::now() - Duration::minutes(16));
        assert_eq!(tokens.verify(&old), Err(AccessTokenError::Expired));
    }

    #[test]
    fn other_keys_garbage_and_truncation_are_invalid() {
        let tokens = AccessTokens::new(&[7; 32]);
        let token = tokens.issue(identity(), Utc::now());
        let stranger = AccessTokens::new(&[8; 32]);
        assert_eq!(stranger.verify(&token), Err(AccessTokenError::Invalid));
        assert_eq!(tokens.verify("garbage"), Err(AccessTokenError::Invalid));
        assert_eq!(
            tokens.verify(&token[..token.len() - 3]),
            Err(AccessTokenError::Invalid)
        );
    }

    #[test]
    fn opaque_tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), a);
    }
}
