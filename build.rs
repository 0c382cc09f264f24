//! Exports the Lua C API from the `coutil` command, so that native modules
//! (e.g. Debian's `luv.so`) loaded in it find the interpreter's symbols;
//! and tells the crate the vendored Lua's exact release and copyright
//! (`COUTIL_LUA_COPYRIGHT`, read from the `lua.h` that mlua-sys built), for
//! the command's version line.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_COMMAND").is_none() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    // mlua-sys `links = "lua"` and reports the include directory it built.
    let Some(include) = std::env::var_os("DEP_LUA_INCLUDE") else {
        return;
    };
    let header = std::path::Path::new(&include).join("lua.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let Ok(text) = std::fs::read_to_string(&header) else {
        return;
    };
    // `#define LUA_VERSION_MAJOR "5"` (5.4) or `#define LUA_VERSION_MAJOR_N 5`
    // (5.5, where `LUA_VERSION_MAJOR` is made from it).
    let define = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix("#define")?.trim_start();
            let value = rest.strip_prefix(name)?;
            value
                .starts_with([' ', '\t'])
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    };
    let number = |name: &str| define(name).filter(|v| v.parse::<u32>().is_ok());
    let parts = ["MAJOR", "MINOR", "RELEASE"].map(|p| {
        number(&format!("LUA_VERSION_{p}")).or_else(|| number(&format!("LUA_VERSION_{p}_N")))
    });
    let year = text
        .lines()
        .find(|l| l.starts_with("#define LUA_COPYRIGHT"))
        .and_then(|l| l.split("1994-").nth(1))
        .map(|y| {
            y.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        });
    if let ([Some(major), Some(minor), Some(release)], Some(year)) = (parts, year) {
        println!(
            "cargo:rustc-env=COUTIL_LUA_COPYRIGHT=Lua {major}.{minor}.{release}  Copyright (C) 1994-{year} Lua.org, PUC-Rio"
        );
    }
}
