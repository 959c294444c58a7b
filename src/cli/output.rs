//! How the CLI prints results: aligned tables for people, exact JSON for
//! scripts, bare ids for pipelines (`-o table|json|id`); and `Shown`, a
//! record as a command that runs here or on a server (`base`, `pod`) gets
//! it, so that one implementation prints both.

use serde::Serialize;

use super::CliError;

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
        Format::Table => print_fields(fields),
    }
}

/// A record (or a list of them) as a command prints it: typed, for tables,
/// ids and messages, and the JSON document `-o json` prints. The document
/// is each side's own and stays so: the runtime's record on this host (it
/// has fields the API does not show, such as a pod's root), the server's
/// text, as written, through the API.
pub struct Shown<T> {
    pub item: T,
    pub json: String,
    /// `key: value` lines only this side knows (a pod's root on this host).
    pub extra: Vec<(&'static str, String)>,
}

impl<T> Shown<T> {
    /// A record of this host: `doc` is what `-o json` prints, `typed` makes
    /// the item from it (the API's own conversion, so both sides agree).
    pub fn local<D: Serialize>(doc: D, typed: impl FnOnce(D) -> T) -> Result<Shown<T>, CliError> {
        let json = serde_json::to_string_pretty(&doc)?;
        Ok(Shown {
            item: typed(doc),
            json,
            extra: Vec::new(),
        })
    }

    /// What a create, start or removal prints on stdout: the record's id
    /// (table, id) or its document (json).
    pub fn print_made(&self, format: Format, id: &str) {
        match format {
            Format::Json => println!("{}", self.json),
            Format::Table | Format::Id => println!("{id}"),
        }
    }

    /// Prints one record: its document, its id, or `fields` (then the
    /// side's `extra` ones before the first of `extra_before`) as
    /// `key: value` lines.
    pub fn print_one(
        &self,
        format: Format,
        mut fields: Vec<(&str, String)>,
        extra_before: &str,
        id: &str,
    ) {
        match format {
            Format::Json => println!("{}", self.json),
            Format::Id => println!("{id}"),
            Format::Table => {
                let at = fields
                    .iter()
                    .position(|(k, _)| *k == extra_before)
                    .unwrap_or(fields.len());
                fields.splice(at..at, self.extra.iter().cloned());
                print_fields(fields);
            }
        }
    }
}

impl<T> Shown<Vec<T>> {
    /// Prints the list: its document, the ids one a line, or a table with
    /// `headers` and `row` an item.
    pub fn print_list(
        &self,
        format: Format,
        headers: &[&str],
        row: impl Fn(&T) -> Vec<String>,
        id: impl Fn(&T) -> String,
    ) {
        match format {
            Format::Json => println!("{}", self.json),
            Format::Id => self.item.iter().for_each(|i| println!("{}", id(i))),
            Format::Table => print!("{}", table(headers, self.item.iter().map(row).collect())),
        }
    }
}

fn print_fields(fields: Vec<(&str, String)>) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        println!("{k:>width$}: {v}");
    }
}

/// A uuid's first block, or the first 12 characters of a digest (what the
/// runtime's `PodId::short` and `BaseId::short` give).
pub fn short(id: &str) -> String {
    let n = if id.len() == 36 && id.as_bytes().get(8) == Some(&b'-') {
        8
    } else {
        12
    };
    id.chars().take(n).collect()
}

/// A text field as tables show it: absent or empty as `-`.
pub fn text(t: Option<&str>) -> String {
    match t {
        None | Some("") => "-".into(),
        Some(t) => t.to_string(),
    }
}

/// "5m ago" from an RFC 3339 time (the API's), `-` without one.
pub fn ago_at(t: Option<&str>) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    match humantime::parse_rfc3339_weak(t) {
        Ok(time) => {
            let secs = time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            self::time(Some(secs))
        }
        Err(_) => t.to_string(),
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
