//! Session consistency's bookkeeping at the doors: which callers wrote
//! recently (in this process), the token a write answers so that a caller's
//! next request can say so to another process, and the request's own view of
//! both. The wait itself, against the read models, is the query side's
//! (`query_api::consistency`); see docs/adr/0010.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ApiError;

/// The HTTP header a write answers with its token, and a read may carry it
/// in (any door: `POST /graphql`, `/mcp`, the calendar feed).
pub const HEADER: &str = "taskledger-consistency";

/// How long after a write the caller's reads still check that it is applied.
/// Far longer than any wait (`TASKLEDGER_READ_YOUR_WRITES_WAIT_MS`): a read
/// model further behind than this is an outage, not a lag.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How many callers one process remembers; the oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 100_000;

/// A caller's "I wrote at this moment", as `c1.<milliseconds since the Unix
/// epoch>`. It names no task and no user: it only asks the read that carries
/// it to check that the caller's own writes are applied, which costs that
/// caller at most one bounded wait. Tokens from the future are read as now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsistencyToken {
    written_at_ms: u64,
}

impl ConsistencyToken {
    const PREFIX: &'static str = "c1.";

    pub fn now() -> Self {
        Self {
            written_at_ms: unix_ms(SystemTime::now()),
        }
    }

    /// Reads a token a client sent; a clear refusal naming `field` otherwise.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::invalid(
                field,
                "is not a consistency token: pass back the value a write answered (c1.<digits>)",
            )
        };
        let digits = text.trim().strip_prefix(Self::PREFIX).ok_or_else(refused)?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        let written_at_ms: u64 = digits.parse().map_err(|_| refused())?;
        Ok(Self {
            written_at_ms: written_at_ms.min(unix_ms(SystemTime::now())),
        })
    }

    /// Whether a read carrying this token still checks: written within [`WINDOW`].
    pub fn is_recent(self) -> bool {
        unix_ms(SystemTime::now()).saturating_sub(self.written_at_ms) < WINDOW.as_millis() as u64
    }
}

impl std::fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.written_at_ms)
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The callers of this process that wrote within [`WINDOW`] and whose
/// writes no read has yet seen applied. Bounded: at [`MAX_REMEMBERED`] the
/// oldest half is forgotten (those callers' reads then stop waiting for
/// writes that are, by then, almost surely applied).
#[derive(Debug, Default)]
pub struct RecentWrites {
    by_user: Mutex<HashMap<String, ConsistencyToken>>,
}

impl RecentWrites {
    /// Notes that `user` wrote now; the token to answer with.
    pub fn wrote(&self, user: &str) -> ConsistencyToken {
        let token = ConsistencyToken::now();
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        if by_user.len() >= MAX_REMEMBERED && !by_user.contains_key(user) {
            by_user.retain(|_, written| written.is_recent());
            if by_user.len() >= MAX_REMEMBERED {
                let mut ages: Vec<_> = by_user.values().copied().collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                by_user.retain(|_, written| *written > cutoff);
            }
        }
        by_user.insert(user.to_owned(), token);
        token
    }

    /// When `user` last wrote, if within [`WINDOW`] and not yet seen applied.
    pub fn pending(&self, user: &str) -> Option<ConsistencyToken> {
        let by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        by_user.get(user).copied().filter(|t| t.is_recent())
    }

    /// `user`'s writes before `as_of` are applied: forgets them, unless the
    /// caller wrote again since (or in the same millisecond, which may have
    /// committed after the read counted).
    pub fn applied(&self, user: &str, as_of: ConsistencyToken) {
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        if by_user.get(user).is_some_and(|written| *written < as_of) {
            by_user.remove(user);
        }
    }

    pub fn len(&self) -> usize {
        self.by_user.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One request's part in session consistency, put in its GraphQL data by
/// the door: the process's memory of recent writers, the token the client
/// sent (if any), and whether this request wrote.
#[derive(Debug, Clone)]
pub struct Session {
    recent: Arc<RecentWrites>,
    carried: Option<ConsistencyToken>,
    /// Check the read models even without a token or a remembered write (the
    /// stateless MCP endpoint, whose agents send no token: one indexed lookup).
    always_check: bool,
    wrote: Arc<AtomicBool>,
}

impl Session {
    pub fn new(recent: Arc<RecentWrites>, carried: Option<ConsistencyToken>) -> Self {
        Self {
            recent,
            carried,
            always_check: false,
            wrote: Arc::default(),
        }
    }

    /// A session whose reads always check (see [`Session::always_check`]).
    pub fn checking_always(mut self) -> Self {
        self.always_check = true;
        self
    }

    /// A command of `user`'s committed in this request.
    pub fn wrote(&self, user: &str) {
        self.recent.wrote(user);
        self.wrote.store(true, Ordering::Release);
    }

    /// The token this request's writes answer with, if it wrote.
    pub fn token(&self, user: &str) -> Option<ConsistencyToken> {
        if !self.wrote.load(Ordering::Acquire) {
            return None;
        }
        Some(
            self.recent
                .pending(user)
                .unwrap_or_else(ConsistencyToken::now),
        )
    }

    /// Whether a read of `user`'s must first check that their writes are
    /// applied: a recent write remembered here or carried by the token.
    pub fn must_check(&self, user: &str) -> bool {
        self.always_check
            || self.carried.is_some_and(ConsistencyToken::is_recent)
            || self.recent.pending(user).is_some()
    }

    /// The read found every write of `user`'s applied, as of when it began.
    pub fn applied(&self, user: &str, as_of: ConsistencyToken) {
        self.recent.applied(user, as_of);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_written() {
        let token = ConsistencyToken::now();
        let text = token.to_string();
        assert!(text.starts_with("c1."));
        assert_eq!(ConsistencyToken::parse("token", &text).unwrap(), token);
        assert!(token.is_recent());
    }

    #[test]
    fn malformed_tokens_are_refused_by_name() {
        for bad in [
            "",
            "c1.",
            "c2.123",
            "c1.12a",
            "c1.-5",
            "c1.1234567890123456",
            "123",
        ] {
            let error = ConsistencyToken::parse("taskledger-consistency", bad).unwrap_err();
            assert_eq!(error.code().as_str(), "VALIDATION", "{bad:?}");
        }
    }

    #[test]
    fn old_tokens_ask_nothing_and_future_ones_read_as_now() {
        let old = ConsistencyToken::parse("t", "c1.1000").unwrap();
        assert!(!old.is_recent());
        let future = ConsistencyToken::parse("t", "c1.999999999999999").unwrap();
        assert!(future.is_recent());
        assert!(future <= ConsistencyToken::now());
    }

    #[test]
    fn a_writer_is_pending_until_a_read_sees_it_applied() {
        let recent = Arc::new(RecentWrites::default());
        let session = Session::new(recent.clone(), None);
        assert!(!session.must_check("ada"));
        assert_eq!(session.token("ada"), None);
        session.wrote("ada");
        assert!(session.must_check("ada"));
        assert!(
            !session.must_check("bob"),
            "one user's write is not another's"
        );
        let written = session.token("ada").unwrap();
        session.applied("ada", written);
        assert!(
            session.must_check("ada"),
            "a read begun in the write's millisecond proves nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        session.applied("ada", ConsistencyToken::now());
        assert!(!session.must_check("ada"));
    }

    #[test]
    fn a_write_after_the_read_began_stays_pending() {
        let recent = RecentWrites::default();
        let before = ConsistencyToken::parse("t", "c1.1").unwrap();
        recent.wrote("ada");
        recent.applied("ada", before);
        assert!(recent.pending("ada").is_some());
    }

    #[test]
    fn a_carried_token_makes_another_process_check() {
        let elsewhere = Session::new(Arc::default(), Some(ConsistencyToken::now()));
        assert!(elsewhere.must_check("ada"));
        let stale = Session::new(Arc::default(), ConsistencyToken::parse("t", "c1.5").ok());
        assert!(!stale.must_check("ada"));
        assert!(Session::new(Arc::default(), None)
            .checking_always()
            .must_check("ada"));
    }

    #[test]
    fn memory_is_bounded() {
        let recent = RecentWrites::default();
        for n in 0..MAX_REMEMBERED + 10 {
            recent.wrote(&format!("user-{n}"));
        }
        assert!(recent.len() <= MAX_REMEMBERED);
        assert!(recent
            .pending(&format!("user-{}", MAX_REMEMBERED + 9))
            .is_some());
    }
}
