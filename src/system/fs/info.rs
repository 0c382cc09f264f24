//! `system.fileinfo` and `file:info`: one value per mode character
//! (spec files.md §4). Both raise their failures.
//!
//! The job gathers only what the characters need (`statx`, `statfs`,
//! `realpath`, `readlink`) and returns the values in order, so asking for
//! all characters at once gives the same values as asking one by one.

use std::ffi::c_int;
use std::io;
use std::os::fd::AsFd;

use super::sys::{self, At, Stat, StatFs};
use super::{Reply, arg_path, arg_prefixed, perform_raising, perm};
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, Lua};

/// The characters about the file itself.
const STAT_CHARS: &[u8] = b"?M_ug#Dd*BbivasmcUGSrwxRWX421";
/// All characters of `fileinfo`.
const PATH_CHARS: &[u8] = b"?M_ug#Dd*BbivasmcUGSrwxRWX421p=@NIAFfTt";

enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    Name(&'static str),
}

struct Values(Vec<Value>);

impl Reply for Values {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        let n = c_int::try_from(self.0.len()).map_err(|_| Error::msg("stack overflow"))?;
        lua.check_stack(n)?;
        for v in self.0 {
            match v {
                Value::Nil => lua.push_nil(),
                Value::Bool(b) => lua.push_bool(b),
                Value::Int(i) => lua.push_integer(i),
                Value::Num(x) => lua.push_number(x),
                Value::Str(s) => lua.push_bytes(&s),
                Value::Name(s) => lua.push_bytes(s.as_bytes()),
            }
        }
        Ok(n)
    }
}

/// values... = system.fileinfo(path, mode)
pub fn fileinfo(lua: Lua) -> Result<Await, Error> {
    lua.arg_bytes(2)?;
    let (prefix, chars) = arg_prefixed(&lua, 2, b"~l", PATH_CHARS)?;
    let blocking = prefix.contains(&b'~');
    if !blocking {
        awaiting::require_coroutine(lua)?;
    }
    let path = arg_path(lua, 1)?;
    let nofollow = prefix.contains(&b'l');
    let chars = chars.to_vec();
    perform_raising(lua, blocking, move || {
        let path = sys::cpath(&path)?;
        let values = gather(&chars, At::Path(&path, nofollow))?;
        Ok(Box::new(Values(values)) as Box<dyn Reply>)
    })
}

/// values... = file:info(mode)
pub fn info(lua: Lua) -> Result<Await, Error> {
    let fd = super::arg_open(lua, 1)?;
    lua.arg_bytes(2)?;
    let (prefix, chars) = arg_prefixed(&lua, 2, b"~", STAT_CHARS)?;
    let blocking = !prefix.is_empty();
    if !blocking {
        awaiting::require_coroutine(lua)?;
    }
    let chars = chars.to_vec();
    perform_raising(lua, blocking, move || {
        let values = gather(&chars, At::Fd(fd.as_fd()))?;
        Ok(Box::new(Values(values)) as Box<dyn Reply>)
    })
}

/// The values of `chars` for the file at `at`; `stat` and `statfs` are
/// called at most once.
fn gather(chars: &[u8], at: At) -> io::Result<Vec<Value>> {
    let st = match chars.iter().any(|c| STAT_CHARS.contains(c)) {
        true => sys::stat(at)?,
        false => Stat::default(),
    };
    // Only `fileinfo` accepts the characters needing a path.
    let path = || match at {
        At::Path(p, _) => Ok(p),
        At::Fd(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    let mut fs: Option<StatFs> = None;
    let mut values = Vec::with_capacity(chars.len());
    for &c in chars {
        let v = match c {
            b'?' => Value::Name(sys::type_name(st.mode)),
            b'M' => Value::Int(st.mode.into()),
            b'_' | b'v' => Value::Int(0), // no user flags nor generation on Linux
            b'u' => Value::Int(st.uid.into()),
            b'g' => Value::Int(st.gid.into()),
            b'#' => Value::Int(st.ino as i64),
            b'D' => Value::Int(st.dev as i64),
            b'd' => Value::Int(st.rdev as i64),
            b'*' => Value::Int(st.nlink as i64),
            b'B' => Value::Int(st.size as i64),
            b'b' => Value::Int(st.blocks as i64),
            b'i' => Value::Int(st.blksize as i64),
            b'a' => Value::Num(st.atime),
            b's' => Value::Num(st.ctime),
            b'm' => Value::Num(st.mtime),
            b'c' => Value::Num(st.btime),
            b'p' => Value::Str(sys::realpath(path()?)?),
            b'=' => sys::readlink(path()?)?.map_or(Value::Nil, Value::Str),
            c => match perm::bit(c) {
                Some(bit) => Value::Bool(st.mode & bit != 0),
                None => {
                    if fs.is_none() {
                        fs = Some(sys::statfs(path()?)?);
                    }
                    fs_value(c, fs.as_ref().expect("just set"))
                }
            },
        };
        values.push(v);
    }
    Ok(values)
}

fn fs_value(c: u8, fs: &StatFs) -> Value {
    match c {
        b'@' => Value::Name(fs_name(fs.kind)),
        b'N' => Value::Int(fs.kind),
        b'I' => Value::Int(fs.bsize),
        b'A' => Value::Int(fs.bavail as i64),
        b'F' => Value::Int(fs.bfree as i64),
        b'f' => Value::Int(fs.ffree as i64),
        b'T' => Value::Int(fs.blocks as i64),
        _ => Value::Int(fs.files as i64),
    }
}

/// Linux file-system magic numbers and their names.
const FS_NAMES: &[(i64, &str)] = &[
    (0xadf5, "adfs"),
    (0xadff, "affs"),
    (0x5346414f, "afs"),
    (0x09041934, "anonymous"),
    (0x0187, "autofs"),
    (0x62646576, "bdevfs"),
    (0x42465331, "befs"),
    (0x1badface, "bfs"),
    (0x42494e4d, "binfmtfs"),
    (0xcafe4a11, "bpf"),
    (0x9123683e, "btrfs"),
    (0x73727279, "btrfs"),
    (0x27e0eb, "cgroup"),
    (0x63677270, "cgroup2"),
    (0xff534d42, "cifs"),
    (0x73757245, "coda"),
    (0x012ff7b7, "coh"),
    (0x28cd3d45, "cramfs"),
    (0x64626720, "debugfs"),
    (0x1373, "devfs"),
    (0x1cd1, "devpts"),
    (0xf15f, "ecryptfs"),
    (0xde5e81e4, "efivarfs"),
    (0x00414a53, "efs"),
    (0xef53, "ext4"),
    (0xef51, "ext2_old"),
    (0x137d, "ext"),
    (0xf2f52010, "f2fs"),
    (0x65735546, "fuse"),
    (0x4244, "hfs"),
    (0x00c0ffee, "hostfs"),
    (0xf995e849, "hpfs"),
    (0x958458f6, "hugetlbfs"),
    (0x9660, "isofs"),
    (0x72b6, "jffs2"),
    (0x3153464a, "jfs"),
    (0x137f, "minix"),
    (0x138f, "minix+"),
    (0x2468, "minix2"),
    (0x2478, "minix2+"),
    (0x4d5a, "minix3"),
    (0x19800202, "mqueue"),
    (0x4d44, "msdos"),
    (0x11307854, "mtd"),
    (0x564c, "ncp"),
    (0x6969, "nfs"),
    (0x3434, "nilfs"),
    (0x6e736673, "nsfs"),
    (0x5346544e, "ntfs_sb"),
    (0x7461636f, "ocfs2"),
    (0x9fa1, "openprom"),
    (0x794c7630, "overlayfs"),
    (0x50495045, "pipefs"),
    (0x9fa0, "proc"),
    (0x6165676c, "pstorefs"),
    (0x002f, "qnx4"),
    (0x68191122, "qnx6"),
    (0x858458f6, "ramfs"),
    (0x52654973, "reiserfs"),
    (0x7275, "romfs"),
    (0x73636673, "securityfs"),
    (0xf97cff8c, "selinux"),
    (0x43415d53, "smack"),
    (0xfe534d42, "smb2"),
    (0x517b, "smb"),
    (0x534f434b, "sockfs"),
    (0x73717368, "squashfs"),
    (0x62656572, "sysfs"),
    (0x012ff7b6, "sysv2"),
    (0x012ff7b5, "sysv4"),
    (0x01021994, "tmpfs"),
    (0x74726163, "tracefs"),
    (0x15013346, "udf"),
    (0x00011954, "ufs"),
    (0x9fa2, "usbdevice"),
    (0x01021997, "v9fs"),
    (0xa501fcf5, "vxfs"),
    (0xabba1974, "xenfs"),
    (0x012ff7b4, "xenix"),
    (0x58465342, "xfs"),
    (0x012fd16d, "xiafs"),
];

/// The name of file-system type `kind` (`unknown` if not listed).
fn fs_name(kind: i64) -> &'static str {
    // `f_type` is a signed word: compare its low 32 bits.
    let kind = kind & 0xffff_ffff;
    FS_NAMES
        .iter()
        .find(|&&(k, _)| k == kind)
        .map_or("unknown", |&(_, name)| name)
}
