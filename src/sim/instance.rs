//! One simulated instance, as one task: the uplink client's life cycle of
//! spec/uplink.md 2 (auth, dock, the after-dock sequence, back-off,
//! heartbeat, re-auth when the socket closes), failing over between the
//! run's hangar URLs, live updates (6) and the misbehaviours tests ask for
//! (`Quirks`). What the instance keeps is
//! small: its id, the previous session token, the running binary, the
//! offline log (capped) and a few counters; buffers live only while a
//! message is being built or read.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::SslContext;
use tokio::time::{
    interval_at, sleep, sleep_until, timeout, Instant, Interval, MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;

use super::conn::{self, Authed, Conn, Endpoint, LinkError, HTTP_TIMEOUT, MAX_TRANSPORT};
use super::report::Counters;
use super::target::{self, Sources};
use super::wire::{self, IdentFacts, Profile, StatsFacts, Traffic};
use crate::hangar::frame::{encode, Assembler, Code};
use crate::hangar::ws::{OpCode, WsError, WsStream};

/// With nothing heard from the hangar for this long the instance pings it,
/// waits this long for a pong, and gives up after so many missed pongs.
const QUIET: Duration = Duration::from_secs(10);
const PONG_TIMEOUT: Duration = Duration::from_secs(5);
const MISSED_PONGS: u32 = 3;

/// A send that does not complete in this time means the hangar stopped
/// reading; the instance drops the connection and re-auths.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a close handshake may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// `--panic`: the first boot crashes this long after docking (long enough
/// for the hangar to have taken the IDENT), and the reboot takes this long.
const PANIC_AFTER: Duration = Duration::from_millis(100);
const REBOOT: Duration = Duration::from_millis(300);

/// stdout kept while offline, sent as the first LOG after a dock. A ring:
/// the oldest bytes go first. Small, because 20,000 instances may all be
/// offline at once.
const OFFLINE_LOG_CAP: usize = 4096;
/// After a long time offline, only the newest `--log-ms` lines are made.
const MAX_CATCH_UP: u64 = 50;

/// Misbehaviour switches, for tests of the hangar's deploys and panics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quirks {
    /// Acknowledge an UPDATE with a hash that is not its payload's.
    pub bad_ack: bool,
    /// After acknowledging an UPDATE, never dock again.
    pub no_return: bool,
    /// Come back from an UPDATE still reporting the previous binary.
    pub update_fails: bool,
    /// The first boot crashes after docking; the next one sends PANIC.
    pub panic: bool,
}

/// One hangar URL of the run, resolved.
pub struct Hangar {
    /// The URL as given: echoed in UPLINK, named in events.
    pub url: String,
    /// The `Host` header (the URL's authority).
    pub authority: String,
    pub addrs: Vec<SocketAddr>,
    /// TLS to this one (an https URL, or `--tls`).
    pub tls: bool,
}

/// What every instance of a run shares.
pub struct Shared {
    pub profile: Profile,
    /// The `--url`s, in order (at least one).
    pub hangars: Vec<Hangar>,
    /// The TLS client, if any hangar speaks TLS.
    pub tls: Option<SslContext>,
    pub sources: Option<Sources>,
    pub seed: String,
    /// `--id`: the one instance's id, instead of the seed's (a VM that
    /// docks as the id of the UUID it was launched with).
    pub fixed_id: Option<String>,
    pub stats_every: Option<Duration>,
    pub log_every: Option<Duration>,
    pub quirks: Quirks,
    /// Print each instance's events to stderr.
    pub verbose: bool,
    pub counters: Counters,
    pub stop: CancellationToken,
}

/// How a docked session ended.
enum End {
    Stopped,
    /// Closed or broken: re-auth at once.
    Lost(String),
    HeartbeatLost,
    /// UPDATE acknowledged with `ack`, received at `started`.
    Updated {
        ack: String,
        started: Instant,
    },
    /// The boot crashed (`--panic`).
    Panicked,
}

pub struct Instance {
    shared: Arc<Shared>,
    index: u64,
    id: String,
    source: Option<IpAddr>,
    /// The hangar URL (index into `Shared::hangars`) the next attempt goes
    /// to; kept while docked, the next one after a failure or a lost dock.
    hangar: usize,
    rng: u64,
    booted: Instant,
    /// The last session token: sent as a bearer at re-auth.
    token: Option<String>,
    /// Failed auths or docks in a row, for the back-off.
    failures: u32,
    /// The running binary's SHA-1 and how long its swap took (ns), after a
    /// live update.
    binary: Option<String>,
    update_ns: Option<u64>,
    /// The system log of a boot that panicked, for the next dock.
    pending_panic: Option<String>,
    will_panic: bool,
    offline_log: Vec<u8>,
    log_seq: u64,
    log_next: Instant,
    docked_once: bool,
    traffic: Traffic,
}

/// Runs `work` unless the run stops first (`None`), giving up after the
/// HTTP timeout. Boxed: the auth and dock states are short-lived and need
/// not enlarge every instance's task for its whole life.
async fn step<T>(
    stop: &CancellationToken,
    work: impl Future<Output = Result<T, LinkError>>,
) -> Option<Result<T, LinkError>> {
    let work = Box::pin(timeout(HTTP_TIMEOUT, work));
    tokio::select! {
        _ = stop.cancelled() => None,
        r = work => Some(r.unwrap_or(Err(LinkError::Timeout(HTTP_TIMEOUT.as_secs())))),
    }
}

/// Waits for the next tick, or forever when there is no interval.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Instance {
    /// Instance number `index`; `slot` (its place in this run) picks its
    /// source address.
    pub fn new(shared: Arc<Shared>, index: u64, slot: u64) -> Instance {
        let id = shared
            .fixed_id
            .clone()
            .unwrap_or_else(|| wire::instance_id(&shared.seed, index));
        let rng = u64::from_str_radix(&id[..16], 16).unwrap_or(index) | 1;
        let now = Instant::now();
        let hangar = target::first_url(index, shared.hangars.len());
        let url = shared.hangars.get(hangar).map_or("", |h| h.url.as_str());
        Instance {
            source: shared.sources.as_ref().map(|s| s.nth(slot)),
            offline_log: wire::boot_log(&shared.profile, url, &id).into_bytes(),
            hangar,
            will_panic: shared.quirks.panic,
            log_next: now + shared.log_every.unwrap_or_default(),
            shared,
            index,
            id,
            rng,
            booted: now,
            token: None,
            failures: 0,
            binary: None,
            update_ns: None,
            pending_panic: None,
            log_seq: 0,
            docked_once: false,
            traffic: Traffic::default(),
        }
    }

    /// Lives until the run stops.
    pub async fn run(mut self) {
        let shared = self.shared.clone();
        let counters = &shared.counters;
        loop {
            if shared.stop.is_cancelled() {
                return;
            }
            let authed = match self.auth().await {
                None => return,
                Some(Ok(a)) => a,
                Some(Err(e)) => {
                    self.event(format_args!("auth failed: {e}"));
                    counters.auth_failed(|| format!("instance {}: auth failed: {e}", self.id));
                    self.say(&format!("[ uplink ] Auth failed - {e}"));
                    self.fail_over();
                    if !self.back_off().await {
                        return;
                    }
                    continue;
                }
            };
            self.failures = 0;
            self.say("[ uplink ] Auth success (token received)");
            let mut ws = match self.dock(authed).await {
                None => return,
                Some(Ok(ws)) => ws,
                Some(Err(e)) => {
                    self.event(format_args!("dock failed: {e}"));
                    counters.dock_failed(|| format!("instance {}: dock failed: {e}", self.id));
                    self.say(&format!("[ uplink ] Failed to establish websocket - {e}"));
                    self.fail_over();
                    if !self.back_off().await {
                        return;
                    }
                    continue;
                }
            };
            counters.docked(!self.docked_once);
            self.docked_once = true;
            if shared.verbose {
                let over = ws.get_mut().describe();
                match shared.hangars.len() {
                    1 => self.event(format_args!("docked over {over}")),
                    // Every dock names its URL: a re-dock elsewhere shows.
                    _ => self.event(format_args!(
                        "docked on URL {} ({}) over {over}",
                        self.hangar,
                        self.hangar().url
                    )),
                }
            }
            let end = match self.converse(&mut ws).await {
                Ok(end) => end,
                Err(e) => End::Lost(e.to_string()),
            };
            // A panicking instance's socket just goes away, without a close.
            drop(ws);
            match end {
                End::Stopped => return,
                End::Lost(why) => {
                    counters.undocked(false);
                    self.event(format_args!("disconnected: {why}"));
                    self.say(&format!(
                        "[ uplink ] Connection lost ({why}), re-authenticating"
                    ));
                    self.fail_over();
                }
                End::HeartbeatLost => {
                    counters.undocked(true);
                    self.event(format_args!("heartbeat lost"));
                    self.say("[ uplink ] No pong from the hangar, re-authenticating");
                    self.fail_over();
                }
                End::Updated { ack, started } => {
                    counters.undocked(false);
                    if !self.live_update(ack, started).await {
                        return;
                    }
                }
                End::Panicked => {
                    counters.undocked(false);
                    self.event(format_args!("panicked; rebooting"));
                    let url = &self.hangar().url;
                    let log = wire::panic_log(&shared.profile, url, &self.id, self.uptime_ms());
                    self.reboot();
                    self.pending_panic = Some(log);
                    if !self.sleep(REBOOT).await {
                        return;
                    }
                }
            }
        }
    }

    /// The hangar URL the instance is on (or about to try).
    fn hangar(&self) -> &Hangar {
        &self.shared.hangars[self.hangar]
    }

    /// After a failed attempt or a lost dock, the next attempt goes to the
    /// next URL: with one hangar down, its instances dock on the others.
    fn fail_over(&mut self) {
        let n = self.shared.hangars.len();
        let next = target::next_url(self.hangar, n);
        if next != self.hangar {
            self.event(format_args!(
                "next attempt on URL {next} ({})",
                self.shared.hangars[next].url
            ));
        }
        self.hangar = next;
    }

    fn endpoint<'a>(&self, shared: &'a Shared) -> Endpoint<'a> {
        let hangar = &shared.hangars[self.hangar];
        Endpoint {
            addrs: &hangar.addrs,
            source: self.source,
            tls: shared.tls.as_ref().filter(|_| hangar.tls),
        }
    }

    async fn auth(&mut self) -> Option<Result<Authed, LinkError>> {
        let shared = self.shared.clone();
        let request = wire::auth_request(
            &shared.hangars[self.hangar].authority,
            &self.id,
            &shared.profile.token,
            self.token.as_deref(),
        );
        self.traffic.connections += 1;
        let r = step(&shared.stop, conn::auth(&self.endpoint(&shared), &request)).await;
        if let Some(Ok(a)) = &r {
            self.token = Some(a.token.clone());
        }
        r
    }

    async fn dock(&mut self, authed: Authed) -> Option<Result<WsStream<Conn>, LinkError>> {
        let shared = self.shared.clone();
        if authed.kept.is_none() {
            self.traffic.connections += 1;
        }
        let nonce = self.random();
        let end = self.endpoint(&shared);
        let authority = &shared.hangars[self.hangar].authority;
        let dock = conn::dock(&end, authority, &authed.token, authed.kept, nonce);
        step(&shared.stop, dock).await
    }

    /// Waits after a failure; false if the run stopped meanwhile.
    async fn back_off(&mut self) -> bool {
        self.failures = (self.failures + 1).min(6);
        let wait = wire::backoff(self.failures);
        self.say(&format!(
            "[ uplink ] Retry auth in {} seconds...",
            wait.as_secs()
        ));
        self.sleep(wait).await
    }

    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.shared.stop.cancelled() => false,
            _ = sleep(d) => true,
        }
    }

    /// The hot swap after an acknowledged UPDATE; false if the run stopped.
    async fn live_update(&mut self, ack: String, started: Instant) -> bool {
        if self.shared.quirks.no_return {
            self.event(format_args!(
                "updated to {ack}; not coming back (--no-return)"
            ));
            self.shared.stop.cancelled().await;
            return false;
        }
        let swap = Duration::from_millis(50 + self.random() % 151);
        if !self.sleep(swap).await {
            return false;
        }
        if self.shared.quirks.update_fails {
            self.event(format_args!("update to {ack} failed (--update-fails)"));
            self.say("[ uplink ] Live update failed, resuming the running binary");
        } else {
            let took = started.elapsed();
            self.event(format_args!("updated to {ack} in {} ms", took.as_millis()));
            self.binary = Some(ack);
            self.update_ns = Some(took.as_nanos().min(u64::MAX as u128) as u64);
            self.traffic.updates += 1;
            self.say(&format!(
                "[ uplink ] Resumed after live update in {} ms",
                took.as_millis()
            ));
        }
        // The new kernel kept the session token, and re-auths at once.
        true
    }

    /// A fresh boot after a panic: nothing of the old one is kept.
    fn reboot(&mut self) {
        let now = Instant::now();
        self.booted = now;
        self.token = None;
        self.binary = None;
        self.update_ns = None;
        self.failures = 0;
        let url = &self.shared.hangars[self.hangar].url;
        self.offline_log = wire::boot_log(&self.shared.profile, url, &self.id).into_bytes();
        self.log_seq = 0;
        self.log_next = now + self.shared.log_every.unwrap_or_default();
        self.traffic = Traffic::default();
    }

    /// One docked session: the after-dock sequence, then answering the
    /// hangar and sending STATS and LOG lines until the socket ends.
    async fn converse(&mut self, ws: &mut WsStream<Conn>) -> Result<End, LinkError> {
        let shared = self.shared.clone();
        self.greet(ws).await?;
        if self.will_panic {
            self.will_panic = false;
            return Ok(if self.sleep(PANIC_AFTER).await {
                End::Panicked
            } else {
                End::Stopped
            });
        }
        let mut stats = shared.stats_every.map(|every| {
            let mut i = interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let log_timer = sleep_until(self.log_next);
        tokio::pin!(log_timer);
        let mut heard = Instant::now();
        let mut pinging = false;
        let mut missed = 0;
        let heartbeat = sleep_until(heard + QUIET);
        tokio::pin!(heartbeat);
        let mut assembler = Assembler::new(MAX_TRANSPORT as u32);
        loop {
            tokio::select! {
                _ = shared.stop.cancelled() => {
                    let _ = timeout(CLOSE_TIMEOUT, ws.close(1001, "going away")).await;
                    return Ok(End::Stopped);
                }
                frame = ws.read_frame() => {
                    let frame = match frame {
                        Err(WsError::Closed) => return Ok(End::Lost("the hangar closed the connection".into())),
                        other => other?,
                    };
                    self.traffic.frames_rx += 1;
                    self.traffic.bytes_rx += frame.payload.len() as u64;
                    shared.counters.received();
                    // Anything from the hangar shows it is alive.
                    heard = Instant::now();
                    pinging = false;
                    missed = 0;
                    match frame.opcode {
                        OpCode::Ping => self.send_ws(ws, OpCode::Pong, &frame.payload).await?,
                        OpCode::Pong => {}
                        OpCode::Close => {
                            let _ = timeout(CLOSE_TIMEOUT, ws.close(1000, "")).await;
                            return Ok(End::Lost("closed by the hangar".into()));
                        }
                        OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                            for t in assembler.push(&frame.payload)? {
                                match t.code {
                                    Code::Update => return self.take_update(ws, t.payload).await,
                                    Code::Stats => {
                                        shared.counters.stats_requested();
                                        self.send_stats(ws).await?;
                                    }
                                    // The instance acts on UPDATE and STATS only; the rest is logged.
                                    other => {
                                        let line = format!(
                                            "[ uplink ] Unsupported transport code {}, ignored\n",
                                            other.as_u8()
                                        );
                                        self.send(ws, Code::Log, line.as_bytes()).await?;
                                    }
                                }
                            }
                        }
                    }
                }
                _ = tick(&mut stats) => self.send_stats(ws).await?,
                _ = &mut log_timer, if shared.log_every.is_some() => {
                    let lines = self.due_log_lines(Instant::now());
                    if !lines.is_empty() {
                        self.send(ws, Code::Log, lines.as_bytes()).await?;
                    }
                    log_timer.as_mut().reset(self.log_next);
                }
                _ = &mut heartbeat => {
                    let now = Instant::now();
                    if !pinging && now < heard + QUIET {
                        heartbeat.as_mut().reset(heard + QUIET);
                        continue;
                    }
                    if pinging {
                        missed += 1;
                        if missed >= MISSED_PONGS {
                            let _ = timeout(CLOSE_TIMEOUT, ws.close(1001, "no pong")).await;
                            return Ok(End::HeartbeatLost);
                        }
                    }
                    pinging = true;
                    self.send_ws(ws, OpCode::Ping, b"").await?;
                    heartbeat.as_mut().reset(now + PONG_TIMEOUT);
                }
            }
        }
    }

    /// After docking, in this order: the offline LOG (if any), IDENT,
    /// UPLINK, PANIC (after a crashed boot), STATS (if sent periodically).
    async fn greet(&mut self, ws: &mut WsStream<Conn>) -> Result<(), LinkError> {
        let shared = self.shared.clone();
        self.catch_up_log(Instant::now());
        self.say("[ uplink ] Dock established");
        let log = std::mem::take(&mut self.offline_log);
        self.send(ws, Code::Log, &log).await?;
        let ident = wire::ident(
            &shared.profile,
            &IdentFacts {
                id: &self.id,
                index: self.index,
                binary: self.binary.as_deref(),
                update_time_taken: self.update_ns,
            },
        );
        self.send(ws, Code::Ident, &ident).await?;
        let echo = wire::uplink_echo(&shared.profile, &shared.hangars[self.hangar].url);
        self.send(ws, Code::Uplink, &echo).await?;
        if let Some(text) = self.pending_panic.take() {
            if let Err(e) = self.send(ws, Code::Panic, text.as_bytes()).await {
                // Not delivered: the next boot's dock tries again.
                self.pending_panic = Some(text);
                return Err(e);
            }
            shared.counters.panicked();
        }
        if shared.stats_every.is_some() {
            self.send_stats(ws).await?;
        }
        Ok(())
    }

    /// UPDATE: acknowledge with the payload's SHA-1 and close for the swap.
    async fn take_update(
        &mut self,
        ws: &mut WsStream<Conn>,
        image: Vec<u8>,
    ) -> Result<End, LinkError> {
        let started = Instant::now();
        let ack = if self.shared.quirks.bad_ack {
            wire::wrong_sha1_hex(&image)
        } else {
            wire::sha1_hex(&image)
        };
        let size = image.len();
        drop(image);
        self.event(format_args!("UPDATE of {size} bytes; acknowledging {ack}"));
        self.say(&format!(
            "[ uplink ] Update received - {size} bytes, SHA-1 {ack}"
        ));
        self.send(ws, Code::Update, ack.as_bytes()).await?;
        self.shared.counters.updated();
        let _ = timeout(CLOSE_TIMEOUT, ws.close(1000, "live update")).await;
        Ok(End::Updated { ack, started })
    }

    async fn send_stats(&mut self, ws: &mut WsStream<Conn>) -> Result<(), LinkError> {
        let stats = wire::stats(&StatsFacts {
            monotonic_ms: self.uptime_ms(),
            rtc_ms: unix_ms(),
            traffic: self.traffic,
        });
        self.send(ws, Code::Stats, &stats).await
    }

    /// One transport as one TEXT message holding binary bytes, as the
    /// instance sends them. An empty LOG is not sent.
    async fn send(
        &mut self,
        ws: &mut WsStream<Conn>,
        code: Code,
        payload: &[u8],
    ) -> Result<(), LinkError> {
        if code == Code::Log && payload.is_empty() {
            return Ok(());
        }
        self.send_ws(ws, OpCode::Text, &encode(code, payload)).await
    }

    async fn send_ws(
        &mut self,
        ws: &mut WsStream<Conn>,
        op: OpCode,
        bytes: &[u8],
    ) -> Result<(), LinkError> {
        match timeout(SEND_TIMEOUT, ws.send(op, bytes)).await {
            Ok(sent) => sent?,
            Err(_) => return Err(LinkError::Stuck),
        }
        self.traffic.frames_tx += 1;
        self.traffic.bytes_tx += bytes.len() as u64;
        self.shared.counters.sent();
        Ok(())
    }

    /// A line of the instance's stdout while it cannot be sent at once.
    fn say(&mut self, line: &str) {
        self.offline_log.extend_from_slice(line.as_bytes());
        self.offline_log.push(b'\n');
        let over = self.offline_log.len().saturating_sub(OFFLINE_LOG_CAP);
        self.offline_log.drain(..over);
    }

    /// The `--log-ms` lines due by `now` (none if they are off).
    fn due_log_lines(&mut self, now: Instant) -> String {
        let mut out = String::new();
        let Some(every) = self.shared.log_every else {
            return out;
        };
        if now < self.log_next {
            return out;
        }
        let behind = ((now - self.log_next).as_nanos() / every.as_nanos().max(1)) as u64;
        if behind > MAX_CATCH_UP {
            let skip = behind - MAX_CATCH_UP;
            self.log_seq += skip;
            self.log_next += Duration::from_nanos((every.as_nanos() as u64).saturating_mul(skip));
        }
        while self.log_next <= now {
            let at = (self.log_next - self.booted).as_millis() as u64;
            out.push_str(&wire::log_line(
                &self.shared.profile.service,
                self.log_seq,
                at,
            ));
            self.log_seq += 1;
            self.log_next += every;
        }
        out
    }

    /// Lines that came due while offline go to the offline log.
    fn catch_up_log(&mut self, now: Instant) {
        let lines = self.due_log_lines(now);
        if !lines.is_empty() {
            self.say(lines.trim_end_matches('\n'));
        }
    }

    fn uptime_ms(&self) -> u64 {
        self.booted.elapsed().as_millis() as u64
    }

    /// xorshift: jitter and WebSocket key fallback, not secrets.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn event(&self, what: std::fmt::Arguments<'_>) {
        if self.shared.verbose {
            eprintln!("sim: instance {} ({}): {what}", self.index, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            profile: Profile {
                token: "t".into(),
                version: "v".into(),
                service: "Starbase".into(),
                tag: None,
                send_stats_ms: 0,
                verify: false,
            },
            hangars: vec![Hangar {
                url: "http://127.0.0.1:9".into(),
                authority: "127.0.0.1:9".into(),
                addrs: vec!["127.0.0.1:9".parse().unwrap()],
                tls: false,
            }],
            tls: None,
            sources: None,
            seed: "s".into(),
            fixed_id: None,
            stats_every: None,
            log_every: Some(Duration::from_millis(100)),
            quirks: Quirks::default(),
            verbose: false,
            counters: Counters::new(1),
            stop: CancellationToken::new(),
        })
    }

    #[test]
    fn an_instance_task_stays_small() {
        // 20,000 of these live for the whole run.
        let task = Instance::new(shared(), 0, 0).run();
        let size = std::mem::size_of_val(&task);
        eprintln!("instance task: {size} bytes");
        assert!(size < 4096, "{size} bytes");
    }

    #[test]
    fn offline_lines_are_capped_and_caught_up() {
        let mut i = Instance::new(shared(), 0, 0);
        let boot = i.offline_log.len();
        assert!(boot > 0 && boot < OFFLINE_LOG_CAP);
        let start = i.booted;
        i.catch_up_log(start + Duration::from_millis(350));
        let text = String::from_utf8(i.offline_log.clone()).unwrap();
        assert!(text.ends_with("tick 2: uptime 0.300 s\n"), "{text}");
        // A long time offline: only the newest lines, within the cap.
        let later = start + Duration::from_millis(3_600_350);
        i.catch_up_log(later);
        assert!(i.offline_log.len() <= OFFLINE_LOG_CAP);
        assert_eq!(i.log_seq, 36_003, "ticks 0..=36002 are due by 3600.35 s");
        let text = String::from_utf8(i.offline_log.clone()).unwrap();
        assert!(text.ends_with("tick 36002: uptime 3600.300 s\n"), "{text}");
        assert!(i.due_log_lines(later).is_empty(), "nothing more is due");
    }
}
