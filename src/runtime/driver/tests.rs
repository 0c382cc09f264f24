//! Unit tests of the driver: one per rule of the iteration order.

use super::*;

/// A host recording what it delivers and acting on it with `on`.
struct Recorder<'a> {
    driver: &'a Driver<&'static str>,
    log: Vec<&'static str>,
    on: fn(&Driver<&'static str>, OpId, &'static str),
}

impl Host<&'static str> for Recorder<'_> {
    fn deliver(&mut self, id: OpId) {
        let name = self.driver.waiter(id).unwrap();
        self.log.push(name);
        (self.on)(self.driver, id, name);
        self.driver.finish(id);
    }
    fn park(&mut self, _: usize) -> bool {
        false
    }
    fn sweep(&mut self, _: &mut Option<Duration>) {}
    fn closing(&mut self, _: Vec<&'static str>) {}
}

fn recorder<'a>(driver: &'a Driver<&'static str>) -> Recorder<'a> {
    Recorder {
        driver,
        log: Vec::new(),
        on: |_, _, _| {},
    }
}

fn armed(driver: &Driver<&'static str>, name: &'static str, wait: Wait) -> OpId {
    let id = driver.alloc(name);
    driver.arm(id, wait).unwrap();
    id
}

#[test]
fn timers_then_pending_then_idle_then_ready() {
    let d = Driver::default();
    armed(&d, "idle", Wait::Idle);
    let later = armed(&d, "pending", Wait::External);
    d.complete_later(later, None);
    let now = armed(&d, "ready", Wait::External);
    d.complete(now, None);
    armed(&d, "timer", Wait::Timer(0));
    let mut host = recorder(&d);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["timer", "pending", "idle", "ready"]);
}

#[test]
fn idle_waits_run_newest_first_and_keep_their_place() {
    let d = Driver::default();
    for name in ["1", "2", "3"] {
        armed(&d, name, Wait::Idle);
    }
    let mut host = recorder(&d);
    host.on = |d, id, _| d.arm(id, Wait::Idle).unwrap(); // waits again
    for _ in 0..3 {
        d.iterate(Mode::Ready, &mut host).unwrap();
    }
    assert_eq!(host.log.concat(), "321321321");
}

#[test]
fn work_queued_during_a_phase_waits_for_the_next_iteration() {
    let d = Driver::default();
    let id = armed(&d, "w", Wait::External);
    d.complete_later(id, None);
    let mut host = recorder(&d);
    // each delivery writes again: one write per iteration
    host.on = |d, id, _| {
        d.arm(id, Wait::External).unwrap();
        d.complete_later(id, None);
    };
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["w"]);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["w", "w"]);
}

#[test]
fn a_wait_started_after_a_cancel_is_armed_at_the_end_of_the_iteration() {
    let d = Driver::default();
    let x = armed(&d, "x", Wait::Idle);
    armed(&d, "other", Wait::Idle);
    assert!(d.cancel(x));
    d.defer(x, Wait::Idle); // waits again right away
    let mut host = recorder(&d);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["other"]);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["other", "x"]);
}

#[test]
fn step_blocks_until_a_timer_and_runs_it() {
    let d = Driver::default();
    armed(&d, "t", Wait::Timer(2));
    let mut host = recorder(&d);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert!(host.log.is_empty(), "not due yet");
    d.iterate(Mode::Step, &mut host).unwrap();
    assert_eq!(host.log, ["t"]);
    assert_eq!(d.active(), 0);
}

#[test]
fn step_does_not_block_once_something_was_delivered() {
    let d = Driver::default();
    armed(&d, "idle", Wait::Idle);
    armed(&d, "t", Wait::Timer(60_000));
    let mut host = recorder(&d);
    let start = std::time::Instant::now();
    d.iterate(Mode::Step, &mut host).unwrap();
    assert_eq!(host.log, ["idle"]);
    assert!(start.elapsed() < Duration::from_secs(30));
}

/// Completes its op in `Completions::last` (a connect) or first.
struct Source {
    op: Option<OpId>,
    last: bool,
}

impl super::super::SourceHandler for Source {
    fn ready(&mut self, _: Readiness, done: &mut super::super::Completions) {
        if let Some(op) = self.op.take() {
            if self.last {
                done.push_last(op, None);
            } else {
                done.push(op, None);
            }
        }
    }
}

#[test]
fn rechecks_after_the_poll_connects_last() {
    let d = Driver::default();
    let connect = armed(&d, "connect", Wait::External);
    let accept = armed(&d, "accept", Wait::External);
    let connector: Handler = std::rc::Rc::new(std::cell::RefCell::new(Source {
        op: Some(connect),
        last: true,
    }));
    let listener: Handler = std::rc::Rc::new(std::cell::RefCell::new(Source {
        op: Some(accept),
        last: false,
    }));
    d.recheck(connector, Readiness::default());
    d.recheck(listener, Readiness::default());
    let idle = armed(&d, "idle", Wait::Idle);
    let mut host = recorder(&d);
    d.iterate(Mode::Ready, &mut host).unwrap();
    assert_eq!(host.log, ["idle", "accept", "connect"]);
    let _ = idle;
}

#[test]
fn the_host_may_park_before_an_unlimited_poll() {
    struct Parker;
    impl Host<&'static str> for Parker {
        fn deliver(&mut self, _: OpId) {}
        fn park(&mut self, active: usize) -> bool {
            active == 1
        }
        fn sweep(&mut self, _: &mut Option<Duration>) {}
        fn closing(&mut self, _: Vec<&'static str>) {}
    }
    let d = Driver::default();
    armed(&d, "channel", Wait::External);
    assert!(d.iterate(Mode::Loop, &mut Parker).unwrap());
}
