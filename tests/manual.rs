//! The manual covers the API (style rule 10): every function of every
//! module table has a `### module.function(...)` heading in
//! `doc/manual.md`, and every such heading names an existing function.

use std::collections::BTreeSet;
use std::process::Command;

/// Module tables as the manual names them: local name, `require` name.
const MODULES: &[(&str, &str)] = &[
    ("system", "coutil.system"),
    ("event", "coutil.event"),
    ("queued", "coutil.queued"),
    ("mutex", "coutil.mutex"),
    ("promise", "coutil.promise"),
    ("spawn", "coutil.spawn"),
    ("memory", "coutil.memory"),
    ("channel", "coutil.channel"),
    ("stateco", "coutil.coroutine"),
    ("threads", "coutil.threads"),
];

fn api() -> BTreeSet<String> {
    let mut code = String::new();
    for (name, module) in MODULES {
        code.push_str(&format!(
            "for k, v in pairs(require '{module}') do if type(v) == 'function' then print('{name}.' .. k) end end\n"
        ));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_coutil"))
        .args(["-E", "-e", &code])
        .output()
        .expect("cannot run coutil");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn headings() -> BTreeSet<String> {
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/manual.md")).unwrap();
    manual
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            let h = h.trim_start_matches('`');
            let end = h
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == ':'))
                .unwrap_or(h.len());
            h[..end].to_owned()
        })
        .collect()
}

#[test]
fn every_function_has_a_heading_and_every_heading_a_function() {
    let api = api();
    let documented = headings();
    let missing: Vec<_> = api.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "functions without a heading in doc/manual.md: {missing:?}"
    );
    let unknown: Vec<_> = documented.difference(&api).collect();
    assert!(
        unknown.is_empty(),
        "headings naming no function: {unknown:?}"
    );
}
