//! Subscribers by user, each with a bounded buffer: a hub hands an item to
//! every subscriber of its user in memory, and one that overflows is cut off
//! (its receiver ends) rather than holding up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use infra::metric;
use tokio::sync::mpsc;

/// Items a subscriber may fall behind by before it must resync.
pub const SUBSCRIBER_BUFFER: usize = 256;

/// Subscribers by user, each with a bounded buffer.
pub struct Fanout<T> {
    subscribers: Mutex<HashMap<String, Vec<Slot<T>>>>,
    next_id: AtomicU64,
    buffer: usize,
}

struct Slot<T> {
    id: u64,
    sender: mpsc::Sender<T>,
}

/// One subscriber's place in a [`Fanout`]: dropping it leaves the fan-out.
/// Its receiver ends (`None`) when the subscriber overflowed or the process
/// lost the topic: what it missed must then be read from the read model.
pub struct Subscriber<T> {
    pub receiver: mpsc::Receiver<T>,
    id: u64,
    user: String,
    fanout: Arc<Fanout<T>>,
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        self.fanout.remove(&self.user, self.id);
    }
}

impl<T: Clone> Fanout<T> {
    pub fn new(buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            subscribers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            buffer,
        })
    }

    pub fn subscribe(self: &Arc<Self>, user: &str) -> Subscriber<T> {
        let (sender, receiver) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(user.to_owned())
            .or_default()
            .push(Slot { id, sender });
        metrics::gauge!(metric::SUBSCRIPTIONS).increment(1.0);
        Subscriber {
            receiver,
            id,
            user: user.to_owned(),
            fanout: Arc::clone(self),
        }
    }

    /// Hands `item` to every subscriber of `user`; one whose buffer is full
    /// is dropped, which ends its receiver once drained.
    pub fn publish(&self, user: &str, item: &T) {
        let mut subscribers = self.lock();
        let Some(slots) = subscribers.get_mut(user) else {
            return;
        };
        slots.retain(|slot| match slot.sender.try_send(item.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(metric::SUBSCRIBER_RESYNCS).increment(1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if slots.is_empty() {
            subscribers.remove(user);
        }
    }

    /// Ends every receiver: after the process lost messages of the topic,
    /// everyone reads what they missed from the read model.
    pub fn resync_all(&self) {
        let dropped: usize = self.lock().drain().map(|(_, slots)| slots.len()).sum();
        if dropped > 0 {
            metrics::counter!(metric::SUBSCRIBER_RESYNCS).increment(dropped as u64);
        }
    }
}

impl<T> Fanout<T> {
    fn remove(&self, user: &str, id: u64) {
        metrics::gauge!(metric::SUBSCRIPTIONS).decrement(1.0);
        let mut subscribers = self.lock();
        if let Some(slots) = subscribers.get_mut(user) {
            slots.retain(|slot| slot.id != id);
            if slots.is_empty() {
                subscribers.remove(user);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Slot<T>>>> {
        self.subscribers.lock().expect("not poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_hears_only_their_own_items() {
        let fanout = Fanout::<u32>::new(4);
        let mut alice = fanout.subscribe("alice");
        let mut bob = fanout.subscribe("bob");
        fanout.publish("alice", &1);
        fanout.publish("bob", &2);
        assert_eq!(alice.receiver.try_recv().unwrap(), 1);
        assert_eq!(bob.receiver.try_recv().unwrap(), 2);
        assert!(alice.receiver.try_recv().is_err());
    }

    #[test]
    fn an_overflowing_subscriber_is_cut_off_and_the_others_are_not() {
        let fanout = Fanout::<u32>::new(2);
        let mut slow = fanout.subscribe("alice");
        let mut fast = fanout.subscribe("alice");
        for item in 0..5 {
            fanout.publish("alice", &item);
            assert_eq!(fast.receiver.try_recv().unwrap(), item);
        }
        // The slow one keeps what fitted, then its receiver ends: resync.
        assert_eq!(slow.receiver.try_recv().unwrap(), 0);
        assert_eq!(slow.receiver.try_recv().unwrap(), 1);
        assert_eq!(
            slow.receiver.try_recv().unwrap_err(),
            mpsc::error::TryRecvError::Disconnected
        );
    }

    #[test]
    fn dropping_a_subscriber_leaves_the_fanout() {
        let fanout = Fanout::<u32>::new(2);
        let subscriber = fanout.subscribe("alice");
        drop(subscriber);
        assert!(fanout.lock().is_empty());
    }
}
