//! Exports the Lua C API from the `coutil` command, so that native modules
//! (e.g. Debian's `luv.so`) loaded in it find the interpreter's symbols.
fn main() {
    if std::env::var_os("CARGO_FEATURE_VENDORED").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    }
}
