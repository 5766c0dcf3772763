//! Which target starts when: waves in ascending order, the canary one at a time before the rest,
//! at most `concurrency` at once, and no new start once the canary failed or the failures went
//! past the tolerance. Pure: the runner (`run.rs`) asks `start` for work and reports each end to
//! `finished`; the order, the stops and the exit code are decided here alone.

use crate::fleet::manifest::FleetError;

/// How many failed targets the fleet goes on past (`--max-failures N` or `P%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    Count(usize),
    /// A percentage of the fleet's targets, rounded down: 10% of 15 targets tolerates 1.
    Percent(u8),
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::Count(0)
    }
}

impl Tolerance {
    pub fn parse(text: &str) -> Result<Self, FleetError> {
        let bad = || FleetError::MaxFailures { value: text.to_string() };
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(Self::Percent(p)),
                _ => Err(bad()),
            },
            None => text.parse().map(Self::Count).map_err(|_| bad()),
        }
    }

    /// The number of failures tolerated in a fleet of `targets`.
    pub fn allowed(self, targets: usize) -> usize {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => targets * usize::from(p) / 100,
        }
    }
}

/// How a fleet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// At most this many targets run (and hold a connection) at once; at least 1.
    pub concurrency: usize,
    /// The first targets of the first wave, run one at a time before any other; `None` is the
    /// default: 1 when the fleet has more than one target.
    pub canary: Option<usize>,
    /// `None`: every target runs whatever fails (a read-only command: status, plan).
    pub tolerance: Option<Tolerance>,
}

/// Why the fleet stopped starting targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A canary target failed: nothing after it started.
    CanaryFailed { target: usize },
    /// More targets failed than the tolerance allows: no new target started after that.
    ToleranceExceeded { failed: usize, allowed: usize },
}

/// The run order of a fleet and where it stands.
#[derive(Debug)]
pub struct Schedule {
    /// Target indices (manifest order) in the order they start: by wave, then manifest order.
    order: Vec<usize>,
    /// Per position of `order`: the phase it runs in. Each canary is a phase of its own, then each
    /// wave of the rest; a phase starts when every earlier one has finished.
    phase: Vec<usize>,
    canary: usize,
    concurrency: usize,
    allowed: Option<usize>,
    next: usize,
    running: usize,
    failed: usize,
    stop: Option<Stop>,
}

impl Schedule {
    /// `waves[i]` is the wave of target `i` (manifest order).
    pub fn new(waves: &[u32], policy: Policy) -> Self {
        let mut order: Vec<usize> = (0..waves.len()).collect();
        // Stable: within a wave, the manifest's order.
        order.sort_by_key(|&i| waves[i]);
        let first_wave = order.first().map(|&i| waves[i]);
        let first_wave_size = order.iter().take_while(|&&i| Some(waves[i]) == first_wave).count();
        let requested = policy.canary.unwrap_or(usize::from(waves.len() > 1));
        let canary = requested.min(first_wave_size);
        let mut phase = Vec::with_capacity(order.len());
        let mut current = 0;
        for (position, &i) in order.iter().enumerate() {
            if position > 0 && (position <= canary || waves[i] != waves[order[position - 1]]) {
                current += 1;
            }
            phase.push(current);
        }
        Self {
            order,
            phase,
            canary,
            concurrency: policy.concurrency.max(1),
            allowed: policy.tolerance.map(|t| t.allowed(waves.len())),
            next: 0,
            running: 0,
            failed: 0,
            stop: None,
        }
    }

    /// How many targets the canary is.
    pub fn canary(&self) -> usize {
        self.canary
    }

    /// The next target to start now, if one may: none once stopped, none while the phase before
    /// it still runs, none past the concurrency.
    pub fn start(&mut self) -> Option<usize> {
        if self.stop.is_some() || self.next >= self.order.len() || self.running >= self.concurrency {
            return None;
        }
        if self.running > 0 && self.phase[self.next] != self.phase[self.next - 1] {
            return None;
        }
        let target = self.order[self.next];
        self.next += 1;
        self.running += 1;
        Some(target)
    }

    /// A started target ended, failed or not.
    pub fn finished(&mut self, target: usize, failed: bool) {
        self.running -= 1;
        if !failed {
            return;
        }
        self.failed += 1;
        let position = self.order.iter().position(|&i| i == target).expect("a target of this fleet");
        if position < self.canary {
            self.stop.get_or_insert(Stop::CanaryFailed { target });
        } else if let Some(allowed) = self.allowed.filter(|&allowed| self.failed > allowed) {
            self.stop.get_or_insert(Stop::ToleranceExceeded {
                failed: self.failed,
                allowed,
            });
        }
    }

    /// Whether nothing runs and nothing more will start.
    pub fn done(&self) -> bool {
        self.running == 0 && (self.stop.is_some() || self.next >= self.order.len())
    }

    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The targets in the order they started (or would have).
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

/// The exit code: 0 when no target failed, 1 when some failed within the tolerance, 3 when the
/// canary failed or the tolerance was exceeded.
pub fn exit_code(failed: usize, stop: Option<Stop>) -> u8 {
    match (stop, failed) {
        (Some(_), _) => 3,
        (None, 0) => 0,
        (None, _) => 1,
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
