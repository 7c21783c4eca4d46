//! Evaluation budgets: a bound on the work (steps) and time one request may spend evaluating
//! formulas, and a cancellation flag (the request was dropped).
//!
//! [`run`] installs a budget for the current thread while its closure runs; [`super::eval`]
//! charges one step per node and the text functions charge the bytes they read and build
//! (before doing the work, so REPT/REGEX_REPLACE/SUBSTITUTE on long text stop early). Once the
//! budget is spent every further evaluation is an error value at once, and [`run`] returns
//! [`BudgetExceeded`]. Loops over records call [`checkpoint`] between records. Outside [`run`]
//! nothing is limited (besides the text size cap).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Default step budget of one request: one step per formula node evaluated plus one per byte
/// of text a function reads or builds.
pub const DEFAULT_MAX_STEPS: u64 = 100_000_000;
/// Default time budget of one request.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(2);

/// How much one request may spend evaluating formulas.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Steps (nodes + text bytes); `u64::MAX` for no bound.
    pub max_steps: u64,
    /// Wall-clock bound; `None` for no bound.
    pub max_time: Option<Duration>,
    /// Set from another thread to stop the evaluation (e.g. the client has gone).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: DEFAULT_MAX_STEPS,
            max_time: Some(DEFAULT_MAX_TIME),
            cancel: None,
        }
    }
}

impl Budget {
    /// The same bounds with a cancellation flag.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }
}

/// Why an evaluation was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetExceeded {
    #[error(
        "the formula needs more than {limit} evaluation steps (nodes and text bytes): simplify \
         it (e.g. no REPT/REGEX_*/SUBSTITUTE over long text) or filter fewer records"
    )]
    Steps { limit: u64 },
    #[error(
        "evaluating the formula took longer than {limit_ms} ms: simplify it (e.g. no \
         REPT/REGEX_*/SUBSTITUTE over long text) or filter fewer records"
    )]
    Time { limit_ms: u128 },
    #[error("the evaluation was cancelled (the request was dropped)")]
    Cancelled,
}

struct Active {
    steps_left: u64,
    limit: u64,
    deadline: Option<(Instant, Duration)>,
    cancel: Option<Arc<AtomicBool>>,
    /// Charges since the clock and the flag were last looked at.
    since_check: u32,
    exceeded: Option<BudgetExceeded>,
}

/// How many charges between two looks at the clock and the cancellation flag.
const CHECK_EVERY: u32 = 256;
/// A charge this large looks at the clock and the flag at once.
const BIG_CHARGE: u64 = 4096;

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

impl Active {
    fn check_clock(&mut self) {
        self.since_check = 0;
        if self.exceeded.is_some() {
            return;
        }
        if let Some(flag) = &self.cancel
            && flag.load(Ordering::Relaxed)
        {
            self.exceeded = Some(BudgetExceeded::Cancelled);
        } else if let Some((at, limit)) = self.deadline
            && Instant::now() >= at
        {
            self.exceeded = Some(BudgetExceeded::Time {
                limit_ms: limit.as_millis(),
            });
        }
    }
}

/// Restores the budget that was active before [`run`] (also when the closure panics).
struct Restore(Option<Active>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        ACTIVE.with(|a| *a.borrow_mut() = prev);
    }
}

/// Runs `f` under `budget` on this thread. `Err` when the budget ran out (or was cancelled)
/// while `f` ran; `f`'s result is then meaningless and dropped.
pub fn run<R>(budget: &Budget, f: impl FnOnce() -> R) -> Result<R, BudgetExceeded> {
    let fresh = Active {
        steps_left: budget.max_steps,
        limit: budget.max_steps,
        deadline: budget
            .max_time
            .and_then(|d| Instant::now().checked_add(d).map(|at| (at, d))),
        cancel: budget.cancel.clone(),
        since_check: 0,
        exceeded: None,
    };
    let prev = ACTIVE.with(|a| a.borrow_mut().replace(fresh));
    let restore = Restore(prev);
    let out = f();
    let exceeded = ACTIVE.with(|a| a.borrow().as_ref().and_then(|s| s.exceeded));
    drop(restore);
    match exceeded {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Spends `units` steps. `false` when the budget is spent (then stop and return an error value).
pub fn charge(units: u64) -> bool {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let Some(s) = a.as_mut() else {
            return true;
        };
        if s.exceeded.is_some() {
            return false;
        }
        if units > s.steps_left {
            s.steps_left = 0;
            s.exceeded = Some(BudgetExceeded::Steps { limit: s.limit });
            return false;
        }
        s.steps_left -= units;
        s.since_check += 1;
        if s.since_check >= CHECK_EVERY || units >= BIG_CHARGE {
            s.check_clock();
        }
        s.exceeded.is_none()
    })
}

/// Looks at the clock and the cancellation flag now; `false` when the evaluation must stop.
/// Call it between records.
pub fn checkpoint() -> bool {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        match a.as_mut() {
            Some(s) => {
                s.check_clock();
                s.exceeded.is_none()
            }
            None => true,
        }
    })
}

/// Whether the current budget has run out.
pub fn exhausted() -> bool {
    ACTIVE.with(|a| a.borrow().as_ref().is_some_and(|s| s.exceeded.is_some()))
}

/// The error value an evaluation returns once the budget is spent.
pub(crate) fn over_budget() -> super::Value {
    super::Value::error("over the evaluation budget")
}

/// `bytes` as a step count.
pub(crate) fn bytes(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_outside_run_and_restored_after() {
        assert!(charge(u64::MAX));
        let b = Budget {
            max_steps: 10,
            max_time: None,
            cancel: None,
        };
        let r = run(&b, || {
            assert!(charge(5));
            assert!(charge(5));
            assert!(!charge(1));
            assert!(exhausted());
        });
        assert_eq!(r, Err(BudgetExceeded::Steps { limit: 10 }));
        assert!(!exhausted());
        assert!(charge(1_000));
    }

    #[test]
    fn cancellation_is_seen_at_the_next_checkpoint() {
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget {
            max_steps: u64::MAX,
            max_time: None,
            cancel: Some(flag.clone()),
        };
        let r = run(&b, || {
            assert!(checkpoint());
            flag.store(true, Ordering::Relaxed);
            assert!(!checkpoint());
        });
        assert_eq!(r, Err(BudgetExceeded::Cancelled));
    }

    #[test]
    fn a_zero_deadline_stops_at_the_first_checkpoint() {
        let b = Budget {
            max_steps: u64::MAX,
            max_time: Some(Duration::ZERO),
            cancel: None,
        };
        let r = run(&b, checkpoint);
        assert!(matches!(r, Err(BudgetExceeded::Time { .. })));
    }
}
