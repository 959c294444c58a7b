//! The NaCl corpus (tests/nacl, see its README): every valid file checks
//! clean, every invalid one fails with the first error the reference
//! transpiler prints, and `jetpack nacl check` says the same on the command
//! line. All mismatches are collected and reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use jetpack::nacl::{check, Diagnostic, Severity, Verdict};

const MIN_VALID: usize = 25;
const MIN_INVALID: usize = 30;

fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("nacl")
        .join(kind)
}

/// The files of a corpus folder ending in `.ext`, sorted by name.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn name(path: &Path) -> String {
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{parent}/{}", path.file_name().unwrap().to_string_lossy())
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An expectation: a position, and the message unless it was `*`.
#[derive(Debug, Clone, PartialEq)]
struct Expect {
    line: u32,
    column: u32,
    message: Option<String>,
}

/// What a `.expect` file says (tests/nacl/README.md): the reference's
/// first error, jetpack's own where it knowingly differs (`gap`), and the
/// warnings jetpack must give.
#[derive(Debug, Clone, PartialEq, Default)]
struct Expectation {
    first: Option<Expect>,
    gap: Option<Expect>,
    warnings: Vec<Expect>,
}

impl Expectation {
    fn parse(text: &str) -> Result<Expectation, String> {
        let mut e = Expectation::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("warning ") {
                e.warnings.push(Expect::parse(rest)?);
            } else if let Some(rest) = line.strip_prefix("gap ") {
                if e.gap.replace(Expect::parse(rest)?).is_some() {
                    return Err(format!("more than one gap line: {line:?}"));
                }
            } else if e.first.replace(Expect::parse(line)?).is_some() {
                return Err(format!("more than one first error: {line:?}"));
            }
        }
        if e.gap.is_some() && e.first.is_none() {
            return Err("a gap line without the reference's line".into());
        }
        Ok(e)
    }

    /// The first error jetpack must give: the reference's, or the gap's.
    fn effective(&self) -> Option<&Expect> {
        self.gap.as_ref().or(self.first.as_ref())
    }
}

impl Expect {
    /// Parses `line L:C message` or `line L:C *`.
    fn parse(text: &str) -> Result<Expect, String> {
        let first = text.trim();
        if first.is_empty() {
            return Err("empty expectation".into());
        }
        let rest = first
            .strip_prefix("line ")
            .ok_or_else(|| format!("expectation does not start with `line `: {first:?}"))?;
        let (position, message) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("expectation has no message (or `*`): {first:?}"))?;
        let (line, column) = position
            .split_once(':')
            .ok_or_else(|| format!("position is not L:C: {first:?}"))?;
        let line = line
            .parse()
            .map_err(|_| format!("bad line number in {first:?}"))?;
        let column = column
            .parse()
            .map_err(|_| format!("bad column in {first:?}"))?;
        let message = message.trim();
        if message.is_empty() {
            return Err(format!("expectation has no message (or `*`): {first:?}"));
        }
        Ok(Expect {
            line,
            column,
            message: (message != "*").then(|| message.to_string()),
        })
    }

    fn matches(&self, d: &Diagnostic) -> bool {
        d.line == self.line
            && d.column == self.column
            && self.message.as_ref().is_none_or(|m| *m == d.message)
    }

    /// Whether a printed `line L:C message` line is this expectation.
    fn matches_line(&self, printed: &str) -> bool {
        let want = format!("line {}:{}", self.line, self.column);
        match &self.message {
            Some(m) => printed.trim_end() == format!("{want} {m}"),
            None => printed == want || printed.starts_with(&format!("{want} ")),
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}:{} {}",
            self.line,
            self.column,
            self.message.as_deref().unwrap_or("*")
        )
    }
}

fn show(d: &Diagnostic) -> String {
    format!("line {}:{} {}", d.line, d.column, d.message)
}

fn show_all(errors: &[Diagnostic]) -> String {
    if errors.is_empty() {
        return "(none)".into();
    }
    errors
        .iter()
        .map(|d| format!("\n        {}", show(d)))
        .collect()
}

/// `check`, with a panic turned into a failure of that one file.
fn checked(source: &str) -> Result<Verdict, String> {
    panic::catch_unwind(AssertUnwindSafe(|| check(source))).map_err(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        format!("check panicked: {why}")
    })
}

/// Whether no error is listed twice (errors come in the reference's
/// order, not by position, but each once).
fn each_once(errors: &[Diagnostic]) -> bool {
    let mut seen = std::collections::HashSet::new();
    errors
        .iter()
        .all(|d| seen.insert((d.line, d.column, &d.message)))
}

/// The expectation beside a file (an empty one if a valid file has none).
fn expectations(nacl: &Path) -> Result<Expectation, String> {
    let path = nacl.with_extension("expect");
    if !path.exists() && nacl.parent().and_then(Path::file_name) == Some("valid".as_ref()) {
        return Ok(Expectation::default());
    }
    let text =
        fs::read_to_string(&path).map_err(|e| format!("no readable {}: {e}", name(&path)))?;
    Expectation::parse(&text).map_err(|e| format!("{}: {e}", name(&path)))
}

/// The first error jetpack must give for an invalid file.
fn expectation(nacl: &Path) -> Result<Expect, String> {
    let e = expectations(nacl)?;
    e.effective()
        .cloned()
        .ok_or_else(|| format!("{}: no first error", name(nacl)))
}

/// Differences between the warnings given and those expected.
fn warnings_wrong(expected: &[Expect], got: &[Diagnostic]) -> Option<String> {
    let same = expected.len() == got.len()
        && got.iter().all(|d| expected.iter().any(|e| e.matches(d)))
        && got.iter().all(|d| d.severity == Severity::Warning);
    (!same).then(|| {
        format!(
            "warnings expected:{}, got:{}",
            if expected.is_empty() {
                " (none)".to_string()
            } else {
                expected.iter().map(|e| format!("\n        {e}")).collect()
            },
            show_all(got)
        )
    })
}

#[test]
fn corpus_agrees_with_the_reference() {
    let valid = files(&corpus("valid"), "nacl");
    let invalid = files(&corpus("invalid"), "nacl");
    let mut failures: Vec<String> = Vec::new();

    if valid.len() < MIN_VALID {
        failures.push(format!(
            "the corpus has {} valid files, at least {MIN_VALID} are wanted",
            valid.len()
        ));
    }
    if invalid.len() < MIN_INVALID {
        failures.push(format!(
            "the corpus has {} invalid files, at least {MIN_INVALID} are wanted",
            invalid.len()
        ));
    }

    // Every expectation belongs to an invalid file, and nothing else lies there.
    for expect in files(&corpus("invalid"), "expect") {
        if !expect.with_extension("nacl").is_file() {
            failures.push(format!("{}: no .nacl beside it", name(&expect)));
        }
    }
    // Beside a valid file, an expectation may only list warnings.
    for beside in files(&corpus("valid"), "expect") {
        match expectations(&beside.with_extension("nacl")) {
            Ok(e) if e.first.is_none() && e.gap.is_none() && !e.warnings.is_empty() => {}
            Ok(_) => failures.push(format!(
                "{}: beside a valid file, only `warning` lines",
                name(&beside)
            )),
            Err(e) => failures.push(e),
        }
        if !beside.with_extension("nacl").is_file() {
            failures.push(format!("{}: no .nacl beside it", name(&beside)));
        }
    }
    let mut gaps = Vec::new();

    for path in &valid {
        let verdict = match checked(&read(path)) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: {e}", name(path)));
                continue;
            }
        };
        if !verdict.valid || !verdict.errors.is_empty() {
            failures.push(format!(
                "{}: expected valid, got valid={} errors:{}",
                name(path),
                verdict.valid,
                show_all(&verdict.errors)
            ));
        }
        match expectations(path) {
            Ok(e) => {
                if let Some(w) = warnings_wrong(&e.warnings, &verdict.warnings) {
                    failures.push(format!("{}: {w}", name(path)));
                }
            }
            Err(e) => failures.push(e),
        }
    }

    for path in &invalid {
        let all = match expectations(path) {
            Ok(e) => e,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let Some(expect) = all.effective().cloned() else {
            failures.push(format!("{}: no first error expected", name(path)));
            continue;
        };
        if let (Some(reference), Some(gap)) = (&all.first, &all.gap) {
            gaps.push(format!(
                "{}: reference `{reference}`, jetpack `{gap}`",
                name(path)
            ));
        }
        let verdict = match checked(&read(path)) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: {e}", name(path)));
                continue;
            }
        };
        let mut wrong = Vec::new();
        if verdict.valid {
            wrong.push("valid=true".to_string());
        }
        match verdict.errors.first() {
            None => wrong.push("no errors".to_string()),
            Some(first) if !expect.matches(first) => {
                wrong.push(format!("first error {}", show(first)))
            }
            Some(_) => {}
        }
        if !each_once(&verdict.errors) {
            wrong.push("an error listed twice".to_string());
        }
        if let Some(w) = warnings_wrong(&all.warnings, &verdict.warnings) {
            wrong.push(w);
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: expected `{expect}`, got {}; errors:{}",
                name(path),
                wrong.join(", "),
                show_all(&verdict.errors)
            ));
        }
    }

    // Known differences from the reference, for the record (the test
    // holds jetpack to what it says now, so a change shows).
    if !gaps.is_empty() {
        eprintln!(
            "{} known gap(s) from the reference:\n  - {}",
            gaps.len(),
            gaps.join("\n  - ")
        );
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} NaCl corpus files (or checks) failed:\n  - {}",
            failures.len(),
            valid.len() + invalid.len(),
            failures.join("\n  - ")
        );
    }
}

/// `jetpack nacl check FILE` in a scratch home: exit code, stdout, stderr.
fn run_check(file: &Path) -> (Option<i32>, String, String) {
    let home = tempfile::Builder::new()
        .prefix("jetpack-nacl-")
        .tempdir()
        .expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jetpack"));
    cmd.args(["nacl", "check"])
        .arg(file)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .current_dir(home.path());
    for var in [
        "JETPACK_HOST",
        "JETPACK_USERNAME",
        "JETPACK_PASSWORD",
        "JETPACK_CONF",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run jetpack nacl check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn first_error_line(stdout: &str) -> Option<&str> {
    stdout.lines().find(|l| l.starts_with("line "))
}

#[test]
fn cli_check_reports_the_first_error() {
    let cases = [
        ("valid", "spec_example"),
        ("invalid", "duplicate_index"),
        ("invalid", "syntax_unterminated_string"),
    ];
    let mut failures = Vec::new();
    for (kind, stem) in cases {
        let file = corpus(kind).join(format!("{stem}.nacl"));
        let (code, stdout, stderr) = run_check(&file);
        let what = format!(
            "{kind}/{stem}.nacl: exit {code:?}\n    stdout: {stdout:?}\n    stderr: {stderr:?}"
        );
        if kind == "valid" {
            if code != Some(0) {
                failures.push(format!("{what}\n    expected exit 0"));
            } else if let Some(line) = first_error_line(&stdout) {
                failures.push(format!("{what}\n    expected no error, printed {line:?}"));
            }
            continue;
        }
        let expect = match expectation(&file) {
            Ok(e) => e,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if code != Some(1) {
            failures.push(format!("{what}\n    expected exit 1"));
        }
        match first_error_line(&stdout) {
            Some(line) if expect.matches_line(line) => {}
            Some(line) => failures.push(format!(
                "{what}\n    expected first `{expect}`, printed {line:?}"
            )),
            None => failures.push(format!(
                "{what}\n    expected `{expect}` on stdout, no `line ` output"
            )),
        }
    }
    if !failures.is_empty() {
        panic!(
            "jetpack nacl check disagrees with the corpus:\n  - {}",
            failures.join("\n  - ")
        );
    }
}

#[test]
fn expectations_parse() {
    assert_eq!(
        Expect::parse("line 3:12 Invalid config value bootp\n"),
        Ok(Expect {
            line: 3,
            column: 12,
            message: Some("Invalid config value bootp".into())
        })
    );
    assert_eq!(
        Expect::parse("\nline 13:0 *\n"),
        Ok(Expect {
            line: 13,
            column: 0,
            message: None
        })
    );
    assert!(Expect::parse("3:12 Invalid").is_err());
    let all = Expectation::parse(
        "# a comment\nline 3:16 reference words\ngap line 3:0 jetpack words\nwarning line 2:26 a range\n",
    )
    .unwrap();
    assert_eq!(all.first.as_ref().map(|e| e.line), Some(3));
    assert_eq!(all.effective().map(|e| e.column), Some(0));
    assert_eq!(all.warnings.len(), 1);
    assert!(Expectation::parse("gap line 1:0 x\n").is_err());
    assert!(Expectation::parse("line 1:0 x\nline 2:0 y\n").is_err());
    assert!(Expectation::parse("warning line 1:0\n").is_err());
    assert!(Expect::parse("line 3:12").is_err());
    assert!(Expect::parse("line x:1 m").is_err());
    let any = Expect::parse("line 2:4 *").unwrap();
    assert!(any.matches_line("line 2:4 mismatched input '}'"));
    assert!(!any.matches_line("line 2:40 mismatched input '}'"));
    let exact = Expect::parse("line 2:4 Undefined value x").unwrap();
    assert!(exact.matches_line("line 2:4 Undefined value x"));
    assert!(!exact.matches_line("line 2:4 Undefined value xy"));
}
