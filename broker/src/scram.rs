//! SCRAM credentials as RFC 5802 defines them and Kafka stores them: the
//! password salted with PBKDF2 over the mechanism's HMAC, and from it the
//! stored key (the hash of the client key) and the server key. The broker
//! keeps only those, so the password itself is never written anywhere.

use hmac::{Mac, SimpleHmac};
use sha2::digest::core_api::BlockSizeUser;
use sha2::digest::{Digest, KeyInit};
use sha2::{Sha256, Sha512};

/// One of the two mechanisms managed Kafka services offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

/// What the broker keeps of one user's password for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// Iterations of PBKDF2: Kafka's default for new SCRAM credentials.
pub const ITERATIONS: u32 = 4096;

/// The credential of `password` under `mechanism`, salted with `salt`.
pub fn credential(
    mechanism: Mechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Credential {
    let (stored_key, server_key) = match mechanism {
        Mechanism::Sha256 => keys::<Sha256>(password, salt, iterations),
        Mechanism::Sha512 => keys::<Sha512>(password, salt, iterations),
    };
    Credential {
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    }
}

fn keys<D>(password: &[u8], salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>)
where
    D: Digest + BlockSizeUser,
{
    let salted = pbkdf2::<D>(password, salt, iterations);
    let client_key = hmac::<D>(&salted, b"Client Key");
    let server_key = hmac::<D>(&salted, b"Server Key");
    (D::digest(&client_key).to_vec(), server_key)
}

fn hmac<D>(key: &[u8], message: &[u8]) -> Vec<u8>
where
    D: Digest + BlockSizeUser,
{
    let mut mac =
        <SimpleHmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// PBKDF2 (RFC 8018) with one block of output: SCRAM's `Hi()`, whose output
/// is as long as the hash.
fn pbkdf2<D>(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8>
where
    D: Digest + BlockSizeUser,
{
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac::<D>(password, &block);
    let mut result = u.clone();
    for _ in 1..iterations {
        u = hmac::<D>(password, &u);
        for (r, x) in result.iter_mut().zip(&u) {
            *r ^= x;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pbkdf2_matches_the_published_sha256_vectors() {
        // RFC 7914 section 11 and the widely used PBKDF2-HMAC-SHA256 vectors.
        assert_eq!(
            hex(&pbkdf2::<Sha256>(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&pbkdf2::<Sha256>(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn the_keys_follow_rfc_7677s_example() {
        // RFC 7677 section 3: user "user", password "pencil". Its server
        // signature of the example exchange is HMAC(ServerKey, AuthMessage).
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        let credential = credential(Mechanism::Sha256, b"pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
             c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac::<Sha256>(&credential.server_key, auth_message.as_bytes());
        // v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
        assert_eq!(
            hex(&signature),
            "eabae24d1062db75a9451ff0b6ea7e98c8546549ff741e672d3251b2397de46e"
        );
    }

    #[test]
    fn each_mechanism_and_salt_gives_other_keys() {
        let a = credential(Mechanism::Sha256, b"secret", b"salt-a", 16);
        let b = credential(Mechanism::Sha256, b"secret", b"salt-b", 16);
        let c = credential(Mechanism::Sha512, b"secret", b"salt-a", 16);
        assert_ne!(a.stored_key, b.stored_key);
        assert_eq!(a.stored_key.len(), 32);
        assert_eq!(c.stored_key.len(), 64);
        assert_eq!(c.server_key.len(), 64);
    }
}
