//! The iteration order of a Python 2.7 dict with string keys.
//!
//! The reference transpiler runs under Python 2.7 and walks its dict of
//! elements (keyed by name) to decide which element it processes first:
//! which error it reports, and which of two Load_balancers is "already
//! defined", depend on that order. Python 2.7 hashes strings the same way
//! on every run (hash randomisation is off by default) and its dict is an
//! open-addressing table iterated slot by slot, so the order is a pure
//! function of the keys and of their insertion order. This module replays
//! CPython 2.7's `string_hash`, `lookdict` probing and `dictresize` for a
//! dict that only gains keys (the reference never deletes an element).

/// CPython 2.7's dict starts with this many slots (PyDict_MINSIZE).
const MIN_SIZE: usize = 8;
/// How far the probe sequence takes in the hash's higher bits each step.
const PERTURB_SHIFT: u32 = 5;

/// Python 2.7's `hash()` of an ASCII `str` (or `unicode`, the same for
/// ASCII) on a 64-bit build, without hash randomisation.
pub(crate) fn string_hash(s: &str) -> i64 {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return 0;
    };
    // C `long` arithmetic: overflow wraps.
    let mut x = i64::from(first) << 7;
    for &b in bytes {
        x = x.wrapping_mul(1_000_003) ^ i64::from(b);
    }
    x ^= bytes.len() as i64;
    // -1 is CPython's error value for a hash.
    if x == -1 {
        -2
    } else {
        x
    }
}

/// A Python 2.7 dict reduced to what decides its order: which slot each
/// key sits in. Values are the keys' insertion indexes.
#[derive(Debug, Clone)]
pub(crate) struct Py2Dict {
    /// (hash, key, insertion index) per slot; `None` is an empty slot.
    slots: Vec<Option<(i64, String, usize)>>,
    used: usize,
}

impl Default for Py2Dict {
    fn default() -> Self {
        Py2Dict {
            slots: vec![None; MIN_SIZE],
            used: 0,
        }
    }
}

impl Py2Dict {
    /// Adds `key` (as `d[key] = ...`); a key already there keeps its slot.
    /// Returns whether the key is new.
    pub fn insert(&mut self, key: &str) -> bool {
        let hash = string_hash(key);
        let slot = self.probe(hash, key);
        if self.slots[slot].is_some() {
            return false;
        }
        self.slots[slot] = Some((hash, key.to_owned(), self.used));
        self.used += 1;
        // PyDict_SetItem grows the table once it is two thirds full (no
        // deletions here, so `ma_fill` is `ma_used`).
        if self.used * 3 >= self.slots.len() * 2 {
            self.resize(4 * self.used);
        }
        true
    }

    /// The insertion indexes of the keys, in the order Python 2.7 iterates
    /// them (`for k in d`, `d.iteritems()`).
    pub fn order(&self) -> Vec<usize> {
        self.slots.iter().flatten().map(|(_, _, i)| *i).collect()
    }

    /// The slot of `key`, or the empty slot where it would go: CPython's
    /// `lookdict` sequence `i = 5*i + perturb + 1` over the unmasked `i`.
    fn probe(&self, hash: i64, key: &str) -> usize {
        let mask = self.slots.len() - 1;
        // C casts the hash to size_t for both.
        let mut i = hash as u64;
        let mut perturb = hash as u64;
        loop {
            let slot = (i as usize) & mask;
            match &self.slots[slot] {
                None => return slot,
                Some((h, k, _)) if *h == hash && k == key => return slot,
                Some(_) => {}
            }
            i = (i << 2)
                .wrapping_add(i)
                .wrapping_add(perturb)
                .wrapping_add(1);
            perturb >>= PERTURB_SHIFT;
        }
    }

    /// `dictresize`: the smallest power of two above `min_used` (at least
    /// 8), the old entries reinserted in the old table's slot order.
    fn resize(&mut self, min_used: usize) {
        let mut size = MIN_SIZE;
        while size <= min_used {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.slots, vec![None; size]);
        for entry in old.into_iter().flatten() {
            let slot = self.probe(entry.0, &entry.1);
            self.slots[slot] = Some(entry);
        }
    }
}

/// The order in which Python 2.7 iterates a dict whose keys were inserted
/// as `keys` (a repeated key keeps its first place): the indexes into
/// `keys` of the first occurrences.
pub(crate) fn iteration_order<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut dict = Py2Dict::default();
    let mut first = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        if dict.insert(k) {
            first.push(i);
        }
    }
    dict.order().into_iter().map(|n| first[n]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered<'a>(keys: &[&'a str]) -> Vec<&'a str> {
        iteration_order(keys.iter().copied())
            .into_iter()
            .map(|i| keys[i])
            .collect()
    }

    // Every expectation below was printed by CPython 2.7.18 (64-bit,
    // no PYTHONHASHSEED): `hash(s)` and `d = {}; d[k] = 1 ...; d.keys()`.

    #[test]
    fn hashes_as_python_2_7() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 12_416_037_344);
        assert_eq!(string_hash("eth0"), -4_664_220_514_485_057_761);
        assert_eq!(string_hash("l1"), 13_824_083_052_124_791);
        assert_eq!(string_hash("load_balancer"), -6_921_899_316_418_636_608);
    }

    #[test]
    fn small_dicts_iterate_by_slot() {
        assert_eq!(ordered(&["a", "l1", "l2"]), ["a", "l2", "l1"]);
        assert_eq!(ordered(&["zeta", "alpha"]), ["alpha", "zeta"]);
        assert_eq!(ordered(&["a", "b", "c"]), ["a", "c", "b"]);
    }

    #[test]
    fn resizing_reinserts_in_slot_order() {
        // 22 keys: the table grows from 8 to 32 slots, then to 128.
        let keys = [
            "uplink",
            "outside",
            "inside",
            "lb",
            "my_filter",
            "uplink.input",
            "eth0",
            "eth1",
            "gw",
            "ct",
            "x1",
            "x2",
            "timer_a",
            "syslog_settings",
            "nat_rule",
            "f2",
            "f3",
            "f4",
            "vlan7",
            "dns_servers",
            "pool_a",
            "port_b",
        ];
        let python = [
            "gw",
            "f2",
            "dns_servers",
            "f4",
            "f3",
            "port_b",
            "eth1",
            "vlan7",
            "lb",
            "syslog_settings",
            "uplink.input",
            "outside",
            "ct",
            "uplink",
            "pool_a",
            "x2",
            "x1",
            "eth0",
            "nat_rule",
            "inside",
            "my_filter",
            "timer_a",
        ];
        assert_eq!(ordered(&keys), python);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place() {
        assert_eq!(iteration_order(["x", "y", "x"]).len(), 2);
    }
}
