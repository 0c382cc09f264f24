//! Unit tests of the loop: readiness and watched descriptors, worker outcomes, timer order, the pending phase, rechecks, deferred arming.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use mio::unix::SourceFd;

use super::*;

fn drain(lp: &mut Loop<&'static str>, out: &mut Vec<&'static str>) {
    while let Some(id) = lp.pop_ready() {
        out.push(*lp.waiter(id).unwrap());
        lp.finish(id);
    }
}

#[test]
fn readiness_runs_the_handler_of_the_source() {
    let mut lp = Loop::new();
    let (a, mut b) = mio::net::UnixStream::pair().unwrap();
    let id = lp.alloc("reader");
    lp.arm(id, Wait::External).unwrap();
    let handler: Handler = Rc::new(RefCell::new(Completer {
        ops: vec![id],
        calls: 0,
    }));
    let token = lp
        .register_handler(&mut SourceFd(&a.as_raw_fd()), handler)
        .unwrap();
    // the registration's own edge (writable) runs it once
    lp.poll(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    drain(&mut lp, &mut out);
    assert_eq!(out, ["reader"]);
    assert_eq!(lp.active(), 0);
    std::io::Write::write_all(&mut b, b"x").unwrap();
    lp.deregister(&mut SourceFd(&a.as_raw_fd()), token).unwrap();
}

/// A watch handler for the tests: completes its op when ready, counts
/// how often it was told it was forgotten.
struct Watcher {
    op: Option<OpId>,
    forgotten: usize,
}

impl Watcher {
    fn new() -> Rc<RefCell<Watcher>> {
        Rc::new(RefCell::new(Watcher {
            op: None,
            forgotten: 0,
        }))
    }
}

impl SourceHandler for Watcher {
    fn ready(&mut self, _: Readiness, done: &mut Completions) {
        if let Some(op) = self.op.take() {
            done.push(op, None);
        }
    }

    fn forgotten(&mut self, _: &mut Completions) {
        self.forgotten += 1;
    }
}

fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we own from here.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// `file` under the number `fd`, which was just freed: itself if the OS
/// gave it that number, else a copy made there (and `file` closed).
fn onto<F: AsRawFd + std::os::fd::FromRawFd>(file: F, fd: RawFd) -> F {
    if file.as_raw_fd() == fd {
        return file;
    }
    // SAFETY: dup3 onto the number just freed, which nothing else uses.
    unsafe {
        assert_eq!(libc::dup3(file.as_raw_fd(), fd, libc::O_CLOEXEC), fd);
        F::from_raw_fd(fd)
    }
}

/// Watches `fd` for reading for a new op of `lp`; polls once (without
/// waiting) and says whether the op completed.
fn wait_readable(lp: &mut Loop<&'static str>, fd: RawFd, w: &Rc<RefCell<Watcher>>) -> bool {
    wait_readable_token(lp, fd, w).0
}

/// [`wait_readable`], also giving the watch's token.
fn wait_readable_token(
    lp: &mut Loop<&'static str>,
    fd: RawFd,
    w: &Rc<RefCell<Watcher>>,
) -> (bool, Token) {
    let id = lp.alloc("watch");
    lp.arm(id, Wait::External).unwrap();
    w.borrow_mut().op = Some(id);
    let token = lp.watch_fd(fd, Interest::READABLE, w.clone()).unwrap();
    lp.poll(Some(Duration::ZERO)).unwrap();
    let mut out = Vec::new();
    drain(lp, &mut out);
    if out.is_empty() {
        lp.cancel(id);
        lp.close_pending();
        w.borrow_mut().op = None;
    }
    (!out.is_empty(), token)
}

#[test]
fn watches_report_readiness_present_at_each_wait() {
    let mut lp = Loop::new();
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    let watcher = Watcher::new();
    assert!(!wait_readable(&mut lp, fd, &watcher));
    std::io::Write::write_all(&mut std::fs::File::from(w.try_clone().unwrap()), b"x").unwrap();
    assert!(wait_readable(&mut lp, fd, &watcher));
    // Edge-triggered, but nothing was read: the next wait sees it again.
    assert!(wait_readable(&mut lp, fd, &watcher));
    let mut byte = [0u8];
    std::io::Read::read_exact(&mut std::fs::File::from(r.try_clone().unwrap()), &mut byte).unwrap();
    assert!(!wait_readable(&mut lp, fd, &watcher));
    assert!(lp.watcher(fd).is_some());
    assert_eq!(lp.active(), 0);
}

#[test]
fn a_watched_number_taken_by_a_source_is_forgotten_not_removed() {
    let mut lp = Loop::new();
    let watcher = Watcher::new();
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    let (ready, token) = wait_readable_token(&mut lp, fd, &watcher);
    assert!(!ready);
    // Its owner closes it; one of our sockets gets the number.
    drop(r);
    let (a, mut b) = mio::net::UnixStream::pair().unwrap();
    let moved = onto(a, fd);
    let id = lp.alloc("socket");
    lp.arm(id, Wait::External).unwrap();
    let handler: Handler = Rc::new(RefCell::new(Completer {
        ops: vec![id],
        calls: 0,
    }));
    let source = lp.register_handler(&mut SourceFd(&fd), handler).unwrap();
    assert_eq!(watcher.borrow().forgotten, 1);
    assert!(lp.watcher(fd).is_none());
    // A late unwatch of the old watch leaves the socket registered.
    lp.unwatch_fd(fd, token);
    std::io::Write::write_all(&mut b, b"x").unwrap();
    let mut out = Vec::new();
    for _ in 0..100 {
        lp.poll(Some(Duration::from_millis(50))).unwrap();
        drain(&mut lp, &mut out);
        if !out.is_empty() {
            break;
        }
    }
    assert_eq!(out, ["socket"]);
    lp.deregister(&mut SourceFd(&fd), source).unwrap();
    drop((moved, w));
}

#[test]
fn watching_a_reopened_number_registers_the_new_file() {
    let mut lp = Loop::new();
    let watcher = Watcher::new();
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    assert!(!wait_readable(&mut lp, fd, &watcher));
    drop((r, w));
    // Another pipe at the same number, with data.
    let (r2, w2) = pipe();
    let r2 = onto(r2, fd);
    std::io::Write::write_all(&mut std::fs::File::from(w2), b"x").unwrap();
    assert!(wait_readable(&mut lp, fd, &watcher));
    // Not a number any more: the watch fails and is dropped.
    drop(r2);
    let id = lp.alloc("watch");
    lp.arm(id, Wait::External).unwrap();
    let e = lp
        .watch_fd(fd, Interest::READABLE, watcher.clone())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    assert!(lp.watcher(fd).is_none());
    lp.cancel(id);
    lp.close_pending();
}

#[test]
fn worker_outcome_reaches_the_loop() {
    let mut lp = Loop::new();
    let id = lp.alloc("job");
    lp.arm(id, Wait::Work(Box::new(|| Box::new(6 * 7) as Outcome)))
        .unwrap();
    let mut got = None;
    for _ in 0..100 {
        lp.poll(Some(Duration::from_millis(50))).unwrap();
        if let Some(id) = lp.pop_ready() {
            got = lp
                .take_delivery(id, |_| ())
                .and_then(|(_, o)| o)
                .and_then(|o| o.downcast::<i32>().ok());
            lp.finish(id);
            break;
        }
    }
    assert_eq!(got.map(|b| *b), Some(42));
}

#[test]
fn cancelled_job_result_is_discarded() {
    let mut lp: Loop<&str> = Loop::new();
    let id = lp.alloc("job");
    lp.arm(id, Wait::Work(Box::new(|| Box::new(()) as Outcome)))
        .unwrap();
    assert!(lp.cancel(id));
    assert_eq!(lp.close_pending(), ["job"]);
    lp.poll(Some(Duration::from_millis(200))).unwrap();
    assert!(lp.pop_ready().is_none());
    assert_eq!(lp.active(), 0);
}

#[test]
fn timers_fire_by_due_time_then_arming_order() {
    let mut lp = Loop::new();
    for (name, ms) in [("b", 2), ("a", 1), ("c", 2)] {
        let id = lp.alloc(name);
        lp.arm(id, Wait::Timer(ms)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(3));
    lp.update_time();
    let mut order = Vec::new();
    while let Some(id) = lp.pop_timer() {
        order.push(*lp.waiter(id).unwrap());
        lp.finish(id);
    }
    assert_eq!(order, ["a", "b", "c"]);
}

/// A source handler completing given ops, counting its calls.
struct Completer {
    ops: Vec<OpId>,
    calls: usize,
}

impl SourceHandler for Completer {
    fn ready(&mut self, _: Readiness, done: &mut Completions) {
        self.calls += 1;
        for &op in &self.ops {
            done.push(op, None);
        }
    }
}

fn pending_pass(lp: &mut Loop<&'static str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    lp.begin_pending();
    while let Some(id) = lp.pop_pending() {
        out.push(*lp.waiter(id).unwrap());
        lp.finish(id);
    }
    out
}

#[test]
fn pending_phase_delivers_in_call_order_what_was_queued_before_it() {
    let mut lp = Loop::new();
    let a = lp.alloc("a");
    lp.arm(a, Wait::External).unwrap();
    let b = lp.alloc("b");
    lp.arm(b, Wait::External).unwrap();
    let c = lp.alloc("c");
    lp.arm(c, Wait::External).unwrap();
    lp.complete_later(b, None);
    let handler: Handler = Rc::new(RefCell::new(Completer {
        ops: vec![c],
        calls: 0,
    }));
    lp.pend_source(handler.clone(), Readiness::default());
    lp.complete_later(a, None);
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
    assert!(lp.pop_ready().is_none(), "not ready for the poll phase");
    // the handler's completion comes at its place in the queue
    assert_eq!(pending_pass(&mut lp), ["b", "c", "a"]);
    assert_eq!(lp.active(), 0);
}

#[test]
fn cancelled_pending_op_is_skipped_even_when_armed_again() {
    let mut lp = Loop::new();
    let a = lp.alloc("a");
    lp.arm(a, Wait::External).unwrap();
    lp.complete_later(a, None);
    assert!(lp.cancel(a));
    lp.defer(a, Wait::External); // waits again before the closing phase
    assert!(lp.close_pending().is_empty());
    assert!(pending_pass(&mut lp).is_empty(), "stale entry delivered");
    assert_eq!(lp.active(), 1);
}

#[test]
fn completions_queued_during_the_pending_pass_wait_for_the_next() {
    let mut lp = Loop::new();
    let a = lp.alloc("a");
    lp.arm(a, Wait::External).unwrap();
    lp.complete_later(a, None);
    lp.begin_pending();
    let id = lp.pop_pending().unwrap();
    // delivered, it writes again (same op re-armed and completed)
    lp.arm(id, Wait::External).unwrap();
    lp.complete_later(id, None);
    assert!(lp.pop_pending().is_none());
    assert!(lp.finish(id).is_none(), "armed again: not released");
    assert_eq!(pending_pass(&mut lp), ["a"]);
}

#[test]
fn rechecks_run_handlers_after_the_poll_in_rounds() {
    let mut lp = Loop::new();
    let a = lp.alloc("a");
    lp.arm(a, Wait::External).unwrap();
    let completer = Rc::new(RefCell::new(Completer {
        ops: vec![a],
        calls: 0,
    }));
    let handler: Handler = completer.clone();
    lp.recheck(handler, Readiness::default());
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
    assert!(lp.pop_ready().is_none());
    assert!(lp.run_rechecks());
    assert_eq!(completer.borrow().calls, 1);
    let mut out = Vec::new();
    drain(&mut lp, &mut out);
    assert_eq!(out, ["a"]);
    assert!(!lp.run_rechecks(), "each recheck runs once");
}

#[test]
fn deferred_arming_waits_for_the_cancelled_job() {
    let mut lp: Loop<&str> = Loop::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let id = lp.alloc("job");
    let job = move || {
        let _ = rx.recv();
        Box::new(1) as Outcome
    };
    lp.arm(id, Wait::Work(Box::new(job))).unwrap();
    assert!(lp.cancel(id));
    // the same coroutine waits again, twice cancelled in between
    lp.defer(id, Wait::External);
    assert!(lp.cancel(id));
    assert_eq!(lp.find_closing(|w| *w == "job"), Some(id));
    lp.defer(id, Wait::External);
    assert!(lp.close_pending().is_empty());
    assert!(lp.is_closing(id), "armed while its old job runs");
    assert_eq!(lp.find_closing(|w| *w == "job"), Some(id));
    tx.send(()).unwrap();
    for _ in 0..100 {
        lp.poll(Some(Duration::from_millis(50))).unwrap();
        lp.close_pending();
        if !lp.is_closing(id) {
            break;
        }
    }
    assert!(!lp.is_closing(id), "armed once the job reported");
    assert!(lp.pop_ready().is_none(), "the old job's outcome is dropped");
}

#[test]
fn completion_before_a_deferred_arming_is_kept() {
    // A socket's handler may wake a wait registered again right after
    // the previous one was cancelled, before the closing phase arms it.
    let mut lp: Loop<&str> = Loop::new();
    let id = lp.alloc("reader");
    lp.arm(id, Wait::External).unwrap();
    assert!(lp.cancel(id));
    lp.defer(id, Wait::External);
    lp.complete(id, None);
    assert!(lp.pop_ready().is_none());
    assert!(lp.close_pending().is_empty());
    assert_eq!(lp.pop_ready(), Some(id));
}

#[test]
fn rearm_during_delivery_keeps_the_idle_place_and_makes_the_op_strong() {
    let mut lp = Loop::new();
    let a = lp.alloc("a");
    lp.arm(a, Wait::Idle).unwrap();
    let b = lp.alloc("b");
    lp.arm(b, Wait::Idle).unwrap();
    lp.set_weak(b, true);
    assert_eq!((lp.active(), lp.weak()), (1, 1));
    lp.begin_idle();
    assert_eq!(lp.pop_idle(), Some(b), "newest first");
    // another coroutine's await does not take it: the wait comes back
    assert!(matches!(
        lp.rearm_delivering(b, |w| *w == "a", |_| {}, Wait::Idle),
        Err(Wait::Idle)
    ));
    assert!(
        matches!(
            lp.rearm_delivering(a, |_| true, |_| {}, Wait::Idle),
            Err(Wait::Idle)
        ),
        "not being delivered"
    );
    assert!(matches!(
        lp.rearm_delivering(b, |w| *w == "b", |w| *w = "b2", Wait::Idle),
        Ok(Ok(()))
    ));
    assert_eq!((lp.active(), lp.weak()), (2, 0));
    assert_eq!(lp.finish(b), None, "armed again");
    assert_eq!(lp.pop_idle(), Some(a));
    lp.finish(a);
    lp.begin_idle();
    assert_eq!(lp.pop_idle(), Some(b), "kept its place");
    assert_eq!(lp.waiter(b), Some(&"b2"));
}
