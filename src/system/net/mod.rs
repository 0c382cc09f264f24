//! Network and IPC (spec/network.md): addresses, name resolution and
//! sockets. Each area lists its `coutil.system` functions in `FUNCTIONS`.

pub mod address;
pub mod resolve;

use crate::lua::Reg;

/// The `coutil.system` functions of the network areas.
pub const AREAS: &[&[Reg]] = &[address::FUNCTIONS, resolve::FUNCTIONS];
