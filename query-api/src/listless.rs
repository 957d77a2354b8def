//! Users this process knows to belong to no shared list: a read of their
//! tasks needs no look-up of their memberships, so their first page is one
//! statement instead of two (docs/adr/0016).
//!
//! What is kept can only be too little, never too much. A user kept here
//! reads their Inbox alone; a user with a list is never kept, so a member's
//! removal is seen from the moment it commits, as before. Every list change
//! this process hears of (`taskledger_lists`, heard by `LiveHub`) forgets
//! every user kept, and a look-up that raced with a change keeps nothing; a
//! list just joined shows once the change is heard here (milliseconds), and
//! at once for a caller whose own writes the request waits for, who is
//! looked up afresh. While the channel is not heard (before it is, or after
//! its connection went), nothing is kept, and no one is kept longer than
//! [`KEPT_FOR`] (a connection that hangs without failing hears nothing).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most users kept; past it, every one is forgotten and kept again as
/// they read (about 60 bytes each: at most about 3 MB).
pub const MAX_KEPT: usize = 50_000;

/// How long a user is kept before being looked up again.
pub const KEPT_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct ListlessUsers(Mutex<Kept>);

#[derive(Debug, Default)]
struct Kept {
    /// Each user kept, with when they were found in no list.
    users: HashMap<String, Instant>,
    /// Moves on with every change heard and every loss of the channel: a
    /// look-up begun before a move keeps nothing.
    generation: u64,
    /// The channel is heard.
    hearing: bool,
}

/// Where a look-up of a user's memberships began, to keep its answer by.
#[derive(Debug, Clone, Copy)]
pub struct LookUp(Option<u64>);

impl ListlessUsers {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding this lock leaves a set of names: still a set.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user` is known to belong to no shared list.
    pub fn knows(&self, user: &str) -> bool {
        let kept = self.kept();
        kept.hearing
            && kept
                .users
                .get(user)
                .is_some_and(|found| found.elapsed() < KEPT_FOR)
    }

    /// Before looking a user's memberships up.
    pub fn look_up(&self) -> LookUp {
        let kept = self.kept();
        LookUp(kept.hearing.then_some(kept.generation))
    }

    /// `user` was found in no shared list by a look-up begun at `began`:
    /// kept, unless a change was heard (or the channel lost) since.
    pub fn found_listless(&self, user: &str, began: LookUp) {
        let mut kept = self.kept();
        if !kept.hearing || began.0 != Some(kept.generation) {
            return;
        }
        if kept.users.len() >= MAX_KEPT {
            kept.users.clear();
        }
        kept.users.insert(user.to_owned(), Instant::now());
    }

    /// A list changed: whoever it is about may now belong to it.
    pub fn list_changed(&self) {
        let mut kept = self.kept();
        kept.users.clear();
        kept.generation += 1;
    }

    /// The channel is heard from now on.
    pub fn hearing(&self) {
        let mut kept = self.kept();
        kept.users.clear();
        kept.generation += 1;
        kept.hearing = true;
    }

    /// The channel's connection went: changes may pass unheard.
    pub fn deaf(&self) {
        let mut kept = self.kept();
        kept.users.clear();
        kept.generation += 1;
        kept.hearing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hearing() -> ListlessUsers {
        let listless = ListlessUsers::default();
        listless.hearing();
        listless
    }

    #[test]
    fn nothing_is_kept_while_the_channel_is_not_heard() {
        let listless = ListlessUsers::default();
        let began = listless.look_up();
        listless.found_listless("ada", began);
        assert!(!listless.knows("ada"));
        listless.hearing();
        let began = listless.look_up();
        listless.found_listless("ada", began);
        assert!(listless.knows("ada"));
        listless.deaf();
        assert!(!listless.knows("ada"));
    }

    #[test]
    fn a_look_up_that_raced_with_a_change_keeps_nothing() {
        let listless = hearing();
        let began = listless.look_up();
        listless.list_changed();
        listless.found_listless("ada", began);
        assert!(!listless.knows("ada"));
    }

    #[test]
    fn a_change_forgets_everyone_kept() {
        let listless = hearing();
        for user in ["ada", "bob"] {
            let began = listless.look_up();
            listless.found_listless(user, began);
        }
        assert!(listless.knows("ada") && listless.knows("bob"));
        listless.list_changed();
        assert!(!listless.knows("ada") && !listless.knows("bob"));
    }

    #[test]
    fn no_one_is_kept_longer_than_the_bound() {
        let listless = hearing();
        let began = listless.look_up();
        listless.found_listless("ada", began);
        assert!(listless.knows("ada"));
        let long_ago = Instant::now()
            .checked_sub(KEPT_FOR + Duration::from_millis(1))
            .expect("the clock started long ago");
        listless.kept().users.insert("ada".to_owned(), long_ago);
        assert!(!listless.knows("ada"));
    }

    #[test]
    fn past_the_bound_everyone_is_forgotten() {
        let listless = hearing();
        for n in 0..=MAX_KEPT {
            let began = listless.look_up();
            listless.found_listless(&format!("user-{n}"), began);
        }
        assert!(!listless.knows("user-0"));
        assert!(listless.knows(&format!("user-{MAX_KEPT}")));
    }
}
