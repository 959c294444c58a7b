//! NaCl.g4's lexer as ANTLR 4 runs it: token types numbered as the tool
//! numbers them (the parser's literals `'true'`, `'false'`, `'\\n'` first),
//! longest match with the earlier rule winning a tie, whitespace on the
//! hidden channel, comments skipped, and a character no rule matches
//! reported as `token recognition error at: '...'` with the text the
//! lexer had consumed when it failed (`=x` after a lone `=`).

use super::super::Span;

/// Token types, as NaCl.tokens has them. 0 is EOF here (ANTLR's -1).
pub mod t {
    pub const EOF: u16 = 0;
    pub const TRUE: u16 = 1;
    pub const FALSE: u16 = 2;
    pub const BACKSLASH_N: u16 = 3;
    pub const WHITESPACE: u16 = 4;
    pub const NUMBER: u16 = 5;
    pub const HYPHEN: u16 = 6;
    pub const SLASH: u16 = 7;
    pub const DOT: u16 = 8;
    pub const COLON: u16 = 9;
    pub const COMMA: u16 = 10;
    pub const HASH: u16 = 11;
    pub const LBRACE: u16 = 12;
    pub const RBRACE: u16 = 13;
    pub const LBRACKET: u16 = 14;
    pub const RBRACKET: u16 = 15;
    pub const LPAREN: u16 = 16;
    pub const RPAREN: u16 = 17;
    pub const QUOTES: u16 = 18;
    pub const EQUALS: u16 = 19;
    pub const NOT_EQUALS: u16 = 20;
    pub const GREATER: u16 = 21;
    pub const LESS: u16 = 22;
    pub const GREATER_EQ: u16 = 23;
    pub const LESS_EQ: u16 = 24;
    pub const IN: u16 = 25;
    pub const AND: u16 = 26;
    pub const OR: u16 = 27;
    pub const NOT: u16 = 28;
    pub const IF: u16 = 29;
    pub const ELSE: u16 = 30;
    pub const LINE_COMMENT_START: u16 = 31;
    pub const BLOCK_COMMENT_START: u16 = 32;
    pub const BLOCK_COMMENT_END: u16 = 33;
    pub const IDENTIFIER: u16 = 37;
    /// The highest token type (the parser's vocabulary).
    pub const MAX: u16 = 37;
}

/// How ANTLR names token type `ty` in an expected-token set: its literal
/// if it has exactly one, else its symbolic name.
pub fn display_name(ty: u16) -> &'static str {
    const NAMES: [&str; 38] = [
        "<EOF>",
        "'true'",
        "'false'",
        "'\\\\n'",
        "Whitespace",
        "Number",
        "'-'",
        "'/'",
        "'.'",
        "':'",
        "','",
        "'#'",
        "'{'",
        "'}'",
        "'['",
        "']'",
        "'('",
        "')'",
        "'\"'",
        "'=='",
        "'!='",
        "'>'",
        "'<'",
        "'>='",
        "'<='",
        "In",
        "And",
        "Or",
        "Not",
        "'if'",
        "'else'",
        "'//'",
        "'/*'",
        "'*/'",
        "Hash_comment",
        "Line_comment",
        "Block_comment",
        "Identifier",
    ];
    NAMES.get(ty as usize).copied().unwrap_or("<INVALID>")
}

/// One token of the stream, hidden whitespace included.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub ty: u16,
    /// Byte range in the source (empty for EOF).
    pub start: usize,
    pub end: usize,
    pub span: Span,
    pub hidden: bool,
}

/// A character the lexer could not take: reported when the parser
/// fetches the first visible token after it (`before_visible`).
#[derive(Debug, Clone)]
pub struct LexError {
    pub before_visible: usize,
    pub span: Span,
    pub text: String,
}

/// Every token of `source` (EOF last), and the lexer's errors in order.
/// `source` is ASCII (the caller refuses anything else first).
pub fn tokenize(source: &str) -> (Vec<Token>, Vec<LexError>) {
    let b = source.as_bytes();
    let mut tokens = Vec::with_capacity(b.len() / 2);
    let mut errors = Vec::new();
    let (mut pos, mut line, mut col) = (0usize, 1u32, 0u32);
    let mut visible = 0usize;
    let at = |i: usize| b.get(i).copied();
    while pos < b.len() {
        let start = pos;
        let span = Span { line, column: col };
        let c = b[pos];
        // (type, length), the type SKIPPED for a comment; Err(len): no
        // rule matched after `len` characters were consumed.
        let found: Result<Option<(u16, usize)>, usize> = match c {
            b' ' | b'\t' | b'\n' | b'\r' => Ok(Some((t::WHITESPACE, 1))),
            b'0'..=b'9' => {
                let n = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
                Ok(Some((t::NUMBER, n)))
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let n = b[pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-')
                    .count();
                Ok(Some((keyword(&source[pos..pos + n]), n)))
            }
            b'\\' => match at(pos + 1) {
                Some(b'n') => Ok(Some((t::BACKSLASH_N, 2))),
                _ => Err(1),
            },
            b'-' => Ok(Some((t::HYPHEN, 1))),
            b'/' => match at(pos + 1) {
                Some(b'/') => {
                    let n = line_end(&b[pos..]);
                    // `//` alone: Line_comment_start, defined first, wins
                    // the tie with an empty Line_comment.
                    if n == 2 {
                        Ok(Some((t::LINE_COMMENT_START, 2)))
                    } else {
                        Ok(Some((SKIPPED, n)))
                    }
                }
                Some(b'*') => match source[pos + 2..].find("*/") {
                    Some(k) => Ok(Some((SKIPPED, k + 4))),
                    None => Ok(Some((t::BLOCK_COMMENT_START, 2))),
                },
                _ => Ok(Some((t::SLASH, 1))),
            },
            b'#' => {
                let n = line_end(&b[pos..]);
                if n == 1 {
                    Ok(Some((t::HASH, 1)))
                } else {
                    Ok(Some((SKIPPED, n)))
                }
            }
            b'*' => match at(pos + 1) {
                Some(b'/') => Ok(Some((t::BLOCK_COMMENT_END, 2))),
                _ => Err(1),
            },
            b'=' => two(at(pos + 1), b'=', t::EQUALS),
            b'&' => two(at(pos + 1), b'&', t::AND),
            b'|' => two(at(pos + 1), b'|', t::OR),
            b'!' => Ok(Some(if at(pos + 1) == Some(b'=') {
                (t::NOT_EQUALS, 2)
            } else {
                (t::NOT, 1)
            })),
            b'>' => Ok(Some(if at(pos + 1) == Some(b'=') {
                (t::GREATER_EQ, 2)
            } else {
                (t::GREATER, 1)
            })),
            b'<' => Ok(Some(if at(pos + 1) == Some(b'=') {
                (t::LESS_EQ, 2)
            } else {
                (t::LESS, 1)
            })),
            b'.' => Ok(Some((t::DOT, 1))),
            b':' => Ok(Some((t::COLON, 1))),
            b',' => Ok(Some((t::COMMA, 1))),
            b'{' => Ok(Some((t::LBRACE, 1))),
            b'}' => Ok(Some((t::RBRACE, 1))),
            b'[' => Ok(Some((t::LBRACKET, 1))),
            b']' => Ok(Some((t::RBRACKET, 1))),
            b'(' => Ok(Some((t::LPAREN, 1))),
            b')' => Ok(Some((t::RPAREN, 1))),
            b'"' => Ok(Some((t::QUOTES, 1))),
            _ => Err(0),
        };
        let len = match found {
            Ok(Some((ty, len))) => {
                if ty != SKIPPED {
                    let hidden = ty == t::WHITESPACE;
                    tokens.push(Token {
                        ty,
                        start,
                        end: start + len,
                        span,
                        hidden,
                    });
                    if !hidden {
                        visible += 1;
                    }
                }
                len
            }
            Ok(None) => 1,
            Err(consumed) => {
                // The error's text runs from the token's start to the
                // character the lexer failed at, included; recovery then
                // drops one character past what was consumed.
                let end = (pos + consumed + 1).min(b.len());
                errors.push(LexError {
                    before_visible: visible,
                    span,
                    text: source[pos..end].to_string(),
                });
                end - pos
            }
        };
        for &ch in &b[pos..pos + len] {
            if ch == b'\n' {
                line += 1;
                col = 0;
            } else {
                col += 1;
            }
        }
        pos += len;
    }
    tokens.push(Token {
        ty: t::EOF,
        start: b.len(),
        end: b.len(),
        span: Span { line, column: col },
        hidden: false,
    });
    (tokens, errors)
}

/// The type of a skipped token (a comment): never in the stream.
const SKIPPED: u16 = u16::MAX;

fn two(next: Option<u8>, want: u8, ty: u16) -> Result<Option<(u16, usize)>, usize> {
    if next == Some(want) {
        Ok(Some((ty, 2)))
    } else {
        Err(1)
    }
}

/// Bytes up to (not including) the next line break.
fn line_end(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .unwrap_or(b.len())
}

fn keyword(word: &str) -> u16 {
    match word {
        "true" => t::TRUE,
        "false" => t::FALSE,
        "in" | "IN" => t::IN,
        "and" => t::AND,
        "or" => t::OR,
        "not" => t::NOT,
        "if" => t::IF,
        "else" => t::ELSE,
        _ => t::IDENTIFIER,
    }
}
