//! The NaCl editor: the checker's errors marked, snippets saved, reverting.

use super::*;
use crate::common::browser::{BACKSPACE, CTRL_END};

/// The editor's text, line by line as CodeMirror shows it.
fn editor_text(b: &Browser) -> String {
    b.js(
        "return [...document.querySelectorAll('[data-testid=nacl-editor] .cm-content .cm-line')]
            .map(l => l.textContent).join('\\n');",
        vec![],
    )
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// The 1-based lines whose gutter holds an error marker.
fn marked_lines(b: &Browser) -> Vec<u64> {
    let v = b.js(
        "const lines = [...document.querySelectorAll('[data-testid=nacl-editor] .cm-content .cm-line')];
         return [...document.querySelectorAll('[data-testid=nacl-editor] .cm-lint-marker-error')].map(m => {
           const r = m.getBoundingClientRect(), mid = (r.top + r.bottom) / 2;
           return 1 + lines.findIndex(l => { const b = l.getBoundingClientRect(); return mid >= b.top && mid <= b.bottom; });
         });",
        vec![],
    );
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn diagnostics(b: &Browser) -> Vec<String> {
    let v = b.js(
        "return [...document.querySelectorAll('[data-testid=nacl-diagnostics] li')].map(l => l.textContent.trim());",
        vec![],
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn nacl_editor_marks_the_checkers_errors_saves_snippets_and_reverts() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let s = &c.server;
    let (status, doc) = s.json(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"name": "edge", "content": NACL}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{doc}");
    let id = doc["id"].as_str().unwrap().to_string();

    let b = logged_in(&c, "nacl");
    b.goto(&format!("/#/nacls/{id}"));
    let original = NACL.trim_end_matches('\n');
    b.wait_for("the NaCl in the editor", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.trim_end() == original {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.wait_gone(".cm-lint-marker-error");

    // An invalid last line: a marker on it, and the checker's message.
    let editor = "[data-testid=nacl-editor] .cm-content";
    b.click(editor);
    let bad = "bogus 42";
    b.type_keys(editor, &format!("{CTRL_END}{bad}"));
    let typed = b.wait_for("the typed line", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.ends_with(bad) {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    });
    let line = typed.lines().count() as u64;
    let check = fetch(
        s,
        &[
            "-u",
            &format!("{USER}:{PASSWORD}"),
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            &typed,
        ],
        "/v1/nacls/validate",
    );
    assert_eq!(check.status, 422, "{}", check.text());
    let verdict = check.json();
    let errors = verdict["errors"].as_array().expect("errors").clone();
    assert!(!errors.is_empty(), "{verdict}");
    let mut want: Vec<String> = errors
        .iter()
        .chain(verdict["warnings"].as_array().into_iter().flatten())
        .map(|e| {
            format!(
                "line {}:{} {}",
                e["line"],
                e["column"],
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    want.sort();
    let want_lines: Vec<u64> = errors.iter().filter_map(|e| e["line"].as_u64()).collect();
    assert!(
        want_lines.contains(&line),
        "the checker blames {want_lines:?}, not line {line}: {verdict}"
    );
    b.wait_for("the checker's diagnostics", browser::WAIT, |b| {
        let mut shown = diagnostics(b);
        shown.sort();
        if shown == want {
            Ok(())
        } else {
            Err(format!("{shown:?}, want {want:?}"))
        }
    });
    b.wait_for(
        &format!("an error marker on line {line}"),
        browser::WAIT,
        |b| {
            let mut marked = marked_lines(b);
            marked.sort();
            marked.dedup();
            let mut expected = want_lines.clone();
            expected.sort();
            expected.dedup();
            if marked == expected {
                Ok(())
            } else {
                Err(format!("markers on {marked:?}"))
            }
        },
    );
    b.page("nacl-editor-error");

    // Fixed: the marker goes.
    b.type_keys(editor, &BACKSPACE.repeat(bad.len()));
    b.wait_gone(".cm-lint-marker-error");
    b.wait_for("no diagnostics", browser::WAIT, |b| {
        let d = diagnostics(b);
        if d.is_empty() {
            Ok(())
        } else {
            Err(format!("{d:?}"))
        }
    });

    // An edit, saved.
    b.type_keys(editor, "// edited in the console");
    let edited = b.wait_for("the comment typed", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.ends_with("// edited in the console") {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.click("[data-testid=nacl-save]");
    let wait_api = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            if Instant::now() > deadline {
                b.fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_api("the saved NaCl", &|| {
        let (_, d) = s.json(&[], &format!("/v1/nacls/{id}"));
        d["content"].as_str().map(str::trim_end) == Some(edited.trim_end())
    });

    // Saved as a snippet (the whole text: nothing is selected).
    b.fill("[data-testid=snippet-name]", "console-snippet");
    b.click("[data-testid=snippet-save]");
    wait_api("the snippet", &|| {
        let (_, list) = s.json(&[], "/v1/snippets");
        list.as_array().into_iter().flatten().any(|d| {
            d["name"] == "console-snippet"
                && d["content"].as_str().map(str::trim_end) == Some(edited.trim_end())
        })
    });
    b.wait_for("the snippet's row", browser::WAIT, |b| {
        match b.count("[data-testid=snippet-row]") {
            0 => Err("no row".into()),
            _ => Ok(()),
        }
    });

    // Revert: back to what is saved.
    b.type_keys(editor, &format!("{CTRL_END}\nnot saved"));
    b.wait_for("the unsaved line", browser::WAIT, |b| {
        if editor_text(b).ends_with("not saved") {
            Ok(())
        } else {
            Err(editor_text(b))
        }
    });
    b.click("[data-testid=nacl-revert]");
    b.wait_for("the saved text back", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.trim_end() == edited.trim_end() {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.page("nacl-editor");
    let (_, d) = s.json(&[], &format!("/v1/nacls/{id}"));
    assert_eq!(
        d["content"].as_str().map(str::trim_end),
        Some(edited.trim_end())
    );
}
