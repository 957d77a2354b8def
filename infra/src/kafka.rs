//! Kafka client settings shared by every role: the idempotent producer, consumers
//! tuned for low latency, and topic creation (and growth: `partitions`).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

mod drop_off;
mod partitions;
pub use drop_off::{wait_for_dropped_clients, DropOffThread};
pub use partitions::{
    being_replaced, replacement_done, topic_partition_count, wait_while_replaced, Grown,
    REPLACEMENT_NOTICE,
};

/// Every role's producer: idempotent, watched for a lost broker.
pub struct Producer {
    producer: FutureProducer<BrokerWatch>,
    watch: BrokerWatch,
}

impl Producer {
    /// Whether every broker connection went down since this producer started.
    pub fn broker_lost(&self) -> bool {
        self.watch.broker_lost()
    }

    /// Sends every record, in order, and waits until the broker acknowledged
    /// them all. A refused message or a broker gone away fails the whole
    /// call, and the caller sends again whatever it had not recorded as sent.
    pub async fn send_all<'a>(
        &self,
        records: Vec<FutureRecord<'a, str, [u8]>>,
    ) -> anyhow::Result<()> {
        let mut batch = self.batch();
        for record in records {
            batch.send(record).await?;
        }
        batch.acknowledged().await
    }

    /// A batch of sends whose acknowledgements are awaited together, for a
    /// caller that sends each record at its own moment.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            producer: self,
            deliveries: Vec::new(),
        }
    }

    /// Waits until the broker acknowledged every delivery, or fails: a refused
    /// message, or a broker gone away (the producer must not live to see the
    /// topic again: [`BrokerWatch`]).
    async fn acknowledged(&self, deliveries: Vec<DeliveryFuture>) -> anyhow::Result<()> {
        let outcomes = async {
            futures::future::try_join_all(deliveries)
                .await
                .context("producer dropped a delivery")
        };
        let lost = async {
            while !self.broker_lost() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let outcomes = tokio::select! {
            outcomes = outcomes => outcomes?,
            () = lost => anyhow::bail!("lost every broker connection while publishing"),
        };
        for outcome in outcomes {
            outcome
                .map_err(|(error, _)| error)
                .context("broker refused a message")?;
        }
        Ok(())
    }
}

/// Records sent through one [`Producer`], acknowledged together.
pub struct Batch<'p> {
    producer: &'p Producer,
    deliveries: Vec<DeliveryFuture>,
}

impl Batch<'_> {
    /// Enqueues `record` without waiting for the broker. The producer's queue
    /// is bounded (16 MiB): when full, this waits for what is in flight.
    pub async fn send(&mut self, mut record: FutureRecord<'_, str, [u8]>) -> anyhow::Result<()> {
        loop {
            match self.producer.producer.send_result(record) {
                Ok(delivery) => {
                    self.deliveries.push(delivery);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if !self.deliveries.is_empty() =>
                {
                    self.producer
                        .acknowledged(std::mem::take(&mut self.deliveries))
                        .await?;
                    record = back;
                }
                Err((error, _)) => return Err(error).context("enqueueing a message"),
            }
        }
    }

    /// Waits until the broker acknowledged everything sent.
    pub async fn acknowledged(self) -> anyhow::Result<()> {
        self.producer.acknowledged(self.deliveries).await
    }
}

impl std::ops::Deref for Producer {
    type Target = FutureProducer<BrokerWatch>;

    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}
/// Every role's consumer, watched for a lost broker.
pub type KafkaConsumer = StreamConsumer<BrokerWatch>;

/// A client's context that remembers when it lost every broker, and says in
/// words an operator can act on why a broker would not talk to it. librdkafka
/// 2.x crashes in its metadata cache when a topic it knows comes back with a
/// new topic id (a broker that restarted empty; confluentinc/librdkafka#4964,
/// #5280), so a role whose client lost the broker replaces the client rather
/// than let it see the topic again.
#[derive(Clone, Default)]
pub struct BrokerWatch {
    lost: Arc<AtomicBool>,
    /// Whether the client speaks TLS: a connection the broker resets before
    /// answering means something else to a plaintext client.
    tls: bool,
    refused: Arc<std::sync::Mutex<Option<(BrokerRefusal, std::time::Instant)>>>,
}

/// Why a broker refuses a client, by the setting that would fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRefusal {
    /// The SASL login failed: a wrong user or password.
    Credentials,
    /// The broker does not offer the SASL mechanism asked for.
    Mechanism,
    /// The TLS handshake failed: usually a CA that did not sign the
    /// broker's certificate.
    Tls,
    /// The broker closed a plaintext connection before answering: it wants
    /// TLS.
    Plaintext,
}

impl BrokerRefusal {
    /// Reads librdkafka's error or log text.
    pub fn classify(text: &str, tls: bool) -> Option<Self> {
        let text = text.to_ascii_lowercase();
        if text.contains("mechanism handshake failed")
            || text.contains("unsupported sasl mechanism")
        {
            Some(Self::Mechanism)
        } else if text.contains("sasl authentication error")
            || text.contains("sasl scram authentication failed")
            || text.contains("authentication failed")
        {
            Some(Self::Credentials)
        } else if text.contains("ssl handshake failed")
            || text.contains("certificate verify failed")
            || text.contains("ssl connection closed")
        {
            Some(Self::Tls)
        } else if !tls
            && text.contains("disconnected")
            && (text.contains("state apiversion_query") || text.contains("connection reset"))
        {
            Some(Self::Plaintext)
        } else {
            None
        }
    }

    /// What to check, naming the settings.
    pub fn advice(self) -> &'static str {
        match self {
            Self::Credentials => "the broker refused the SASL login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (and KAFKA_SASL_MECHANISM)",
            Self::Mechanism => "the broker does not offer the SASL mechanism asked for: check KAFKA_SASL_MECHANISM (SCRAM-SHA-256 or SCRAM-SHA-512)",
            Self::Tls => "the TLS handshake with the broker failed: check KAFKA_SSL_CA_LOCATION (the CA that signed the broker's certificate) and KAFKA_BROKERS",
            Self::Plaintext => "the broker closed the connection before answering: if it wants TLS, set KAFKA_SECURITY_PROTOCOL to sasl_ssl (or ssl)",
        }
    }
}

/// How often one client repeats the same refusal in the log.
const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl BrokerWatch {
    fn new(security: &KafkaSecurity) -> Self {
        let protocol = security.protocol.as_deref().unwrap_or("plaintext");
        Self {
            tls: protocol.eq_ignore_ascii_case("ssl") || protocol.eq_ignore_ascii_case("sasl_ssl"),
            ..Self::default()
        }
    }

    /// Whether every broker connection went down since this client started
    /// (or since [`BrokerWatch::forget`]).
    pub fn broker_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Starts watching afresh: for a client that has not yet seen any topic.
    pub fn forget(&self) {
        self.lost.store(false, Ordering::Relaxed);
    }

    /// The last reason the broker refused this client, if it did.
    pub fn refusal(&self) -> Option<BrokerRefusal> {
        self.refused
            .lock()
            .ok()
            .and_then(|refused| refused.map(|(refusal, _)| refusal))
    }

    /// Records `refusal`; whether it is news worth a log line (a new reason,
    /// or the same one after a while).
    fn record(&self, refusal: BrokerRefusal) -> bool {
        let Ok(mut refused) = self.refused.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        let news = !matches!(*refused, Some((last, at)) if last == refusal && now.duration_since(at) < REFUSAL_LOG_EVERY);
        if news {
            *refused = Some((refusal, now));
        }
        news
    }
}

impl BrokerWatch {
    /// Says once in a while, naming the setting to check, why the broker
    /// refuses this client; `false` if `text` is no such refusal.
    fn explain(&self, text: &str) -> bool {
        let Some(refusal) = BrokerRefusal::classify(text, self.tls) else {
            return false;
        };
        if self.record(refusal) {
            tracing::error!(target: "librdkafka", detail = text, "{}", refusal.advice());
        }
        true
    }
}

impl ClientContext for BrokerWatch {
    /// librdkafka's log lines arrive here from its own threads, whoever polls
    /// the client: the only way an admin client's refusals are heard.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        // A refused connection is logged at info ("Disconnected …"): every
        // level is read for the reason, and the lines go on below as before.
        if self.explain(message) {
            return;
        }
        match level {
            Emerg | Alert | Critical | Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            Notice => tracing::info!(target: "librdkafka", facility, "{message}"),
            Info => tracing::debug!(target: "librdkafka", facility, "{message}"),
            Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.lost.store(true, Ordering::Relaxed);
        }
        if !self.explain(reason) {
            tracing::warn!(target: "librdkafka", %error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for BrokerWatch {}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// How long the broker may hold a fetch open. tansu answers a fetch only when
    /// this runs out, so it is the floor of every consumer's latency.
    pub fetch_wait_max_ms: u32,
    /// How long the producer waits to fill a batch.
    pub linger_ms: u32,
    /// TLS and SASL, for a managed Kafka.
    pub security: KafkaSecurity,
}

/// How clients reach a broker that wants TLS and/or SASL (Redpanda Cloud,
/// Confluent, MSK): librdkafka's `security.protocol`, `sasl.*` and
/// `ssl.ca.location`, set only when given.
#[derive(Clone, Default)]
pub struct KafkaSecurity {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`; librdkafka's default
    /// (plaintext) when unset.
    pub protocol: Option<String>,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512` or `PLAIN`.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    /// A PEM file of the CA that signed the brokers' certificates; the
    /// system's store when unset.
    pub ssl_ca_location: Option<String>,
}

impl std::fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ssl_ca_location", &self.ssl_ca_location)
            .finish()
    }
}

impl KafkaSecurity {
    /// Refuses settings librdkafka would only reject at the first connection.
    pub fn check(&self) -> Result<(), String> {
        const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
        const MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];
        let protocol = self
            .protocol
            .as_deref()
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return Err(format!(
                "KAFKA_SECURITY_PROTOCOL must be one of {}",
                PROTOCOLS.join(", ")
            ));
        }
        let sasl = protocol.starts_with("sasl_");
        match (&self.sasl_mechanism, sasl) {
            (Some(mechanism), true)
                if !MECHANISMS.contains(&mechanism.to_ascii_uppercase().as_str()) =>
            {
                return Err(format!(
                    "KAFKA_SASL_MECHANISM must be one of {}",
                    MECHANISMS.join(", ")
                ))
            }
            (None, true) => return Err("a SASL protocol needs KAFKA_SASL_MECHANISM".into()),
            (Some(_), false) => {
                return Err(
                    "KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL sasl_ssl or sasl_plaintext"
                        .into(),
                )
            }
            _ => {}
        }
        if sasl && (self.sasl_username.is_none() || self.sasl_password.is_none()) {
            return Err("a SASL protocol needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD".into());
        }
        Ok(())
    }

    fn apply(&self, config: &mut ClientConfig) {
        // librdkafka matches mechanism names as written: SCRAM-SHA-256.
        let protocol = self.protocol.as_ref().map(|p| p.to_ascii_lowercase());
        let mechanism = self.sasl_mechanism.as_ref().map(|m| m.to_ascii_uppercase());
        let settings = [
            ("security.protocol", &protocol),
            ("sasl.mechanism", &mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_ca_location),
        ];
        for (key, value) in settings {
            if let Some(value) = value {
                config.set(key, value);
            }
        }
    }
}

impl KafkaSettings {
    pub fn local() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            fetch_wait_max_ms: 10,
            linger_ms: 1,
            security: KafkaSecurity::default(),
        }
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            // Log lines reach `BrokerWatch::log` (rdkafka would
            // take the level from the `log` crate, which nothing here sets).
            .set_log_level(rdkafka::config::RDKafkaLogLevel::Info);
        self.security.apply(&mut config);
        config
    }

    /// An idempotent producer: acks from all replicas, no duplicates or
    /// reordering on the producer's own retries.
    pub fn producer(&self) -> Result<Producer, KafkaError> {
        let watch = BrokerWatch::new(&self.security);
        let producer = self
            .base()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.timeout.ms", "30000")
            // Bounded memory: at most 16 MiB waiting to be sent (librdkafka
            // allows 1 GiB by default); the relay sends batches of 500.
            .set("queue.buffering.max.kbytes", "16384")
            .create_with_context(watch.clone())?;
        Ok(Producer { producer, watch })
    }

    /// A consumer in `group` that never auto-commits offsets and starts a
    /// group new to the topic at its beginning: for readers that subscribe
    /// (analytics, tools, tests).
    pub fn consumer(&self, group: &str) -> Result<KafkaConsumer, KafkaError> {
        self.consumer_config(group, "earliest")
            .create_with_context(BrokerWatch::new(&self.security))
    }

    /// A consumer for a projection, which assigns itself partitions at offsets
    /// it stored: an offset a partition no longer holds is an error the
    /// projection handles, never a silent jump (`auto.offset.reset=error`).
    pub fn assigned_consumer(&self, group: &str) -> Result<KafkaConsumer, KafkaError> {
        self.consumer_config(group, "error")
            .create_with_context(BrokerWatch::new(&self.security))
    }

    fn consumer_config(&self, group: &str, offset_reset: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", offset_reset)
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", "10000")
            // Nothing is produced in Kafka transactions, so committed and
            // uncommitted reads see the same messages; a read_committed
            // watermark is tansu's last stable offset, which lags the
            // messages it has already served by a few.
            .set("isolation.level", "read_uncommitted")
            // Bounded memory: at most 8 MiB prefetched per consumer (librdkafka
            // keeps 64 MiB by default), and no fetch response over 64 MiB; a
            // message of up to 8 MiB is read, and dead-lettered if it must be.
            .set("queued.max.messages.kbytes", "8192")
            .set("fetch.max.bytes", (8 * 1024 * 1024).to_string())
            // A message larger than this could never be fetched (tansu does
            // not hand out a first message beyond the partition's limit).
            .set("max.partition.fetch.bytes", (8 * 1024 * 1024).to_string())
            .set("receive.message.max.bytes", (64 * 1024 * 1024).to_string());
        config
    }

    /// Creates each `(topic, partitions)` that does not exist yet.
    /// Why the broker refuses these settings, if it does: asked with a
    /// client that is polled (an admin client's own refusals reach no one).
    /// Blocking: call it off the async runtime.
    pub fn refusal(&self) -> Option<BrokerRefusal> {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let watch = BrokerWatch::new(&self.security);
        let client: BaseConsumer<BrokerWatch> =
            self.base().create_with_context(watch.clone()).ok()?;
        let _ = client.fetch_metadata(None, Duration::from_secs(5));
        for _ in 0..20 {
            let _ = client.poll(Duration::from_millis(100));
            if watch.refusal().is_some() {
                break;
            }
        }
        watch.refusal()
    }

    pub async fn ensure_topics(&self, topics: &[(&str, i32)]) -> anyhow::Result<()> {
        let watch = BrokerWatch::new(&self.security);
        let admin: AdminClient<BrokerWatch> = self.base().create_with_context(watch.clone())?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        let results = match admin.create_topics(&new_topics, &options).await {
            Ok(results) => results,
            Err(error) => {
                let settings = self.clone();
                let refusal = tokio::task::spawn_blocking(move || settings.refusal())
                    .await
                    .ok()
                    .flatten();
                match refusal {
                    Some(refusal) => anyhow::bail!("{}: {error}", refusal.advice()),
                    None => return Err(error).context("creating the topics"),
                }
            }
        };
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    anyhow::bail!("could not create topic {topic}: {code:?}")
                }
            }
        }
        Ok(())
    }
}

/// Each partition's low and high watermark, in partition order; `None` for a
/// topic the broker does not know. Blocking: call it off the async runtime.
pub fn topic_watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<(i64, i64)>>, KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    (0..found.partitions().len() as i32)
        .map(|partition| client.fetch_watermarks(topic, partition, timeout))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The dead-letter topic for messages of `topic` that cannot be processed.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

#[cfg(test)]
mod tests {
    use super::KafkaSecurity;

    fn security(protocol: &str, mechanism: Option<&str>, user: bool) -> KafkaSecurity {
        KafkaSecurity {
            protocol: Some(protocol.into()),
            sasl_mechanism: mechanism.map(Into::into),
            sasl_username: user.then(|| "app".into()),
            sasl_password: user.then(|| "secret".into()),
            ssl_ca_location: None,
        }
    }

    #[test]
    fn sasl_needs_a_mechanism_and_credentials() {
        assert!(security("sasl_ssl", Some("SCRAM-SHA-512"), true)
            .check()
            .is_ok());
        assert!(security("SSL", None, false).check().is_ok());
        assert!(KafkaSecurity::default().check().is_ok());
        assert!(security("sasl_ssl", None, true).check().is_err());
        assert!(security("sasl_ssl", Some("SCRAM-SHA-512"), false)
            .check()
            .is_err());
        assert!(security("sasl_ssl", Some("GSSAPI"), true).check().is_err());
        assert!(security("ssl", Some("PLAIN"), true).check().is_err());
        assert!(security("tls", None, false).check().is_err());
    }

    #[test]
    fn the_password_never_prints() {
        let printed = format!("{:?}", security("sasl_ssl", Some("PLAIN"), true));
        assert!(!printed.contains("secret"), "{printed}");
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::BrokerRefusal;

    // What librdkafka 2.12 says in each case (seen against the local secured
    // broker; docs/deploy.md, Kafka settings for a managed service).
    #[test]
    fn each_refusal_is_told_apart_by_what_librdkafka_says() {
        let cases = [
            ("sasl_ssl://127.0.0.1:19093/bootstrap: SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof (after 3ms in state AUTH_REQ)", true, Some(BrokerRefusal::Credentials)),
            ("SASL authentication error: SASL SCRAM authentication failed: broker responded with unknown-user (after 50ms in state AUTH_REQ)", true, Some(BrokerRefusal::Credentials)),
            ("SASL PLAIN mechanism handshake failed: Local: Broker transport failure: broker's supported mechanisms: (n/a)", true, Some(BrokerRefusal::Mechanism)),
            ("SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured", true, Some(BrokerRefusal::Tls)),
            ("sasl_plaintext://127.0.0.1:19093/bootstrap: Disconnected: connection closed by peer (after 0ms in state APIVERSION_QUERY)", false, Some(BrokerRefusal::Plaintext)),
            // A broker that went away is not a refusal.
            ("127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)", false, None),
            ("127.0.0.1:9092/1: Disconnected (after 5012ms in state UP)", false, None),
            ("1/1 brokers are down", false, None),
        ];
        for (text, tls, expected) in cases {
            assert_eq!(BrokerRefusal::classify(text, tls), expected, "{text}");
        }
    }

    #[test]
    fn every_advice_names_a_setting() {
        for refusal in [
            BrokerRefusal::Credentials,
            BrokerRefusal::Mechanism,
            BrokerRefusal::Tls,
            BrokerRefusal::Plaintext,
        ] {
            assert!(refusal.advice().contains("KAFKA_"), "{refusal:?}");
        }
    }
}
