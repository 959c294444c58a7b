//! The NaCl syntax tree: what the parser makes of a file, each node with
//! the position of its first token (the reference reports errors there).

use std::borrow::Cow;

pub use super::lexer::Span;

/// A file: its top-level items in order.
#[derive(Debug, Clone, Default)]
pub struct File<'a> {
    pub items: Vec<Item<'a>>,
}

#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// `Type name value`, e.g. `Iface eth0 {...}` or `Iface eth0 dhcp`.
    Typed(Typed<'a>),
    /// `name: value` or `element.member: value`.
    Assignment(Assignment<'a>),
    /// `Type::Subtype name { body }`.
    Function(Function<'a>),
    /// A bare integer at the top level, which the grammar allows and the
    /// reference ignores.
    Integer(Span),
}

#[derive(Debug, Clone)]
pub struct Ident<'a> {
    pub text: &'a str,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Typed<'a> {
    pub type_name: Ident<'a>,
    /// `Type::Subtype name value`: grammatical, but meaningful for no type.
    pub subtype: Option<Ident<'a>>,
    pub name: Ident<'a>,
    pub value: Value<'a>,
}

#[derive(Debug, Clone)]
pub struct Assignment<'a> {
    /// The dotted name's parts, e.g. `eth0`, `address`.
    pub path: Vec<Ident<'a>>,
    pub value: Value<'a>,
}

impl<'a> Assignment<'a> {
    pub fn span(&self) -> Span {
        self.path[0].span
    }

    /// The name as written, e.g. `eth0.address`.
    pub fn name(&self) -> Cow<'a, str> {
        match self.path.as_slice() {
            [one] => Cow::Borrowed(one.text),
            parts => Cow::Owned(dotted(parts)),
        }
    }
}

/// `a.b.c` from its parts.
pub fn dotted(parts: &[Ident<'_>]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(p.text);
    }
    out
}

#[derive(Debug, Clone)]
pub struct Function<'a> {
    pub type_name: Ident<'a>,
    pub subtype: Ident<'a>,
    pub name: Option<Ident<'a>>,
    pub body: Vec<Statement<'a>>,
}

impl<'a> Function<'a> {
    pub fn span(&self) -> Span {
        self.type_name.span
    }
}

#[derive(Debug, Clone)]
pub enum Statement<'a> {
    Function(Function<'a>),
    Action(Action<'a>),
    If(If<'a>),
}

/// `name` or `name(args)`.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    pub name: Ident<'a>,
    /// `None` for a bare name, `Some` (maybe empty) with parentheses.
    pub args: Option<Vec<Value<'a>>>,
}

#[derive(Debug, Clone)]
pub struct If<'a> {
    pub span: Span,
    pub condition: Condition<'a>,
    pub then: Vec<Statement<'a>>,
    pub otherwise: Option<Vec<Statement<'a>>>,
}

#[derive(Debug, Clone)]
pub enum Condition<'a> {
    Value(Value<'a>),
    Comparison {
        lhs: Value<'a>,
        op: Ident<'a>,
        rhs: Value<'a>,
    },
    Not(Span, Box<Condition<'a>>),
    Logical {
        lhs: Box<Condition<'a>>,
        and: bool,
        rhs: Box<Condition<'a>>,
    },
}

#[derive(Debug, Clone)]
pub struct Value<'a> {
    pub span: Span,
    pub kind: ValueKind<'a>,
}

#[derive(Debug, Clone)]
pub enum ValueKind<'a> {
    /// An integer as written (a negative one in parentheses, `(-5)`).
    Integer(Cow<'a, str>),
    Decimal(Cow<'a, str>),
    /// `a.b.c.d` as written; the checker bounds its bytes.
    Ipv4(Cow<'a, str>),
    /// `a.b.c.d/m` as written.
    Cidr(Cow<'a, str>),
    Bool(bool),
    /// `a-b`, both ends numbers or addresses.
    Range(Box<Value<'a>>, Box<Value<'a>>),
    /// With its quotes, as the reference keeps it.
    Str(&'a str),
    /// A (dotted) name: a constant, an element, a member, a predefined
    /// name or a packet property such as `tcp.dport`.
    Name(Path<'a>),
    Object(Vec<Pair<'a>>),
    List(Vec<Value<'a>>),
}

/// A name's parts. Most names have one, which is kept inline: a file is
/// mostly names, and a heap block each would be most of its parse.
#[derive(Debug, Clone)]
pub enum Path<'a> {
    One([Ident<'a>; 1]),
    Dotted(Vec<Ident<'a>>),
}

impl<'a> std::ops::Deref for Path<'a> {
    type Target = [Ident<'a>];

    fn deref(&self) -> &[Ident<'a>] {
        match self {
            Path::One(one) => one,
            Path::Dotted(parts) => parts,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pair<'a> {
    pub key: Ident<'a>,
    pub value: Value<'a>,
}

impl<'a> Value<'a> {
    /// The value as the reference's messages quote it: its tokens without
    /// the whitespace between them (ANTLR's `getText`).
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) {
        match &self.kind {
            ValueKind::Integer(t)
            | ValueKind::Decimal(t)
            | ValueKind::Ipv4(t)
            | ValueKind::Cidr(t) => out.push_str(t),
            ValueKind::Str(t) => out.push_str(t),
            ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            ValueKind::Range(a, b) => {
                a.write_text(out);
                out.push('-');
                b.write_text(out);
            }
            ValueKind::Name(parts) => out.push_str(&dotted(parts)),
            ValueKind::Object(pairs) => {
                out.push('{');
                for (i, p) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(p.key.text);
                    out.push(':');
                    p.value.write_text(out);
                }
                out.push('}');
            }
            ValueKind::List(values) => {
                out.push('[');
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_text(out);
                }
                out.push(']');
            }
        }
    }

    /// The (dotted) name this value is, as written, if it is one.
    pub fn name_text(&self) -> Option<Cow<'a, str>> {
        match &self.kind {
            ValueKind::Name(parts) => Some(match &parts[..] {
                [one] => Cow::Borrowed(one.text),
                parts => Cow::Owned(dotted(parts)),
            }),
            _ => None,
        }
    }

    /// The single name this value is, if it is one (`dhcp`, `my_filter`).
    pub fn as_name(&self) -> Option<&[Ident<'a>]> {
        match &self.kind {
            ValueKind::Name(parts) => Some(parts),
            _ => None,
        }
    }
}
