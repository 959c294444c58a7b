//! Token buckets keyed by who is asking (a source address, a user name):
//! a key may spend `burst` tokens at once and earns `rate` tokens a second
//! back. The hangar's `/auth` and the API's failed logins are throttled
//! with them.
//!
//! Memory is bounded by `max_keys`: a bucket that has filled up again is
//! the same as no bucket, so when the map reaches its cap the full ones are
//! forgotten; if an attacker keeps more keys than that busy at once, the
//! fullest quarter is dropped too (those are the least throttled, so
//! forgetting them gives the least back), and the next cleanup comes only
//! after another quarter of the cap has been added (no O(n) scan per call).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A refused take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    /// The first refusal since this key last had a token: callers log
    /// once per flood, not once per request.
    pub first: bool,
    /// How long until the key has a whole token again.
    pub retry_after: Duration,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    warned: bool,
}

impl Bucket {
    /// The tokens at `now`: what was left plus what was earned since.
    fn level(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(burst)
    }
}

pub struct TokenBuckets<K> {
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// At most about `max_keys` buckets are kept (see the module's doc).
    pub fn new(max_keys: usize) -> TokenBuckets<K> {
        TokenBuckets {
            max_keys: max_keys.max(4),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket (`burst` tokens, `rate` a
    /// second), or says when there will be one.
    pub fn take(&self, key: K, rate: f64, burst: f64) -> Result<(), Refused> {
        self.take_at(key, rate, burst, Instant::now())
    }

    /// Returns a token taken before (a reservation that turned out not to
    /// be needed, e.g. a login that succeeded), never above `burst`.
    pub fn give_back(&self, key: &K, burst: f64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(burst);
        }
    }

    /// Whether `key` has all its tokens: nothing taken lately (a client
    /// that has not failed lately, for the logins).
    pub fn is_full(&self, key: &K, rate: f64, burst: f64) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(key)
            .is_none_or(|b| b.level(Instant::now(), rate, burst) >= burst)
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_at(&self, key: K, rate: f64, burst: f64, now: Instant) -> Result<(), Refused> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_keys && !buckets.contains_key(&key) {
            self.shrink(&mut buckets, rate, burst, now);
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
            warned: false,
        });
        b.tokens = b.level(now, rate, burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.warned = false;
            return Ok(());
        }
        let first = !b.warned;
        b.warned = true;
        let wait = if rate > 0.0 {
            (1.0 - b.tokens) / rate
        } else {
            f64::MAX
        };
        Err(Refused {
            first,
            retry_after: Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX),
        })
    }

    fn shrink(&self, buckets: &mut HashMap<K, Bucket>, rate: f64, burst: f64, now: Instant) {
        buckets.retain(|_, b| b.level(now, rate, burst) < burst);
        let keep = self.max_keys / 4 * 3;
        if buckets.len() <= keep {
            return;
        }
        let mut levels: Vec<(f64, K)> = buckets
            .iter()
            .map(|(k, b)| (b.level(now, rate, burst), k.clone()))
            .collect();
        let drop = levels.len() - keep;
        // The `drop` fullest first (any order among them).
        levels.select_nth_unstable_by(drop - 1, |a, b| b.0.total_cmp(&a.0));
        for (_, key) in levels.into_iter().take(drop) {
            buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_then_recovery() {
        let t = TokenBuckets::new(100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.take_at("a", 2.0, 3.0, t0).is_ok());
        }
        let refused = t.take_at("a", 2.0, 3.0, t0).unwrap_err();
        assert!(refused.first);
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        let again = t.take_at("a", 2.0, 3.0, t0).unwrap_err();
        assert!(!again.first, "one log line per flood");
        assert!(t.take_at("b", 2.0, 3.0, t0).is_ok(), "keys are separate");
        // Half a second earns one token at 2 a second.
        let later = t0 + Duration::from_millis(500);
        assert!(t.take_at("a", 2.0, 3.0, later).is_ok());
        let refused = t.take_at("a", 2.0, 3.0, later).unwrap_err();
        assert!(refused.first, "a new flood after a token was earned");
        // Long idle: full again, never more than the burst.
        let idle = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(t.take_at("a", 2.0, 3.0, idle).is_ok());
        }
        assert!(t.take_at("a", 2.0, 3.0, idle).is_err());
    }

    #[test]
    fn a_token_given_back_is_spendable_but_never_above_the_burst() {
        let t = TokenBuckets::new(100);
        let t0 = Instant::now();
        assert!(t.take_at(1, 1.0, 1.0, t0).is_ok());
        assert!(t.take_at(1, 1.0, 1.0, t0).is_err());
        t.give_back(&1, 1.0);
        assert!(t.take_at(1, 1.0, 1.0, t0).is_ok());
        t.give_back(&1, 1.0);
        t.give_back(&1, 1.0);
        assert!(t.take_at(1, 1.0, 1.0, t0).is_ok());
        assert!(t.take_at(1, 1.0, 1.0, t0).is_err(), "capped at the burst");
        t.give_back(&2, 1.0);
        assert_eq!(t.len(), 1, "giving back makes no bucket");
        assert!(t.is_full(&2, 1.0, 1.0), "no bucket is a full one");
        assert!(!t.is_full(&1, 0.001, 1.0));
    }

    #[test]
    fn memory_is_bounded_and_busy_buckets_are_kept_first() {
        let t = TokenBuckets::new(100);
        let t0 = Instant::now();
        // A throttled key: its bucket must survive the cleanups below as
        // long as it is emptier than others.
        for _ in 0..5 {
            let _ = t.take_at(u32::MAX, 1.0, 5.0, t0);
        }
        for k in 0..10_000u32 {
            let _ = t.take_at(k, 1.0, 5.0, t0);
            assert!(t.len() <= 100, "{} keys", t.len());
        }
        assert!(
            t.take_at(u32::MAX, 1.0, 5.0, t0).is_err(),
            "the emptiest bucket was not forgotten"
        );
        // Once the others are full again, they go at the next cleanup.
        let later = t0 + Duration::from_secs(10);
        let _ = t.take_at(20_000, 1.0, 5.0, later);
        for k in 20_001..20_100u32 {
            let _ = t.take_at(k, 1.0, 5.0, later);
        }
        assert!(t.len() <= 100);
    }
}
