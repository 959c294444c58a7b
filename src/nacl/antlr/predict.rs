//! ANTLR 4's adaptive prediction (ParserATNSimulator, prediction mode
//! LL): SLL first, with the global follow past the decision's rule, then
//! full LL with the real invocation stack when SLL meets a conflict. What
//! it decides, and where it gives up (`no viable alternative`, or the
//! alternative that got out of the decision's rule), is where the
//! reference reports a syntax error, so the details below follow the
//! runtime's (4.7.2) closely: configuration sets keyed by (state, alt,
//! predicate) with merged contexts, the precedence filter of a
//! left-recursive loop, the dips into the outer context.

use std::collections::{HashMap, HashSet};

use super::atn::{Kind, Trans};
use super::context::{self, Ctx};
use super::lexer::t;
use super::recognizer::{Recognizer, Res};

#[derive(Debug, Clone)]
struct Config {
    state: u32,
    alt: usize,
    ctx: Ctx,
    /// A precedence predicate collected on the way (SLL start states).
    pred: Option<u8>,
    reaches_outer: u32,
    filter_suppressed: bool,
}

type BusyKey = (u32, usize, Ctx, Option<u8>, bool);

fn busy_key(c: &Config) -> BusyKey {
    (c.state, c.alt, c.ctx.clone(), c.pred, c.filter_suppressed)
}

#[derive(Default)]
struct Set {
    configs: Vec<Config>,
    index: HashMap<(u32, usize, Option<u8>), usize>,
    full: bool,
}

impl Set {
    fn new(full: bool) -> Self {
        Set {
            full,
            ..Default::default()
        }
    }

    fn add(&mut self, c: Config) {
        match self.index.get(&(c.state, c.alt, c.pred)) {
            Some(&i) => {
                let e = &mut self.configs[i];
                e.ctx = context::merge(&e.ctx, &c.ctx, !self.full);
                e.reaches_outer = e.reaches_outer.max(c.reaches_outer);
                e.filter_suppressed |= c.filter_suppressed;
            }
            None => {
                self.index
                    .insert((c.state, c.alt, c.pred), self.configs.len());
                self.configs.push(c);
            }
        }
    }

    fn unique_alt(&self) -> Option<usize> {
        let first = self.configs.first()?.alt;
        self.configs.iter().all(|c| c.alt == first).then_some(first)
    }

    /// The alternatives that conflict, by (state, context).
    fn alt_subsets(&self) -> Vec<Vec<usize>> {
        let mut by: HashMap<(u32, &Ctx), Vec<usize>> = HashMap::new();
        for c in &self.configs {
            let alts = by.entry((c.state, &c.ctx)).or_default();
            if !alts.contains(&c.alt) {
                alts.push(c.alt);
            }
        }
        by.into_values().collect()
    }
}

/// What a decision looks at: its state, and whether it is a
/// left-recursive loop (its rule's index then matters).
struct Decision {
    state: u32,
    precedence: bool,
    rule: u16,
}

/// Prediction found no alternative: the NVA, reported by the caller
/// unless an alternative got out of the decision's rule.
struct NoViable {
    offending: usize,
}

impl Recognizer<'_> {
    /// The alternative (1-based) to take at decision `state`.
    pub fn adaptive_predict(&mut self, state: u32) -> Res<usize> {
        let s = &self.atn.states[state as usize];
        let d = Decision {
            state,
            precedence: s.precedence_decision,
            rule: s.rule,
        };
        let start = self.pos;
        let mut s0 = self.start_state(&d, &context::empty(), false);
        if d.precedence {
            s0 = self.precedence_filter(s0);
        }
        let mut previous = s0;
        let mut i = start;
        loop {
            let ty = self.la_at(i)?;
            let Some(reach) = self.reach(&d, &previous, ty, false) else {
                return self.give_up(start, NoViable { offending: i }, &previous);
            };
            if let Some(alt) = reach.unique_alt() {
                return Ok(alt);
            }
            let all_stops = reach
                .configs
                .iter()
                .all(|c| self.atn.states[c.state as usize].kind == Kind::RuleStop);
            if all_stops || sll_conflict(&reach) {
                return self.full_context(&d, start);
            }
            previous = reach;
            if ty != t::EOF {
                i += 1;
                self.fetch(i)?;
            }
        }
    }

    fn give_up(&self, start: usize, nv: NoViable, previous: &Set) -> Res<usize> {
        // getSynValidOrSemInvalidAltThatFinishedDecisionEntryRule
        let finished = previous
            .configs
            .iter()
            .filter(|c| {
                c.reaches_outer > 0
                    || (self.atn.states[c.state as usize].kind == Kind::RuleStop
                        && context::has_empty_path(&c.ctx))
            })
            .map(|c| c.alt)
            .min();
        match finished {
            Some(alt) => Ok(alt),
            None => Err(self.no_viable(start, nv.offending)?),
        }
    }

    fn full_context(&mut self, d: &Decision, start: usize) -> Res<usize> {
        let outer = self.outer_context();
        let mut previous = self.start_state(d, &outer, true);
        let mut i = start;
        // A guard: at EOF the configurations stop changing.
        for _ in 0..100_000 {
            let ty = self.la_at(i)?;
            let Some(reach) = self.reach(d, &previous, ty, true) else {
                return self.give_up(start, NoViable { offending: i }, &previous);
            };
            if let Some(alt) = reach.unique_alt() {
                return Ok(alt);
            }
            if let Some(alt) = single_viable_alt(&reach.alt_subsets()) {
                return Ok(alt);
            }
            previous = reach;
            if ty != t::EOF {
                i += 1;
                self.fetch(i)?;
            }
        }
        Ok(previous.configs.iter().map(|c| c.alt).min().unwrap_or(1))
    }

    fn start_state(&self, d: &Decision, ctx: &Ctx, full: bool) -> Set {
        let mut set = Set::new(full);
        for (i, tr) in self.atn.states[d.state as usize].trans.iter().enumerate() {
            let c = Config {
                state: tr.target(),
                alt: i + 1,
                ctx: ctx.clone(),
                pred: None,
                reaches_outer: 0,
                filter_suppressed: false,
            };
            let mut busy = HashSet::new();
            self.closure_checking_stop(d, c, &mut set, &mut busy, true, full, 0, false);
        }
        set
    }

    /// applyPrecedenceFilter: the loop's way in only if its predicate
    /// holds here, and the way out not where the way in goes.
    fn precedence_filter(&self, configs: Set) -> Set {
        let mut from_alt1: HashMap<u32, Ctx> = HashMap::new();
        let mut out = Set::new(configs.full);
        let prec = self.precedence();
        for c in configs.configs.iter().filter(|c| c.alt == 1) {
            if let Some(p) = c.pred {
                if p < prec {
                    continue;
                }
            }
            from_alt1.insert(c.state, c.ctx.clone());
            out.add(Config {
                pred: None,
                ..c.clone()
            });
        }
        for c in configs.configs.into_iter().filter(|c| c.alt != 1) {
            if !c.filter_suppressed && from_alt1.get(&c.state) == Some(&c.ctx) {
                continue;
            }
            out.add(c);
        }
        out
    }

    fn reach(&self, d: &Decision, closure: &Set, ty: u16, full: bool) -> Option<Set> {
        let mut intermediate = Set::new(full);
        let mut skipped_stops = Vec::new();
        for c in &closure.configs {
            let s = &self.atn.states[c.state as usize];
            if s.kind == Kind::RuleStop {
                if full || ty == t::EOF {
                    skipped_stops.push(c.clone());
                }
                continue;
            }
            for tr in &s.trans {
                if tr.matches(ty) {
                    intermediate.add(Config {
                        state: tr.target(),
                        ..c.clone()
                    });
                }
            }
        }
        let mut reach = None;
        if skipped_stops.is_empty()
            && ty != t::EOF
            && (intermediate.configs.len() == 1 || intermediate.unique_alt().is_some())
        {
            reach = Some(intermediate);
            return reach.filter(|r| !r.configs.is_empty());
        }
        let mut closed = Set::new(full);
        let mut busy = HashSet::new();
        let eof = ty == t::EOF;
        for c in intermediate.configs {
            self.closure_checking_stop(d, c, &mut closed, &mut busy, false, full, 0, eof);
        }
        if eof {
            closed = self.only_rule_stops(closed);
        }
        if !skipped_stops.is_empty()
            && (!full
                || !closed
                    .configs
                    .iter()
                    .any(|c| self.atn.states[c.state as usize].kind == Kind::RuleStop))
        {
            for c in skipped_stops {
                closed.add(c);
            }
        }
        reach.get_or_insert(closed);
        reach.filter(|r| !r.configs.is_empty())
    }

    /// removeAllConfigsNotInRuleStopState (lookToEndOfRule: the set was
    /// closed, so no config is moved to its rule's end).
    fn only_rule_stops(&self, set: Set) -> Set {
        let is_stop = |c: &Config| self.atn.states[c.state as usize].kind == Kind::RuleStop;
        if set.configs.iter().all(is_stop) {
            return set;
        }
        let mut out = Set::new(set.full);
        for c in set.configs.into_iter().filter(is_stop) {
            out.add(c);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn closure_checking_stop(
        &self,
        d: &Decision,
        c: Config,
        set: &mut Set,
        busy: &mut HashSet<BusyKey>,
        collect: bool,
        full: bool,
        depth: i32,
        eof: bool,
    ) {
        if self.atn.states[c.state as usize].kind == Kind::RuleStop {
            if !context::is_empty(&c.ctx) {
                for (rs, parent) in c.ctx.entries.clone() {
                    if rs == context::EMPTY_RS {
                        if full {
                            set.add(Config {
                                ctx: context::empty(),
                                ..c.clone()
                            });
                        } else {
                            self.closure_inner(d, c.clone(), set, busy, collect, full, depth, eof);
                        }
                        continue;
                    }
                    let popped = Config {
                        state: rs,
                        alt: c.alt,
                        ctx: parent.unwrap_or_else(context::empty),
                        pred: c.pred,
                        reaches_outer: c.reaches_outer,
                        filter_suppressed: false,
                    };
                    self.closure_checking_stop(d, popped, set, busy, collect, full, depth - 1, eof);
                }
                return;
            } else if full {
                set.add(c);
                return;
            }
        }
        self.closure_inner(d, c, set, busy, collect, full, depth, eof);
    }

    #[allow(clippy::too_many_arguments)]
    fn closure_inner(
        &self,
        d: &Decision,
        c: Config,
        set: &mut Set,
        busy: &mut HashSet<BusyKey>,
        collect: bool,
        full: bool,
        depth: i32,
        eof: bool,
    ) {
        let s = &self.atn.states[c.state as usize];
        if !s.epsilon_only() {
            set.add(c.clone());
        }
        for tr in &s.trans {
            let Some(mut next) = self.epsilon_target(&c, tr, collect, depth == 0, full, eof) else {
                continue;
            };
            let mut new_depth = depth;
            if s.kind == Kind::RuleStop {
                if d.precedence {
                    if let Trans::Eps {
                        outermost: Some(rule),
                        ..
                    } = tr
                    {
                        if *rule == d.rule {
                            next.filter_suppressed = true;
                        }
                    }
                }
                next.reaches_outer += 1;
                if !busy.insert(busy_key(&next)) {
                    continue;
                }
                new_depth -= 1;
            } else {
                if !tr.is_epsilon() && !busy.insert(busy_key(&next)) {
                    continue;
                }
                if matches!(tr, Trans::Rule { .. }) && new_depth >= 0 {
                    new_depth += 1;
                }
            }
            self.closure_checking_stop(d, next, set, busy, collect, full, new_depth, eof);
        }
    }

    fn epsilon_target(
        &self,
        c: &Config,
        tr: &Trans,
        collect: bool,
        in_context: bool,
        full: bool,
        eof: bool,
    ) -> Option<Config> {
        match *tr {
            Trans::Rule { target, follow, .. } => Some(Config {
                state: target,
                ctx: context::push(&c.ctx, follow),
                ..c.clone()
            }),
            Trans::Eps { target, .. } => Some(Config {
                state: target,
                ..c.clone()
            }),
            Trans::Prec { target, prec } => {
                if collect && in_context {
                    if full {
                        // Evaluated on the fly against the parser's
                        // precedence.
                        (prec >= self.precedence()).then(|| Config {
                            state: target,
                            ..c.clone()
                        })
                    } else {
                        Some(Config {
                            state: target,
                            pred: Some(prec),
                            ..c.clone()
                        })
                    }
                } else {
                    Some(Config {
                        state: target,
                        ..c.clone()
                    })
                }
            }
            Trans::Atom { target, ty } if eof && ty == t::EOF => Some(Config {
                state: target,
                ..c.clone()
            }),
            _ => None,
        }
    }
}

/// PredictionMode.hasSLLConflictTerminatingPrediction (mode LL), but for
/// its first test (every configuration at a rule's end), the caller's.
fn sll_conflict(reach: &Set) -> bool {
    let subsets = reach.alt_subsets();
    let conflicting = subsets.iter().any(|s| s.len() > 1);
    let mut by_state: HashMap<u32, Vec<usize>> = HashMap::new();
    for c in &reach.configs {
        let alts = by_state.entry(c.state).or_default();
        if !alts.contains(&c.alt) {
            alts.push(c.alt);
        }
    }
    let one_alt_state = by_state.values().any(|a| a.len() == 1);
    conflicting && !one_alt_state
}

/// PredictionMode.getSingleViableAlt.
fn single_viable_alt(subsets: &[Vec<usize>]) -> Option<usize> {
    let mut viable: Option<usize> = None;
    for s in subsets {
        let min = *s.iter().min()?;
        match viable {
            None => viable = Some(min),
            Some(v) if v != min => return None,
            _ => {}
        }
    }
    viable
}
