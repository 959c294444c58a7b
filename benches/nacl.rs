//! The native NaCl validator (`jetpack::nacl`, spec/nacl.md):
//!
//! 1. In process: a ~1 MiB valid NaCl made by `support/nacl_gen.rs` (the
//!    same bytes every run: ~800 Ifaces (plain, DHCP, VLAN) with unique
//!    indexes and addresses, ~1,600 Filter::IP/TCP and Nat functions with
//!    nested if/else, `in` ranges, lists and CIDRs, a Gateway with ~900
//!    routes, ~3,600 constants and ~1,500 dotted assignments; the counts
//!    are printed), first checked valid (so the
//!    generator is honest), then `nacl::check` (parse + check) and
//!    `nacl::parse` alone timed over JETPACK_BENCH_RUNS runs (200): p50/p99
//!    and MiB/s. Baselines in the same run, interleaved with it: a plain pass
//!    over the same bytes counting lines and token starts, and serde_json
//!    parsing a JSON document of the same size and shape.
//! 2. Over the API: the real `jetpack serve` (release binary, separate
//!    process, TLS and auth on, as `benches/api.rs` runs it) on loopback;
//!    `POST /v1/nacls/validate` of a typical ~2 KiB NaCl, sequential on one
//!    keep-alive connection, JETPACK_BENCH_REQUESTS (5,000) after a warm-up,
//!    interleaved with `GET /v1/info` on the same connection as the
//!    baseline (the cheap endpoint `benches/api.rs` measures). Beside it:
//!    `nacl::check` of the same 2 KiB in process, and the 1 MiB NaCl
//!    through the API.
//!
//! `cargo bench --bench nacl` measures; without `--bench` (`cargo test
//! --benches`) everything runs tiny as a check that it works (the 1 MiB
//! NaCl is still generated and checked valid). Targets are printed, never
//! enforced: absolute figures drift on shared machines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[path = "support/nacl_gen.rs"]
mod nacl_gen;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use measure::{cpu_model, env_or, met, percentile_ms};
use serve::Server;
const MIB: usize = 1024 * 1024;

/// How much of everything: the real run, or the quick check.
struct Plan {
    bench: bool,
    /// Timed runs over the 1 MiB NaCl (after `warm_runs`).
    runs: usize,
    warm_runs: usize,
    /// Timed requests of each kind (after `warm_requests`).
    requests: usize,
    warm_requests: usize,
    /// Timed POSTs of the 1 MiB NaCl.
    big_requests: usize,
}

impl Plan {
    fn new(bench: bool) -> Plan {
        if bench {
            Plan {
                bench,
                runs: env_or("JETPACK_BENCH_RUNS", 200),
                warm_runs: 5,
                requests: env_or("JETPACK_BENCH_REQUESTS", 5000),
                warm_requests: 500,
                big_requests: 30,
            }
        } else {
            Plan {
                bench,
                runs: 3,
                warm_runs: 1,
                requests: 30,
                warm_requests: 5,
                big_requests: 2,
            }
        }
    }
}

// ---------------------------------------------------------------------
// Measuring

/// Sorted timings with their p50 and p99, in ms.
struct Timings(Vec<Duration>);

impl Timings {
    fn new(mut v: Vec<Duration>) -> Timings {
        v.sort();
        Timings(v)
    }
    fn p50(&self) -> f64 {
        percentile_ms(&self.0, 0.5)
    }
    fn p99(&self) -> f64 {
        percentile_ms(&self.0, 0.99)
    }
    fn max(&self) -> f64 {
        percentile_ms(&self.0, 1.0)
    }
    /// MiB/s of `bytes` at the median.
    fn mib_s(&self, bytes: usize) -> f64 {
        bytes as f64 / MIB as f64 / (self.p50() / 1000.0)
    }
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

// ---------------------------------------------------------------------
// 1. In process

/// The baseline: one pass over the bytes counting lines and token starts
/// (a word after a non-word byte, and every punctuation byte).
fn scan(bytes: &[u8]) -> (usize, usize) {
    let (mut lines, mut tokens, mut in_word) = (0usize, 0usize, false);
    for &b in bytes {
        let word = b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
        lines += usize::from(b == b'\n');
        tokens += usize::from(word && !in_word) + usize::from(!word && !b.is_ascii_whitespace());
        in_word = word;
    }
    (lines, tokens)
}

/// Stops the bench with the first problems and the lines they are on.
fn assert_valid(what: &str, text: &str) {
    let verdict = jetpack::nacl::check(text);
    if verdict.valid && verdict.errors.is_empty() {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut report = String::new();
    for d in verdict.errors.iter().take(10) {
        let at = lines
            .get((d.line as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("");
        report.push_str(&format!(
            "\n  line {}:{} {}\n    | {}",
            d.line, d.column, d.message, at
        ));
    }
    panic!(
        "{what} is valid NaCl by spec/nacl.md, but nacl::check says valid={} with {} errors:{report}",
        verdict.valid,
        verdict.errors.len()
    );
}

struct InProcess {
    bytes: usize,
    lines: usize,
    tokens: usize,
    json_bytes: usize,
    check: Timings,
    parse: Timings,
    scan: Timings,
    json: Timings,
}

fn scenario_in_process(plan: &Plan, generated: &nacl_gen::Generated) -> InProcess {
    let text = generated.text.as_str();
    let json = nacl_gen::json_like(text.len());
    // The serde_json baseline really parses.
    let value: serde_json::Value = serde_json::from_str(&json).expect("the JSON baseline parses");
    assert!(value["units"].as_array().is_some_and(|u| !u.is_empty()));
    let (lines, tokens) = scan(text.as_bytes());

    for _ in 0..plan.warm_runs {
        black_box(jetpack::nacl::check(black_box(text)));
        let _ = black_box(jetpack::nacl::parse(black_box(text)));
        black_box(scan(black_box(text.as_bytes())));
        black_box(serde_json::from_str::<serde_json::Value>(black_box(&json)).ok());
    }
    let mut t = [
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
    ];
    // Interleaved, so that drift hits all alike.
    for _ in 0..plan.runs {
        t[0].push(time(|| jetpack::nacl::check(black_box(text))));
        t[1].push(time(|| {
            let _ = black_box(jetpack::nacl::parse(black_box(text)));
        }));
        t[2].push(time(|| scan(black_box(text.as_bytes()))));
        t[3].push(time(|| {
            serde_json::from_str::<serde_json::Value>(black_box(&json)).ok()
        }));
    }
    let [check, parse, scan_t, json_t] = t;
    let r = InProcess {
        bytes: text.len(),
        lines,
        tokens,
        json_bytes: json.len(),
        check: Timings::new(check),
        parse: Timings::new(parse),
        scan: Timings::new(scan_t),
        json: Timings::new(json_t),
    };
    println!(
        "\n1. in process: {} bytes ({:.2} MiB) of NaCl, {} lines, ~{} tokens: {} units, {} Ifaces, \
         {} functions, {} Gateway routes, {} constants, {} dotted assignments; {} runs each, interleaved",
        r.bytes,
        r.bytes as f64 / MIB as f64,
        r.lines,
        r.tokens,
        generated.units,
        generated.ifaces,
        generated.functions,
        generated.routes,
        generated.constants,
        generated.dotted,
        plan.runs
    );
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "pass", "p50 ms", "p99 ms", "max ms", "MiB/s", "p50 / scan"
    );
    let scan_p50 = r.scan.p50();
    for (name, t, bytes) in [
        ("nacl::check (parse + check)", &r.check, r.bytes),
        ("nacl::parse alone", &r.parse, r.bytes),
        (
            "baseline: byte scan (lines, token starts)",
            &r.scan,
            r.bytes,
        ),
        ("baseline: serde_json::Value of JSON", &r.json, r.json_bytes),
    ] {
        println!(
            "{name:<44} {:>8.3} {:>8.3} {:>8.3} {:>9.1} {:>10.1}",
            t.p50(),
            t.p99(),
            t.max(),
            t.mib_s(bytes),
            t.p50() / scan_p50
        );
    }
    println!(
        "(JSON document: {} bytes, the same units as objects; check p50 / serde_json p50 = {:.2})",
        r.json_bytes,
        r.check.p50() / r.json.p50()
    );
    r
}

// ---------------------------------------------------------------------
// 2. Over the API. The server and client are those of benches/api.rs
// (support/serve.rs; support/http.rs: blocking HTTP/1.1 over rustls,
// requests serialised once, one reused buffer).

/// Names the temporary folder, bridge and jails of this bench's server.
const SERVE: serve::Bench = serve::Bench {
    name: "NaCl",
    tag: "jpn",
};

const VALIDATE: &str = "/v1/nacls/validate";

/// An invalid NaCl and the message the spec gives for its first problem.
const INVALID: (&str, &str) = (
    "Iface eth0 { index: 0, address: 10.0.0.300, netmask: 255.255.255.0 }\n",
    "IPv4 addr 10.0.0.300 contains bytes greater than 255",
);

struct OverApi {
    typical_bytes: usize,
    validate: Timings,
    info: Timings,
    in_process: Timings,
    /// The 1 MiB NaCl through the API, and its status (413 if over
    /// server.maxbody).
    big: Option<Timings>,
    big_status: u16,
}

/// `None` if this server has no `POST /v1/nacls/validate` (404, 405).
fn scenario_api(plan: &Plan, big: &str) -> Option<OverApi> {
    let typical = nacl_gen::TYPICAL;
    assert_valid("the typical NaCl (benches/support/nacl_gen.rs)", typical);
    let server = Server::jetpack(&SERVE, "jetpack serve", &[]);
    let mut client = server.connect();
    let validate = server.post_text(VALIDATE, typical);
    let info = server.get("/v1/info");

    // What the endpoint answers: 200 {"valid": true}; 422 {"errors": [...]}.
    let answer: serde_json::Value = match client.exchange(&validate) {
        Ok((200, body)) => serde_json::from_slice(body).expect("the validate answer is JSON"),
        Ok((status @ (404 | 405), _)) => {
            println!(
                "\n2. POST {VALIDATE} answered {status}: not in this server yet, not measured"
            );
            return None;
        }
        Ok((status, body)) => panic!(
            "POST {VALIDATE} of the typical NaCl answered {status}: {}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => panic!("POST {VALIDATE}: {e}"),
    };
    assert_eq!(
        answer["valid"], true,
        "POST {VALIDATE} of the typical NaCl: {answer}"
    );
    let bad = server.post_text(VALIDATE, INVALID.0);
    match client.exchange(&bad) {
        Ok((422, body)) => {
            let answer: serde_json::Value =
                serde_json::from_slice(body).expect("the 422 answer is JSON");
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
            if errors.is_empty() || !first.contains(INVALID.1) {
                println!(
                    "note: POST {VALIDATE} of an invalid NaCl: 422 but errors {answer} \
                     (expected a first error with \"{}\")",
                    INVALID.1
                );
            }
        }
        Ok((status, body)) => println!(
            "note: POST {VALIDATE} of an invalid NaCl answered {status} (expected 422): {}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => panic!("POST {VALIDATE} of an invalid NaCl: {e}"),
    }

    for _ in 0..plan.warm_requests {
        client.expect(&validate, 200);
        client.expect(&info, 200);
    }
    let (mut v, mut i) = (
        Vec::with_capacity(plan.requests),
        Vec::with_capacity(plan.requests),
    );
    // Interleaved, one after another on one connection.
    for _ in 0..plan.requests {
        let t = Instant::now();
        client.expect(&validate, 200);
        v.push(t.elapsed());
        let t = Instant::now();
        client.expect(&info, 200);
        i.push(t.elapsed());
    }
    let in_process: Vec<Duration> = (0..plan.requests)
        .map(|_| time(|| jetpack::nacl::check(black_box(typical))))
        .collect();

    // The 1 MiB NaCl through the API, if server.maxbody lets it in.
    let big_request = server.post_text(VALIDATE, big);
    let (big_status, big_timings) = match client.exchange(&big_request) {
        Ok((200, _)) => {
            let t: Vec<Duration> = (0..plan.big_requests)
                .map(|_| {
                    let t = Instant::now();
                    client.expect(&big_request, 200);
                    t.elapsed()
                })
                .collect();
            (200, Some(Timings::new(t)))
        }
        Ok((status, _)) => (status, None),
        Err(e) => panic!("POST {VALIDATE} of the 1 MiB NaCl: {e}"),
    };

    let r = OverApi {
        typical_bytes: typical.len(),
        validate: Timings::new(v),
        info: Timings::new(i),
        in_process: Timings::new(in_process),
        big: big_timings,
        big_status,
    };
    println!(
        "\n2. jetpack serve over TLS with auth, keep-alive, one connection: {} sequential requests \
         of each kind, interleaved (+{} warm-up)",
        plan.requests, plan.warm_requests
    );
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>8}",
        "request", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let rows = [
        (
            format!("POST {VALIDATE}, typical NaCl ({} B)", r.typical_bytes),
            &r.validate,
        ),
        ("baseline: GET /v1/info".to_string(), &r.info),
        (
            format!("nacl::check of the same {} B, in process", r.typical_bytes),
            &r.in_process,
        ),
    ];
    for (name, t) in rows {
        println!(
            "{name:<52} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            t.p50(),
            percentile_ms(&t.0, 0.9),
            t.p99(),
            t.max()
        );
    }
    match &r.big {
        Some(t) => println!(
            "{:<52} {:>8.3} {:>8.3} {:>8.3} {:>8.3}   ({} requests)",
            format!("POST {VALIDATE}, the {} B NaCl", big.len()),
            t.p50(),
            percentile_ms(&t.0, 0.9),
            t.p99(),
            t.max(),
            plan.big_requests
        ),
        None => println!(
            "POST {VALIDATE} of the {} B NaCl answered {} (server.maxbody?): not timed",
            big.len(),
            r.big_status
        ),
    }
    Some(r)
}

// ---------------------------------------------------------------------

fn summary(cores: usize, local: &InProcess, api: Option<&OverApi>) {
    let build = if cfg!(debug_assertions) {
        "debug build: a quick check, the figures mean nothing"
    } else {
        "release build"
    };
    println!(
        "\n{cores} cores ({}), {build}, client and server on the same machine:\n",
        cpu_model()
    );
    println!("| measure | jetpack | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    let (check_p99, scan_p50, json_p50) = (local.check.p99(), local.scan.p50(), local.json.p50());
    println!(
        "| `nacl::check` (parse + check), {:.2} MiB NaCl | p50 {:.2} ms, p99 {check_p99:.2} ms, {:.0} MiB/s | byte scan: p50 {scan_p50:.2} ms ({:.0} MiB/s); serde_json of {:.2} MiB JSON: p50 {json_p50:.2} ms ({:.0} MiB/s) | {:.1}x scan, {:.2}x serde_json (p50) | p99 < 50 ms | {} |",
        local.bytes as f64 / MIB as f64,
        local.check.p50(),
        local.check.mib_s(local.bytes),
        local.scan.mib_s(local.bytes),
        local.json_bytes as f64 / MIB as f64,
        local.json.mib_s(local.json_bytes),
        local.check.p50() / scan_p50,
        local.check.p50() / json_p50,
        met(check_p99 < 50.0)
    );
    println!(
        "| `nacl::parse` alone, same NaCl | p50 {:.2} ms, p99 {:.2} ms, {:.0} MiB/s | | parse / check {:.2} (p50) | | |",
        local.parse.p50(),
        local.parse.p99(),
        local.parse.mib_s(local.bytes),
        local.parse.p50() / local.check.p50()
    );
    let Some(api) = api else {
        println!(
            "| `POST /v1/nacls/validate`, {} B NaCl | not in this server | `GET /v1/info` | | p99 < 2 ms | not measured |",
            nacl_gen::TYPICAL.len()
        );
        return;
    };
    let v_p99 = api.validate.p99();
    println!(
        "| `POST /v1/nacls/validate`, {} B NaCl, TLS, auth, keep-alive, sequential | p50 {:.3} ms, p99 {v_p99:.3} ms | `GET /v1/info`: p50 {:.3} ms, p99 {:.3} ms | {:.2} (p50), {:.2} (p99) | p99 < 2 ms | {} |",
        api.typical_bytes,
        api.validate.p50(),
        api.info.p50(),
        api.info.p99(),
        api.validate.p50() / api.info.p50(),
        v_p99 / api.info.p99(),
        met(v_p99 < 2.0)
    );
    println!(
        "\n(of which `nacl::check` in process: p50 {:.3} ms, p99 {:.3} ms)",
        api.in_process.p50(),
        api.in_process.p99()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then
    // everything runs tiny, as a check that it works.
    let plan = Plan::new(std::env::args().any(|a| a == "--bench"));
    if !plan.bench {
        println!("nacl bench: quick check (run `cargo bench --bench nacl` to measure)");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let generated = nacl_gen::generate(MIB);
    let generate_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        generated.text.len() > MIB * 9 / 10 && generated.text.len() <= MIB,
        "the generated NaCl is {} bytes, not ~1 MiB",
        generated.text.len()
    );
    assert_eq!(
        generated.text,
        nacl_gen::generate(MIB).text,
        "the generator is deterministic"
    );
    assert_valid(
        "the generated 1 MiB NaCl (benches/support/nacl_gen.rs)",
        &generated.text,
    );
    println!(
        "generated {} bytes of NaCl in {generate_ms:.1} ms; nacl::check says valid",
        generated.text.len()
    );
    let local = scenario_in_process(&plan, &generated);
    let api = scenario_api(&plan, &generated.text);
    summary(cores, &local, api.as_ref());
}
