//! Black-box tests of Taskledger on real Postgres and the real broker. Each test
//! gets a fresh database and fresh topics (see `helpers`).

mod analytics;
mod audit;
mod auth;
mod bad_input;
mod broker;
mod browser;
mod calendar;
mod chaos;
mod concurrency;
mod consistency;
mod crash;
mod dapr;
mod dlq;
mod docs_links;
mod fuzz;
mod hardening;
mod helpers;
mod kafka;
mod listing;
mod live;
mod mcp;
mod partitions;
mod readme;
mod rebuild;
mod recurring;
mod relay;
mod reminders;
mod secured;
mod sharing;
mod spine;
mod tracing;
mod upgrade;
mod verify;
mod warm;
mod ws_client;
