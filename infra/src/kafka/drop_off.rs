//! Destroying Kafka clients off the async runtime, and waiting for that
//! before the process exits.

use std::time::Duration;

/// A Kafka client that is destroyed on a thread of its own when dropped.
/// Destroying a client waits for its broker threads, and for a consumer to
/// leave the broker; a broker that is down or restarting may keep that waiting
/// for many seconds, which must not block an async runtime's thread (a role
/// that restarts after a broker failure, or a runtime that shuts down).
pub struct DropOffThread<T: Send + Sync + 'static>(Option<std::sync::Arc<T>>);

impl<T: Send + Sync + 'static> DropOffThread<T> {
    pub fn new(client: T) -> Self {
        Self(Some(std::sync::Arc::new(client)))
    }

    /// A shared handle, for blocking calls on another thread; the client is
    /// destroyed when the last handle goes.
    pub fn handle(&self) -> std::sync::Arc<T> {
        self.0.clone().expect("present until dropped")
    }
}

impl<T: Send + Sync + 'static> std::ops::Deref for DropOffThread<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T: Send + Sync + 'static> Drop for DropOffThread<T> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            DROPPING.begin();
            let spawned = std::thread::Builder::new()
                .name("kafka-client-drop".into())
                .spawn(move || {
                    drop(client);
                    DROPPING.end();
                });
            if let Err(error) = spawned {
                DROPPING.end();
                tracing::warn!(%error, "could not destroy a Kafka client off-thread");
            }
        }
    }
}

/// The Kafka clients being destroyed off-thread. A process must not exit while
/// one is: librdkafka's threads would run on into the process's exit handlers
/// (OpenSSL's cleanup among them) and crash it.
static DROPPING: Dropping = Dropping {
    count: std::sync::Mutex::new(0),
    done: std::sync::Condvar::new(),
};

struct Dropping {
    count: std::sync::Mutex<usize>,
    done: std::sync::Condvar,
}

impl Dropping {
    fn begin(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn end(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        if *count == 0 {
            self.done.notify_all();
        }
    }
}

/// Waits, up to `within`, until every Kafka client dropped off-thread is
/// destroyed; whether they all were. Blocking: call it before a process exits,
/// once its roles have stopped.
pub fn wait_for_dropped_clients(within: Duration) -> bool {
    let count = DROPPING.count.lock().unwrap_or_else(|e| e.into_inner());
    let (count, _) = DROPPING
        .done
        .wait_timeout_while(count, within, |count| *count > 0)
        .unwrap_or_else(|e| e.into_inner());
    *count == 0
}

#[cfg(test)]
mod tests {
    use super::{wait_for_dropped_clients, DropOffThread};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A client whose destruction takes `0`.
    struct SlowToDestroy(Duration, Arc<AtomicBool>);

    impl Drop for SlowToDestroy {
        fn drop(&mut self) {
            std::thread::sleep(self.0);
            self.1.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_process_waits_for_clients_destroyed_off_thread() {
        let destroyed = Arc::new(AtomicBool::new(false));
        drop(DropOffThread::new(SlowToDestroy(
            Duration::from_millis(300),
            destroyed.clone(),
        )));
        assert!(!destroyed.load(Ordering::SeqCst), "dropped on this thread");
        assert!(!wait_for_dropped_clients(Duration::from_millis(10)));
        assert!(wait_for_dropped_clients(Duration::from_secs(10)));
        assert!(destroyed.load(Ordering::SeqCst));
    }
}
