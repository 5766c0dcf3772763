use super::*;

fn policy(concurrency: usize, canary: Option<usize>, tolerance: Option<Tolerance>) -> Policy {
    Policy {
        concurrency,
        canary,
        tolerance,
    }
}

/// What a whole run of the schedule did, the targets in `failing` failing; running targets end
/// oldest first, after every target that may start has started.
#[derive(Debug)]
struct Trace {
    started: Vec<usize>,
    peak: usize,
    stop: Option<Stop>,
    failed: usize,
    /// (phase of each start, the number running when it started)
    alone: Vec<bool>,
}

fn simulate(waves: &[u32], p: Policy, failing: &[usize]) -> Trace {
    let mut s = Schedule::new(waves, p);
    let mut running: Vec<usize> = Vec::new();
    let mut trace = Trace {
        started: Vec::new(),
        peak: 0,
        stop: None,
        failed: 0,
        alone: Vec::new(),
    };
    loop {
        while let Some(t) = s.start() {
            trace.alone.push(running.is_empty());
            running.push(t);
            trace.started.push(t);
            trace.peak = trace.peak.max(running.len());
        }
        if running.is_empty() {
            break;
        }
        let t = running.remove(0);
        let failed = failing.contains(&t);
        trace.failed += usize::from(failed);
        s.finished(t, failed);
    }
    assert!(s.done());
    trace.stop = s.stop();
    trace
}

#[test]
fn the_canary_is_one_target_by_default_and_none_for_a_fleet_of_one() {
    assert_eq!(Schedule::new(&[0, 0, 0], policy(4, None, Some(Tolerance::default()))).canary(), 1);
    assert_eq!(Schedule::new(&[0], policy(4, None, Some(Tolerance::default()))).canary(), 0);
    assert_eq!(Schedule::new(&[], policy(4, None, Some(Tolerance::default()))).canary(), 0);
    assert_eq!(Schedule::new(&[0, 0, 0], policy(4, Some(0), None)).canary(), 0);
}

#[test]
fn waves_run_in_ascending_order_and_the_canary_comes_from_the_first() {
    let waves = [2, 1, 0, 1, 0];
    let s = Schedule::new(&waves, policy(8, Some(5), Some(Tolerance::default())));
    assert_eq!(s.order(), [2, 4, 1, 3, 0]);
    // Asked for 5, but the first wave has 2 targets.
    assert_eq!(s.canary(), 2);
}

#[test]
fn the_canary_runs_alone_then_the_rest_with_the_concurrency() {
    let t = simulate(&[0; 10], policy(3, Some(2), Some(Tolerance::default())), &[]);
    assert_eq!(t.started, (0..10).collect::<Vec<_>>());
    assert_eq!(
        &t.alone[..3],
        [true, true, true],
        "each canary, and the first after them, start alone"
    );
    assert_eq!(t.peak, 3);
    assert_eq!(t.stop, None);
    assert_eq!(exit_code(t.failed, t.stop), 0);
}

#[test]
fn a_wave_starts_when_the_one_before_it_finished() {
    let waves = [0, 0, 0, 1, 1, 1];
    let mut s = Schedule::new(&waves, policy(8, Some(0), Some(Tolerance::default())));
    assert_eq!([s.start(), s.start(), s.start(), s.start()], [Some(0), Some(1), Some(2), None]);
    s.finished(0, false);
    s.finished(1, false);
    assert_eq!(s.start(), None, "wave 1 waits for the last of wave 0");
    s.finished(2, false);
    assert_eq!([s.start(), s.start(), s.start(), s.start()], [Some(3), Some(4), Some(5), None]);
}

#[test]
fn a_failed_canary_stops_the_fleet() {
    let t = simulate(&[0; 5], policy(4, None, Some(Tolerance::Count(10))), &[0]);
    assert_eq!(t.started, [0], "nothing after the canary starts, whatever the tolerance");
    assert_eq!(t.stop, Some(Stop::CanaryFailed { target: 0 }));
    assert_eq!(exit_code(t.failed, t.stop), 3);
}

#[test]
fn failures_within_the_tolerance_go_on_and_exit_1() {
    let t = simulate(&[0; 6], policy(2, None, Some(Tolerance::Count(2))), &[2, 4]);
    assert_eq!(t.started.len(), 6);
    assert_eq!(t.stop, None);
    assert_eq!(exit_code(t.failed, t.stop), 1);
}

#[test]
fn past_the_tolerance_no_new_target_starts_but_running_ones_finish() {
    let waves = [0; 8];
    let mut s = Schedule::new(&waves, policy(3, Some(1), Some(Tolerance::Count(1))));
    assert_eq!(s.start(), Some(0));
    s.finished(0, false);
    assert_eq!([s.start(), s.start(), s.start()], [Some(1), Some(2), Some(3)]);
    s.finished(1, true);
    assert_eq!(s.start(), Some(4), "one failure is tolerated");
    s.finished(2, true);
    assert_eq!(s.stop(), Some(Stop::ToleranceExceeded { failed: 2, allowed: 1 }));
    assert_eq!(s.start(), None);
    assert!(!s.done(), "3 and 4 still run");
    s.finished(3, false);
    s.finished(4, true);
    assert!(s.done());
    assert_eq!(s.start(), None);
    assert_eq!(exit_code(3, s.stop()), 3);
}

#[test]
fn read_only_commands_read_every_target() {
    let t = simulate(&[0; 5], policy(2, Some(0), None), &[0, 1, 2]);
    assert_eq!(t.started.len(), 5);
    assert_eq!(t.stop, None);
    assert_eq!(exit_code(t.failed, t.stop), 1);
}

#[test]
fn tolerance_parses_counts_and_percentages() {
    assert_eq!(Tolerance::parse("3").unwrap(), Tolerance::Count(3));
    assert_eq!(Tolerance::parse("0").unwrap(), Tolerance::Count(0));
    assert_eq!(Tolerance::parse("10%").unwrap(), Tolerance::Percent(10));
    assert_eq!(Tolerance::parse(" 100% ").unwrap(), Tolerance::Percent(100));
    for bad in ["", "-1", "x", "101%", "%", "1.5", "10 %x"] {
        let err = Tolerance::parse(bad).unwrap_err();
        assert!(err.to_string().contains("--max-failures"), "{bad}: {err}");
    }
}

#[test]
fn a_percentage_is_of_the_fleet_rounded_down() {
    assert_eq!(Tolerance::Percent(10).allowed(15), 1);
    assert_eq!(Tolerance::Percent(10).allowed(9), 0);
    assert_eq!(Tolerance::Percent(50).allowed(7), 3);
    assert_eq!(Tolerance::Percent(100).allowed(7), 7);
    assert_eq!(Tolerance::Percent(0).allowed(100), 0);
    assert_eq!(Tolerance::Count(4).allowed(2), 4);
}

#[test]
fn the_exit_code_follows_failures_and_stops() {
    assert_eq!(exit_code(0, None), 0);
    assert_eq!(exit_code(2, None), 1);
    assert_eq!(exit_code(1, Some(Stop::CanaryFailed { target: 0 })), 3);
    assert_eq!(exit_code(3, Some(Stop::ToleranceExceeded { failed: 3, allowed: 2 })), 3);
}

/// Every small fleet (up to 6 targets, two waves), every set of failing targets, concurrency,
/// canary and tolerance: the invariants hold.
#[test]
fn every_small_fleet_keeps_the_rules() {
    for n in 0..=6usize {
        for split in 0..=n {
            let waves: Vec<u32> = (0..n).map(|i| u32::from(i >= split)).collect();
            for failing_mask in 0..(1u32 << n) {
                let failing: Vec<usize> = (0..n).filter(|i| failing_mask & (1 << i) != 0).collect();
                for concurrency in 1..=3 {
                    for canary in [None, Some(0), Some(1), Some(2)] {
                        for tolerance in [
                            None,
                            Some(Tolerance::Count(0)),
                            Some(Tolerance::Count(1)),
                            Some(Tolerance::Percent(50)),
                        ] {
                            check(&waves, policy(concurrency, canary, tolerance), &failing);
                        }
                    }
                }
            }
        }
    }
}

fn check(waves: &[u32], p: Policy, failing: &[usize]) {
    let s = Schedule::new(waves, p);
    let (order, canary) = (s.order().to_vec(), s.canary());
    let t = simulate(waves, p, failing);
    let ctx = format!("{waves:?} {p:?} failing {failing:?}: {t:?}");
    assert!(t.peak <= p.concurrency, "{ctx}");
    // Targets start in the schedule's order, and that order never goes back a wave.
    assert_eq!(t.started, order[..t.started.len()], "{ctx}");
    assert!(order.windows(2).all(|w| waves[w[0]] <= waves[w[1]]), "{ctx}");
    // Each canary, and whatever follows it, starts with nothing else running.
    for position in 0..t.started.len().min(canary + 1) {
        assert!(t.alone[position], "{ctx}");
    }
    // A wave's first target starts alone.
    for position in 1..t.started.len() {
        if waves[order[position]] != waves[order[position - 1]] {
            assert!(t.alone[position], "{ctx}");
        }
    }
    let canary_failure = order[..canary].iter().position(|i| failing.contains(i));
    match canary_failure {
        Some(position) => {
            assert_eq!(t.started.len(), position + 1, "{ctx}");
            assert!(matches!(t.stop, Some(Stop::CanaryFailed { .. })), "{ctx}");
        }
        None => match p.tolerance.map(|tol| tol.allowed(waves.len())) {
            Some(allowed) if t.failed > allowed => {
                assert!(matches!(t.stop, Some(Stop::ToleranceExceeded { .. })), "{ctx}");
            }
            _ => {
                assert_eq!(t.started.len(), waves.len(), "{ctx}");
                assert_eq!(t.stop, None, "{ctx}");
            }
        },
    }
    let expected = if t.stop.is_some() {
        3
    } else if t.failed > 0 {
        1
    } else {
        0
    };
    assert_eq!(exit_code(t.failed, t.stop), expected, "{ctx}");
}
