//! How the client commands print the server's answers: fields as text
//! (`s` for untyped JSON, `text`, `texts`, `ago_at` for the decoded model
//! types, `short`), tables over decoded rows (`list_of`) and single records
//! through `output`, `-o json` as the server's own text (`pretty`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::CliError;
use crate::cli::output::{self, Format, Shown};
pub(super) use crate::cli::output::{ago_at, short, text};
use crate::client::{enc, Answer, Client, ClientError};
use crate::model::jobs::Job;

// ---- printing --------------------------------------------------------

/// A field as text: strings as they are, null or absent as `-`, other
/// values as JSON.
pub(super) fn s(v: &Value, key: &str) -> String {
    value_text(v.get(key))
}

/// An untyped value as `s` shows it (a field whose type is JSON itself).
pub(super) fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(t)) if t.is_empty() => "-".into(),
        Some(Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
    }
}

/// A JSON array of texts as the tables showed it before the typed readers;
/// kept for the test that pins `texts` to it.
#[cfg(test)]
fn strings(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// A typed list of texts as `strings` shows it: `a, b`, or `-` if empty.
pub(super) fn texts(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

pub(super) fn uptime(secs: Option<u64>) -> String {
    secs.map(|s| humantime::format_duration(Duration::from_secs(s)).to_string())
        .unwrap_or_else(|| "-".into())
}

pub(super) fn stdout_error(e: std::io::Error) -> ClientError {
    ClientError::Io {
        what: "standard output".into(),
        source: e,
    }
}

pub(super) fn print_json(text: &str) {
    println!("{}", pretty(text));
}

/// A record (or list) the server answered with: decoded into the API's
/// type, and its text kept as `-o json` prints it.
pub(super) fn shown<T: DeserializeOwned>(a: &Answer) -> Result<Shown<T>, CliError> {
    Ok(Shown {
        item: a.decode()?,
        json: pretty(&a.text),
        extra: Vec::new(),
    })
}

/// What a finished job made (`Job.result`), decoded into the API's type
/// `T`, and as the server wrote it (`-o json` prints that).
pub(super) fn job_result<T: DeserializeOwned>(
    c: &Client,
    job: Job,
) -> Result<(T, Value), CliError> {
    let value = job.result.unwrap_or_default();
    let typed = serde_json::from_value(value.clone()).map_err(|e| ClientError::BadResponse {
        url: format!("{}/v1/jobs/{}", c.base(), enc(&job.id)),
        reason: format!("its result: {e}"),
    })?;
    Ok((typed, value))
}

/// `list` over the API's own response type: `-o json` still prints the
/// server's text; tables and ids read the decoded rows.
pub(super) fn list_of<T: DeserializeOwned + Serialize>(
    format: Format,
    a: &Answer,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    id: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    if format == Format::Json {
        print_json(&a.text);
        return Ok(());
    }
    let rows: Vec<T> = a.decode()?;
    output::list(format, &rows, headers, row, id);
    Ok(())
}

pub(super) fn one(
    format: Format,
    a: &Answer,
    fields: Vec<(&str, String)>,
    id: String,
) -> Result<(), CliError> {
    if format == Format::Json {
        print_json(&a.text);
    } else {
        output::one(format, &a.value, fields, id);
    }
    Ok(())
}

/// A record the API answers a create, update or removal with, as `made`
/// and `deleted` name it: decoded into its own type, read by its fields.
pub(super) trait Record: DeserializeOwned {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

macro_rules! record {
    ($t:ty, $name:ident) => {
        impl Record for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.$name
            }
        }
    };
}
record!(crate::model::jobs::Job, id);
record!(crate::model::instances::Instance, id);
record!(crate::model::uplinks::Uplink, name);
record!(crate::model::documents::Document, name);
record!(crate::model::images::Image, name);
record!(crate::model::builders::BuilderModel, name);

/// What a create or update made (a `T`): its id (table, id) or its JSON.
pub(super) fn made<T: Record>(format: Format, a: &Answer) -> Result<(), CliError> {
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => println!("{}", text(Some(a.decode::<T>()?.id()))),
    }
    Ok(())
}

/// What a removal removed (a `T`, a `kind`): said on stderr (table), its
/// JSON, or its id.
pub(super) fn deleted<T: Record>(format: Format, kind: &str, a: &Answer) -> Result<(), CliError> {
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => {
            let r: T = a.decode()?;
            let id = text(Some(r.id()));
            if format == Format::Table {
                eprintln!("deleted {kind} {} ({})", text(Some(r.name())), short(&id));
            } else {
                println!("{id}");
            }
        }
    }
    Ok(())
}

/// `delete-uplink`, `delete-nacl`, `delete-image`, `delete-builder`: the
/// `T` at `/v1/COLLECTION/ID` removed, and said so as `deleted` does.
pub(super) fn delete<T: Record>(
    c: &Client,
    (collection, kind): (&str, &str),
    id: &str,
    format: Format,
) -> Result<(), CliError> {
    let a = c.delete(&format!("/v1/{collection}/{}", enc(id)))?;
    deleted::<T>(format, kind, &a)
}

/// Indents compact JSON text the way serde_json's pretty printer does,
/// keeping everything else (key order, number spelling) as the server
/// wrote it: `-o json` shows the server's document, not our reading of it.
pub fn pretty(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(ch) = chars.next() {
        if in_string {
            out.push(ch);
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if ch == '{' { '}' } else { ']' };
                out.push(ch);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(ch);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_matches_serde_and_keeps_the_order() {
        let text =
            r#"{"z":1,"a":[],"m":{},"s":"a,b:{[\"]}","n":[1.0,{"x":null}],"e":{"k":[true]}}"#;
        let p = pretty(text);
        let sorted =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
        // The same document, the same layout, only in the server's order.
        assert_eq!(
            serde_json::from_str::<Value>(&p).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(p.lines().count(), sorted.lines().count());
        assert!(
            p.starts_with(
                "{\n  \"z\": 1,\n  \"a\": [],\n  \"m\": {},\n  \"s\": \"a,b:{[\\\"]}\",\n"
            ),
            "{p}"
        );
        assert!(
            p.contains("\"n\": [\n    1.0,\n    {\n      \"x\": null\n    }\n  ],"),
            "{p}"
        );
        assert_eq!(pretty("[]"), "[]");
        assert_eq!(pretty("[ ]"), "[]");
    }

    #[test]
    fn fields_and_ids() {
        let v = json!({"a": "x", "b": null, "c": 3, "d": "", "f": ["p", "q"]});
        assert_eq!(s(&v, "a"), "x");
        assert_eq!(s(&v, "b"), "-");
        assert_eq!(s(&v, "c"), "3");
        assert_eq!(s(&v, "d"), "-");
        assert_eq!(s(&v, "missing"), "-");
        assert_eq!(strings(&v["f"]), "p, q");
        // The typed readers say what `s` and `strings` say.
        assert_eq!(text(Some("x")), "x");
        assert_eq!(text(Some("")), "-");
        assert_eq!(text(None), "-");
        assert_eq!(texts(&["p".into(), "q".into()]), "p, q");
        assert_eq!(texts(&[]), "-");
        assert_eq!(short("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short("6f1c0e1a-1111-4222-8333-944445555666"), "6f1c0e1a");
    }
}
