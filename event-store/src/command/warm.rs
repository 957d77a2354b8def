//! Tasks kept warm: the folded aggregate and its version, per process, so a
//! command on a task this process has seen loads nothing. The store stays the
//! truth: a commit from a stale entry is refused by the primary key (another
//! process wrote since), which evicts it; and a decision made on a cached
//! entry that appends nothing (a no-op or a refusal) is made again on fresh
//! state before it is answered. Bounded by entries; least recently used go
//! first. Forgotten whenever a user is erased. See docs/adr/0011 and 0014.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use domain::Task;
use hashlink::LruCache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::keys::ERASURES_CHANNEL;

/// Tasks one process keeps warm by default (a task's state is well under a
/// kilobyte: about 10 MB at most).
pub const DEFAULT_WARM_TASKS: usize = 10_000;

/// A task as last committed or loaded here, and how many events it had.
#[derive(Debug, Clone, Default)]
pub struct WarmTask {
    pub task: Task,
    pub sequence: usize,
}

/// What the cache did since it was made: hits, misses and evictions (the
/// process-wide metric counts the same, across caches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmCounts {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

impl WarmCounts {
    /// Hits among lookups (0 before any).
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }

    /// Hits among the lookups made since `earlier` was read.
    pub fn hit_rate_since(&self, earlier: &WarmCounts) -> f64 {
        WarmCounts {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
            evictions: self.evictions.saturating_sub(earlier.evictions),
        }
        .hit_rate()
    }
}

#[derive(Debug)]
pub struct Warm {
    tasks: Mutex<LruCache<String, WarmTask>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl Warm {
    pub fn new(capacity: usize) -> Self {
        Self {
            tasks: Mutex::new(LruCache::new_unbounded()),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn counts(&self) -> WarmCounts {
        WarmCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// The task if warm (counted as a hit or a miss).
    pub fn get(&self, aggregate_id: &str) -> Option<WarmTask> {
        let found = self.lock().get(aggregate_id).cloned();
        let (outcome, count) = if found.is_some() {
            ("hit", &self.hits)
        } else {
            ("miss", &self.misses)
        };
        count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(infra::metric::WARM_TASKS, "outcome" => outcome).increment(1);
        found
    }

    /// Keeps `task` warm at `sequence`, letting the least recently used go
    /// when full.
    pub fn put(&self, aggregate_id: &str, task: WarmTask) {
        if self.capacity == 0 {
            return;
        }
        let mut tasks = self.lock();
        if !tasks.contains_key(aggregate_id) && tasks.len() >= self.capacity {
            tasks.remove_lru();
            self.evictions.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(infra::metric::WARM_TASKS, "outcome" => "eviction").increment(1);
        }
        tasks.insert(aggregate_id.to_owned(), task);
    }

    /// Forgets the task: someone else wrote it, or what it decided must be
    /// decided again on fresh state.
    pub fn forget(&self, aggregate_id: &str) {
        self.lock().remove(aggregate_id);
    }

    /// Forgets every task.
    pub fn clear(&self) {
        self.lock().clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, WarmTask>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Forgets every task in `warm` whenever a user is erased (the erasure
/// notifies [`ERASURES_CHANNEL`] as it commits), until `shutdown`. A warm
/// task may hold what the erased user typed, folded while their key still
/// opened it; a command decided on it would seal that text again under the
/// next writer's key (in the task's next snapshot, or in an event that
/// carries the task's text: an edit's other field, the whole tag set, a next
/// occurrence). Each time it starts listening it forgets them too: an
/// erasure may have passed unheard.
pub async fn forget_on_erasures(
    warm: Arc<Warm>,
    pool: PgPool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    infra::listen::again_and_again(
        ERASURES_CHANNEL,
        shutdown,
        || listen_for_erasures(&warm, &pool),
        || warm.clear(),
    )
    .await
}

async fn listen_for_erasures(warm: &Warm, pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(ERASURES_CHANNEL).await?;
    loop {
        warm.clear();
        // `None`: the connection was lost and is made again on the next
        // call; what was announced meanwhile went unheard.
        match listener.try_recv().await? {
            Some(_) => tracing::info!("a user was erased: the tasks kept warm are forgotten"),
            None => tracing::warn!(
                "the erasures channel's connection was lost: the tasks kept warm are forgotten"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(sequence: usize) -> WarmTask {
        WarmTask {
            task: Task::default(),
            sequence,
        }
    }

    #[test]
    fn the_least_recently_used_task_goes_first() {
        let cache = Warm::new(2);
        cache.put("a", warm(1));
        cache.put("b", warm(1));
        assert!(cache.get("a").is_some(), "a is now the most recent");
        cache.put("c", warm(1));
        assert!(cache.get("b").is_none());
        assert_eq!(cache.get("a").map(|w| w.sequence), Some(1));
        assert!(cache.get("c").is_some());
        assert_eq!(cache.len(), 2);
        let counts = cache.counts();
        assert_eq!((counts.hits, counts.misses, counts.evictions), (3, 1, 1));
        assert_eq!(counts.hit_rate(), 0.75);
    }

    #[test]
    fn a_task_put_again_is_replaced_not_added() {
        let cache = Warm::new(1);
        cache.put("a", warm(1));
        cache.put("a", warm(2));
        assert_eq!(cache.get("a").map(|w| w.sequence), Some(2));
        cache.forget("a");
        assert!(cache.is_empty());
    }

    #[test]
    fn cleared_it_holds_nothing_and_fills_again() {
        let cache = Warm::new(2);
        cache.put("a", warm(1));
        cache.put("b", warm(1));
        cache.clear();
        assert!(cache.is_empty());
        cache.put("a", warm(2));
        assert_eq!(cache.get("a").map(|w| w.sequence), Some(2));
    }

    #[test]
    fn no_capacity_keeps_nothing() {
        let cache = Warm::new(0);
        cache.put("a", warm(1));
        assert!(cache.get("a").is_none());
    }
}
