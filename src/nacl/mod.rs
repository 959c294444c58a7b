//! NaCl, IncludeOS's configuration language (spec/nacl.md): the native
//! front end (lexer, parser, checker) that gives a file its verdict, and
//! how the reference tool's output reads as one.

mod check;
mod lexer;
mod parser;
pub mod syntax;

use serde::Serialize;

pub use lexer::Span;

/// One problem in a NaCl: 1-based line, 0-based column (the reference
/// tool's convention), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            line: span.line,
            column: span.column,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    /// The reference tool's shape: `line L:C message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}:{} {}", self.line, self.column, self.message)
    }
}

/// A NaCl's verdict: valid, or the problems found, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub valid: bool,
    pub errors: Vec<Diagnostic>,
}

/// The syntax tree of `source` and its syntax errors, sorted.
pub fn parse(source: &str) -> (syntax::File<'_>, Vec<Diagnostic>) {
    parser::parse(source)
}

/// The verdict on `source`: its syntax errors if it has any (a broken
/// item would make the rules report what is not there), else every
/// semantic error, sorted by position, each once.
pub fn check(source: &str) -> Verdict {
    let (file, mut errors) = parse(source);
    if errors.is_empty() {
        errors = check::check(&file);
        errors.sort_by_key(|d| (d.line, d.column));
        errors.dedup();
    }
    Verdict {
        valid: errors.is_empty(),
        errors,
    }
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
                    message: "Invalid type Ifacee".into()
                },
                Diagnostic {
                    line: 10,
                    column: 0,
                    message: "Missing }".into()
                },
                Diagnostic {
                    line: 2,
                    column: 5,
                    message: "colon after".into()
                },
            ]
        );
        assert!(parse_reference_output("").is_empty());
    }
}
