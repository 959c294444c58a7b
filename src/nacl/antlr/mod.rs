//! The reference's syntax check, emulated: NaCl.g4's lexer and parser as
//! ANTLR 4.7.2 runs them, with its default error strategy, so a syntax
//! error comes out where the reference reports it and in its words
//! (`missing X at Y`, `extraneous input`, `mismatched input`, `no viable
//! alternative at input`, `token recognition error at`). Written from
//! the grammar and the runtime's documented algorithms; nothing here is
//! generated.

mod atn;
mod context;
mod lexer;
mod predict;
mod recognizer;

use std::sync::OnceLock;

use super::Diagnostic;

fn atn() -> &'static atn::Atn {
    static ATN: OnceLock<atn::Atn> = OnceLock::new();
    ATN.get_or_init(atn::build)
}

/// The first syntax error the reference would print for `source` (ASCII
/// text), if any.
pub fn first_error(source: &str) -> Option<Diagnostic> {
    let (tokens, lex_errors) = lexer::tokenize(source);
    // Prediction looks across a whole nested value, its stacks as deep as
    // the nesting: hostile nesting is refused before it starts.
    if let Some(d) = too_deep(&tokens) {
        return Some(d);
    }
    let mut r = recognizer::Recognizer::new(atn(), source, &tokens, &lex_errors);
    r.run().err().map(|stop| stop.0)
}

/// An error at the first bracket nested deeper than the parser allows.
fn too_deep(tokens: &[lexer::Token]) -> Option<Diagnostic> {
    use lexer::t;
    let max = super::parser::MAX_NESTING;
    let mut depth = 0usize;
    for tk in tokens {
        match tk.ty {
            t::LBRACE | t::LBRACKET | t::LPAREN => {
                depth += 1;
                if depth > max {
                    return Some(Diagnostic::at(
                        tk.span,
                        format!("nesting deeper than {max} levels"),
                    ));
                }
            }
            t::RBRACE | t::RBRACKET | t::RPAREN => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests;
