//! `system.cpuinfo([which])`: an iterator over the processors.
//!
//! Times come from the `cpuN` lines of `/proc/stat` (clock ticks made
//! milliseconds), models and speeds from `/proc/cpuinfo`, the current
//! speed from cpufreq's `scaling_cur_freq` where it exists, as libuv.

use super::{Entry, Snapshot, call, check_which, close, len, os_error, push_iterator};
use crate::cfn;
use crate::lua::class::{Class, Object};
use crate::lua::{Error, Lua, Ret, fail};

#[derive(Clone)]
struct Cpu {
    model: Vec<u8>,
    speed: i64,
    user: i64,
    nice: i64,
    sys: i64,
    irq: i64,
    idle: i64,
}

impl Entry for Cpu {
    fn known(c: u8) -> bool {
        b"mcunsdi".contains(&c)
    }
    fn push(&self, lua: Lua, c: u8) {
        match c {
            b'm' => lua.push_bytes(&self.model),
            b'c' => lua.push_integer(self.speed),
            b'u' => lua.push_integer(self.user),
            b'n' => lua.push_integer(self.nice),
            b's' => lua.push_integer(self.sys),
            b'd' => lua.push_integer(self.irq),
            _ => lua.push_integer(self.idle),
        }
    }
}

impl Object for Snapshot<Cpu> {
    const CLASS: &'static Class = &Class {
        name: c"coutil:cpustats",
        methods: &[],
        meta: &[
            (c"__call", cfn!(call::<Cpu>)),
            (c"__len", cfn!(len::<Cpu>)),
            (c"__close", cfn!(close::<Cpu>)),
        ],
    };

    crate::class_key!();
}

/// Model and speed (MHz) of each processor number, from `/proc/cpuinfo`.
fn cpu_models() -> Vec<(usize, Vec<u8>, i64)> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cpus: Vec<(usize, Vec<u8>, i64)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => {
                if let Ok(n) = value.parse() {
                    cpus.push((n, b"unknown".to_vec(), 0));
                }
            }
            "model name" => {
                if let Some(cpu) = cpus.last_mut() {
                    cpu.1 = value.as_bytes().to_vec();
                }
            }
            "cpu MHz" => {
                if let (Some(cpu), Ok(mhz)) = (cpus.last_mut(), value.parse::<f64>()) {
                    cpu.2 = mhz as i64;
                }
            }
            _ => {}
        }
    }
    cpus
}

fn cpu_entries() -> Result<Vec<Cpu>, Error> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| os_error(&e))?;
    // SAFETY: sysconf only reads a system value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    let ms = (1000 / ticks).max(1);
    let models = cpu_models();
    let mut cpus = Vec::new();
    for line in stat.lines() {
        // "cpuN ..." lines; not the "cpu ..." total.
        let Some(rest) = line
            .strip_prefix("cpu")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let Some(Ok(n)) = fields.next().map(str::parse::<usize>) else {
            continue;
        };
        let times: Vec<i64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
        let time = |i: usize| times.get(i).copied().unwrap_or(0) * ms;
        let (model, mut speed) = models
            .iter()
            .find(|m| m.0 == n)
            .map_or((b"unknown".to_vec(), 0), |m| (m.1.clone(), m.2));
        let freq = format!("/sys/devices/system/cpu/cpu{n}/cpufreq/scaling_cur_freq");
        if let Some(khz) = std::fs::read_to_string(freq)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            speed = khz / 1000;
        }
        cpus.push(Cpu {
            model,
            speed,
            user: time(0),
            nice: time(1),
            sys: time(2),
            idle: time(3),
            irq: time(5),
        });
    }
    if cpus.is_empty() {
        return Err(Error::msg(fail::text(libc::ENOSYS)));
    }
    Ok(cpus)
}

/// it, which, 0, it = system.cpuinfo([which])
pub fn cpuinfo(lua: Lua) -> Ret {
    if !lua.is_none_or_nil(1) {
        check_which::<Cpu>(&lua, 1)?;
    }
    let cpus = cpu_entries()?;
    push_iterator(lua, cpus, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_not_empty() {
        assert!(!cpu_entries().unwrap().is_empty());
    }
}
