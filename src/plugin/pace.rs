//! How fast the host renders, and the audio thread's one wait policy.
//!
//! A host that renders faster than real time (a bounce, or a host such as DawDreamer that calls
//! `process()` back to back without declaring offline) must get the same performance as one
//! that plays in real time. So in a *fast* render the audio thread waits for what a buffer needs
//! (the piano samples, the engine's events) instead of skipping what is late; in real time it
//! never waits. A render is fast when the host declared it offline, or when its own clock says so:
//! it has processed more than [`FAST_LEAD`] of audio ahead of the wall clock. Waits are bounded
//! per render, not per buffer: one [`RENDER_WAIT_BUDGET`] for all the waits of one render, so a
//! model that never loads delays a bounce by that much at most. See docs/plugin.md.

use std::time::{Duration, Instant};

/// Audio processed ahead of the wall clock beyond which a render is fast. A real-time host runs
/// at most a buffer or two ahead, in bursts; 20 ms is passed before a performance's first note
/// (it starts 50 ms after its start) at buffer sizes up to 1,024 samples at 44.1 kHz.
pub const FAST_LEAD: Duration = Duration::from_millis(20);
/// All the waits of one fast render together.
pub const RENDER_WAIT_BUDGET: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_micros(50);

/// The audio thread's view of the host's render speed.
#[derive(Debug, Clone)]
pub struct Pace {
    declared_offline: bool,
    /// Seconds of audio processed ahead of the wall clock, not counting our own waits.
    lead: f64,
    last_buffer: Option<Instant>,
    /// Seconds this thread waited since the last buffer began (not the host's speed).
    waited: f64,
    fast: bool,
    budget: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace { declared_offline: false, lead: 0.0, last_buffer: None, waited: 0.0, fast: false, budget: RENDER_WAIT_BUDGET }
    }
}

impl Pace {
    /// A render the host declared offline (waits from its first buffer).
    pub fn offline() -> Self {
        let mut pace = Pace::default();
        pace.activate(true);
        pace
    }

    /// A new activation: the host's speed is learnt afresh.
    pub fn activate(&mut self, declared_offline: bool) {
        *self = Pace { declared_offline, fast: declared_offline, ..Pace::default() };
    }

    /// A buffer of `seconds` begins at `now`; returns whether this render is fast.
    pub fn buffer_begins(&mut self, now: Instant, seconds: f64) -> bool {
        let wall = self.last_buffer.map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        self.last_buffer = Some(now);
        self.lead = (self.lead - (wall - self.waited).max(0.0)).max(0.0);
        self.waited = 0.0;
        let fast = self.declared_offline || self.lead > FAST_LEAD.as_secs_f64();
        if fast && !self.fast {
            // A new fast render gets a budget of its own.
            self.budget = RENDER_WAIT_BUDGET;
        }
        self.fast = fast;
        self.lead += seconds;
        fast
    }

    /// The host declared an offline render (it may automate parameters at any speed).
    pub fn declared_offline(&self) -> bool {
        self.declared_offline
    }

    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// In a fast render, waits until `ready()` or the render's budget is spent; in real time it
    /// never waits. Counts in `ran_out` the one wait that spends the budget (later ones do not
    /// wait at all). Returns whether `ready()` holds.
    pub fn wait(&mut self, ready: impl Fn() -> bool, ran_out: &std::sync::atomic::AtomicU64) -> bool {
        if ready() {
            return true;
        }
        if !self.fast || self.budget.is_zero() {
            return false;
        }
        let started = Instant::now();
        let ready = loop {
            std::thread::sleep(POLL);
            if ready() {
                break true;
            }
            if started.elapsed() >= self.budget {
                break false;
            }
        };
        let waited = started.elapsed();
        self.budget = self.budget.saturating_sub(waited);
        self.waited += waited.as_secs_f64();
        if self.budget.is_zero() {
            ran_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        ready
    }

    /// The wait time this render has left.
    pub fn budget_left(&self) -> Duration {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Buffers of `seconds` arriving every `every` seconds from `start`.
    fn feed(pace: &mut Pace, start: Instant, n: usize, seconds: f64, every: f64) -> Vec<bool> {
        (0..n).map(|i| pace.buffer_begins(start + Duration::from_secs_f64(i as f64 * every), seconds)).collect()
    }

    #[test]
    fn a_host_at_real_time_is_never_fast_even_with_jitter() {
        let mut pace = Pace::default();
        let start = Instant::now();
        let buffer = 512.0 / 48_000.0;
        // Buffers come two at a time (a host that renders ahead by one buffer).
        let fast: Vec<bool> =
            (0..400).map(|i| pace.buffer_begins(start + Duration::from_secs_f64((i / 2 * 2) as f64 * buffer), buffer)).collect();
        assert!(fast.iter().all(|f| !f));
        assert!(!pace.wait(|| false, &AtomicU64::new(0)), "real time never waits");
    }

    #[test]
    fn a_host_faster_than_real_time_is_fast_within_20_ms_of_audio() {
        let mut pace = Pace::default();
        let buffer = 256.0 / 48_000.0;
        let fast = feed(&mut pace, Instant::now(), 10, buffer, 0.0001);
        let first = fast.iter().position(|&f| f).expect("never seen as fast");
        assert!(first as f64 * buffer <= 0.026, "fast from buffer {first}");
        assert!(fast[first..].iter().all(|&f| f));
    }

    #[test]
    fn waits_are_bounded_per_render_and_do_not_end_it() {
        let mut pace = Pace::offline();
        pace.budget = Duration::from_millis(30);
        let start = Instant::now();
        let ran_out = AtomicU64::new(0);
        assert!(pace.buffer_begins(start, 0.01));
        assert!(!pace.wait(|| false, &ran_out));
        assert!(pace.budget_left().is_zero());
        // Spent: later buffers of the render do not wait at all, and it is reported once.
        let began = Instant::now();
        assert!(!pace.wait(|| false, &ran_out));
        assert!(began.elapsed() < Duration::from_millis(10));
        assert_eq!(ran_out.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Our own waits do not make the host look slow: the render stays fast.
        let mut pace = Pace::default();
        let start = Instant::now();
        assert_eq!(feed(&mut pace, start, 4, 0.01, 0.0), [false, false, false, true]);
        pace.budget = Duration::from_millis(50);
        assert!(!pace.wait(|| false, &ran_out));
        assert!(pace.buffer_begins(Instant::now(), 0.01), "40 ms ahead, and the 50 ms were our own wait");
    }

    #[test]
    fn a_pause_ends_a_fast_render_and_the_next_one_has_a_new_budget() {
        let mut pace = Pace::default();
        let start = Instant::now();
        feed(&mut pace, start, 10, 0.01, 0.0);
        pace.budget = Duration::ZERO;
        // The host waits a second (real time or idle), then renders fast again.
        assert!(!pace.buffer_begins(start + Duration::from_secs(1), 0.01));
        let again: Vec<bool> =
            (0..5).map(|i| pace.buffer_begins(start + Duration::from_secs(1) + Duration::from_micros(i), 0.01)).collect();
        assert!(again.iter().any(|&f| f));
        assert_eq!(pace.budget_left(), RENDER_WAIT_BUDGET);
    }
}
