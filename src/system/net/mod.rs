//! Network and IPC (spec/network.md): addresses, name resolution and
//! sockets. Each area lists its `coutil.system` functions in `FUNCTIONS`.

pub mod address;
mod awaits;
pub mod class;
mod netio;
mod options;
mod passive;
mod pipedgram;
pub mod resolve;
pub mod share;
pub mod socket;
mod stream;
mod sys;
pub mod terminal;
mod udp;

use crate::lua::Reg;

/// The `coutil.system` functions of the network areas.
pub const AREAS: &[&[Reg]] = &[address::FUNCTIONS, resolve::FUNCTIONS, socket::FUNCTIONS];
