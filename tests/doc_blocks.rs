//! The code blocks of the guides (`docs/`, `docs/zh/`) and of both READMEs that rustdoc does not
//! compile are checked here: every block names its language, no Rust block is `ignore`d (they
//! are doctests, see `src/doc_guides.rs`), JSON and TOML blocks parse, shell blocks pass
//! `bash -n`, and the Cargo snippets name features and versions this crate really has.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Languages a block may have; anything else (or none) is a mistake rustdoc would compile.
const LANGUAGES: &[&str] = &["rust", "text", "sh", "toml", "json", "python"];

struct Block {
    file: PathBuf,
    line: usize,
    info: String,
    body: String,
}

impl Block {
    fn lang(&self) -> &str {
        self.info.split(',').next().unwrap_or("").trim()
    }

    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("mock-modem/README.md"),
    ];
    for dir in ["docs", "docs/zh"] {
        let mut md: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        md.sort();
        files.extend(md);
    }
    files
}

/// Fenced blocks (```), also indented ones inside list items.
fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, String)> = None; // line, indent, info, body
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, indent, info.trim().to_string(), String::new()));
                }
            }
            Some((start, ind, info, body)) => {
                if trimmed == "```" {
                    out.push(Block {
                        file: file.strip_prefix(ROOT).unwrap().to_path_buf(),
                        line: *start,
                        info: std::mem::take(info),
                        body: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line.get(*ind..).unwrap_or(trimmed));
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{}: unclosed code block", file.display());
    out
}

fn all_blocks() -> Vec<Block> {
    let blocks: Vec<Block> = markdown_files().iter().flat_map(|f| blocks(f)).collect();
    assert!(blocks.len() > 100, "found only {} blocks", blocks.len());
    blocks
}

#[test]
fn every_block_names_its_language_and_no_rust_block_is_ignored() {
    for b in all_blocks() {
        assert!(
            LANGUAGES.contains(&b.lang()),
            "{}: code block with language {:?} (rustdoc compiles unmarked blocks as Rust; \
             mark it text, sh, toml, json, python or rust)",
            b.at(),
            b.info
        );
        if b.lang() == "rust" {
            assert!(
                !b.info.split(',').any(|a| a.trim() == "ignore"),
                "{}: `ignore`d Rust block; make it compile (hidden `# ` setup lines, no_run)",
                b.at()
            );
        }
    }
}

#[test]
fn json_blocks_parse() {
    let mut n = 0;
    for b in all_blocks().iter().filter(|b| b.lang() == "json") {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&b.body) {
            panic!("{}: invalid JSON: {e}", b.at());
        }
        n += 1;
    }
    assert!(n >= 6, "expected the guides' JSON blocks, found {n}");
}

/// Replaces the guides' placeholders (`<certificateArn from the last command>`, `<region>`) with
/// a word, so that `bash -n` checks the command around them.
fn fill_placeholders(sh: &str) -> String {
    let mut out = String::with_capacity(sh.len());
    let mut rest = sh;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail.find(['>', '<', '\n']);
        match end {
            Some(j) if tail.as_bytes()[j] == b'>' && tail.starts_with(char::is_alphabetic) => {
                out.push_str("PLACEHOLDER");
                rest = &tail[j + 1..];
            }
            _ => {
                out.push('<');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn shell_blocks_are_valid_bash() {
    let mut n = 0;
    for b in all_blocks().iter().filter(|b| b.lang() == "sh") {
        let mut child = Command::new("bash")
            .arg("-n")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(fill_placeholders(&b.body).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: bash -n: {}",
            b.at(),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    assert!(n >= 30, "expected the guides' shell blocks, found {n}");
}

/// `major.minor` of a version requirement such as `"0.5.1"` or `"0.1"`.
fn major_minor(req: &str) -> String {
    req.trim_start_matches(['^', '=', '~'])
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

fn version_of(dep: &toml::Value) -> Option<&str> {
    match dep {
        toml::Value::String(v) => Some(v),
        toml::Value::Table(t) => t.get("version").and_then(|v| v.as_str()),
        _ => None,
    }
}

#[test]
fn cargo_snippets_parse_and_match_the_crates() {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap())
            .unwrap();
    let mock: toml::Table = toml::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("mock-modem/Cargo.toml")).unwrap(),
    )
    .unwrap();
    let own_version = |name: &str| -> String {
        let m = if name == "quectel" { &manifest } else { &mock };
        m["package"]["version"].as_str().unwrap().to_string()
    };
    let features = manifest["features"].as_table().unwrap();
    // What this crate itself depends on (normal and dev): a snippet must ask for the same
    // major.minor, or a user's build would pull a second copy (e.g. two embassy-time drivers).
    let ours = |name: &str| -> Option<String> {
        ["dependencies", "dev-dependencies"]
            .iter()
            .filter_map(|s| manifest.get(*s).and_then(|t| t.get(name)))
            .find_map(version_of)
            .map(major_minor)
    };

    let mut n = 0;
    for b in all_blocks().iter().filter(|b| b.lang() == "toml") {
        let doc: toml::Table = match toml::from_str(&b.body) {
            Ok(t) => t,
            Err(e) => panic!("{}: invalid TOML: {e}", b.at()),
        };
        for section in ["dependencies", "dev-dependencies"] {
            let Some(deps) = doc.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for (name, dep) in deps {
                let req =
                    version_of(dep).unwrap_or_else(|| panic!("{}: {name} has no version", b.at()));
                if name == "quectel" || name == "quectel-mock" {
                    let own = own_version(name);
                    assert!(
                        own.starts_with(&major_minor(req)),
                        "{}: {name} = {req:?}, but the crate is {own}",
                        b.at()
                    );
                    if name == "quectel" {
                        for f in dep
                            .get("features")
                            .and_then(|f| f.as_array())
                            .into_iter()
                            .flatten()
                        {
                            let f = f.as_str().unwrap();
                            assert!(features.contains_key(f), "{}: no feature {f:?}", b.at());
                        }
                    }
                } else if let Some(want) = ours(name) {
                    assert_eq!(
                        major_minor(req),
                        want,
                        "{}: {name} = {req:?}, the crate uses {want}",
                        b.at()
                    );
                }
            }
        }
        n += 1;
    }
    assert!(n >= 5, "expected the guides' Cargo snippets, found {n}");
}
