//! ANTLR's prediction contexts: the graph-structured stacks of return
//! states a configuration carries, merged as ANTLR merges them (the
//! merge decides which configurations conflict, so it must be the same).

use std::rc::Rc;

/// The return state that marks the empty stack (`$`).
pub const EMPTY_RS: u32 = u32::MAX;

/// A context: (return state, parent) pairs sorted by return state; the
/// empty context is the single pair (`EMPTY_RS`, no parent).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Pc {
    pub entries: Vec<(u32, Option<Ctx>)>,
}

pub type Ctx = Rc<Pc>;

pub fn empty() -> Ctx {
    Rc::new(Pc {
        entries: vec![(EMPTY_RS, None)],
    })
}

/// `parent` with `rs` pushed.
pub fn push(parent: &Ctx, rs: u32) -> Ctx {
    Rc::new(Pc {
        entries: vec![(rs, Some(parent.clone()))],
    })
}

pub fn is_empty(c: &Pc) -> bool {
    c.entries.len() == 1 && c.entries[0].0 == EMPTY_RS
}

pub fn has_empty_path(c: &Pc) -> bool {
    c.entries.last().is_some_and(|e| e.0 == EMPTY_RS)
}

fn single(rs: u32, parent: Option<Ctx>) -> Ctx {
    Rc::new(Pc {
        entries: vec![(rs, parent)],
    })
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
            return Some(Rc::new(Pc {
                entries: vec![(rs, p), (EMPTY_RS, None)],
            }));
        }
        if eb {
            let (rs, p) = a.entries[0].clone();
            return Some(Rc::new(Pc {
                entries: vec![(rs, p), (EMPTY_RS, None)],
            }));
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
    Rc::new(Pc { entries })
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
    let m = Rc::new(Pc { entries: merged });
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
}
