//! `coutil:terminal` objects (spec/stdio-info.md §1): a terminal device
//! read and written like a stream socket, plus `setmode` and `winsize`.
//!
//! A terminal is a socket object of its own class (`socket::TERMINAL`): its
//! [`Core`](super::netio::Core) reads and writes the non-blocking
//! descriptor with `read(2)`/`write(2)` and the loop, as for pipes, so
//! reads, queued writes, cancellation and `close` behave as for stream
//! sockets (`netio`, `awaits`). What differs:
//! * `shutdown` only waits for the queued writes (a terminal has no
//!   half-close of its own); afterwards writes fail with `broken pipe`
//!   and another `shutdown` with `socket is not connected`, as for
//!   streams;
//! * a terminal whose mode was changed is set back to the attributes it
//!   had before when it is closed (also by collection).

use std::os::fd::{AsRawFd, OwnedFd};

use socket2::Socket;

use super::class::{self, TERMINAL, this};
use super::netio::Domain;
use crate::lua::{Lua, Ret, fail};
use crate::system::errno::errno;

/// Pushes a terminal object owning `fd` (made non-blocking and registered
/// with the state's loop).
pub fn push(lua: Lua, fd: OwnedFd) -> std::io::Result<()> {
    let sock = Socket::from(fd);
    sock.set_nonblocking(true)?;
    class::push(lua, sock, TERMINAL, Domain::Local, false, true)
}

/// true | false, msg, code = term:setmode(mode)
pub fn setmode(lua: Lua) -> Ret {
    let core = this::<TERMINAL>(lua)?;
    let mode = lua.arg_option(2, &["normal", "raw", "binary"], None)?;
    let mut c = core.borrow_mut();
    let fd = c.raw();
    // SAFETY: termios calls on our descriptor with local structures.
    unsafe {
        let mut current: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut current) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        let original = c.saved_mode.unwrap_or(current);
        let mut attrs = original;
        match mode {
            0 => {}
            1 => {
                attrs.c_iflag &=
                    !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
                attrs.c_oflag |= libc::ONLCR;
                attrs.c_cflag |= libc::CS8;
                attrs.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
                attrs.c_cc[libc::VMIN] = 1;
                attrs.c_cc[libc::VTIME] = 0;
            }
            _ => {
                libc::cfmakeraw(&mut attrs);
                attrs.c_cc[libc::VMIN] = 1;
                attrs.c_cc[libc::VTIME] = 0;
            }
        }
        if libc::tcsetattr(fd, libc::TCSADRAIN, &attrs) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        c.saved_mode = if mode == 0 { None } else { Some(original) };
    }
    lua.push_bool(true);
    Ok(1)
}

/// width, height | false, msg, code = term:winsize()
pub fn winsize(lua: Lua) -> Ret {
    let core = this::<TERMINAL>(lua)?;
    // SAFETY: TIOCGWINSZ fills a local winsize.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(core.borrow().sock().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        ws
    };
    lua.push_integer(ws.ws_col as i64);
    lua.push_integer(ws.ws_row as i64);
    Ok(2)
}
