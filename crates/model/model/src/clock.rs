//! Virtual time.
//!
//! The model counts time in ticks: one tick is one event (a page access, a
//! work item run, a packet), or a simulated nanosecond where a subsystem says
//! so. A [`Clock`] only moves forward.

/// A point in virtual time, counted in ticks since the machine booted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

impl Tick {
    /// Ticks elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The machine's virtual clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    now: Tick,
}

impl Clock {
    /// A clock at tick 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time.
    pub fn now(&self) -> Tick {
        self.now
    }

    /// Advances by `ticks` and returns the new time.
    pub fn advance(&mut self, ticks: u64) -> Tick {
        self.now = Tick(self.now.0.saturating_add(ticks));
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward_and_saturates() {
        let mut c = Clock::new();
        assert_eq!(c.advance(5), Tick(5));
        assert_eq!(c.now().since(Tick(2)), 3);
        assert_eq!(Tick(2).since(c.now()), 0);
        c.advance(u64::MAX);
        assert_eq!(c.now(), Tick(u64::MAX));
    }
}
