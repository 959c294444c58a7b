//! NaCl, IncludeOS's configuration language (spec/nacl.md): what a verdict
//! on a NaCl is, and how the reference tool's output reads as one.

use serde::Serialize;

/// One problem in a NaCl: 1-based line, 0-based column (the reference
/// tool's convention), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A NaCl's verdict: valid, or the problems found, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub valid: bool,
    pub errors: Vec<Diagnostic>,
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
