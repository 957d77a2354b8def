//! `taskledger dlq list|show|replay`: the dead-letter topics for operators.
//! A message a consumer could not process sits in `<topic>.dlq` with its
//! original key, value and headers plus `dlq-*` headers saying why, where it
//! came from (topic, partition, offset), which consumer group and when.
//! `replay` puts one back on its source topic after a fix; the projections
//! recognise anything they already applied, so a replay is idempotent.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use infra::kafka::{dead_letter_topic, topic_watermarks, KafkaSettings};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

/// Every message of `dlq` (one partition), oldest first.
async fn read_all(kafka: &KafkaSettings, dlq: &str) -> anyhow::Result<Vec<OwnedMessage>> {
    let consumer = kafka.consumer("taskledger-dlq-tool")?;
    let (topic, client) = (dlq.to_owned(), kafka.clone());
    let watermarks = tokio::task::spawn_blocking(move || {
        let consumer = client.consumer("taskledger-dlq-tool")?;
        topic_watermarks(consumer.client(), &topic, Duration::from_secs(5))
    })
    .await??
    .with_context(|| format!("the broker has no topic {dlq}"))?;
    let mut assignment = TopicPartitionList::new();
    let mut wanted = 0;
    for (partition, (low, high)) in (0..).zip(&watermarks) {
        assignment.add_partition_offset(dlq, partition, Offset::Offset(*low))?;
        wanted += high - low;
    }
    consumer.assign(&assignment)?;
    let mut messages = Vec::with_capacity(wanted as usize);
    while (messages.len() as i64) < wanted {
        let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .context("the broker did not hand out the dead letters within 10 s")??;
        messages.push(message.detach());
    }
    messages.sort_by_key(|m| (m.partition(), m.offset()));
    Ok(messages)
}

fn header<'m>(message: &'m OwnedMessage, key: &str) -> Option<&'m str> {
    message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    })
}

fn text(bytes: Option<&[u8]>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// `dlq list`: one line per dead letter.
pub async fn list(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<()> {
    let dlq = dead_letter_topic(topic);
    let messages = read_all(kafka, &dlq).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} dead letters in {dlq}", messages.len())?;
    writeln!(
        out,
        "{:>6}  {:<25}  {:<14}  {:<10}  {:<38}  reason",
        "offset", "failed at", "projection", "source", "key"
    )?;
    for message in &messages {
        let mut reason = header(message, "dlq-reason").unwrap_or("-").to_owned();
        if reason.chars().count() > 80 {
            reason = reason.chars().take(79).collect::<String>() + "…";
        }
        writeln!(
            out,
            "{:>6}  {:<25}  {:<14}  {:<10}  {:<38}  {reason}",
            message.offset(),
            header(message, "dlq-failed-at").unwrap_or("-"),
            header(message, "dlq-projection").unwrap_or("-"),
            format!(
                "{}@{}",
                header(message, "dlq-source-partition").unwrap_or("?"),
                header(message, "dlq-source-offset").unwrap_or("?")
            ),
            text(message.key()),
        )?;
    }
    Ok(())
}

async fn find(kafka: &KafkaSettings, dlq: &str, offset: i64) -> anyhow::Result<OwnedMessage> {
    read_all(kafka, dlq)
        .await?
        .into_iter()
        .find(|m| m.offset() == offset)
        .with_context(|| format!("{dlq} holds no message at offset {offset}"))
}

/// `dlq show`: one dead letter whole: its headers, key and value.
pub async fn show(kafka: &KafkaSettings, topic: &str, offset: i64) -> anyhow::Result<()> {
    let dlq = dead_letter_topic(topic);
    let message = find(kafka, &dlq, offset).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{dlq} offset {offset}")?;
    if let Some(headers) = message.headers() {
        for h in headers.iter() {
            writeln!(out, "  {}: {}", h.key, text(h.value))?;
        }
    }
    writeln!(out, "key: {}", text(message.key()))?;
    writeln!(out, "value: {}", text(message.payload()))?;
    Ok(())
}

/// `dlq replay`: the dead letter back on its source topic, with its key,
/// value and original headers.
pub async fn replay(kafka: &KafkaSettings, topic: &str, offset: i64) -> anyhow::Result<()> {
    let dlq = dead_letter_topic(topic);
    let message = find(kafka, &dlq, offset).await?;
    if header(&message, "dlq-truncated-from-bytes").is_some() {
        bail!("that dead letter was cut short (too large for {dlq}); it cannot be replayed");
    }
    let source = header(&message, "dlq-source-topic")
        .unwrap_or(topic)
        .to_owned();
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for h in original.iter().filter(|h| !h.key.starts_with("dlq-")) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&source).headers(headers);
    let key = text(message.key());
    if message.key().is_some() {
        record = record.key(key.as_str());
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    kafka.producer()?.send_all(vec![record]).await?;
    println!("replayed {dlq} offset {offset} to {source} (key {key})");
    Ok(())
}
