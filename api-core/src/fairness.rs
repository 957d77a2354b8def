//! One user cannot starve the others. Each user has a request rate (GCRA, by
//! governor) and a number of requests in flight; past either the answer is
//! `RATE_LIMITED` with a retry hint. The in-flight bound is also what one user
//! can hold of the read pool, so the rest of the pool stays with everyone else.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How much one user may ask of the API.
#[derive(Debug, Clone, Copy)]
pub struct FairnessSettings {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests that may come at once after a quiet spell.
    pub burst: NonZeroU32,
    /// Requests of one user running at the same time.
    pub in_flight: usize,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate: try again after this long.
    TooFast { retry_after: Duration },
    /// Too many of this user's requests are running.
    TooMany,
}

pub struct Fairness {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: usize,
}

impl Fairness {
    pub fn new(settings: FairnessSettings) -> Arc<Self> {
        let quota = Quota::per_second(settings.per_second).allow_burst(settings.burst);
        Arc::new(Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: settings.in_flight,
        })
    }

    /// Admits a request of `user`, or says why not. The returned guard counts
    /// the request as running until it is dropped.
    pub fn admit(self: &Arc<Self>, user: &str) -> Result<Running, Refusal> {
        let key = user.to_owned();
        if let Err(not_until) = self.limiter.check_key(&key) {
            return Err(Refusal::TooFast {
                retry_after: not_until.wait_time_from(self.clock.now()),
            });
        }
        let mut in_flight = self.in_flight.lock().expect("not poisoned");
        // Users who have gone quiet are forgotten, so the table stays as large
        // as the set of recent users.
        if in_flight.len() > 10_000 {
            in_flight.retain(|_, running| *running > 0);
            self.limiter.retain_recent();
        }
        let running = in_flight.entry(key.clone()).or_insert(0);
        if *running >= self.max_in_flight {
            return Err(Refusal::TooMany);
        }
        *running += 1;
        Ok(Running {
            fairness: Arc::clone(self),
            user: key,
        })
    }
}

/// One admitted request, counted as running until dropped.
pub struct Running {
    fairness: Arc<Fairness>,
    user: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut in_flight = self.fairness.in_flight.lock().expect("not poisoned");
        if let Some(running) = in_flight.get_mut(&self.user) {
            *running -= 1;
            if *running == 0 {
                in_flight.remove(&self.user);
            }
        }
    }
}

impl From<Refusal> for crate::ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooFast { retry_after } => Self::RateLimited {
                retry_after_seconds: retry_after.as_secs_f64().ceil().max(1.0) as u64,
            },
            Refusal::TooMany => Self::TooManyInFlight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: u32, burst: u32, in_flight: usize) -> FairnessSettings {
        FairnessSettings {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            in_flight,
        }
    }

    #[test]
    fn a_burst_then_a_rate_per_user_and_others_unaffected() {
        let fairness = Fairness::new(settings(1, 3, 100));
        for _ in 0..3 {
            drop(fairness.admit("alice").unwrap());
        }
        let Err(Refusal::TooFast { retry_after }) = fairness.admit("alice") else {
            panic!("the fourth at once is over the burst");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        assert!(fairness.admit("bob").is_ok(), "bob has his own budget");
    }

    #[test]
    fn requests_in_flight_are_bounded_and_released() {
        let fairness = Fairness::new(settings(1000, 1000, 2));
        let first = fairness.admit("alice").unwrap();
        let _second = fairness.admit("alice").unwrap();
        assert_eq!(fairness.admit("alice").err(), Some(Refusal::TooMany));
        drop(first);
        assert!(fairness.admit("alice").is_ok());
    }
}
