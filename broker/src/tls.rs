//! TLS in front of the broker: each connection to the public listener is
//! accepted with the certificate given, and its bytes are copied both ways to
//! the broker's plaintext listener on loopback, so clients see a broker that
//! speaks TLS (SASL then runs inside it, as with a managed Kafka).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use url::Url;

/// A free port on 127.0.0.1 for the broker's own listener.
pub fn loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Accepts TLS on `public` and forwards each connection to `inside`, until
/// the listener fails.
pub async fn terminate(
    public: &Url,
    inside: SocketAddr,
    config: rustls::ServerConfig,
) -> anyhow::Result<()> {
    let address = format!(
        "{}:{}",
        public.host_str().context("the listener URL has no host")?,
        public.port().context("the listener URL has no port")?
    );
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    loop {
        let (client, peer) = listener.accept().await.context("accepting a connection")?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(error) = forward(acceptor, client, inside).await {
                // A client that does not speak TLS, or a handshake it refused
                // (our CA is not the one it trusts), ends here.
                tracing::info!(%peer, error = %format_args!("{error:#}"), "TLS connection closed");
            }
        });
    }
}

async fn forward(
    acceptor: TlsAcceptor,
    client: TcpStream,
    inside: SocketAddr,
) -> anyhow::Result<()> {
    let _ = client.set_nodelay(true);
    let mut tls = acceptor.accept(client).await.context("TLS handshake")?;
    let mut broker = TcpStream::connect(inside)
        .await
        .context("connecting to the broker")?;
    let _ = broker.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut tls, &mut broker)
        .await
        .context("forwarding")?;
    Ok(())
}
