//! The NaCl syntax tree: what the parser makes of a file, each node with
//! the position of its first token (the reference reports errors there).

pub use super::lexer::Span;

/// A file: its top-level items in order.
#[derive(Debug, Clone, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// `Type name value`, e.g. `Iface eth0 {...}` or `Iface eth0 dhcp`.
    Typed(Typed),
    /// `name: value` or `element.member: value`.
    Assignment(Assignment),
    /// `Type::Subtype name { body }`.
    Function(Function),
    /// A bare integer at the top level, which the grammar allows and the
    /// reference ignores.
    Integer(Span),
}

#[derive(Debug, Clone)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Typed {
    pub type_name: Ident,
    /// `Type::Subtype name value`: grammatical, but meaningful for no type.
    pub subtype: Option<Ident>,
    pub name: Ident,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub struct Assignment {
    /// The dotted name's parts, e.g. `eth0`, `address`.
    pub path: Vec<Ident>,
    pub value: Value,
}

impl Assignment {
    pub fn span(&self) -> Span {
        self.path[0].span
    }

    /// The name as written, e.g. `eth0.address`.
    pub fn name(&self) -> String {
        dotted(&self.path)
    }
}

/// `a.b.c` from its parts.
pub fn dotted(parts: &[Ident]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&p.text);
    }
    out
}

#[derive(Debug, Clone)]
pub struct Function {
    pub type_name: Ident,
    pub subtype: Ident,
    pub name: Option<Ident>,
    pub body: Vec<Statement>,
}

impl Function {
    pub fn span(&self) -> Span {
        self.type_name.span
    }
}

#[derive(Debug, Clone)]
pub enum Statement {
    Function(Function),
    Action(Action),
    If(If),
}

/// `name` or `name(args)`.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: Ident,
    /// `None` for a bare name, `Some` (maybe empty) with parentheses.
    pub args: Option<Vec<Value>>,
}

#[derive(Debug, Clone)]
pub struct If {
    pub span: Span,
    pub condition: Condition,
    pub then: Vec<Statement>,
    pub otherwise: Option<Vec<Statement>>,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Value(Value),
    Comparison {
        lhs: Value,
        op: Ident,
        rhs: Value,
    },
    Not(Span, Box<Condition>),
    Logical {
        lhs: Box<Condition>,
        and: bool,
        rhs: Box<Condition>,
    },
}

#[derive(Debug, Clone)]
pub struct Value {
    pub span: Span,
    pub kind: ValueKind,
}

#[derive(Debug, Clone)]
pub enum ValueKind {
    /// An integer as written (a negative one in parentheses, `(-5)`).
    Integer(String),
    Decimal(String),
    /// `a.b.c.d` as written; the checker bounds its bytes.
    Ipv4(String),
    /// `a.b.c.d/m` as written.
    Cidr(String),
    Bool(bool),
    /// `a-b`, both ends numbers or addresses.
    Range(Box<Value>, Box<Value>),
    /// With its quotes, as the reference keeps it.
    Str(String),
    /// A (dotted) name: a constant, an element, a member, a predefined
    /// name or a packet property such as `tcp.dport`.
    Name(Vec<Ident>),
    Object(Vec<Pair>),
    List(Vec<Value>),
}

#[derive(Debug, Clone)]
pub struct Pair {
    pub key: Ident,
    pub value: Value,
}

impl Value {
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
            | ValueKind::Str(t)
            | ValueKind::Ipv4(t)
            | ValueKind::Cidr(t) => out.push_str(t),
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
                    out.push_str(&p.key.text);
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

    /// The single name this value is, if it is one (`dhcp`, `my_filter`).
    pub fn as_name(&self) -> Option<&[Ident]> {
        match &self.kind {
            ValueKind::Name(parts) => Some(parts),
            _ => None,
        }
    }
}
