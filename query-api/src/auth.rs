//! Bearer tokens: HS256 JWTs whose `sub` is the user id. Verification is the
//! only way a user id enters the system (DESIGN invariant 7).

use std::fmt;

use chrono::{Duration, Utc};
use domain::values::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The signing secret. Never printed.
#[derive(Clone)]
pub struct JwtSecret(String);

impl JwtSecret {
    /// The fixed secret of local mode; never accepted outside it.
    pub const LOCAL_DEVELOPMENT: &'static str = "taskledger-local-development-secret";

    pub fn new(secret: String) -> Result<Self, &'static str> {
        if secret.len() < 32 {
            return Err("the JWT secret must be at least 32 bytes");
        }
        Ok(Self(secret))
    }

    pub fn local_development() -> Self {
        Self(Self::LOCAL_DEVELOPMENT.to_owned())
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// `sub` and `exp` are required; `iat` and `nbf` are optional, and a token
/// whose `nbf` lies ahead is not valid yet.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// Why a token was refused; each becomes `UNAUTHENTICATED` with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Expired,
    NotYetValid,
    BadSignature,
    BadSubject,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the bearer token is malformed",
            Self::Expired => "the bearer token has expired",
            Self::NotYetValid => "the bearer token is not valid yet (nbf)",
            Self::BadSignature => "the bearer token's signature is not valid",
            Self::BadSubject => "the bearer token's subject is not a valid user id",
        }
    }
}

#[derive(Clone)]
pub struct TokenVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &JwtSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            decoding: DecodingKey::from_secret(secret.0.as_bytes()),
            encoding: EncodingKey::from_secret(secret.0.as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    _ => TokenError::Malformed,
                }
            })?;
        UserId::parse(&data.claims.sub).map_err(|_| TokenError::BadSubject)
    }

    /// A token for `user` valid for `ttl`; how `taskledger token` and tests get one.
    pub fn issue(&self, user: &UserId, ttl: Duration) -> String {
        let now = Utc::now();
        let claims = Claims {
            sub: user.to_string(),
            iat: Some(now.timestamp()),
            nbf: None,
            exp: (now + ttl).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(&JwtSecret::local_development())
    }

    #[test]
    fn accepts_its_own_tokens() {
        let alice = UserId::parse("alice").unwrap();
        let token = verifier().issue(&alice, Duration::minutes(5));
        assert_eq!(verifier().verify(&token), Ok(alice));
    }

    #[test]
    fn refuses_expired_foreign_and_garbage_tokens() {
        let alice = UserId::parse("alice").unwrap();
        let expired = verifier().issue(&alice, Duration::minutes(-10));
        assert_eq!(verifier().verify(&expired), Err(TokenError::Expired));

        let other = TokenVerifier::new(&JwtSecret::new("x".repeat(40)).unwrap());
        let foreign = other.issue(&alice, Duration::minutes(5));
        assert_eq!(verifier().verify(&foreign), Err(TokenError::BadSignature));

        assert_eq!(verifier().verify("not.a.jwt"), Err(TokenError::Malformed));
    }

    fn sign(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(JwtSecret::LOCAL_DEVELOPMENT.as_bytes());
        encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    #[test]
    fn sub_and_exp_suffice_and_nbf_is_honoured() {
        let in_an_hour = (Utc::now() + Duration::hours(1)).timestamp();
        let minimal = sign(serde_json::json!({ "sub": "alice", "exp": in_an_hour }));
        assert_eq!(
            verifier().verify(&minimal),
            Ok(UserId::parse("alice").unwrap())
        );

        let later =
            sign(serde_json::json!({ "sub": "alice", "exp": in_an_hour, "nbf": in_an_hour - 60 }));
        assert_eq!(verifier().verify(&later), Err(TokenError::NotYetValid));

        let no_expiry = sign(serde_json::json!({ "sub": "alice" }));
        assert_eq!(verifier().verify(&no_expiry), Err(TokenError::Malformed));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtSecret::new("short".into()).is_err());
    }
}
