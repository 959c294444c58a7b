//! The NaCl parser: recursive descent over the reference grammar
//! (spec/nacl.md), into the syntax tree of `syntax`.
//!
//! A syntax error is reported at its offending token in the shape of the
//! reference's ANTLR messages (`mismatched input 'X' expecting ...`); the
//! parser then skips to the next top-level item, so one file yields all of
//! its syntax errors. Nesting is bounded, so no input can exhaust the stack.

use super::lexer::{tokenize, Span, Tok, Token};
use super::syntax::*;
use super::Diagnostic;
use std::borrow::Cow;

/// How deep objects, lists, conditions and functions may nest.
pub const MAX_NESTING: usize = 200;

/// The syntax tree of `source`, and its syntax errors in file order. The
/// tree holds every item that parsed.
pub fn parse(source: &str) -> (File<'_>, Vec<Diagnostic>) {
    let (tokens, mut errors) = tokenize(source);
    let mut p = Parser {
        source,
        tokens,
        pos: 0,
        nesting: 0,
        errors: Vec::new(),
    };
    let mut file = File::default();
    while p.peek().kind != Tok::Eof {
        match p.item() {
            Ok(item) => file.items.push(item),
            Err(Failed) => p.recover(),
        }
    }
    errors.append(&mut p.errors);
    errors.sort_by_key(|d| (d.line, d.column));
    (file, errors)
}

/// A syntax error has been recorded; the caller unwinds to `recover`.
struct Failed;

type Parsed<T> = Result<T, Failed>;

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    nesting: usize,
    errors: Vec<Diagnostic>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Token<'a> {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> Token<'a> {
        let last = self.tokens.len() - 1;
        self.tokens[(self.pos + n).min(last)]
    }

    fn next(&mut self) -> Token<'a> {
        let t = self.peek();
        if t.kind != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn at(&self, kind: Tok) -> bool {
        self.peek().kind == kind
    }

    fn eat(&mut self, kind: Tok) -> bool {
        let found = self.at(kind);
        if found {
            self.pos += 1;
        }
        found
    }

    fn fail<T>(&mut self, span: Span, message: String) -> Parsed<T> {
        self.errors.push(Diagnostic::at(span, message));
        Err(Failed)
    }

    /// The error for the next token when `expected` was due, worded as
    /// ANTLR words its single-token repairs.
    fn unexpected<T>(&mut self, expected: &str) -> Parsed<T> {
        let t = self.peek();
        let message = if self.peek_at(1).kind != Tok::Eof && describes(expected, self.peek_at(1)) {
            format!("extraneous input {} expecting {expected}", t.quoted())
        } else if matches!(expected, "':'" | "'}'" | "']'" | "')'" | "','") && t.kind != Tok::Eof {
            format!("missing {expected} at {}", t.quoted())
        } else {
            format!("mismatched input {} expecting {expected}", t.quoted())
        };
        self.fail(t.span, message)
    }

    fn expect(&mut self, kind: Tok, expected: &str) -> Parsed<Token<'a>> {
        if self.at(kind) {
            Ok(self.next())
        } else {
            self.unexpected(expected)
        }
    }

    fn ident(&mut self) -> Parsed<Ident<'a>> {
        let t = self.expect(Tok::Ident, "Identifier")?;
        Ok(ident(t))
    }

    fn nest(&mut self) -> Parsed<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let span = self.peek().span;
            return self.fail(span, format!("nesting deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn unnest(&mut self) {
        self.nesting -= 1;
    }

    /// After an error: skip to what can start the next top-level item, a
    /// word at the start of a line followed by a name, `::`, `:` or `.`,
    /// or any such word once the brackets opened since the error close.
    fn recover(&mut self) {
        self.nesting = 0;
        let mut depth: usize = 0;
        let start = self.pos;
        loop {
            let t = self.peek();
            if t.kind == Tok::Eof {
                return;
            }
            let starts_item = t.kind == Tok::Ident
                && matches!(self.peek_at(1).kind, Tok::Ident | Tok::Colon | Tok::Dot);
            if self.pos > start && starts_item && (t.span.column == 0 || depth == 0) {
                return;
            }
            match t.kind {
                Tok::LBrace | Tok::LBracket | Tok::LParen => depth += 1,
                Tok::RBrace | Tok::RBracket | Tok::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn item(&mut self) -> Parsed<Item<'a>> {
        let t = self.peek();
        match t.kind {
            Tok::Number => {
                while self.eat(Tok::Number) {}
                Ok(Item::Integer(t.span))
            }
            Tok::LParen if self.peek_at(1).kind == Tok::Hyphen => {
                let v = self.value()?;
                match v.kind {
                    ValueKind::Integer(_) => Ok(Item::Integer(v.span)),
                    _ => self.fail(
                        v.span,
                        format!("no viable alternative at input '{}'", v.text()),
                    ),
                }
            }
            Tok::Ident => match self.peek_at(1).kind {
                Tok::Colon if self.peek_at(2).kind == Tok::Colon => self.function_or_typed(),
                Tok::Ident => {
                    let type_name = self.ident()?;
                    let name = self.ident()?;
                    let value = self.value()?;
                    Ok(Item::Typed(Typed {
                        type_name,
                        subtype: None,
                        name,
                        value,
                    }))
                }
                Tok::Colon | Tok::Dot => {
                    let path = self.value_name()?;
                    self.expect(Tok::Colon, "':'")?;
                    let value = self.value()?;
                    Ok(Item::Assignment(Assignment { path, value }))
                }
                _ => {
                    let next = self.peek_at(1);
                    self.fail(
                        next.span,
                        format!("no viable alternative at input '{}{}'", t.text, next.text),
                    )
                }
            },
            _ => self.fail(
                t.span,
                format!(
                    "extraneous input {} expecting {{<EOF>, Number, '(', Identifier}}",
                    t.quoted()
                ),
            ),
        }
    }

    /// `Type::Subtype [name] {body}`, or the rare `Type::Subtype name value`.
    fn function_or_typed(&mut self) -> Parsed<Item<'a>> {
        let type_name = self.ident()?;
        self.expect(Tok::Colon, "':'")?;
        self.expect(Tok::Colon, "':'")?;
        let subtype = self.ident()?;
        let name = if self.at(Tok::Ident) {
            Some(self.ident()?)
        } else {
            None
        };
        let is_object = self.at(Tok::LBrace)
            && self.peek_at(1).kind == Tok::Ident
            && self.peek_at(2).kind == Tok::Colon
            && self.peek_at(3).kind != Tok::Colon;
        if let Some(name) = name.clone().filter(|_| is_object || !self.at(Tok::LBrace)) {
            let value = self.value()?;
            return Ok(Item::Typed(Typed {
                type_name,
                subtype: Some(subtype),
                name,
                value,
            }));
        }
        let body = self.block()?;
        Ok(Item::Function(Function {
            type_name,
            subtype,
            name,
            body,
        }))
    }

    /// `{ body_element+ }`
    fn block(&mut self) -> Parsed<Vec<Statement<'a>>> {
        self.expect(Tok::LBrace, "'{'")?;
        self.nest()?;
        let mut body = Vec::new();
        loop {
            match self.peek().kind {
                Tok::RBrace if !body.is_empty() => break,
                Tok::If => body.push(Statement::If(self.conditional()?)),
                Tok::Ident
                    if self.peek_at(1).kind == Tok::Colon && self.peek_at(2).kind == Tok::Colon =>
                {
                    let type_name = self.ident()?;
                    self.next();
                    self.next();
                    let subtype = self.ident()?;
                    let name = if self.at(Tok::Ident) {
                        Some(self.ident()?)
                    } else {
                        None
                    };
                    let inner = self.block()?;
                    body.push(Statement::Function(Function {
                        type_name,
                        subtype,
                        name,
                        body: inner,
                    }));
                }
                Tok::Ident => {
                    let name = self.ident()?;
                    let args = if self.eat(Tok::LParen) {
                        let mut args = Vec::new();
                        if !self.at(Tok::RParen) {
                            args = self.value_list(Tok::RParen)?;
                        }
                        self.expect(Tok::RParen, "')'")?;
                        Some(args)
                    } else {
                        None
                    };
                    body.push(Statement::Action(Action { name, args }));
                }
                _ => return self.unexpected("{'if', Identifier}"),
            }
        }
        self.next();
        self.unnest();
        Ok(body)
    }

    fn conditional(&mut self) -> Parsed<If<'a>> {
        let span = self.next().span;
        self.expect(Tok::LParen, "'('")?;
        let condition = self.condition()?;
        self.expect(Tok::RParen, "')'")?;
        let then = self.block()?;
        let otherwise = if self.eat(Tok::Else) {
            Some(self.block()?)
        } else {
            None
        };
        Ok(If {
            span,
            condition,
            then,
            otherwise,
        })
    }

    /// `unary ((and|or) unary)*`; the reference gives `and` and `or` one
    /// precedence, left to right.
    fn condition(&mut self) -> Parsed<Condition<'a>> {
        self.nest()?;
        let mut lhs = self.unary()?;
        loop {
            let and = match self.peek().kind {
                Tok::And => true,
                Tok::Or => false,
                _ => break,
            };
            self.next();
            let rhs = self.unary()?;
            lhs = Condition::Logical {
                lhs: Box::new(lhs),
                and,
                rhs: Box::new(rhs),
            };
        }
        self.unnest();
        Ok(lhs)
    }

    fn unary(&mut self) -> Parsed<Condition<'a>> {
        if self.at(Tok::Not) {
            let span = self.next().span;
            let inner = self.primary()?;
            return Ok(Condition::Not(span, Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Parsed<Condition<'a>> {
        if self.at(Tok::LParen) && self.peek_at(1).kind != Tok::Hyphen {
            self.next();
            let inner = self.condition()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(inner);
        }
        let lhs = self.value()?;
        if self.at(Tok::Compare) {
            let op = ident(self.next());
            let rhs = self.value()?;
            return Ok(Condition::Comparison { lhs, op, rhs });
        }
        Ok(Condition::Value(lhs))
    }

    fn value_list(&mut self, end: Tok) -> Parsed<Vec<Value<'a>>> {
        let mut values = vec![self.value()?];
        while self.eat(Tok::Comma) {
            values.push(self.value()?);
        }
        if !self.at(end) {
            return self.unexpected(match end {
                Tok::RBracket => "{',', ']'}",
                _ => "{',', ')'}",
            });
        }
        Ok(values)
    }

    fn value_name(&mut self) -> Parsed<Vec<Ident<'a>>> {
        let mut parts = vec![self.ident()?];
        while self.at(Tok::Dot) && self.peek_at(1).kind == Tok::Ident {
            self.next();
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    fn value(&mut self) -> Parsed<Value<'a>> {
        let t = self.peek();
        let kind = match t.kind {
            Tok::Number => return self.numeric_value(),
            Tok::LParen if self.peek_at(1).kind == Tok::Hyphen => return self.numeric_value(),
            Tok::True | Tok::False => {
                self.next();
                ValueKind::Bool(t.kind == Tok::True)
            }
            Tok::Str => {
                self.next();
                ValueKind::Str(t.text)
            }
            Tok::Ident => {
                let first = self.ident()?;
                if self.at(Tok::Dot) && self.peek_at(1).kind == Tok::Ident {
                    let mut parts = vec![first];
                    while self.at(Tok::Dot) && self.peek_at(1).kind == Tok::Ident {
                        self.next();
                        parts.push(self.ident()?);
                    }
                    ValueKind::Name(Path::Dotted(parts))
                } else {
                    ValueKind::Name(Path::One([first]))
                }
            }
            Tok::LBrace => {
                self.next();
                self.nest()?;
                let mut pairs = Vec::new();
                loop {
                    let key = self.ident()?;
                    self.expect(Tok::Colon, "':'")?;
                    let value = self.value()?;
                    pairs.push(Pair { key, value });
                    if !self.eat(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RBrace, "{',', '}'}")?;
                self.unnest();
                ValueKind::Object(pairs)
            }
            Tok::LBracket => {
                self.next();
                self.nest()?;
                let values = self.value_list(Tok::RBracket)?;
                self.next();
                self.unnest();
                ValueKind::List(values)
            }
            _ => {
                return self.fail(
                    t.span,
                    format!("mismatched input {} expecting a value", t.quoted()),
                )
            }
        };
        Ok(Value { span: t.span, kind })
    }

    /// A number, decimal or address, then maybe `/mask` or `-end`.
    fn numeric_value(&mut self) -> Parsed<Value<'a>> {
        let start = self.pos;
        let first = self.numeric()?;
        if matches!(first.kind, ValueKind::Ipv4(_)) && self.at(Tok::Slash) {
            self.next();
            self.number_plus()?;
            let text = self.text_of(start, self.pos);
            return Ok(Value {
                span: first.span,
                kind: ValueKind::Cidr(text),
            });
        }
        if self.at(Tok::Hyphen) {
            self.next();
            let last = self.numeric()?;
            return Ok(Value {
                span: first.span,
                kind: ValueKind::Range(Box::new(first), Box::new(last)),
            });
        }
        Ok(first)
    }

    /// `n`, `n.m`, `a.b.c.d`, `(-n)`, `(-n.m)`; a number is one or more
    /// Number tokens (`Number+` in the grammar: `0 0` is `00`).
    fn numeric(&mut self) -> Parsed<Value<'a>> {
        let span = self.peek().span;
        if self.eat(Tok::LParen) {
            self.expect(Tok::Hyphen, "'-'")?;
            let int = self.number_plus()?;
            let kind = if self.at(Tok::Dot) {
                self.next();
                let frac = self.number_plus()?;
                ValueKind::Decimal(format!("(-{int}.{frac})").into())
            } else {
                ValueKind::Integer(format!("(-{int})").into())
            };
            self.expect(Tok::RParen, "')'")?;
            return Ok(Value { span, kind });
        }
        let start = self.pos;
        self.number_plus()?;
        let mut groups = 1;
        // An address's bytes are one Number each (`ipv4_addr` in the
        // grammar); an integer's and a decimal's parts may be several:
        // each part after the first is one Number, and a decimal's second
        // part takes the Numbers after it once no third part follows.
        let one_number_each = self.pos - start == 1;
        while groups < 4 && self.at(Tok::Dot) && self.peek_at(1).kind == Tok::Number {
            self.next();
            self.next();
            groups += 1;
            let more = self.at(Tok::Dot) && self.peek_at(1).kind == Tok::Number;
            if groups == 2 && !more {
                while self.eat(Tok::Number) {}
                break;
            }
        }
        let text = self.text_of(start, self.pos);
        let kind = match groups {
            1 => ValueKind::Integer(text),
            2 => ValueKind::Decimal(text),
            4 if one_number_each => ValueKind::Ipv4(text),
            _ => return self.unexpected("'.'"),
        };
        Ok(Value { span, kind })
    }

    /// `Number+`, as one text.
    fn number_plus(&mut self) -> Parsed<Cow<'a, str>> {
        let start = self.pos;
        self.expect(Tok::Number, "Number")?;
        while self.eat(Tok::Number) {}
        Ok(self.text_of(start, self.pos))
    }

    /// The texts of tokens `from..to` joined as ANTLR's getText joins
    /// them: without what lies between (borrowed when nothing does).
    fn text_of(&self, from: usize, to: usize) -> Cow<'a, str> {
        let toks = &self.tokens[from..to];
        let [first, .., last] = toks else {
            return Cow::Borrowed(toks.first().map_or("", |t| t.text));
        };
        let base = self.source.as_ptr() as usize;
        let a = first.text.as_ptr() as usize - base;
        let b = last.text.as_ptr() as usize - base + last.text.len();
        let len: usize = toks.iter().map(|t| t.text.len()).sum();
        if b - a == len {
            return Cow::Borrowed(&self.source[a..b]);
        }
        Cow::Owned(toks.iter().map(|t| t.text).collect())
    }
}

fn ident(t: Token<'_>) -> Ident<'_> {
    Ident {
        text: t.text,
        span: t.span,
    }
}

/// Whether `token` is what an `expected` description names.
fn describes(expected: &str, token: Token<'_>) -> bool {
    match token.kind {
        Tok::Ident => expected == "Identifier",
        Tok::Number => expected == "Number",
        Tok::Eof => false,
        _ => expected == format!("'{}'", token.text),
    }
}
