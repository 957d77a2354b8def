//! Bearer tokens: HS256 JWTs whose `sub` is the user id. Verification is the
//! only way a user id enters the system (DESIGN invariant 7).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
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

    /// The secret itself, for deriving keys from it (never for printing).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// `sub` and `exp` are required; `iat` and `nbf` are optional, and a token
/// whose `nbf` lies ahead is not valid yet. `aud` and `iss` are required and
/// checked only where the deployment names them.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
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
    WrongAudience,
    WrongIssuer,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the bearer token is malformed",
            Self::Expired => "the bearer token has expired",
            Self::NotYetValid => "the bearer token is not valid yet (nbf)",
            Self::BadSignature => "the bearer token's signature is not valid",
            Self::BadSubject => "the bearer token's subject is not a valid user id",
            Self::WrongAudience => "the bearer token is not meant for this service (aud)",
            Self::WrongIssuer => "the bearer token is not from the expected issuer (iss)",
        }
    }
}

/// The audience and issuer a deployment that shares an identity provider
/// expects in every token; neither is checked when not named.
#[derive(Debug, Clone, Default)]
pub struct TokenScope {
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Clone)]
pub struct TokenVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    scope: TokenScope,
}

impl TokenVerifier {
    pub fn new(secret: &JwtSecret) -> Self {
        Self::scoped(secret, TokenScope::default())
    }

    /// A verifier that also requires `scope`'s audience and issuer.
    pub fn scoped(secret: &JwtSecret, scope: TokenScope) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        validation.validate_aud = scope.audience.is_some();
        if let Some(audience) = &scope.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        if let Some(issuer) = &scope.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            decoding: DecodingKey::from_secret(secret.0.as_bytes()),
            encoding: EncodingKey::from_secret(secret.0.as_bytes()),
            validation,
            scope,
        }
    }

    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        self.verify_until(token).map(|(user, _)| user)
    }

    /// The token's user and the instant it expires: a WebSocket that
    /// authenticated with it is closed then.
    pub fn verify_until(&self, token: &str) -> Result<(UserId, DateTime<Utc>), TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAudience => TokenError::WrongAudience,
                    ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                    ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
                        TokenError::WrongAudience
                    }
                    ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => {
                        TokenError::WrongIssuer
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let user = UserId::parse(&data.claims.sub).map_err(|_| TokenError::BadSubject)?;
        let expires = DateTime::from_timestamp(data.claims.exp, 0).ok_or(TokenError::Malformed)?;
        Ok((user, expires))
    }

    /// A token for `user` valid for `ttl`; how `taskledger token` and tests get one.
    pub fn issue(&self, user: &UserId, ttl: Duration) -> String {
        let now = Utc::now();
        let claims = Claims {
            sub: user.to_string(),
            aud: self.scope.audience.clone(),
            iss: self.scope.issuer.clone(),
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

    #[test]
    fn a_named_audience_and_issuer_are_required_and_checked() {
        let secret = JwtSecret::local_development();
        let scope = |audience: &str, issuer: &str| TokenScope {
            audience: Some(audience.into()),
            issuer: Some(issuer.into()),
        };
        let ours = TokenVerifier::scoped(&secret, scope("taskledger", "https://id.example"));
        let alice = UserId::parse("alice").unwrap();
        let token = ours.issue(&alice, Duration::minutes(5));
        assert_eq!(ours.verify(&token), Ok(alice.clone()));

        let other_service = TokenVerifier::scoped(&secret, scope("billing", "https://id.example"))
            .issue(&alice, Duration::minutes(5));
        assert_eq!(ours.verify(&other_service), Err(TokenError::WrongAudience));
        let other_issuer =
            TokenVerifier::scoped(&secret, scope("taskledger", "https://evil.example"))
                .issue(&alice, Duration::minutes(5));
        assert_eq!(ours.verify(&other_issuer), Err(TokenError::WrongIssuer));
        // Lacking both, it is refused for one of them (which one jsonwebtoken
        // checks first is not fixed).
        let unscoped = TokenVerifier::new(&secret).issue(&alice, Duration::minutes(5));
        assert!(matches!(
            ours.verify(&unscoped),
            Err(TokenError::WrongAudience | TokenError::WrongIssuer)
        ));
        // A deployment that names neither accepts tokens with or without them.
        assert_eq!(TokenVerifier::new(&secret).verify(&token), Ok(alice));
    }

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
