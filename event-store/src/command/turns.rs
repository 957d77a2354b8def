//! One command at a time per task within a process: commands on the same
//! task queue for their turn instead of racing each other to the store and
//! retrying (a task's warm state is then always current for this process's
//! own writers). Tasks share a fixed set of turns by hash, so memory stays
//! bounded whatever the number of tasks; two tasks on one turn only wait for
//! each other. Writers in other processes are still refused by the store's
//! primary key, as before (docs/adr/0011).

use std::hash::{BuildHasher, RandomState};

use tokio::sync::{Mutex, MutexGuard};

/// Turns per process: far more than the commands running at once, so
/// unrelated tasks rarely share one.
pub const TURNS: usize = 1024;

#[derive(Debug)]
pub struct Turns {
    turns: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl Turns {
    pub fn new(count: usize) -> Self {
        Self {
            turns: (0..count.max(1)).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Waits for `task`'s turn; it lasts as long as the guard.
    pub async fn take(&self, task: &str) -> MutexGuard<'_, ()> {
        let index = self.hasher.hash_one(task) as usize % self.turns.len();
        self.turns[index].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_task_waits_for_its_turn_and_another_does_not() {
        let turns = Turns::new(TURNS);
        let held = turns.take("a").await;
        let waited = tokio::time::timeout(Duration::from_millis(50), turns.take("a")).await;
        assert!(waited.is_err(), "a second command on a waits");
        // With 1,024 turns, "a" and some other task almost surely differ;
        // find one that does, as the hash is random per process.
        let other = (0..100)
            .map(|n| format!("task-{n}"))
            .find(|t| {
                turns.hasher.hash_one(t.as_str()) as usize % TURNS
                    != turns.hasher.hash_one("a") as usize % TURNS
            })
            .expect("another turn");
        let free = tokio::time::timeout(Duration::from_millis(50), turns.take(&other)).await;
        assert!(free.is_ok(), "another task goes on");
        drop(held);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), turns.take("a"))
                .await
                .is_ok()
        );
    }
}
