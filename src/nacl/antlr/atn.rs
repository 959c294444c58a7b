//! NaCl.g4's parser as an ATN, built the way the ANTLR 4 tool builds one
//! (blocks, star and plus loops with their entry, loop-back and end
//! states), so that prediction and error recovery over it see the states
//! the reference's generated parser sees. The left-recursive `bool_expr`
//! is written as the tool rewrites it: its primary alternatives, then a
//! loop `( {precpred(2)}? logical_operator bool_expr[3] )*`.

use super::lexer::t;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Basic,
    RuleStart,
    RuleStop,
    BlockStart,
    BlockEnd,
    StarBlockStart,
    StarLoopEntry,
    StarLoopBack,
    PlusBlockStart,
    PlusLoopBack,
    LoopEnd,
}

#[derive(Debug, Clone)]
pub enum Trans {
    /// `outermost`: set on the return edge of a precedence rule invoked
    /// with precedence 0 (ANTLR's outermostPrecedenceReturn).
    Eps {
        target: u32,
        outermost: Option<u16>,
    },
    Atom {
        target: u32,
        ty: u16,
    },
    /// A block of single-token alternatives, matched as a set by the
    /// generated parser (`'true' | 'false'`, the operators).
    Set {
        target: u32,
        tys: &'static [u16],
    },
    NotTok {
        target: u32,
        ty: u16,
    },
    Rule {
        target: u32,
        rule: u16,
        follow: u32,
        prec: u8,
    },
    Prec {
        target: u32,
        prec: u8,
    },
}

impl Trans {
    pub fn target(&self) -> u32 {
        match *self {
            Trans::Eps { target, .. }
            | Trans::Atom { target, .. }
            | Trans::Set { target, .. }
            | Trans::NotTok { target, .. }
            | Trans::Rule { target, .. }
            | Trans::Prec { target, .. } => target,
        }
    }

    pub fn is_epsilon(&self) -> bool {
        matches!(
            self,
            Trans::Eps { .. } | Trans::Rule { .. } | Trans::Prec { .. }
        )
    }

    /// Whether this transition consumes token type `ty`.
    pub fn matches(&self, ty: u16) -> bool {
        match *self {
            Trans::Atom { ty: want, .. } => ty == want,
            Trans::Set { tys, .. } => tys.contains(&ty),
            Trans::NotTok { ty: not, .. } => (1..=t::MAX).contains(&ty) && ty != not,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct State {
    pub kind: Kind,
    pub rule: u16,
    pub trans: Vec<Trans>,
    /// The loop decision of a left-recursive rule.
    pub precedence_decision: bool,
    /// A set match: single-token insertion never applies there.
    pub set_match: bool,
}

impl State {
    pub fn epsilon_only(&self) -> bool {
        !self.trans.is_empty() && self.trans.iter().all(Trans::is_epsilon)
    }
}

pub struct Atn {
    pub states: Vec<State>,
    pub rule_start: Vec<u32>,
    #[allow(dead_code)] // kept for inspection in tests and debugging
    pub rule_stop: Vec<u32>,
    pub precedence_rule: Vec<bool>,
}

/// Rules, numbered as in NaCl.g4.
pub mod r {
    pub const VALUE: u16 = 0;
    pub const PRIMITIVE_TYPE: u16 = 1;
    pub const NUMERIC_TYPE: u16 = 2;
    pub const BOOL_VAL: u16 = 3;
    pub const IPV4_CIDR: u16 = 4;
    pub const CIDR_MASK: u16 = 5;
    pub const INTEGER: u16 = 6;
    pub const DECIMAL: u16 = 7;
    pub const IPV4_ADDR: u16 = 8;
    pub const RNG: u16 = 9;
    pub const STRING: u16 = 10;
    pub const VALUE_NAME: u16 = 11;
    pub const OBJ: u16 = 12;
    pub const KEY_VALUE_LIST: u16 = 13;
    pub const KEY_VALUE_PAIR: u16 = 14;
    pub const KEY: u16 = 15;
    pub const LIST_T: u16 = 16;
    pub const VALUE_LIST: u16 = 17;
    pub const FUNCTION: u16 = 18;
    pub const TYPE_T: u16 = 19;
    pub const SUBTYPE: u16 = 20;
    pub const NAME: u16 = 21;
    pub const BODY: u16 = 22;
    pub const BODY_ELEMENT: u16 = 23;
    pub const ACTION: u16 = 24;
    pub const CONDITIONAL: u16 = 25;
    pub const BOOL_EXPR: u16 = 26;
    pub const COMPARISON: u16 = 27;
    pub const LHS: u16 = 28;
    pub const RHS: u16 = 29;
    pub const LOGICAL_OPERATOR: u16 = 30;
    pub const COMPARISON_OPERATOR: u16 = 31;
    pub const TYPED_INITIALIZER: u16 = 32;
    pub const INITIALIZER: u16 = 33;
    pub const EXPR: u16 = 34;
    pub const PROG: u16 = 35;
    pub const COUNT: usize = 36;
}

/// A grammar element.
enum E {
    T(u16),
    NotT(u16),
    R(u16),
    /// A rule reference with a precedence argument (`bool_expr[3]`).
    Rp(u16, u8),
    Seq(Vec<E>),
    Alt(Vec<E>),
    Opt(Box<E>),
    Star(Box<E>),
    /// The loop of a left-recursive rule: a precedence decision.
    PrecStar(Box<E>),
    Plus(Box<E>),
    Set(&'static [u16]),
    Prec(u8),
}

use E::*;

fn seq(v: Vec<E>) -> E {
    Seq(v)
}

const BOOLS: &[u16] = &[t::TRUE, t::FALSE];
const LOGICAL: &[u16] = &[t::AND, t::OR];
const COMPARISONS: &[u16] = &[
    t::EQUALS,
    t::NOT_EQUALS,
    t::GREATER,
    t::LESS,
    t::GREATER_EQ,
    t::LESS_EQ,
    t::IN,
];

/// The body of rule `rule`, as NaCl.g4 writes it.
fn rule_body(rule: u16) -> E {
    let num_plus = || Plus(Box::new(T(t::NUMBER)));
    match rule {
        r::VALUE => Alt(vec![
            R(r::PRIMITIVE_TYPE),
            R(r::RNG),
            R(r::STRING),
            R(r::VALUE_NAME),
            R(r::OBJ),
            R(r::LIST_T),
        ]),
        r::PRIMITIVE_TYPE => Alt(vec![R(r::NUMERIC_TYPE), R(r::BOOL_VAL), R(r::IPV4_CIDR)]),
        r::NUMERIC_TYPE => Alt(vec![R(r::INTEGER), R(r::DECIMAL), R(r::IPV4_ADDR)]),
        r::BOOL_VAL => Set(BOOLS),
        r::IPV4_CIDR => seq(vec![R(r::IPV4_ADDR), R(r::CIDR_MASK)]),
        r::CIDR_MASK => seq(vec![T(t::SLASH), R(r::INTEGER)]),
        r::INTEGER => Alt(vec![
            num_plus(),
            seq(vec![T(t::LPAREN), T(t::HYPHEN), num_plus(), T(t::RPAREN)]),
        ]),
        r::DECIMAL => Alt(vec![
            seq(vec![num_plus(), T(t::DOT), num_plus()]),
            seq(vec![
                T(t::LPAREN),
                T(t::HYPHEN),
                num_plus(),
                T(t::DOT),
                num_plus(),
                T(t::RPAREN),
            ]),
        ]),
        r::IPV4_ADDR => seq(vec![
            T(t::NUMBER),
            T(t::DOT),
            T(t::NUMBER),
            T(t::DOT),
            T(t::NUMBER),
            T(t::DOT),
            T(t::NUMBER),
        ]),
        r::RNG => seq(vec![R(r::NUMERIC_TYPE), T(t::HYPHEN), R(r::NUMERIC_TYPE)]),
        r::STRING => seq(vec![
            T(t::QUOTES),
            Star(Box::new(Alt(vec![NotT(t::QUOTES), T(t::BACKSLASH_N)]))),
            T(t::QUOTES),
        ]),
        r::VALUE_NAME => Alt(vec![
            T(t::IDENTIFIER),
            seq(vec![T(t::IDENTIFIER), T(t::DOT), R(r::VALUE_NAME)]),
        ]),
        r::OBJ => seq(vec![T(t::LBRACE), R(r::KEY_VALUE_LIST), T(t::RBRACE)]),
        r::KEY_VALUE_LIST => seq(vec![
            Star(Box::new(seq(vec![R(r::KEY_VALUE_PAIR), T(t::COMMA)]))),
            R(r::KEY_VALUE_PAIR),
        ]),
        r::KEY_VALUE_PAIR => seq(vec![R(r::KEY), T(t::COLON), R(r::VALUE)]),
        r::KEY | r::TYPE_T | r::SUBTYPE | r::NAME => T(t::IDENTIFIER),
        r::LIST_T => seq(vec![T(t::LBRACKET), R(r::VALUE_LIST), T(t::RBRACKET)]),
        r::VALUE_LIST => seq(vec![
            Star(Box::new(seq(vec![R(r::VALUE), T(t::COMMA)]))),
            R(r::VALUE),
        ]),
        r::FUNCTION => seq(vec![
            R(r::TYPE_T),
            T(t::COLON),
            T(t::COLON),
            R(r::SUBTYPE),
            Opt(Box::new(R(r::NAME))),
            T(t::LBRACE),
            R(r::BODY),
            T(t::RBRACE),
        ]),
        r::BODY => Plus(Box::new(R(r::BODY_ELEMENT))),
        r::BODY_ELEMENT => Alt(vec![R(r::FUNCTION), R(r::ACTION), R(r::CONDITIONAL)]),
        r::ACTION => Alt(vec![
            R(r::NAME),
            seq(vec![
                R(r::NAME),
                T(t::LPAREN),
                Opt(Box::new(R(r::VALUE_LIST))),
                T(t::RPAREN),
            ]),
        ]),
        r::CONDITIONAL => seq(vec![
            T(t::IF),
            T(t::LPAREN),
            Rp(r::BOOL_EXPR, 0),
            T(t::RPAREN),
            T(t::LBRACE),
            R(r::BODY),
            T(t::RBRACE),
            Opt(Box::new(seq(vec![
                T(t::ELSE),
                T(t::LBRACE),
                R(r::BODY),
                T(t::RBRACE),
            ]))),
        ]),
        r::BOOL_EXPR => {
            let not = || Opt(Box::new(T(t::NOT)));
            seq(vec![
                Alt(vec![
                    seq(vec![not(), R(r::VALUE)]),
                    seq(vec![not(), R(r::COMPARISON)]),
                    seq(vec![not(), T(t::LPAREN), R(r::COMPARISON), T(t::RPAREN)]),
                    seq(vec![not(), T(t::LPAREN), Rp(r::BOOL_EXPR, 0), T(t::RPAREN)]),
                    seq(vec![
                        not(),
                        T(t::LPAREN),
                        Rp(r::BOOL_EXPR, 0),
                        R(r::LOGICAL_OPERATOR),
                        Rp(r::BOOL_EXPR, 0),
                        T(t::RPAREN),
                    ]),
                ]),
                PrecStar(Box::new(seq(vec![
                    Prec(2),
                    R(r::LOGICAL_OPERATOR),
                    Rp(r::BOOL_EXPR, 3),
                ]))),
            ])
        }
        r::COMPARISON => seq(vec![R(r::LHS), R(r::COMPARISON_OPERATOR), R(r::RHS)]),
        r::LHS | r::RHS => R(r::VALUE),
        r::LOGICAL_OPERATOR => Set(LOGICAL),
        r::COMPARISON_OPERATOR => Set(COMPARISONS),
        r::TYPED_INITIALIZER => seq(vec![R(r::TYPE_T), R(r::NAME), R(r::VALUE)]),
        r::INITIALIZER => seq(vec![R(r::VALUE_NAME), T(t::COLON), R(r::VALUE)]),
        r::EXPR => Alt(vec![
            R(r::INTEGER),
            R(r::FUNCTION),
            R(r::TYPED_INITIALIZER),
            R(r::INITIALIZER),
        ]),
        _ => seq(vec![Star(Box::new(R(r::EXPR))), T(t::EOF)]),
    }
}

struct Builder {
    states: Vec<State>,
    rule: u16,
    rule_start: Vec<u32>,
}

impl Builder {
    fn new_state(&mut self, kind: Kind) -> u32 {
        self.states.push(State {
            kind,
            rule: self.rule,
            trans: Vec::new(),
            precedence_decision: false,
            set_match: false,
        });
        (self.states.len() - 1) as u32
    }

    fn add(&mut self, from: u32, tr: Trans) {
        self.states[from as usize].trans.push(tr);
    }

    fn eps(&mut self, from: u32, to: u32) {
        self.add(
            from,
            Trans::Eps {
                target: to,
                outermost: None,
            },
        );
    }

    /// The (left, right) states of element `e`.
    fn build(&mut self, e: &E) -> (u32, u32) {
        match e {
            T(ty) | NotT(ty) => {
                let (l, rt) = (self.new_state(Kind::Basic), self.new_state(Kind::Basic));
                let tr = match e {
                    T(_) => Trans::Atom {
                        target: rt,
                        ty: *ty,
                    },
                    _ => Trans::NotTok {
                        target: rt,
                        ty: *ty,
                    },
                };
                self.add(l, tr);
                (l, rt)
            }
            Set(tys) => {
                let (l, rt) = (self.new_state(Kind::Basic), self.new_state(Kind::Basic));
                self.states[l as usize].set_match = true;
                self.add(l, Trans::Set { target: rt, tys });
                (l, rt)
            }
            Prec(p) => {
                let (l, rt) = (self.new_state(Kind::Basic), self.new_state(Kind::Basic));
                self.add(
                    l,
                    Trans::Prec {
                        target: rt,
                        prec: *p,
                    },
                );
                (l, rt)
            }
            R(rule) | Rp(rule, _) => {
                let prec = if let Rp(_, p) = e { *p } else { 0 };
                let (l, rt) = (self.new_state(Kind::Basic), self.new_state(Kind::Basic));
                let target = self.rule_start[*rule as usize];
                self.add(
                    l,
                    Trans::Rule {
                        target,
                        rule: *rule,
                        follow: rt,
                        prec,
                    },
                );
                (l, rt)
            }
            Seq(els) => {
                let handles: Vec<(u32, u32)> = els.iter().map(|e| self.build(e)).collect();
                for w in handles.windows(2) {
                    self.eps(w[0].1, w[1].0);
                }
                (handles[0].0, handles[handles.len() - 1].1)
            }
            Alt(alts) => {
                let start = self.new_state(Kind::BlockStart);
                let end = self.new_state(Kind::BlockEnd);
                self.alts(start, end, alts);
                (start, end)
            }
            Opt(inner) => {
                let start = self.new_state(Kind::BlockStart);
                let end = self.new_state(Kind::BlockEnd);
                self.alts(start, end, alternatives(inner));
                // The bypass is the last alternative.
                self.eps(start, end);
                (start, end)
            }
            Star(inner) | PrecStar(inner) => {
                let block = self.new_state(Kind::StarBlockStart);
                let block_end = self.new_state(Kind::BlockEnd);
                self.alts(block, block_end, alternatives(inner));
                let entry = self.new_state(Kind::StarLoopEntry);
                let end = self.new_state(Kind::LoopEnd);
                let back = self.new_state(Kind::StarLoopBack);
                self.states[entry as usize].precedence_decision = matches!(e, PrecStar(_));
                self.eps(block_end, back);
                self.eps(back, entry);
                self.eps(entry, block);
                self.eps(entry, end);
                (entry, end)
            }
            Plus(inner) => {
                let block = self.new_state(Kind::PlusBlockStart);
                let block_end = self.new_state(Kind::BlockEnd);
                self.alts(block, block_end, alternatives(inner));
                let back = self.new_state(Kind::PlusLoopBack);
                let end = self.new_state(Kind::LoopEnd);
                self.eps(block_end, back);
                self.eps(back, block);
                self.eps(back, end);
                (block, end)
            }
        }
    }

    fn alts(&mut self, start: u32, end: u32, alts: &[E]) {
        for a in alts {
            let (l, rt) = self.build(a);
            self.eps(start, l);
            self.eps(rt, end);
        }
    }
}

fn alternatives(e: &E) -> &[E] {
    match e {
        Alt(alts) => alts,
        one => std::slice::from_ref(one),
    }
}

/// The ATN of NaCl.g4's parser.
pub fn build() -> Atn {
    let mut b = Builder {
        states: Vec::with_capacity(400),
        rule: 0,
        rule_start: Vec::with_capacity(r::COUNT),
    };
    let mut rule_stop = Vec::with_capacity(r::COUNT);
    for rule in 0..r::COUNT as u16 {
        b.rule = rule;
        let start = b.new_state(Kind::RuleStart);
        let stop = b.new_state(Kind::RuleStop);
        b.rule_start.push(start);
        rule_stop.push(stop);
    }
    for rule in 0..r::COUNT as u16 {
        b.rule = rule;
        let (l, rt) = b.build(&rule_body(rule));
        let (start, stop) = (b.rule_start[rule as usize], rule_stop[rule as usize]);
        b.eps(start, l);
        b.eps(rt, stop);
    }
    let mut precedence_rule = vec![false; r::COUNT];
    precedence_rule[r::BOOL_EXPR as usize] = true;
    // Return edges: each rule's stop state leads to every state that
    // follows an invocation of it.
    let mut returns = Vec::new();
    for s in &b.states {
        for tr in &s.trans {
            if let Trans::Rule {
                rule, follow, prec, ..
            } = *tr
            {
                let outermost = (precedence_rule[rule as usize] && prec == 0).then_some(rule);
                returns.push((rule_stop[rule as usize], follow, outermost));
            }
        }
    }
    for (stop, follow, outermost) in returns {
        b.add(
            stop,
            Trans::Eps {
                target: follow,
                outermost,
            },
        );
    }
    Atn {
        states: b.states,
        rule_start: b.rule_start,
        rule_stop,
        precedence_rule,
    }
}
