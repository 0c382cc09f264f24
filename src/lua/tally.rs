//! Open objects by class, per state, for `coutil.await.stats`: an object
//! holding an OS resource keeps a [`Tally`] while the resource is open;
//! making it counts one, dropping it (closing or collecting the object)
//! counts one less. Nothing is scanned.

use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

use super::Lua;
use super::awaiting::state_loop;

/// Counts by class name, shared by the state's loop and its tallies.
#[derive(Default)]
pub struct Tallies(RefCell<Vec<(&'static CStr, i64)>>);

impl Tallies {
    fn add(&self, name: &'static CStr, n: i64) {
        let mut counts = self.0.borrow_mut();
        match counts.iter_mut().find(|(c, _)| std::ptr::eq(*c, name)) {
            Some((_, count)) => *count += n,
            None => counts.push((name, n)),
        }
    }

    /// The classes with open objects now, and how many.
    pub fn open(&self) -> Vec<(&'static CStr, i64)> {
        self.0
            .borrow()
            .iter()
            .filter(|(_, n)| *n > 0)
            .copied()
            .collect()
    }
}

/// One open object of class `name` (its `__name`).
pub struct Tally {
    of: Rc<Tallies>,
    name: &'static CStr,
}

impl Tally {
    pub fn new(lua: Lua, name: &'static CStr) -> Tally {
        let of = state_loop(&lua).tallies();
        of.add(name, 1);
        Tally { of, name }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.of.add(self.name, -1);
    }
}
