//! `jetpack sim`: simulated IncludeOS instances that speak the uplink
//! protocol byte for byte as the IncludeOS client does (spec/uplink.md),
//! for tests, benchmarks and users' own load tests of a hangar. One
//! process runs N instances, one tokio task each, sharing counters that a
//! reporter prints as `key=value` lines.
//!
//! This file owns the command line, the checks of its values, the runtime
//! and the run (ramp, duration, signals, the summary). The rest:
//!
//! - `target`: the uplink URLs, which one an instance tries, and the
//!   `--source` range (pure)
//! - `wire`: the exact bytes an instance sends (pure)
//! - `conn`: TCP, TLS as IncludeOS speaks it, auth and dock
//! - `instance`: one instance's life, live updates, misbehaviours
//! - `report`: the counters and the lines printed from them

mod conn;
mod instance;
mod report;
mod target;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{interval_at, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use instance::{Hangar, Instance, Quirks, Shared};
use report::{progress_line, summary_line, Counters, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Usage(String),
    #[error("resolving {0}: {1}")]
    Resolve(String, String),
    #[error("setting up the TLS client: {0}")]
    Tls(String),
    #[error("--certs {0}: {1}")]
    Certs(String, String),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("watching for signals: {0}")]
    Signal(std::io::Error),
}

/// `jetpack sim` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every --report-ms a line goes to stdout:
  t=12s connected=19987/20000 docks=20011 auth_fail=0 dock_fail=0 disconnects=3 sent=21034/s recv=4012/s updates=0
(sent and recv count WebSocket frames: transports, pings and pongs). At the end a
`summary key=value ...` line adds totals and the docking rate: all_docked_s is when every
instance had docked once, dock_rate_per_s = count / all_docked_s (`none` if they never all
did). Failures are summed up on stderr, at most one line per report.

Exit status: 0 if every instance docked at least once, 1 if not.")]
pub struct SimArgs {
    /// The hangar's URL, as an image's uplink `url`: http://host:port or https://host:port (no port means 80, even for https). Give it several times for several hangars sharing the fleet: instance i first tries URL i mod n, and after a failed attempt or a lost dock the next URL, round-robin
    #[arg(long, value_name = "URL", required = true)]
    pub url: Vec<String>,
    /// The uplink token instances authenticate with (`key` at auth)
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// How many instances
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: u64,
    /// Number of the first instance: instance i's id is the first 32 hex digits of SHA-1("SEED-i")
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub first: u64,
    /// Seed of the instance ids; the same seed docks the same instances again
    #[arg(long, default_value = "jetpack-sim", value_name = "SEED")]
    pub seed: String,
    /// Dock as this id (32 lower-case hex digits, as IncludeOS prints its SMBIOS UUID) instead of the seed's; only with --count 1
    #[arg(long, value_name = "HEX32")]
    pub id: Option<String>,
    /// Send STATS on docking and every M ms (the UPLINK echo's send_stats); 0 = only when the hangar asks
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub stats_ms: u64,
    /// A LOG line every M ms (lines due while offline are buffered, as stdout is); 0 = none
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub log_ms: u64,
    /// A progress line every M ms; 0 = only the summary
    #[arg(long, default_value_t = 1000, value_name = "M")]
    pub report_ms: u64,
    /// Stop after SECS seconds [default: run until SIGINT or SIGTERM]
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Start at most N new instances per second [default: all at once]
    #[arg(long, value_name = "N")]
    pub ramp: Option<u64>,
    /// Bind each instance's sockets to its own address of this range, round-robin (e.g. 127.0.0.0/20), so that many instances on one host do not exhaust the ephemeral ports or one address's auth rate limit
    #[arg(long, value_name = "CIDR")]
    pub source: Option<String>,
    /// TLS even with an http URL (an https URL means TLS): TLS 1.2, AES256-SHA only, no SNI, as IncludeOS
    #[arg(long)]
    pub tls: bool,
    /// Verify the hangar's certificate chain against this PEM file, or folder of PEM files (an instance's certs folder with verify=true); without it nothing is verified
    #[arg(long, value_name = "PATH")]
    pub certs: Option<PathBuf>,
    /// IDENT's service name
    #[arg(long, default_value = "Starbase", value_name = "NAME")]
    pub service: String,
    /// IDENT's and UPLINK's image tag [default: none]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// IDENT's IncludeOS version
    #[arg(
        long = "os-version",
        default_value = "v0.14.2-sim",
        value_name = "VERSION"
    )]
    pub os_version: String,
    /// Misbehave: acknowledge an UPDATE with a hash that is not the SHA-1 of what was sent
    #[arg(long)]
    pub bad_ack: bool,
    /// Misbehave: after acknowledging an UPDATE, close and never dock again
    #[arg(long)]
    pub no_return: bool,
    /// Misbehave: come back from an UPDATE still reporting the previous binary (or none)
    #[arg(long)]
    pub update_fails: bool,
    /// Misbehave: each instance's first boot crashes just after docking; the reboot docks again and sends PANIC with the crashed boot's log
    #[arg(long)]
    pub panic: bool,
    /// Print every instance's events (docks, failures, updates) to stderr
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// How long instances get to close their docks when the run stops.
const SHUTDOWN: Duration = Duration::from_secs(3);

/// Runs the simulated instances; returns the exit code.
pub fn run(args: SimArgs) -> Result<i32, SimError> {
    let targets = target::parse_urls(&args.url).map_err(SimError::Usage)?;
    if args.count == 0 {
        return Err(SimError::Usage("--count must be at least 1".into()));
    }
    if args.first.checked_add(args.count).is_none() {
        return Err(SimError::Usage("--first + --count is too large".into()));
    }
    if let Some(id) = &args.id {
        check_id(id, args.count).map_err(SimError::Usage)?;
    }
    let duration = match args.duration {
        None => None,
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    SimError::Usage(format!("--duration {secs}: a positive number of seconds"))
                })?,
        ),
    };
    if args.ramp == Some(0) {
        return Err(SimError::Usage(
            "--ramp must be at least 1 instance per second".into(),
        ));
    }
    let sources = args
        .source
        .as_deref()
        .map(target::parse_cidr)
        .transpose()
        .map_err(SimError::Usage)?;
    // Each URL keeps its own scheme; --tls makes them all TLS.
    let tls: Vec<bool> = targets.iter().map(|t| t.https || args.tls).collect();
    if args.certs.is_some() && !tls.contains(&true) {
        return Err(SimError::Usage(
            "--certs verifies TLS: use an https URL or --tls".into(),
        ));
    }
    let tls_context = match tls.contains(&true) {
        true => Some(conn::tls_context(args.certs.as_deref())?),
        false => None,
    };
    let limit = crate::net::raise_fd_limit();
    // Each instance holds a descriptor from its first connect on (the
    // hangar needs as many).
    if let Some(limit) = limit.filter(|&l| l < args.count + 64) {
        eprintln!(
            "sim: warning: the descriptor limit is {limit}, too few for {} instances",
            args.count
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    let hangars = targets.into_iter().zip(tls).collect();
    runtime.block_on(simulate(args, hangars, sources, tls_context, duration))
}

/// A hangar URL's addresses, resolved once for the whole run, not once
/// per connection; only those of `--source`'s family.
async fn resolve(
    target: &target::Target,
    sources: Option<&target::Sources>,
) -> Result<Vec<SocketAddr>, SimError> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| SimError::Resolve(target.host.clone(), e.to_string()))?
        .collect();
    if let Some(s) = sources {
        addrs.retain(|a| a.is_ipv6() == s.is_v6());
        if addrs.is_empty() {
            return Err(SimError::Usage(format!(
                "--source is {} but {} (--url {}) has no {} address",
                if s.is_v6() { "IPv6" } else { "IPv4" },
                target.host,
                target.url,
                if s.is_v6() { "IPv6" } else { "IPv4" },
            )));
        }
    }
    if addrs.is_empty() {
        return Err(SimError::Resolve(target.host.clone(), "no address".into()));
    }
    Ok(addrs)
}

async fn simulate(
    args: SimArgs,
    targets: Vec<(target::Target, bool)>,
    sources: Option<target::Sources>,
    tls: Option<openssl::ssl::SslContext>,
    duration: Option<Duration>,
) -> Result<i32, SimError> {
    let mut hangars = Vec::with_capacity(targets.len());
    for (target, tls) in targets {
        hangars.push(Hangar {
            addrs: resolve(&target, sources.as_ref()).await?,
            url: target.url,
            authority: target.authority,
            tls,
        });
    }
    // One URL reads as it always did: "docking to URL (addr, TLS)".
    let to = hangars
        .iter()
        .map(|h| {
            let tls = if h.tls { "TLS" } else { "no TLS" };
            format!("{} ({}, {tls})", h.url, h.addrs[0])
        })
        .collect::<Vec<_>>()
        .join(", ");
    let from = match &sources {
        Some(s) => format!(
            "from {} source addresses",
            s.len().min(u128::from(args.count))
        ),
        None => "from one source address".into(),
    };
    eprintln!("sim: {} instance(s) docking to {to} {from}", args.count);
    let every = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    let count = args.count;
    let stop = CancellationToken::new();
    let shared = Arc::new(Shared {
        profile: wire::Profile {
            token: args.token.clone(),
            version: args.os_version.clone(),
            service: args.service.clone(),
            tag: args.tag.clone(),
            send_stats_ms: args.stats_ms,
            verify: args.certs.is_some(),
        },
        hangars,
        tls,
        sources,
        seed: args.seed.clone(),
        fixed_id: args.id.clone(),
        stats_every: every(args.stats_ms),
        log_every: every(args.log_ms),
        quirks: Quirks {
            bad_ack: args.bad_ack,
            no_return: args.no_return,
            update_fails: args.update_fails,
            panic: args.panic,
        },
        verbose: args.verbose,
        counters: Counters::new(count),
        stop: stop.clone(),
    });
    watch_signals(stop.clone())?;
    if let Some(d) = duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let reporter = every(args.report_ms).map(|e| tokio::spawn(report(shared.clone(), e)));

    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for slot in 0..count {
        if let Some(rate) = args.ramp {
            let at = started + Duration::from_secs_f64(slot as f64 / rate as f64);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = sleep_until(at) => {}
            }
        }
        tasks.spawn(Instance::new(shared.clone(), args.first + slot, slot).run());
    }

    stop.cancelled().await;
    // The figures are those of the moment the run stopped, before the
    // instances close their docks.
    let elapsed = shared.counters.elapsed();
    let at_stop = shared.counters.snapshot();
    let closing = async { while tasks.join_next().await.is_some() {} };
    if timeout(SHUTDOWN, closing).await.is_err() {
        tasks.abort_all();
    }
    if let Some(r) = reporter {
        let _ = r.await;
    }
    if let Some(note) = shared.counters.take_note() {
        eprintln!("sim: {note}");
    }
    println!(
        "{}",
        summary_line(elapsed, count, &at_stop, shared.counters.all_docked())
    );
    Ok(if at_stop.docked_once == count { 0 } else { 1 })
}

/// `--id`: one instance (two with the same id would take each other's
/// dock), and an id as IncludeOS prints it, since the hangar keys
/// instances by it and a launched instance's is compared with it.
fn check_id(id: &str, count: u64) -> Result<(), String> {
    if count != 1 {
        return Err(format!(
            "--id gives one instance its id: use it with --count 1, not {count}"
        ));
    }
    if crate::hypervisor::smbios::uuid_for_instance_id(id).is_none() {
        return Err(format!(
            "--id {id}: 32 lower-case hex digits, as an instance reports its SMBIOS UUID"
        ));
    }
    Ok(())
}

/// SIGINT and SIGTERM stop the run (the summary is still printed).
fn watch_signals(stop: CancellationToken) -> Result<(), SimError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(SimError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(SimError::Signal)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}

/// Prints a progress line every `every` until the run stops, and at most
/// one failure description with it.
async fn report(shared: Arc<Shared>, every: Duration) {
    let counters = &shared.counters;
    let mut ticker = interval_at(Instant::now() + every, every);
    let mut before = Snapshot::default();
    let mut at = Instant::now();
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = counters.snapshot();
        let t = Instant::now();
        println!(
            "{}",
            progress_line(counters.elapsed(), counters.count(), &now, &before, t - at)
        );
        if let Some(note) = counters.take_note() {
            eprintln!("sim: {note}");
        }
        before = now;
        at = t;
    }
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn an_id_is_32_lower_case_hex_digits_for_one_instance() {
        assert_eq!(check_id("443322116655887799aabbccddeeff00", 1), Ok(()));
        for bad in [
            "",
            "443322116655887799aabbccddeeff0",
            "443322116655887799aabbccddeeff000",
            "443322116655887799AABBCCDDEEFF00",
            "44332211-6655-8877-99aa-bbccddeeff00",
            "443322116655887799aabbccddeeffg0",
        ] {
            assert!(check_id(bad, 1).is_err(), "{bad}");
        }
        let err = check_id("443322116655887799aabbccddeeff00", 2).unwrap_err();
        assert!(err.contains("--count 1"), "{err}");
    }
}
