//! NaCl tokens: what the reference grammar's lexer rules make of the
//! characters, with the 1-based line and 0-based column of each.
//!
//! Keywords are exact-case literals as in the reference (`in`/`IN`,
//! `and`, `true`, ...); every other word is an identifier, which may hold
//! `-` and `_` after its first letter. A character no rule matches is
//! reported the way the reference's lexer does and skipped.

use super::Diagnostic;

/// Where a token or node starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Number,
    Ident,
    Str,
    Hyphen,
    Slash,
    Dot,
    Colon,
    Comma,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    /// `==`, `!=`, `>`, `<`, `>=`, `<=`, `in`, `IN`
    Compare,
    And,
    Or,
    Not,
    If,
    Else,
    True,
    False,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Tok,
    pub text: &'a str,
    pub span: Span,
}

impl Token<'_> {
    /// The token as the reference's error messages quote it.
    pub fn quoted(&self) -> String {
        match self.kind {
            Tok::Eof => "<EOF>".to_string(),
            _ => format!("'{}'", self.text),
        }
    }
}

/// All tokens of `source`, ending with `Eof`, and the characters no rule
/// matched.
pub fn tokenize(source: &str) -> (Vec<Token<'_>>, Vec<Diagnostic>) {
    let mut lexer = Lexer {
        src: source,
        bytes: source.as_bytes(),
        pos: 0,
        line: 1,
        column: 0,
    };
    let mut tokens = Vec::with_capacity(source.len() / 4);
    let mut errors = Vec::new();
    loop {
        lexer.skip_trivia();
        let span = lexer.span();
        let start = lexer.pos;
        let Some(&b) = lexer.bytes.get(lexer.pos) else {
            tokens.push(Token {
                kind: Tok::Eof,
                text: "",
                span,
            });
            return (tokens, errors);
        };
        let kind = match b {
            b'0'..=b'9' => {
                lexer.eat_while(|c| c.is_ascii_digit());
                Some(Tok::Number)
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                lexer.eat_while(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
                Some(keyword(&source[start..lexer.pos]))
            }
            b'"' => {
                lexer.bump();
                while let Some(&c) = lexer.bytes.get(lexer.pos) {
                    lexer.bump();
                    if c == b'"' {
                        break;
                    }
                }
                if lexer.bytes[lexer.pos - 1] == b'"' && lexer.pos - start >= 2 {
                    Some(Tok::Str)
                } else {
                    // The reference reads an open string up to the end of
                    // the file and then misses its closing quote there.
                    let end = lexer.span();
                    errors.push(Diagnostic::at(end, "missing '\"' at '<EOF>'"));
                    None
                }
            }
            _ => lexer.punctuation(),
        };
        match kind {
            Some(kind) => tokens.push(Token {
                kind,
                text: &source[start..lexer.pos],
                span,
            }),
            None if lexer.pos == start => {
                let c = source[start..].chars().next().unwrap_or('?');
                lexer.bump_char();
                errors.push(Diagnostic::at(
                    span,
                    format!("token recognition error at: '{}'", c.escape_default()),
                ));
            }
            None => {}
        }
    }
}

fn keyword(word: &str) -> Tok {
    match word {
        "in" | "IN" => Tok::Compare,
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "if" => Tok::If,
        "else" => Tok::Else,
        "true" => Tok::True,
        "false" => Tok::False,
        _ => Tok::Ident,
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    column: u32,
}

impl Lexer<'_> {
    fn span(&self) -> Span {
        Span {
            line: self.line,
            column: self.column,
        }
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// One byte; columns count characters, so continuation bytes of a
    /// UTF-8 sequence do not move the column.
    fn bump(&mut self) {
        let b = self.bytes[self.pos];
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 0;
        } else if b & 0xC0 != 0x80 {
            self.column += 1;
        }
    }

    fn bump_char(&mut self) {
        let len = self.src[self.pos..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        for _ in 0..len {
            self.bump();
        }
    }

    fn eat_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek_at(0).is_some_and(&keep) {
            self.bump();
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek_at(0), self.peek_at(1)) {
                (Some(b' ' | b'\t' | b'\n' | b'\r'), _) => self.bump(),
                (Some(b'#'), _) | (Some(b'/'), Some(b'/')) => {
                    self.eat_while(|c| c != b'\n' && c != b'\r')
                }
                (Some(b'/'), Some(b'*')) => {
                    // An unclosed block comment is no comment: the
                    // reference lexes its `/` as a slash then.
                    let Some(len) = self.src[self.pos + 2..].find("*/") else {
                        return;
                    };
                    for _ in 0..len + 4 {
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    fn punctuation(&mut self) -> Option<Tok> {
        let two = (self.peek_at(0)?, self.peek_at(1));
        let (kind, len) = match two {
            (b'=', Some(b'=')) | (b'!', Some(b'=')) | (b'>', Some(b'=')) | (b'<', Some(b'=')) => {
                (Tok::Compare, 2)
            }
            (b'&', Some(b'&')) => (Tok::And, 2),
            (b'|', Some(b'|')) => (Tok::Or, 2),
            (b'>' | b'<', _) => (Tok::Compare, 1),
            (b'!', _) => (Tok::Not, 1),
            (b'-', _) => (Tok::Hyphen, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b':', _) => (Tok::Colon, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            _ => return None,
        };
        for _ in 0..len {
            self.bump();
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, &str, u32, u32)> {
        tokenize(src)
            .0
            .into_iter()
            .map(|t| (t.kind, t.text, t.span.line, t.span.column))
            .collect()
    }

    #[test]
    fn words_numbers_and_operators_with_positions() {
        assert_eq!(
            kinds("Iface eth0 {\n  index: 0 // c\n}\nif (a in 10.0.0.0/24 && !b)"),
            vec![
                (Tok::Ident, "Iface", 1, 0),
                (Tok::Ident, "eth0", 1, 6),
                (Tok::LBrace, "{", 1, 11),
                (Tok::Ident, "index", 2, 2),
                (Tok::Colon, ":", 2, 7),
                (Tok::Number, "0", 2, 9),
                (Tok::RBrace, "}", 3, 0),
                (Tok::If, "if", 4, 0),
                (Tok::LParen, "(", 4, 3),
                (Tok::Ident, "a", 4, 4),
                (Tok::Compare, "in", 4, 6),
                (Tok::Number, "10", 4, 9),
                (Tok::Dot, ".", 4, 11),
                (Tok::Number, "0", 4, 12),
                (Tok::Dot, ".", 4, 13),
                (Tok::Number, "0", 4, 14),
                (Tok::Dot, ".", 4, 15),
                (Tok::Number, "0", 4, 16),
                (Tok::Slash, "/", 4, 17),
                (Tok::Number, "24", 4, 18),
                (Tok::And, "&&", 4, 21),
                (Tok::Not, "!", 4, 24),
                (Tok::Ident, "b", 4, 25),
                (Tok::RParen, ")", 4, 26),
                (Tok::Eof, "", 4, 27),
            ]
        );
    }

    #[test]
    fn hyphenated_words_keywords_and_comments() {
        let toks = kinds("echo-request input in IN True true # x\n/* a\nb */ x");
        let words: Vec<_> = toks.iter().map(|t| (t.0, t.1)).collect();
        assert_eq!(
            words,
            vec![
                (Tok::Ident, "echo-request"),
                (Tok::Ident, "input"),
                (Tok::Compare, "in"),
                (Tok::Compare, "IN"),
                (Tok::Ident, "True"),
                (Tok::True, "true"),
                (Tok::Ident, "x"),
                (Tok::Eof, ""),
            ]
        );
        assert_eq!((toks[6].2, toks[6].3), (3, 5));
    }

    #[test]
    fn stray_characters_and_open_strings_are_reported_and_skipped() {
        let (toks, errors) = tokenize("a @ b\n\"open");
        assert_eq!(toks.len(), 3, "{toks:?}");
        assert_eq!(
            errors[0],
            Diagnostic::at(
                Span { line: 1, column: 2 },
                "token recognition error at: '@'"
            )
        );
        assert_eq!(errors[1].message, "missing '\"' at '<EOF>'");
        assert_eq!((errors[1].line, errors[1].column), (2, 5));
        let (toks, errors) = tokenize("é\"ß\" x");
        assert_eq!(errors.len(), 1);
        assert_eq!(toks[0].kind, Tok::Str);
        assert_eq!(toks[1].span, Span { line: 1, column: 5 });
    }
}
