//! How the CLI prints results: aligned tables for people, exact JSON for
//! scripts, bare ids for pipelines (`-o table|json|id`).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Id,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "id" => Some(Format::Id),
            _ => None,
        }
    }
}

/// Prints `items` in `format`: a table with `headers` and `row` per item,
/// a JSON array of the items, or their ids one per line.
pub fn list<T: Serialize>(
    format: Format,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    id: impl Fn(&T) -> String,
) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(items).unwrap_or_else(|_| "[]".into())
        ),
        Format::Id => items.iter().for_each(|i| println!("{}", id(i))),
        Format::Table => print!("{}", table(headers, items.iter().map(row).collect())),
    }
}

/// Prints one item: as JSON, as its id, or as `key: value` lines.
pub fn one<T: Serialize>(format: Format, item: &T, fields: Vec<(&str, String)>, id: String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(item).unwrap_or_else(|_| "{}".into())
        ),
        Format::Id => println!("{id}"),
        Format::Table => {
            let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in fields {
                println!("{k:>width$}: {v}");
            }
        }
    }
}

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn time(unix: Option<i64>) -> String {
    match unix {
        None => "-".into(),
        Some(t) => {
            let ago = crate::store::now() - t;
            match ago {
                i64::MIN..=59 => format!("{}s ago", ago.max(0)),
                60..=3599 => format!("{}m ago", ago / 60),
                3600..=86399 => format!("{}h ago", ago / 3600),
                _ => format!("{}d ago", ago / 86400),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "NAME"],
            vec![
                vec!["a".into(), "x".into()],
                vec!["bbbb".into(), "y".into()],
            ],
        );
        assert_eq!(t, "ID    NAME\na     x\nbbbb  y\n");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
