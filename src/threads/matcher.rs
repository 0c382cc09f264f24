//! The process-wide channel matcher (spec threads.md §3, "Matching").
//!
//! Every channel name of every state lives here, in one table guarded by one
//! global `Mutex`: matching a newcomer against the waiters of a name is a
//! single critical section, whichever threads and states take part. Names
//! are grouped by *domain*: a state and the independent states created
//! from it, recursively, share one domain (see `super::domain_of`).
//!
//! A waiter holds the values it offers (already copied out of its state)
//! and a `wake` closure that receives the peer's values. Wake closures run
//! under the lock, so they only post (to a loop's inbox, or a pool queue,
//! whose locks are always taken after this one) and never touch a Lua
//! state; what they must discard (a task woken in a freed pool) they
//! return, and it is dropped once the lock is released, like the waiters
//! removed without being matched, which are returned to the caller
//! (dropping a suspended task closes its Lua state, which may run
//! finalizers using channels).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::transfer::Value;

/// Identifies a family of states sharing channel names.
pub type Domain = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Any,
    In,
    Out,
}

impl Endpoint {
    /// Can a newcomer at `self` be matched with a queue whose first waiter
    /// waits at `waiter`? `in`/`out` match each other; `any` matches all.
    fn accepts(self, waiter: Endpoint) -> bool {
        self == Endpoint::Any || waiter == Endpoint::Any || self != waiter
    }
}

/// Receives the peer's values when the waiter is matched; returns what
/// must be dropped without the matcher's lock, if anything.
pub type Wake = Box<dyn FnOnce(Vec<Value>) -> Option<Discard> + Send>;

/// Something to drop after the matcher's lock is released.
pub type Discard = Box<dyn Send>;

/// A waiter taken out of a queue unmatched: its `Pending` and the values
/// it offered (which may own moved objects, so they are dropped, or given
/// back, without the matcher's lock).
pub type Removed = (Pending, Vec<Value>);

/// What a caller leaves in a queue when it must wait.
pub struct Pending {
    /// Unique key (see [`next_key`]) to remove the waiter later.
    pub key: u64,
    /// The waiter keeps its name existing while queued (suspended tasks;
    /// coroutines are counted through their channel object instead).
    pub counted: bool,
    pub wake: Wake,
}

struct Waiter {
    endpoint: Endpoint,
    values: Vec<Value>,
    pending: Pending,
}

#[derive(Default)]
struct Entry {
    /// Open channel objects and queued counted waiters using the name.
    refs: usize,
    /// FIFO; all waiters share one endpoint (a compatible newcomer is
    /// matched instead of being queued), so the first tells what the
    /// queue expects from a peer.
    queue: VecDeque<Waiter>,
}

type Names = BTreeMap<Domain, BTreeMap<Box<[u8]>, Entry>>;

static NAMES: Mutex<Names> = Mutex::new(BTreeMap::new());
static KEYS: AtomicU64 = AtomicU64::new(1);

fn lock() -> MutexGuard<'static, Names> {
    // A panic under the lock leaves the table consistent enough: every
    // operation below finishes its changes before calling out.
    NAMES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new waiter key (never 0).
pub fn next_key() -> u64 {
    KEYS.fetch_add(1, Ordering::Relaxed)
}

/// Drops the entry of `name` once nothing uses it.
fn tidy(names: &mut Names, domain: Domain, name: &[u8]) {
    if let Some(d) = names.get_mut(&domain) {
        if d.get(name)
            .is_some_and(|e| e.refs == 0 && e.queue.is_empty())
        {
            d.remove(name);
        }
        if d.is_empty() {
            names.remove(&domain);
        }
    }
}

/// The result of [`exchange`].
pub enum Exchanged {
    /// Matched with a waiter, which received our values: its values.
    Matched(Vec<Value>),
    /// The given `Pending` was queued, or was woken at once.
    Queued,
    /// No compatible waiter and nothing to queue: our values back.
    Empty(Vec<Value>),
}

/// Matches a newcomer at `endpoint` offering `values` with the oldest
/// compatible waiter of `name`. Without a match, `queue` (if any) is
/// queued. When both a match exists and `queue` is given, the queued
/// caller is woken at once with the peer's values.
pub fn exchange(
    domain: Domain,
    name: &[u8],
    endpoint: Endpoint,
    values: Vec<Value>,
    queue: Option<Pending>,
) -> Exchanged {
    let mut names = lock();
    let entry = names.get_mut(&domain).and_then(|d| d.get_mut(name));
    let matched = match entry {
        Some(e)
            if e.queue
                .front()
                .is_some_and(|w| endpoint.accepts(w.endpoint)) =>
        {
            let w = e.queue.pop_front().expect("front exists");
            if w.pending.counted {
                e.refs -= 1;
            }
            Some(w)
        }
        _ => None,
    };
    match (matched, queue) {
        (Some(w), queue) => {
            tidy(&mut names, domain, name);
            let discard = (w.pending.wake)(values);
            let (result, discard2) = match queue {
                Some(p) => (Exchanged::Queued, (p.wake)(w.values)),
                None => (Exchanged::Matched(w.values), None),
            };
            drop(names);
            drop((discard, discard2));
            result
        }
        (None, Some(pending)) => {
            let e = names
                .entry(domain)
                .or_default()
                .entry(name.into())
                .or_default();
            if pending.counted {
                e.refs += 1;
            }
            e.queue.push_back(Waiter {
                endpoint,
                values,
                pending,
            });
            Exchanged::Queued
        }
        (None, None) => Exchanged::Empty(values),
    }
}

/// A channel object of `name` was created.
pub fn retain(domain: Domain, name: &[u8]) {
    let mut names = lock();
    let e = names
        .entry(domain)
        .or_default()
        .entry(name.into())
        .or_default();
    e.refs += 1;
}

/// A channel object of `name` was closed or collected; its waiter `key`
/// (if still queued) is removed and returned, to be dropped by the caller.
pub fn release(domain: Domain, name: &[u8], key: Option<u64>) -> Option<Removed> {
    let mut names = lock();
    let removed = key.and_then(|k| take(&mut names, domain, name, k));
    if let Some(e) = names.get_mut(&domain).and_then(|d| d.get_mut(name)) {
        e.refs = e.refs.saturating_sub(1);
    }
    tidy(&mut names, domain, name);
    removed
}

/// Removes the waiter `key` of `name` if it is still queued (not matched).
pub fn remove(domain: Domain, name: &[u8], key: u64) -> Option<Removed> {
    let mut names = lock();
    let removed = take(&mut names, domain, name, key);
    tidy(&mut names, domain, name);
    removed
}

fn take(names: &mut Names, domain: Domain, name: &[u8], key: u64) -> Option<Removed> {
    let e = names.get_mut(&domain)?.get_mut(name)?;
    let at = e.queue.iter().position(|w| w.pending.key == key)?;
    let w = e.queue.remove(at)?;
    if w.pending.counted {
        e.refs -= 1;
    }
    Some((w.pending, w.values))
}

/// The names of `domain` that exist (used by a channel object or a
/// queued waiter).
pub fn names(domain: Domain) -> Vec<Box<[u8]>> {
    let names = lock();
    names
        .get(&domain)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// Does `name` exist in `domain`?
pub fn exists(domain: Domain, name: &[u8]) -> bool {
    lock().get(&domain).is_some_and(|d| d.contains_key(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type Log = Arc<Mutex<Vec<(u64, Vec<Value>)>>>;

    fn pending(log: &Log, key: u64) -> Pending {
        let log = log.clone();
        Pending {
            key,
            counted: true,
            wake: Box::new(move |v| {
                log.lock().unwrap().push((key, v));
                None
            }),
        }
    }

    #[test]
    fn fifo_matching_follows_endpoint_rules() {
        let d = 1 << 40;
        let log = Arc::new(Mutex::new(Vec::new()));
        let v = |n| vec![Value::Int(n)];
        for (k, ep) in [(1, Endpoint::In), (2, Endpoint::In)] {
            assert!(matches!(
                exchange(d, b"x", ep, v(k as i64), Some(pending(&log, k))),
                Exchanged::Queued
            ));
        }
        assert!(exists(d, b"x"));
        // in/in does not match
        assert!(matches!(
            exchange(d, b"x", Endpoint::In, v(9), None),
            Exchanged::Empty(_)
        ));
        // out matches the oldest
        match exchange(d, b"x", Endpoint::Out, v(3), None) {
            Exchanged::Matched(vals) => assert_eq!(vals, v(1)),
            _ => panic!("no match"),
        }
        match exchange(d, b"x", Endpoint::Any, v(4), None) {
            Exchanged::Matched(vals) => assert_eq!(vals, v(2)),
            _ => panic!("no match"),
        }
        assert_eq!(*log.lock().unwrap(), [(1, v(3)), (2, v(4))]);
        assert!(!exists(d, b"x"));
    }

    #[test]
    fn removed_waiters_are_not_matched() {
        let d = 1 << 41;
        let log = Arc::new(Mutex::new(Vec::new()));
        exchange(d, b"", Endpoint::Any, vec![], Some(pending(&log, 7)));
        assert!(remove(d, b"", 7).is_some());
        assert!(matches!(
            exchange(d, b"", Endpoint::Any, vec![], None),
            Exchanged::Empty(_)
        ));
        assert!(names(d).is_empty());
    }
}
