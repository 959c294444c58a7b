//! ANTLR's prediction contexts: the graph-structured stacks of return
//! states a configuration carries, merged as ANTLR merges them (the
//! merge decides which configurations conflict, so it must be the same).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// The return state that marks the empty stack (`$`).
pub const EMPTY_RS: u32 = u32::MAX;

/// A context: (return state, parent) pairs sorted by return state; the
/// empty context is the single pair (`EMPTY_RS`, no parent).
///
/// Its hash is computed once, from its own entries and its parents' cached
/// hashes (as ANTLR caches `cachedHashCode`): contexts are a graph whose
/// parents are shared, and a hash that walked it would visit a shared
/// parent once per path to it, which is exponential in the graph's depth
/// (a NaCl of a few hundred bytes found by the fuzzer never finished).
#[derive(Debug)]
pub struct Pc {
    pub entries: Vec<(u32, Option<Ctx>)>,
    hash: u64,
}

impl Pc {
    pub fn new(entries: Vec<(u32, Option<Ctx>)>) -> Pc {
        // SipHash with fixed keys: the same on every run.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        for (rs, parent) in &entries {
            rs.hash(&mut h);
            parent.as_ref().map(|p| p.hash).hash(&mut h);
        }
        Pc {
            hash: h.finish(),
            entries,
        }
    }
}

impl PartialEq for Pc {
    fn eq(&self, other: &Pc) -> bool {
        // Different hashes: different contexts, without walking them.
        std::ptr::eq(self, other)
            || (self.hash == other.hash && same_graph(self, other, &mut HashSet::new()))
    }
}

/// Whether two contexts are the same graph, each pair of nodes compared
/// once (`proven`): a walk of every path would be exponential, as above.
/// A pair met again was found equal (the graph has no cycles, and a pair
/// found unequal ends the walk).
fn same_graph(a: &Pc, b: &Pc, proven: &mut HashSet<(*const Pc, *const Pc)>) -> bool {
    if std::ptr::eq(a, b) {
        return true;
    }
    if a.hash != b.hash || a.entries.len() != b.entries.len() {
        return false;
    }
    if !proven.insert((a, b)) {
        return true;
    }
    a.entries
        .iter()
        .zip(&b.entries)
        .all(|((ra, pa), (rb, pb))| {
            ra == rb
                && match (pa, pb) {
                    (None, None) => true,
                    (Some(x), Some(y)) => same_graph(x, y, proven),
                    _ => false,
                }
        })
}

impl Eq for Pc {}

impl Hash for Pc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

pub type Ctx = Rc<Pc>;

pub fn empty() -> Ctx {
    Rc::new(Pc::new(vec![(EMPTY_RS, None)]))
}

/// `parent` with `rs` pushed.
pub fn push(parent: &Ctx, rs: u32) -> Ctx {
    Rc::new(Pc::new(vec![(rs, Some(parent.clone()))]))
}

pub fn is_empty(c: &Pc) -> bool {
    c.entries.len() == 1 && c.entries[0].0 == EMPTY_RS
}

pub fn has_empty_path(c: &Pc) -> bool {
    c.entries.last().is_some_and(|e| e.0 == EMPTY_RS)
}

fn single(rs: u32, parent: Option<Ctx>) -> Ctx {
    Rc::new(Pc::new(vec![(rs, parent)]))
}

/// ANTLR's `merge(a, b, rootIsWildcard)`.
pub fn merge(a: &Ctx, b: &Ctx, wildcard: bool) -> Ctx {
    if a == b {
        return a.clone();
    }
    if a.entries.len() == 1 && b.entries.len() == 1 {
        return merge_singletons(a, b, wildcard);
    }
    if wildcard {
        if is_empty(a) {
            return a.clone();
        }
        if is_empty(b) {
            return b.clone();
        }
    }
    merge_arrays(a, b, wildcard)
}

fn merge_root(a: &Ctx, b: &Ctx, wildcard: bool) -> Option<Ctx> {
    let (ea, eb) = (is_empty(a), is_empty(b));
    if wildcard {
        if ea {
            return Some(a.clone());
        }
        if eb {
            return Some(b.clone());
        }
    } else {
        if ea && eb {
            return Some(a.clone());
        }
        if ea {
            let (rs, p) = b.entries[0].clone();
            return Some(Rc::new(Pc::new(vec![(rs, p), (EMPTY_RS, None)])));
        }
        if eb {
            let (rs, p) = a.entries[0].clone();
            return Some(Rc::new(Pc::new(vec![(rs, p), (EMPTY_RS, None)])));
        }
    }
    None
}

fn merge_singletons(a: &Ctx, b: &Ctx, wildcard: bool) -> Ctx {
    if let Some(root) = merge_root(a, b, wildcard) {
        return root;
    }
    let (ars, ap) = &a.entries[0];
    let (brs, bp) = &b.entries[0];
    if ars == brs {
        let parent = match (ap, bp) {
            (Some(x), Some(y)) => merge(x, y, wildcard),
            // Only the empty context has no parent; handled above.
            _ => return a.clone(),
        };
        if Some(&parent) == ap.as_ref() {
            return a.clone();
        }
        if Some(&parent) == bp.as_ref() {
            return b.clone();
        }
        return single(*ars, Some(parent));
    }
    let mut entries = vec![(*ars, ap.clone()), (*brs, bp.clone())];
    entries.sort_by_key(|e| e.0);
    Rc::new(Pc::new(entries))
}

fn merge_arrays(a: &Ctx, b: &Ctx, wildcard: bool) -> Ctx {
    let (mut i, mut j) = (0, 0);
    let mut merged: Vec<(u32, Option<Ctx>)> = Vec::with_capacity(a.entries.len() + b.entries.len());
    while i < a.entries.len() && j < b.entries.len() {
        let (ars, ap) = &a.entries[i];
        let (brs, bp) = &b.entries[j];
        if ars == brs {
            let parent = match (ap, bp) {
                (None, None) => None,
                (Some(x), Some(y)) if x == y => Some(x.clone()),
                (Some(x), Some(y)) => Some(merge(x, y, wildcard)),
                (x, y) => x.clone().or_else(|| y.clone()),
            };
            merged.push((*ars, parent));
            i += 1;
            j += 1;
        } else if ars < brs {
            merged.push((*ars, ap.clone()));
            i += 1;
        } else {
            merged.push((*brs, bp.clone()));
            j += 1;
        }
    }
    merged.extend(a.entries[i..].iter().cloned());
    merged.extend(b.entries[j..].iter().cloned());
    let m = Rc::new(Pc::new(merged));
    if m == *a {
        return a.clone();
    }
    if m == *b {
        return b.clone();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_as_antlr_does() {
        let e = empty();
        let a = push(&e, 5);
        let b = push(&e, 3);
        let ab = merge(&a, &b, true);
        assert_eq!(
            ab.entries.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![3, 5]
        );
        // SLL: the empty stack is a wildcard that absorbs the rest.
        assert!(is_empty(&merge(&a, &e, true)));
        // Full LL: it is one more stack.
        let full = merge(&a, &e, false);
        assert_eq!(full.entries.len(), 2);
        assert!(has_empty_path(&full));
        // Same return state: the parents merge.
        let deep = push(&push(&e, 7), 5);
        assert!(is_empty(
            merge(&a, &deep, true).entries[0].1.as_ref().unwrap()
        ));
        assert_eq!(merge(&a, &a.clone(), false), a);
    }

    /// A context graph 200 levels deep where each level reaches the next
    /// by two paths: 2^200 paths, hashed and compared in a moment because
    /// each context's hash is its own (a hash that walked the paths never
    /// ended: the fuzzer's NaCl hung so).
    #[test]
    fn deep_shared_contexts_hash_and_compare_without_walking_every_path() {
        let build = || {
            let mut c = empty();
            for level in 0..200u32 {
                c = Rc::new(Pc::new(vec![
                    (2 * level, Some(c.clone())),
                    (2 * level + 1, Some(c)),
                ]));
            }
            c
        };
        let (a, b) = (build(), build());
        let mut seen = std::collections::HashSet::new();
        seen.insert(a.clone());
        // Built apart, equal: found by value.
        assert!(seen.contains(&b));
        assert_eq!(a, b);
        let other = push(&a, 9);
        assert!(!seen.contains(&other));
        assert_ne!(other, a);
    }
}
