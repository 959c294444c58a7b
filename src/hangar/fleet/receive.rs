//! What the fleet hears from and says to docked instances: auth and dock,
//! undock, every transport received (LOG into its ring, STATS and IDENT
//! checked and kept, UPLINK echoes, panics, UPDATE acks), and transports
//! queued to a session (UPDATE, a STATS request). Nothing here blocks: a
//! session calls it between frames.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::StatsSample;
use super::{lock, now_ms, rfc3339_ms, Fleet, FleetError, Live, Outgoing, SessionHandle, Status};
use crate::hangar::frame::{encode, Code, Transport};
use crate::hangar::token::InstanceId;
use crate::store;
use crate::store::instances::{InstanceWrite, PanicRow};

impl Fleet {
    /// An instance authenticated with the token of uplink `uplink_id`.
    pub fn connecting(&self, id: &InstanceId, uplink_id: &str) {
        let live = self.get_or_insert(id);
        let mut live = lock(&live);
        let before = live.status;
        live.status = live.status.on_auth();
        live.uplink_id = Some(uplink_id.to_string());
        if live.status != before {
            self.announce(id, &live);
        }
    }

    /// A dock is open: returns its generation. A previous session of the
    /// same instance (it re-authed before we noticed the old one die) is
    /// told to close.
    pub fn docked(&self, id: &InstanceId, remote: SocketAddr, tx: mpsc::Sender<Outgoing>) -> u64 {
        let now = store::now();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let live = self.get_or_insert(id);
        let mut live = lock(&live);
        if let Some(old) = live.session.take() {
            let _ = old.tx.try_send(Outgoing::Close("replaced by a newer dock"));
        }
        live.status = Status::Connected;
        live.remote = Some(remote);
        live.last_seen = now;
        live.session = Some(SessionHandle { generation, tx });
        live.host = Some(self.me.clone());
        live.elsewhere = None;
        live.event(&self.limits, "docked", remote.to_string());
        self.announce(id, &live);
        self.writer.write(InstanceWrite::Docked {
            id: id.to_string(),
            uplink_id: live.uplink_id.clone(),
            host: Some(self.me.to_string()),
            at: now,
        });
        generation
    }

    /// A dock ended (closed, heartbeat lost, replaced, refused).
    pub fn undocked(&self, id: &InstanceId, generation: u64, why: &str) {
        let Some(live) = self.get(id) else {
            return;
        };
        let mut live = lock(&live);
        if live.session_generation() != Some(generation) {
            return;
        }
        live.session = None;
        live.status = Status::Disconnected;
        live.event(&self.limits, "disconnected", why.to_string());
        self.announce(id, &live);
        self.dock_clocks.forget(id);
        self.writer.write(InstanceWrite::Undocked {
            id: id.to_string(),
            host: self.me.to_string(),
        });
    }

    /// Records a transport from a docked instance. Never blocks.
    pub fn received(&self, id: &InstanceId, t: Transport) {
        let Some(live) = self.get(id) else {
            return;
        };
        let mut live = lock(&live);
        let now = store::now();
        live.last_seen = now;
        match t.code {
            Code::Log => {
                live.log_total += t.payload.len() as u64;
                let cap = self.limits.log_bytes;
                let bytes = &t.payload[t.payload.len().saturating_sub(cap)..];
                let held = live.log.len();
                let overflow = (held + bytes.len()).saturating_sub(cap);
                live.log.drain(..overflow.min(held));
                live.log.extend(bytes);
            }
            Code::Stats => {
                let text = match std::str::from_utf8(&t.payload) {
                    Ok(text)
                        if serde_json::from_str::<Vec<serde::de::IgnoredAny>>(text).is_ok() =>
                    {
                        text
                    }
                    _ => {
                        self.malformed(&mut live, id, "bad-stats", "STATS is not a JSON array");
                        return;
                    }
                };
                let sample = StatsSample {
                    at_ms: now_ms(),
                    json: text.into(),
                };
                // A bounded try_send: the reporter, if any, never holds us.
                crate::metrics::influx::stats(id, &live, sample.at_ms, text);
                if let Some(old) = live.stats.replace(sample) {
                    if self.limits.stats_history > 0 {
                        if live.stats_history.len() >= self.limits.stats_history {
                            live.stats_history.pop_front();
                        }
                        live.stats_history.push_back(old);
                    }
                }
                live.stats_seq += 1;
            }
            Code::Ident => {
                let ident = match serde_json::from_slice(&t.payload) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => {
                        self.malformed(&mut live, id, "bad-ident", "IDENT is not a JSON object");
                        return;
                    }
                };
                live.ident = Some(ident);
                let binary = live.binary().map(str::to_string);
                if let Some(b) = &binary {
                    live.image_id = Some(b.clone());
                }
                live.ident_seq += 1;
                let detail = match (live.ident_str("version"), &binary) {
                    (Some(v), Some(b)) => format!("{v}, binary {b}"),
                    (Some(v), None) => v.to_string(),
                    (None, _) => String::new(),
                };
                live.event(&self.limits, "ident", detail);
                self.writer.write(InstanceWrite::Ident {
                    id: id.to_string(),
                    ident: String::from_utf8_lossy(&t.payload).into_owned(),
                    image_id: binary,
                    at: now,
                });
            }
            Code::Uplink => match serde_json::from_slice::<serde_json::Value>(&t.payload) {
                Ok(v @ serde_json::Value::Object(_)) => {
                    live.uplink = Some(v);
                    self.writer.write(InstanceWrite::Uplink {
                        id: id.to_string(),
                        uplink: String::from_utf8_lossy(&t.payload).into_owned(),
                    });
                }
                _ => {
                    self.malformed(&mut live, id, "bad-uplink", "UPLINK is not a JSON object");
                }
            },
            Code::Panic => {
                let panic_id = format!("panic_{}.txt", rfc3339_ms(now_ms()));
                live.panicked = true;
                live.event(&self.limits, "panicked", panic_id.clone());
                self.announce(id, &live);
                if let Some(events) = self.events.get() {
                    events.panic(id.as_str(), &panic_id);
                }
                tracing::warn!(instance = %id, "instance reports a panic: {panic_id}");
                self.writer.write(InstanceWrite::Panic(PanicRow {
                    id: panic_id,
                    instance_id: id.to_string(),
                    text: String::from_utf8_lossy(&t.payload).into_owned(),
                    created_at: now,
                }));
            }
            Code::Error => {
                let text = String::from_utf8_lossy(&t.payload)
                    .chars()
                    .take(200)
                    .collect();
                live.event(&self.limits, "error", text);
            }
            Code::Update => {
                let ack: String = String::from_utf8_lossy(&t.payload)
                    .chars()
                    .take(80)
                    .collect();
                live.event(&self.limits, "update-ack", ack.clone());
                live.update_ack = Some(ack);
            }
            Code::AppData | Code::Unknown(_) => {
                live.event(
                    &self.limits,
                    "ignored",
                    format!("transport code {}", t.code.as_u8()),
                );
                tracing::debug!(instance = %id, "ignored transport code {}", t.code.as_u8());
            }
        }
    }

    /// A transport that is not what the spec says it holds: noted on the
    /// instance and logged, then ignored (the session goes on).
    fn malformed(&self, live: &mut Live, id: &InstanceId, event: &'static str, what: &str) {
        live.event(&self.limits, event, what.to_string());
        tracing::warn!(instance = %id, "{what}; ignored");
    }

    /// Queues a transport to a docked instance.
    pub fn send(&self, id: &InstanceId, bytes: Vec<u8>) -> Result<(), FleetError> {
        let live = self
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.to_string()))?;
        let tx = lock(&live)
            .session
            .as_ref()
            .map(|s| s.tx.clone())
            .ok_or_else(|| FleetError::NotDocked(id.to_string()))?;
        let figures = &crate::metrics::figures().hangar;
        let code = bytes.first().copied();
        let len = bytes.len();
        tx.try_send(Outgoing::Transport(bytes))
            .map(|()| figures.sent(code, len))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => FleetError::Busy(id.to_string()),
                mpsc::error::TrySendError::Closed(_) => FleetError::NotDocked(id.to_string()),
            })
    }

    /// Asks a docked instance for STATS now (an empty STATS transport).
    /// Returns the count of STATS received before the request, for
    /// `stats_after`.
    pub fn request_stats(&self, id: &InstanceId) -> Result<u64, FleetError> {
        let before = self.with(id, |l| l.stats_seq)?;
        self.send(id, encode(Code::Stats, b""))?;
        Ok(before)
    }

    /// The latest STATS if one arrived after the `before` of `request_stats`.
    pub fn stats_after(
        &self,
        id: &InstanceId,
        before: u64,
    ) -> Result<Option<StatsSample>, FleetError> {
        self.with(id, |l| l.stats.clone().filter(|_| l.stats_seq > before))
    }

    /// Ends every session (the server stops).
    pub fn close_all(&self) {
        self.each(|_, live| {
            if let Some(s) = &live.session {
                let _ = s.tx.try_send(Outgoing::Close("the server is stopping"));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::Catalog;
    use crate::hangar::fleet::Limits;

    fn fleet() -> (tempfile::TempDir, Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        let limits = Limits {
            log_bytes: 8,
            stats_history: 2,
            events: 3,
        };
        (dir, Fleet::load(catalog, limits).unwrap())
    }

    fn t(code: Code, payload: &[u8]) -> Transport {
        Transport {
            code,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn logs_stats_and_events_stay_bounded() {
        let (_dir, fleet) = fleet();
        let id = InstanceId::new("ab").unwrap();
        fleet.connecting(&id, "u");
        let (tx, _rx) = mpsc::channel(1);
        let g = fleet.docked(&id, "127.0.0.1:1".parse().unwrap(), tx);
        fleet.received(&id, t(Code::Log, b"0123456"));
        fleet.received(&id, t(Code::Log, b"789\xff"));
        for i in 0..5 {
            fleet.received(
                &id,
                t(
                    Code::Stats,
                    format!(r#"[{{"name":"n","value":{i}}}]"#).as_bytes(),
                ),
            );
        }
        fleet.received(&id, t(Code::Stats, b"not json"));
        fleet
            .with(&id, |l| {
                assert_eq!(l.log_total, 11);
                assert_eq!(l.log.iter().copied().collect::<Vec<_>>(), b"3456789\xff");
                assert_eq!(l.log_since(9), (b"9\xff".to_vec(), 11));
                assert_eq!(l.log_since(0).0.len(), 8);
                assert!(l.stats.as_ref().unwrap().json.contains("4"));
                assert_eq!(l.stats_history.len(), 2);
                assert_eq!(l.stats_seq, 5);
                let events: Vec<&str> = l.events.iter().map(|e| e.event).collect();
                assert_eq!(events, ["docked", "bad-stats"]);
            })
            .unwrap();
        fleet.undocked(&id, g + 1, "stale generation: ignored");
        assert_eq!(fleet.with(&id, |l| l.status).unwrap(), Status::Connected);
        fleet.undocked(&id, g, "closed");
        fleet.received(&id, t(Code::Unknown(3), b""));
        fleet
            .with(&id, |l| {
                assert_eq!(l.status, Status::Disconnected);
                // Bounded at 3: the oldest went.
                let events: Vec<&str> = l.events.iter().map(|e| e.event).collect();
                assert_eq!(events, ["bad-stats", "disconnected", "ignored"]);
            })
            .unwrap();
    }
}
