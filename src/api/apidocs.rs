//! `/apidocs`: the OpenAPI document rendered as one self-contained HTML
//! page (no scripts, nothing fetched from elsewhere, so it works on hosts
//! without internet access).

use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::{OpenApi, RefOr};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const METHODS: &[(HttpMethod, &str)] = &[
    (HttpMethod::Get, "GET"),
    (HttpMethod::Post, "POST"),
    (HttpMethod::Put, "PUT"),
    (HttpMethod::Patch, "PATCH"),
    (HttpMethod::Delete, "DELETE"),
];

fn operation(html: &mut String, method: &str, path: &str, op: &Operation) {
    html.push_str(&format!(
        "<section><h3><code class=m>{method}</code> <code>{}</code></h3>",
        esc(path)
    ));
    if let Some(s) = &op.summary {
        html.push_str(&format!("<p>{}</p>", esc(s)));
    }
    if let Some(d) = op
        .description
        .as_ref()
        .filter(|d| Some(*d) != op.summary.as_ref())
    {
        html.push_str(&format!("<p>{}</p>", esc(d)));
    }
    if let Some(params) = op.parameters.as_ref().filter(|p| !p.is_empty()) {
        html.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
        for p in params {
            let place = serde_json::to_value(&p.parameter_in)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{place}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(p.description.as_deref().unwrap_or(""))
            ));
        }
        html.push_str("</table>");
    }
    if let Some(body) = &op.request_body {
        let types: Vec<String> = body.content.keys().map(|k| esc(k)).collect();
        html.push_str(&format!("<p>Body: {}</p>", types.join(", ")));
    }
    html.push_str("<ul>");
    for (status, response) in &op.responses.responses {
        let text = match response {
            RefOr::T(r) => r.description.clone(),
            RefOr::Ref(r) => r.ref_location.clone(),
        };
        html.push_str(&format!("<li><b>{}</b> {}</li>", esc(status), esc(&text)));
    }
    html.push_str("</ul></section>");
}

pub fn render(doc: &OpenApi) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{0} API</title><style>\
         body{{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}}\
         section{{border-top:1px solid #ccc;padding:.3em 0}}code.m{{color:#06c}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2em .5em;text-align:left}}\
         </style></head><body><h1>{0} API {1}</h1><p>{2}</p>\
         <p>The machine-readable document: <a href=\"/v1/openapi.json\">/v1/openapi.json</a></p>",
        esc(&doc.info.title),
        esc(&doc.info.version),
        esc(doc.info.description.as_deref().unwrap_or(""))
    );
    for (path, item) in &doc.paths.paths {
        for (method, name) in METHODS {
            let op = match method {
                HttpMethod::Get => &item.get,
                HttpMethod::Post => &item.post,
                HttpMethod::Put => &item.put,
                HttpMethod::Patch => &item.patch,
                HttpMethod::Delete => &item.delete,
                _ => &None,
            };
            if let Some(op) = op {
                operation(&mut html, name, path, op);
            }
        }
    }
    html.push_str("</body></html>");
    html
}
