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

/// Whether the reference's lexer cuts `source` into the tokens jetpack's
/// own lexer does (a string being the run of tokens between its quotes,
/// nothing skipped inside it), with no character it cannot take. Then a
/// file jetpack's parser accepts is one the reference's accepts too, and
/// the costly emulation of its parser can be skipped.
pub fn tokens_agree(source: &str) -> bool {
    use super::lexer::Tok;
    use lexer::t;
    let (ours, our_errors) = super::lexer::tokenize(source);
    let (theirs, their_errors) = lexer::tokenize(source);
    if !our_errors.is_empty() || !their_errors.is_empty() {
        return false;
    }
    let base = source.as_ptr() as usize;
    let mut j = 0;
    let next_visible = |j: &mut usize| -> Option<lexer::Token> {
        while let Some(tk) = theirs.get(*j) {
            *j += 1;
            if !tk.hidden {
                return Some(*tk);
            }
        }
        None
    };
    for tok in ours.iter().filter(|tk| tk.kind != Tok::Eof) {
        let start = tok.text.as_ptr() as usize - base;
        let end = start + tok.text.len();
        let Some(first) = next_visible(&mut j) else {
            return false;
        };
        if first.start != start {
            return false;
        }
        if tok.kind == Tok::Str {
            // Quotes, then tokens (hidden ones included) that cover the
            // rest without a gap (a gap is a comment), then quotes.
            if first.ty != t::QUOTES {
                return false;
            }
            let mut at = first.end;
            loop {
                let Some(tk) = theirs.get(j) else {
                    return false;
                };
                j += 1;
                if tk.start != at {
                    return false;
                }
                at = tk.end;
                if tk.ty == t::QUOTES {
                    break;
                }
            }
            if at != end {
                return false;
            }
            continue;
        }
        let same = first.end == end
            && match tok.kind {
                Tok::Number => first.ty == t::NUMBER,
                Tok::Ident => first.ty == t::IDENTIFIER,
                Tok::Hyphen => first.ty == t::HYPHEN,
                Tok::Slash => first.ty == t::SLASH,
                Tok::Dot => first.ty == t::DOT,
                Tok::Colon => first.ty == t::COLON,
                Tok::Comma => first.ty == t::COMMA,
                Tok::LBrace => first.ty == t::LBRACE,
                Tok::RBrace => first.ty == t::RBRACE,
                Tok::LBracket => first.ty == t::LBRACKET,
                Tok::RBracket => first.ty == t::RBRACKET,
                Tok::LParen => first.ty == t::LPAREN,
                Tok::RParen => first.ty == t::RPAREN,
                Tok::Compare => (t::EQUALS..=t::IN).contains(&first.ty),
                Tok::And => first.ty == t::AND,
                Tok::Or => first.ty == t::OR,
                Tok::Not => first.ty == t::NOT,
                Tok::If => first.ty == t::IF,
                Tok::Else => first.ty == t::ELSE,
                Tok::True => first.ty == t::TRUE,
                Tok::False => first.ty == t::FALSE,
                Tok::Str | Tok::Eof => false,
            };
        if !same {
            return false;
        }
    }
    next_visible(&mut j).is_none_or(|tk| tk.ty == t::EOF)
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
