//! The generic cell rate algorithm (GCRA, ITU-T I.371; the algorithm of `governor` and of
//! Redis's `redis-cell`), as pure arithmetic on one number per key: the theoretical arrival
//! time (TAT) of the next request, in nanoseconds on the store's clock.
//!
//! A limit of `rate` requests per `per` with `burst` spends one *emission interval*
//! `T = per / rate` per request and tolerates requests up to `τ = T · burst` ahead of
//! schedule. For a request at `now`:
//!
//! - `tat' = max(tat, now) + T`, the schedule if it is allowed;
//! - it is allowed when `tat' - τ ≤ now`, and then `tat'` is stored;
//! - refused otherwise, with the stored TAT unchanged: it may retry at `tat' - τ`.
//!
//! So an idle key takes `burst` requests at once and then one per `T`; after
//! `t` seconds of saturation exactly `burst + t / T` were allowed. A TAT in the past holds
//! no information (it is the same as no entry), which is what lets a store forget it.
//!
//! Every store implements this same function — the in-memory one here, and a Redis one with
//! a Lua script doing the same four lines against the server's clock.

use std::time::Duration;

/// A limit in GCRA terms. Built from `rate`, `per` and `burst` by [`Gcra::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    /// `T`: nanoseconds one request costs.
    pub interval: u64,
    /// `τ = T · burst`: how far ahead of schedule a key may run, nanoseconds.
    pub tolerance: u64,
}

impl Gcra {
    /// `rate` requests per `per`, at most `burst` at once (`rate` and `burst` at least 1;
    /// zeros are read as 1).
    pub fn new(rate: u64, per: Duration, burst: u64) -> Self {
        let per = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
        let interval = (per / rate.max(1)).max(1);
        Self { interval, tolerance: interval.saturating_mul(burst.max(1)) }
    }
}

/// The answer for one request against one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The request may pass (and was counted).
    pub allowed: bool,
    /// Requests that would pass right now after this one.
    pub remaining: u64,
    /// Until the key is back to its full burst (nothing counted against it).
    pub reset: Duration,
    /// Until a refused request would pass (zero when allowed).
    pub retry_after: Duration,
}

/// One request at `now` against a key whose stored TAT is `tat` (0 for none): the outcome,
/// and the TAT to store (`None`: leave the entry as it is).
pub fn check(tat: u64, now: u64, limit: &Gcra) -> (Outcome, Option<u64>) {
    let base = tat.max(now);
    let next = base.saturating_add(limit.interval);
    let allow_at = next.saturating_sub(limit.tolerance);
    if now < allow_at {
        let outcome = Outcome {
            allowed: false,
            remaining: 0,
            reset: Duration::from_nanos(base - now),
            retry_after: Duration::from_nanos(allow_at - now),
        };
        return (outcome, None);
    }
    // `allow_at ≤ now`, so `now + τ ≥ next`.
    let room = now.saturating_add(limit.tolerance) - next;
    let outcome = Outcome {
        allowed: true,
        remaining: room / limit.interval,
        reset: Duration::from_nanos(next - now),
        retry_after: Duration::ZERO,
    };
    (outcome, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    /// Runs `n` requests at `now` against `tat`, returning how many passed and the new TAT.
    fn burst(tat: &mut u64, now: u64, limit: &Gcra, n: usize) -> usize {
        let mut allowed = 0;
        for _ in 0..n {
            let (o, next) = check(*tat, now, limit);
            if let Some(t) = next {
                *tat = t;
            }
            allowed += usize::from(o.allowed);
        }
        allowed
    }

    #[test]
    fn parameters_from_rate_per_and_burst() {
        assert_eq!(Gcra::new(200, Duration::from_secs(1), 50), Gcra { interval: 5 * MS, tolerance: 250 * MS });
        assert_eq!(Gcra::new(100, Duration::from_secs(60), 100), Gcra { interval: 600 * MS, tolerance: 60 * S });
        // Degenerate inputs never divide by zero or overflow.
        assert_eq!(Gcra::new(0, Duration::from_secs(1), 0), Gcra { interval: S, tolerance: S });
        assert_eq!(Gcra::new(1, Duration::from_secs(86_400), u64::MAX).tolerance, u64::MAX);
        assert_eq!(Gcra::new(u64::MAX, Duration::from_secs(1), 1).interval, 1);
    }

    #[test]
    fn an_idle_key_takes_its_burst_at_once_and_then_nothing() {
        let limit = Gcra::new(10, Duration::from_secs(1), 5);
        let now = 1000 * S;
        let mut tat = 0;
        for expected_remaining in [4, 3, 2, 1, 0] {
            let (o, next) = check(tat, now, &limit);
            assert!(o.allowed);
            assert_eq!(o.remaining, expected_remaining);
            assert_eq!(o.retry_after, Duration::ZERO);
            tat = next.unwrap();
        }
        // Five spent: the key is full again 5 × 100 ms later.
        let (o, next) = check(tat, now, &limit);
        assert_eq!(next, None, "a refusal stores nothing");
        assert_eq!((o.allowed, o.remaining), (false, 0));
        assert_eq!(o.retry_after, Duration::from_millis(100), "one emission interval until the next");
        assert_eq!(o.reset, Duration::from_millis(500));
    }

    #[test]
    fn refusals_until_one_interval_passes_then_exactly_one() {
        let limit = Gcra::new(10, Duration::from_secs(1), 1);
        let mut tat = 0;
        let t0 = 50 * S;
        assert_eq!(burst(&mut tat, t0, &limit, 3), 1);
        assert_eq!(burst(&mut tat, t0 + 99 * MS, &limit, 3), 0, "1 ms short of the interval");
        let (o, _) = check(tat, t0 + 99 * MS, &limit);
        assert_eq!(o.retry_after, Duration::from_millis(1));
        assert_eq!(burst(&mut tat, t0 + 100 * MS, &limit, 3), 1);
    }

    #[test]
    fn under_saturation_the_count_is_burst_plus_rate_times_time() {
        // 200/s, burst 20, a request every 100 µs for 2 s (both ends included): 20 at once,
        // then one per 5 ms.
        let limit = Gcra::new(200, Duration::from_secs(1), 20);
        let mut tat = 0;
        let t0 = 7 * S;
        let mut allowed = 0;
        for i in 0..=20_000u64 {
            allowed += burst(&mut tat, t0 + i * 100_000, &limit, 1);
        }
        assert_eq!(allowed, 20 + 400);
    }

    #[test]
    fn a_key_left_alone_refills_to_its_burst_never_beyond() {
        let limit = Gcra::new(1, Duration::from_secs(1), 3);
        let mut tat = 0;
        assert_eq!(burst(&mut tat, 10 * S, &limit, 10), 3);
        // 1.5 s later: one and a half requests' worth back, one whole one usable.
        assert_eq!(burst(&mut tat, 10 * S + 1500 * MS, &limit, 10), 1);
        // An hour later: the burst, not 3600.
        let (o, _) = check(tat, 3610 * S, &limit);
        assert_eq!(o.remaining, 2, "full burst of 3, this one spent");
        assert_eq!(burst(&mut tat, 3610 * S, &limit, 10), 3);
    }

    #[test]
    fn a_tat_in_the_past_is_the_same_as_no_entry() {
        let limit = Gcra::new(5, Duration::from_secs(1), 2);
        let now = 100 * S;
        assert_eq!(check(now - S, now, &limit), check(0, now, &limit));
        let (o, next) = check(0, now, &limit);
        assert_eq!(o.reset, Duration::from_millis(200));
        assert_eq!(next, Some(now + 200 * MS));
    }
}
