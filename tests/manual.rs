//! The manual covers the API (style rule 10): every function of every
//! module table has a `### module.function(...)` heading in
//! `doc/manual.md`, and every such heading names an existing function; the
//! index at its top links every one of them; its examples marked
//! ```` ```lua run ```` (the cookbook's programs among them) run with the
//! `coutil` command; and the links of the documentation stay inside the
//! repository.

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
    ("await", "coutil.await"),
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

/// The manual's runnable examples: fenced blocks whose info string is
/// `lua run`, with the heading they sit under.
fn examples() -> Vec<(String, String)> {
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/manual.md")).unwrap();
    let mut found = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in manual.lines() {
        match &mut block {
            Some(code) if line == "```" => {
                found.push((heading.clone(), std::mem::take(code)));
                block = None;
            }
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
            None if line == "```lua run" => block = Some(String::new()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().into(),
            None => {}
        }
    }
    assert!(block.is_none(), "unterminated example under {heading:?}");
    found
}

/// Runs one example with the `coutil` command in a directory of its own,
/// a few lines on its standard input; returns a description of what went
/// wrong.
fn run_example(n: usize, heading: &str, code: &str) -> Option<String> {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = std::env::temp_dir().join(format!("coutil-manual-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("example.lua");
    std::fs::write(&script, code).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coutil"))
        .arg(&script)
        .current_dir(&dir)
        .env_remove("COUTIL_INIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run coutil");
    let mut stdin = child.stdin.take().unwrap();
    // The program may not read it all: ignore EPIPE.
    let _ = stdin.write_all(b"first line\nsecond line\nlast line\n");
    drop(stdin);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    (!out.status.success() || !stderr.is_empty()).then(|| {
        format!(
            "example {n} under {heading:?} failed ({}):\n{stderr}\n{code}",
            out.status
        )
    })
}

/// Every example marked to run ends well and writes nothing on stderr
/// (they check their results with `assert`). Four at a time.
#[test]
fn examples_run() {
    let examples = examples();
    assert!(examples.len() >= 20, "only {} examples", examples.len());
    let failures: Vec<String> = examples
        .chunks(4)
        .enumerate()
        .flat_map(|(c, chunk)| {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, (heading, code))| {
                        s.spawn(move || run_example(c * 4 + i, heading, code))
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A Markdown file's text outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut inside = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                inside = !inside;
                return false;
            }
            !inside
        })
        .collect()
}

/// The anchors of a Markdown file's headings, as GitHub makes them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut all = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim().to_lowercase();
        let base: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(base.clone()).or_default();
        all.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    all
}

/// The targets of the inline links `[text](target)` of a Markdown file.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let Some(end) = tail.find(')') else { break };
            found.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    found
}

/// The index at the top of the manual links every function heading.
#[test]
fn the_index_lists_every_function() {
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/manual.md")).unwrap();
    let start = manual.find("\n## Index\n").expect("no index");
    let end = start + 1 + manual[start + 1..].find("\n## ").unwrap();
    let index: BTreeSet<String> = links(&manual[start..end]).into_iter().collect();
    let only_functions = prose(&manual)
        .into_iter()
        .filter(|l| l.starts_with("### "))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<_> = anchors(&only_functions)
        .into_iter()
        .filter(|a| !index.contains(&format!("#{a}")))
        .collect();
    assert!(missing.is_empty(), "not in the index: {missing:?}");
}

/// Links of the documentation (and the benchmarks' notes) point inside the
/// repository, at files and headings that exist.
#[test]
fn links_stay_in_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        "README.md",
        "CHANGELOG.md",
        "doc/manual.md",
        "doc/devnotes.md",
        "bench/README.md",
    ];
    let mut bad = Vec::new();
    for file in files {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        for target in links(&text) {
            let (place, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if place.is_empty() {
                Some(path.clone())
            } else if place.contains("://") || place.starts_with('/') {
                None
            } else {
                path.parent()
                    .unwrap()
                    .join(place)
                    .canonicalize()
                    .ok()
                    .filter(|p| p.starts_with(root.canonicalize().unwrap()))
            };
            let ok = linked.is_some_and(|p| {
                anchor.is_empty()
                    || std::fs::read_to_string(&p).is_ok_and(|t| anchors(&t).contains(anchor))
            });
            if !ok {
                bad.push(format!("{file}: ({target})"));
            }
        }
        // Nor mentions of paths outside it in doc/ and bench/.
        if file.starts_with("doc/") || file.starts_with("bench/") {
            for needle in ["/work/", "../shared", "shared/spec", "shared/bench"] {
                if text.contains(needle) {
                    bad.push(format!("{file}: mentions {needle}"));
                }
            }
        }
    }
    for entry in std::fs::read_dir(root.join("bench")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("/work/") || text.contains("../shared") {
                bad.push(format!("{}: points outside the repository", path.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
