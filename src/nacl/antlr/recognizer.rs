//! The parse driver: the ATN walked as the reference's generated parser
//! walks it (a decision is predicted, a token matched, a rule entered),
//! with ANTLR's default error strategy at the same points (`sync` before
//! each decision and at loop backs, `recoverInline` on a failed match)
//! and its messages. The reference stops at its first error, and so does
//! this: the first report, parser's or lexer's, is the answer.

use std::collections::HashSet;

use super::atn::{Atn, Kind, Trans};
use super::context::{self, Ctx};
use super::lexer::{display_name, t, LexError, Token};
use crate::nacl::Diagnostic;

/// An invocation of a rule: where to go back to.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub follow: u32,
    pub rule: u16,
    /// Its precedence argument (`bool_expr[3]`), 0 for other rules.
    pub prec: u8,
}

/// The first error: parsing stops there.
#[derive(Debug)]
pub struct Stop(pub Diagnostic);

pub type Res<T> = Result<T, Stop>;

/// A set of token types, with ANTLR's EPSILON beside them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokSet {
    bits: u64,
    pub epsilon: bool,
}

impl TokSet {
    pub fn add(&mut self, ty: u16) {
        self.bits |= 1 << ty;
    }

    pub fn contains(&self, ty: u16) -> bool {
        ty < 64 && self.bits & (1 << ty) != 0
    }

    fn union(&mut self, other: &TokSet) {
        self.bits |= other.bits;
        self.epsilon |= other.epsilon;
    }

    /// As ANTLR prints an expected set: one name, or `{a, b}`.
    pub fn display(&self) -> String {
        let names: Vec<&str> = (0..=t::MAX)
            .filter(|&ty| self.contains(ty))
            .map(display_name)
            .collect();
        match names.as_slice() {
            [one] => (*one).to_string(),
            _ => format!("{{{}}}", names.join(", ")),
        }
    }
}

pub struct Recognizer<'a> {
    pub atn: &'a Atn,
    pub src: &'a str,
    /// All tokens, hidden ones included (for `no viable alternative` text).
    pub all: &'a [Token],
    /// Indexes into `all` of the visible tokens, EOF last.
    pub visible: Vec<usize>,
    pub lex_errors: &'a [LexError],
    /// The current visible token.
    pub pos: usize,
    pub frames: Vec<Frame>,
}

impl<'a> Recognizer<'a> {
    pub fn new(atn: &'a Atn, src: &'a str, all: &'a [Token], lex_errors: &'a [LexError]) -> Self {
        let visible = all
            .iter()
            .enumerate()
            .filter(|(_, tk)| !tk.hidden)
            .map(|(i, _)| i)
            .collect();
        Recognizer {
            atn,
            src,
            all,
            visible,
            lex_errors,
            pos: 0,
            frames: Vec::new(),
        }
    }

    /// The token at visible index `i`, fetching it from the lexer: a
    /// character the lexer failed on before it is reported now.
    pub fn fetch(&self, i: usize) -> Res<&Token> {
        let i = i.min(self.visible.len() - 1);
        if let Some(e) = self.lex_errors.first() {
            if e.before_visible <= i {
                return Err(Stop(Diagnostic::at(
                    e.span,
                    format!("token recognition error at: '{}'", escape(&e.text)),
                )));
            }
        }
        Ok(&self.all[self.visible[i]])
    }

    pub fn la_at(&self, i: usize) -> Res<u16> {
        Ok(self.fetch(i)?.ty)
    }

    fn la(&self, k: usize) -> Res<u16> {
        self.la_at(self.pos + k - 1)
    }

    fn consume(&mut self) -> Res<()> {
        if self.fetch(self.pos)?.ty != t::EOF {
            self.pos += 1;
        }
        // The stream reads on to the next visible token.
        self.fetch(self.pos).map(|_| ())
    }

    /// The precedence of the innermost `bool_expr` invocation.
    pub fn precedence(&self) -> u8 {
        self.frames
            .iter()
            .rev()
            .find(|f| self.atn.precedence_rule[f.rule as usize])
            .map_or(0, |f| f.prec)
    }

    /// The outer context as a prediction context.
    pub fn outer_context(&self) -> Ctx {
        let mut c = context::empty();
        for f in &self.frames {
            c = context::push(&c, f.follow);
        }
        c
    }

    /// Parses the whole stream: Ok, or the first error as ANTLR reports it.
    pub fn run(&mut self) -> Res<()> {
        self.fetch(0)?;
        let atn = self.atn;
        let mut state = atn.rule_start[super::atn::r::PROG as usize];
        loop {
            let s = &atn.states[state as usize];
            if s.kind == Kind::RuleStop {
                match self.frames.pop() {
                    None => return Ok(()),
                    Some(f) => {
                        state = f.follow;
                        continue;
                    }
                }
            }
            let decision = s.trans.len() > 1;
            if decision || matches!(s.kind, Kind::PlusBlockStart | Kind::StarLoopBack) {
                self.sync(state)?;
            }
            let alt = if decision {
                self.adaptive_predict(state)?
            } else {
                1
            };
            let tr = &s.trans[alt - 1];
            match *tr {
                Trans::Eps { target, .. } => state = target,
                Trans::Atom { target, ty } => {
                    if self.la(1)? == ty {
                        self.consume()?;
                    } else {
                        return Err(self.recover_inline(state, true)?);
                    }
                    state = target;
                }
                Trans::Set { target, .. } | Trans::NotTok { target, .. } => {
                    if tr.matches(self.la(1)?) {
                        self.consume()?;
                    } else {
                        return Err(self.recover_inline(state, false)?);
                    }
                    state = target;
                }
                Trans::Rule {
                    target,
                    rule,
                    follow,
                    prec,
                } => {
                    if self.frames.len() > crate::nacl::parser::MAX_NESTING * 8 {
                        let at = self.fetch(self.pos)?.span;
                        return Err(Stop(Diagnostic::at(
                            at,
                            format!(
                                "nesting deeper than {} levels",
                                crate::nacl::parser::MAX_NESTING
                            ),
                        )));
                    }
                    self.frames.push(Frame { follow, rule, prec });
                    state = target;
                }
                Trans::Prec { target, prec } => {
                    if prec < self.precedence() {
                        let at = self.fetch(self.pos)?.span;
                        return Err(Stop(Diagnostic::at(
                            at,
                            format!("rule bool_expr failed predicate: {{precpred(_ctx, {prec})}}?"),
                        )));
                    }
                    state = target;
                }
            }
        }
    }

    /// DefaultErrorStrategy.sync at `state`.
    fn sync(&mut self, state: u32) -> Res<()> {
        let la = self.la(1)?;
        let next = self.next_tokens(state, None);
        if next.epsilon || next.contains(la) {
            return Ok(());
        }
        match self.atn.states[state as usize].kind {
            Kind::BlockStart
            | Kind::StarBlockStart
            | Kind::PlusBlockStart
            | Kind::StarLoopEntry => {
                if let Some(e) = self.single_token_deletion(state)? {
                    return Err(e);
                }
                Err(self.mismatched(state)?)
            }
            Kind::PlusLoopBack | Kind::StarLoopBack => Err(self.unwanted(state)?),
            _ => Ok(()),
        }
    }

    /// DefaultErrorStrategy.recoverInline: the error it reports.
    fn recover_inline(&mut self, state: u32, insertion: bool) -> Res<Stop> {
        if let Some(e) = self.single_token_deletion(state)? {
            return Ok(e);
        }
        if insertion {
            let la = self.la(1)?;
            let next = self.atn.states[state as usize].trans[0].target();
            let ctx = self.outer_context();
            if self.next_tokens(next, Some(&ctx)).contains(la) {
                let expected = self.expected(state).display();
                let at = *self.fetch(self.pos)?;
                return Ok(Stop(Diagnostic::at(
                    at.span,
                    format!("missing {expected} at {}", self.display_token(&at)),
                )));
            }
        }
        self.mismatched(state)
    }

    fn single_token_deletion(&mut self, state: u32) -> Res<Option<Stop>> {
        let next = self.la(2)?;
        if self.expected(state).contains(next) {
            return Ok(Some(self.unwanted(state)?));
        }
        Ok(None)
    }

    /// `extraneous input X expecting Y`.
    fn unwanted(&self, state: u32) -> Res<Stop> {
        let at = *self.fetch(self.pos)?;
        Ok(Stop(Diagnostic::at(
            at.span,
            format!(
                "extraneous input {} expecting {}",
                self.display_token(&at),
                self.expected(state).display()
            ),
        )))
    }

    /// `mismatched input X expecting Y`.
    fn mismatched(&self, state: u32) -> Res<Stop> {
        let at = *self.fetch(self.pos)?;
        Ok(Stop(Diagnostic::at(
            at.span,
            format!(
                "mismatched input {} expecting {}",
                self.display_token(&at),
                self.expected(state).display()
            ),
        )))
    }

    /// `no viable alternative at input '...'`: the text from the
    /// decision's first token to the offending one, whitespace included.
    pub fn no_viable(&self, start: usize, offending: usize) -> Res<Stop> {
        let off = *self.fetch(offending)?;
        let first = *self.fetch(start)?;
        let input = if first.ty == t::EOF {
            "<EOF>".to_string()
        } else {
            let (a, b) = (
                self.visible[start],
                self.visible[offending.min(self.visible.len() - 1)],
            );
            let text: String = self.all[a..=b]
                .iter()
                .filter(|tk| tk.ty != t::EOF)
                .map(|tk| &self.src[tk.start..tk.end])
                .collect();
            text
        };
        Ok(Stop(Diagnostic::at(
            off.span,
            format!("no viable alternative at input '{}'", escape(&input)),
        )))
    }

    fn display_token(&self, tk: &Token) -> String {
        if tk.ty == t::EOF {
            return "'<EOF>'".to_string();
        }
        format!("'{}'", escape(&self.src[tk.start..tk.end]))
    }

    /// ATN.getExpectedTokens at `state` in the current invocation stack.
    pub fn expected(&self, state: u32) -> TokSet {
        let mut following = self.next_tokens(state, None);
        if !following.epsilon {
            return following;
        }
        let mut expected = following.clone();
        expected.epsilon = false;
        for f in self.frames.iter().rev() {
            if !following.epsilon {
                break;
            }
            following = self.next_tokens(f.follow, None);
            expected.union(&following);
            expected.epsilon = false;
        }
        if following.epsilon {
            expected.add(t::EOF);
        }
        expected
    }

    /// LL1Analyzer.LOOK from `state`: without a context, reaching the
    /// rule's end gives EPSILON; with one, the callers' follow (EOF past
    /// the outermost).
    pub fn next_tokens(&self, state: u32, ctx: Option<&Ctx>) -> TokSet {
        let mut look = TokSet::default();
        let mut busy = HashSet::new();
        let mut called = Vec::new();
        self.look(state, ctx.cloned(), &mut look, &mut busy, &mut called);
        look
    }

    fn look(
        &self,
        state: u32,
        ctx: Option<Ctx>,
        look: &mut TokSet,
        busy: &mut HashSet<(u32, Option<Ctx>)>,
        called: &mut Vec<u16>,
    ) {
        if !busy.insert((state, ctx.clone())) {
            return;
        }
        let s = &self.atn.states[state as usize];
        if s.kind == Kind::RuleStop {
            let Some(c) = &ctx else {
                look.epsilon = true;
                return;
            };
            if context::is_empty(c) {
                look.add(t::EOF);
                return;
            }
            let removed = called.iter().position(|&r| r == s.rule);
            if let Some(i) = removed {
                called.remove(i);
            }
            for (rs, parent) in &c.entries {
                if *rs == context::EMPTY_RS {
                    look.add(t::EOF);
                    continue;
                }
                self.look(*rs, parent.clone(), look, busy, called);
            }
            if removed.is_some() {
                called.push(s.rule);
            }
            return;
        }
        for tr in &s.trans {
            match *tr {
                Trans::Rule {
                    target,
                    rule,
                    follow,
                    ..
                } => {
                    if called.contains(&rule) {
                        continue;
                    }
                    let pushed = match &ctx {
                        Some(c) => context::push(c, follow),
                        // A context of its own, with no parent past it.
                        None => std::rc::Rc::new(context::Pc::new(vec![(follow, None)])),
                    };
                    called.push(rule);
                    self.look(target, Some(pushed), look, busy, called);
                    called.pop();
                }
                Trans::Eps { target, .. } | Trans::Prec { target, .. } => {
                    self.look(target, ctx.clone(), look, busy, called)
                }
                Trans::Atom { ty, .. } => look.add(ty),
                Trans::Set { tys, .. } => tys.iter().for_each(|&ty| look.add(ty)),
                Trans::NotTok { ty, .. } => {
                    (1..=t::MAX).filter(|&x| x != ty).for_each(|x| look.add(x))
                }
            }
        }
    }
}

/// ANTLR's display of text in a message: line breaks and tabs escaped.
fn escape(s: &str) -> String {
    s.replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t")
}
