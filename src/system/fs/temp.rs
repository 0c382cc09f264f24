//! `system.maketemp`: a new directory or file with an unpredictable name.
//!
//! The name is the prefix plus 6 characters from `[A-Za-z0-9]` drawn from
//! the kernel's random source; the directory (`mkdir`, mode 0700) or file
//! (`open` with `O_CREAT | O_EXCL`, mode 0600) is created atomically and
//! another name is drawn when one exists, as `mkdtemp`/`mkstemp` do. The
//! file is opened read/write and close-on-exec; without `o` it is closed.

use std::ffi::c_int;
use std::io;
use std::os::fd::OwnedFd;

use super::path::start;
use super::{Reply, perform, sys};
use crate::lua::awaiting::Await;
use crate::lua::{Error, Lua};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ATTEMPTS: usize = 100;

struct Made {
    path: Vec<u8>,
    file: Option<OwnedFd>,
    /// The `f`/`o` characters of the mode, in order.
    order: Vec<u8>,
}

impl Reply for Made {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        if self.order.is_empty() {
            lua.push_bytes(&self.path);
            return Ok(1);
        }
        let n = c_int::try_from(self.order.len()).map_err(|_| Error::msg("stack overflow"))?;
        lua.check_stack(n)?;
        let mut file_at = None;
        let mut fd = self.file;
        for &c in &self.order {
            if c == b'f' {
                lua.push_bytes(&self.path);
            } else if let Some(at) = file_at {
                lua.push_value(at);
            } else if let Some(fd) = fd.take() {
                super::file::push(lua, fd);
                file_at = Some(lua.top());
            }
        }
        Ok(n)
    }
}

/// path | file... | false, msg, code = system.maketemp(prefix [, mode])
pub fn maketemp(lua: Lua) -> Result<Await, Error> {
    let mode = lua.opt_bytes(2)?.unwrap_or_default();
    let tildes = mode.iter().take_while(|&&c| c == b'~').count();
    let order = &mode[tildes..];
    for &c in order {
        match c {
            b'f' | b'o' => {}
            b'~' => return Err(Error::arg(2, "'~' must be in the begin of 'mode'")),
            c => return Err(Error::mode_char(2, c)),
        }
    }
    let blocking = tildes > 0;
    start(lua, blocking)?;
    let prefix = lua.arg_bytes(1)?;
    if prefix.len() >= 250 {
        return Err(Error::arg(1, "too long"));
    }
    let (prefix, order) = (prefix.to_vec(), order.to_vec());
    perform(lua, blocking, move || {
        let (path, file) = make(prefix, !order.is_empty())?;
        let file = match order.contains(&b'o') {
            true => file,
            false => {
                file.map(sys::close).transpose()?;
                None
            }
        };
        Ok(Box::new(Made { path, file, order }) as Box<dyn Reply>)
    })
}

/// Creates `prefix` + 6 random characters: a file (opened) or directory.
fn make(mut path: Vec<u8>, file: bool) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let base = path.len();
    for _ in 0..ATTEMPTS {
        path.truncate(base);
        path.extend(random_name()?);
        let cpath = sys::cpath(&path)?;
        let made = match file {
            true => {
                let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
                sys::open(&cpath, flags, 0o600).map(Some)
            }
            false => sys::mkdir(&cpath, 0o700).map(|()| None),
        };
        match made {
            Ok(fd) => return Ok((path, fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

/// Six characters of [`ALPHABET`], uniformly drawn.
fn random_name() -> io::Result<[u8; 6]> {
    let mut name = [0u8; 6];
    let mut filled = 0;
    let mut bytes = [0u8; 16];
    while filled < name.len() {
        sys::random(&mut bytes)?;
        // 248 = 4 * 62: rejecting larger bytes avoids a bias.
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if filled < name.len() {
                name[filled] = ALPHABET[(b % 62) as usize];
                filled += 1;
            }
        }
    }
    Ok(name)
}
