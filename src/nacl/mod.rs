//! NaCl, IncludeOS's configuration language (spec/nacl.md): the native
//! front end (lexer, parser, checker) that gives a file its verdict, and
//! how the reference tool's output reads as one.

mod antlr;
mod check;
mod lexer;
mod parser;
pub mod syntax;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use lexer::Span;

/// How bad a problem is. An error is one the reference transpiler (and so
/// a real build) refuses the file for; a warning is a check the reference
/// does not make (a value range, a Timer `lb` without a Load_balancer), so
/// it never refuses a save (spec/nacl.md, "Verdicts equal the reference's").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in a NaCl: 1-based line, 0-based column (the reference
/// tool's convention), what is wrong, and how bad it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub severity: Severity,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            line: span.line,
            column: span.column,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::at(span, message)
        }
    }
}

impl std::fmt::Display for Diagnostic {
    /// The reference tool's shape: `line L:C message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}:{} {}", self.line, self.column, self.message)
    }
}

/// A NaCl's verdict: valid (no errors), the errors found (in the order the
/// reference meets them) and the warnings (by position). Warnings never
/// make a file invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub valid: bool,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// The syntax tree of `source` and its syntax errors, sorted.
pub fn parse(source: &str) -> (syntax::File<'_>, Vec<Diagnostic>) {
    parser::parse(source)
}

/// The verdict on `source`: its syntax errors if it has any (a broken
/// item would make the rules report what is not there), else every
/// semantic error, each once, in the order the reference transpiler meets
/// them (so the first is the one it reports).
pub fn check(source: &str) -> Verdict {
    // The reference reads its input as ASCII and dies on anything else,
    // comments included: a real build fails, so the file is refused.
    if let Some(d) = non_ascii(source) {
        return Verdict {
            valid: false,
            errors: vec![d],
            warnings: Vec::new(),
        };
    }
    let (file, mut errors) = parse(source);
    // The reference's own parser decides what is a syntax error, and its
    // first one is the answer (it stops there). Emulating it costs far
    // more than our parser, so it runs only when it may disagree: our
    // parser found an error, or the file has what only ours accepts (a
    // typed element with a subtype, tokens the reference cuts otherwise).
    let ours_suffices = errors.is_empty()
        && !file
            .items
            .iter()
            .any(|i| matches!(i, syntax::Item::Typed(t) if t.subtype.is_some()))
        && antlr::tokens_agree(source);
    if !ours_suffices {
        if let Some(d) = antlr::first_error(source) {
            return Verdict {
                valid: false,
                errors: vec![d],
                warnings: Vec::new(),
            };
        }
    }
    let mut warnings = Vec::new();
    if errors.is_empty() {
        (errors, warnings) = check::check(&file);
        warnings.sort_by_key(|d| (d.line, d.column));
        warnings.dedup();
    }
    Verdict {
        valid: errors.is_empty(),
        errors,
        warnings,
    }
}

/// An error at the first character of `source` that is not ASCII.
fn non_ascii(source: &str) -> Option<Diagnostic> {
    let at = source.find(|c: char| !c.is_ascii())?;
    let before = &source[..at];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before[before.rfind('\n').map_or(0, |n| n + 1)..]
        .chars()
        .count() as u32;
    let c = source[at..]
        .chars()
        .next()
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    Some(Diagnostic::at(
        Span { line, column },
        format!(
            "Non-ASCII character '{c}' (U+{:04X}): the NaCl transpiler reads ASCII only",
            c as u32
        ),
    ))
}

/// The `line L:C message` lines of a reference tool's output, in order;
/// other lines (banners, tracebacks) are not diagnostics and are skipped.
pub fn parse_reference_output(output: &str) -> Vec<Diagnostic> {
    output
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("line ")?;
            let (position, message) = rest.split_once(char::is_whitespace)?;
            let (line, column) = position.split_once(':')?;
            Some(Diagnostic {
                line: line.parse().ok()?,
                column: column.trim_end_matches(':').parse().ok()?,
                message: message.trim().to_string(),
                severity: Severity::Error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_lines_become_diagnostics() {
        let out = "NaCl transpiler\nline 3:4 Invalid type Ifacee\n  line 10:0 Missing }\nline x:1 no\nline 2:5: colon after\nTraceback...\n";
        assert_eq!(
            parse_reference_output(out),
            vec![
                Diagnostic {
                    line: 3,
                    column: 4,
                    message: "Invalid type Ifacee".into(),
                    severity: Severity::Error
                },
                Diagnostic {
                    line: 10,
                    column: 0,
                    message: "Missing }".into(),
                    severity: Severity::Error
                },
                Diagnostic {
                    line: 2,
                    column: 5,
                    message: "colon after".into(),
                    severity: Severity::Error
                },
            ]
        );
        assert!(parse_reference_output("").is_empty());
    }

    #[test]
    fn non_ascii_anywhere_is_an_error_at_its_character() {
        let v = check("x: 1\n// caf\u{e9}\n");
        assert!(!v.valid);
        assert_eq!((v.errors[0].line, v.errors[0].column), (2, 6));
        assert!(v.errors[0].message.contains("U+00E9"), "{:?}", v.errors);
        assert!(check("x: 1 // cafe\n").valid);
    }
}
