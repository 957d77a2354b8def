//! Tasks kept warm: the folded aggregate and its version, per process, so a
//! command on a task this process has seen loads nothing. The store stays the
//! truth: a commit from a stale entry is refused by the primary key (another
//! process wrote since), which evicts it; and a decision made on a cached
//! entry that appends nothing (a no-op or a refusal) is made again on fresh
//! state before it is answered. Bounded by entries; least recently used go
//! first. See docs/adr/0011.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use domain::Task;
use hashlink::LruCache;

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
    fn no_capacity_keeps_nothing() {
        let cache = Warm::new(0);
        cache.put("a", warm(1));
        assert!(cache.get("a").is_none());
    }
}
