//! InfluxDB line protocol: `measurement,tag=v field=1.5,n=2i 1700000000000`
//! (precision ms), escaped by the rules of InfluxDB 1.x's parser. Every
//! name here may come from an instance (its STATS names, its alias, its
//! IDENT), so every one is escaped, and what the protocol cannot carry at
//! all is replaced rather than sent:
//!
//! - newlines and other control characters end a line (or are refused),
//!   so they become `_` everywhere;
//! - measurement: `,` and space are escaped;
//! - tag keys, tag values, field keys: `,`, `=` and space are escaped;
//! - a backslash is escaped too (`\\`) in all of these: the parser takes
//!   a backslash as escaping whatever follows it, so a name ending in one
//!   would swallow the separator after it and break the line;
//! - string field values: `"` and `\` are escaped;
//! - empty tag values (which the parser refuses) leave the tag out; an
//!   empty field key or measurement leaves the field or point out;
//! - a field named `time` (refused by InfluxDB 1.x, failing the whole
//!   point) is sent as `time_`.

use std::fmt::Write as _;

/// A field's value as line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    /// Unused by jetpack's figures today; kept escaped for completeness.
    Str(String),
}

fn clean(c: char) -> char {
    if c.is_control() {
        '_'
    } else {
        c
    }
}

fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars().map(clean) {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A measurement name, escaped.
pub fn measurement(out: &mut String, s: &str) {
    escape_into(out, s, &[',', ' ']);
}

/// A tag key, tag value or field key, escaped.
pub fn key(out: &mut String, s: &str) {
    escape_into(out, s, &[',', '=', ' ']);
}

/// A string field value, quoted and escaped.
pub fn string_value(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars().map(clean) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends one point (and its newline) to `out`; returns whether it did.
/// A point without a measurement or without any field is left out: the
/// parser would refuse it, and with it the rest of the batch.
pub fn point<'a>(
    out: &mut String,
    name: &str,
    tags: &[(&str, &str)],
    fields: impl IntoIterator<Item = (&'a str, FieldValue)>,
    at_ms: i64,
) -> bool {
    if name.is_empty() {
        return false;
    }
    let start = out.len();
    measurement(out, name);
    for (k, v) in tags {
        if k.is_empty() || v.is_empty() {
            continue;
        }
        out.push(',');
        key(out, k);
        out.push('=');
        key(out, v);
    }
    let mut first = true;
    for (k, v) in fields {
        let finite = match &v {
            FieldValue::Float(f) => f.is_finite(),
            _ => true,
        };
        if k.is_empty() || !finite {
            continue;
        }
        out.push(if first { ' ' } else { ',' });
        first = false;
        if k == "time" {
            out.push_str("time_");
        } else {
            key(out, k);
        }
        out.push('=');
        match v {
            // Display never uses an exponent and always parses back; a
            // value without `i` is a float to InfluxDB.
            FieldValue::Float(f) => {
                let _ = write!(out, "{f}");
            }
            FieldValue::Int(n) => {
                let _ = write!(out, "{n}i");
            }
            FieldValue::Str(s) => string_value(out, &s),
        }
    }
    if first {
        out.truncate(start);
        return false;
    }
    let _ = writeln!(out, " {at_ms}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, tags: &[(&str, &str)], fields: Vec<(&str, FieldValue)>) -> String {
        let mut s = String::new();
        point(&mut s, name, tags, fields, 1000);
        s
    }

    #[test]
    fn plain_points() {
        assert_eq!(
            one(
                "stats",
                &[("instance_id", "abc"), ("alias", "")],
                vec![
                    ("eth0.ethernet.packets_rx", FieldValue::Float(3.5)),
                    ("n", FieldValue::Int(-2)),
                    ("big", FieldValue::Float(1e21)),
                ]
            ),
            "stats,instance_id=abc eth0.ethernet.packets_rx=3.5,n=-2i,big=1000000000000000000000 1000\n"
        );
    }

    #[test]
    fn hostile_names_are_escaped() {
        let line = one(
            "my stats,x",
            &[("alias", "a b,c=d\"e\\"), ("tag", "new\nline")],
            vec![
                ("k=1, \"q\"\n", FieldValue::Float(1.0)),
                ("time", FieldValue::Int(1)),
                ("s", FieldValue::Str("say \"hi\"\\\n".into())),
            ],
        );
        assert_eq!(
            line,
            "my\\ stats\\,x,alias=a\\ b\\,c\\=d\"e\\\\,tag=new_line \
             k\\=1\\,\\ \"q\"_=1,time_=1i,s=\"say \\\"hi\\\"\\\\_\" 1000\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn unsendable_points_are_left_out() {
        let mut s = String::new();
        assert!(!point(&mut s, "", &[], vec![("a", FieldValue::Int(1))], 1));
        assert!(!point(&mut s, "m", &[], vec![("", FieldValue::Int(1))], 1));
        assert!(!point(
            &mut s,
            "m",
            &[],
            vec![("a", FieldValue::Float(f64::NAN))],
            1
        ));
        assert!(!point(&mut s, "m", &[("t", "v")], Vec::new(), 1));
        assert_eq!(s, "");
    }

    #[test]
    fn ten_thousand_hostile_keys_stay_one_line() {
        let names: Vec<String> = (0..10_000).map(|i| format!("k\"\n,= {i}\\")).collect();
        let mut s = String::new();
        point(
            &mut s,
            "stats",
            &[("instance_id", "x")],
            names.iter().map(|n| (n.as_str(), FieldValue::Float(1.0))),
            5,
        );
        assert_eq!(s.matches('\n').count(), 1);
        assert!(s.ends_with(" 5\n"));
        assert!(s.contains("k\"_\\,\\=\\ 9999\\\\=1"));
    }
}
