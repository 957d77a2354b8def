//! One TLS crypto provider for the whole process. rustls refuses to choose
//! when both of its providers are linked (the workspace's broker brings
//! aws-lc-rs beside the ring that sqlx and reqwest use), and a client built
//! then would panic; so every binary, and every test binary, names ring
//! before it makes a TLS client (Postgres over TLS, the Dapr sidecar, OTLP).

/// Installs ring as the process's provider; a no-op when one already is.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
