//! The connection gate: at most N connections at once per source address
//! and in total. A connection holds a permit while it lives; one over
//! either cap is closed right after accept, before any TLS or HTTP work,
//! and counted. A gate may evict: when the total is reached, a newcomer
//! takes the place of the oldest connection that is not serving a request
//! (still in its handshake, idle, or trickling a head), as nginx reuses
//! idle connections, so that idle clients cannot shut out working ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Occasional;

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds its most connections.
    Total,
    /// The source address holds its most connections.
    PerAddress,
}

pub struct ConnGate {
    what: &'static str,
    max_total: usize,
    max_per_ip: usize,
    evicts: bool,
    open: Mutex<Open>,
    refused: AtomicU64,
    evicted: AtomicU64,
    warn: Occasional,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Every open connection, by permit number (only for an evicting gate).
    entries: HashMap<u64, Entry>,
    next: u64,
}

struct Entry {
    ip: IpAddr,
    since: Instant,
    busy: Arc<AtomicBool>,
    close: CancellationToken,
}

/// A place at the gate; given back when dropped.
pub struct ConnPermit {
    gate: Arc<ConnGate>,
    id: u64,
    ip: IpAddr,
    busy: Arc<AtomicBool>,
    close: CancellationToken,
}

impl ConnPermit {
    /// Marks the connection as serving a request (not evictable) or not.
    pub fn busy_flag(&self) -> Arc<AtomicBool> {
        self.busy.clone()
    }

    /// Cancelled when the gate evicts this connection.
    pub fn evicted(&self) -> CancellationToken {
        self.close.clone()
    }
}

impl Open {
    fn release(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Closes the oldest connection that serves no request; whether any.
    fn evict_one(&mut self) -> bool {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| !e.busy.load(Ordering::Relaxed))
            .min_by_key(|(_, e)| e.since)
            .map(|(id, _)| *id);
        let Some(entry) = oldest.and_then(|id| self.entries.remove(&id)) else {
            return false;
        };
        entry.close.cancel();
        self.release(entry.ip);
        true
    }
}

impl ConnGate {
    /// A gate for the listener `what` (named in log lines); `evicts`:
    /// whether a newcomer may take an idle connection's place.
    pub fn new(
        what: &'static str,
        max_total: usize,
        max_per_ip: usize,
        evicts: bool,
    ) -> Arc<ConnGate> {
        Arc::new(ConnGate {
            what,
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            evicts,
            open: Mutex::new(Open::default()),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            warn: Occasional::new(Duration::from_secs(10)),
        })
    }

    /// Lets a connection from `ip` in, or says why not (and counts it).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let verdict = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
            let full = open.total >= self.max_total;
            if from_ip >= self.max_per_ip {
                Err(Refusal::PerAddress)
            } else if full && !(self.evicts && open.evict_one()) {
                Err(Refusal::Total)
            } else {
                if full {
                    let evicted = self.evicted.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(quiet) = self.warn.tick() {
                        tracing::warn!(
                            "{}: {} connections open, the most allowed: closed the oldest idle one for a connection from {ip} ({quiet} more refused or closed since the last line; {evicted} closed in all)",
                            self.what,
                            self.max_total
                        );
                    }
                }
                let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
                open.total += 1;
                open.per_ip.insert(ip, from_ip + 1);
                open.next += 1;
                let id = open.next;
                let busy = Arc::new(AtomicBool::new(false));
                let close = CancellationToken::new();
                if self.evicts {
                    open.entries.insert(
                        id,
                        Entry {
                            ip,
                            since: Instant::now(),
                            busy: busy.clone(),
                            close: close.clone(),
                        },
                    );
                }
                Ok((id, busy, close))
            }
        };
        match verdict {
            Ok((id, busy, close)) => Ok(ConnPermit {
                gate: self.clone(),
                id,
                ip,
                busy,
                close,
            }),
            Err(why) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(quiet) = self.warn.tick() {
                    tracing::warn!(
                        "{}: refused a connection from {ip}: {} ({quiet} more refused since the last line; {} refused in all)",
                        self.what,
                        match why {
                            Refusal::Total => format!("{} connections open, the most allowed", self.max_total),
                            Refusal::PerAddress => format!("{} connections open from that address, the most allowed", self.max_per_ip),
                        },
                        self.refused()
                    );
                }
                Err(why)
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Idle connections closed to make room since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The listener's name, as log lines give it.
    pub fn name(&self) -> &'static str {
        self.what
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    pub fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        // An evicted connection gave its place back when it was evicted.
        let evicted = self.gate.evicts && open.entries.remove(&self.id).is_none();
        if !evicted {
            open.release(self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total_and_gives_places_back() {
        let gate = ConnGate::new("test", 3, 2, false);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::PerAddress));
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refusal::Total));
        assert_eq!((gate.open(), gate.refused()), (3, 2));
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _b2 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::Total));
        assert_eq!(gate.refused(), 3);
    }

    #[test]
    fn an_address_whose_connections_all_closed_is_forgotten() {
        let gate = ConnGate::new("test", 10, 10, true);
        let permits: Vec<_> = (0..5u8)
            .map(|i| gate.admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        drop(permits);
        let open = gate.open.lock().unwrap();
        assert!(open.per_ip.is_empty() && open.entries.is_empty());
    }

    #[test]
    fn a_full_evicting_gate_closes_its_oldest_idle_connection_for_a_newcomer() {
        let gate = ConnGate::new("test", 3, 3, true);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let working = gate.admit(a).unwrap();
        working.busy_flag().store(true, Ordering::Relaxed);
        let idle_old = gate.admit(a).unwrap();
        let idle_new = gate.admit(a).unwrap();
        let newcomer = gate.admit(b).unwrap();
        assert!(idle_old.evicted().is_cancelled());
        assert!(!idle_new.evicted().is_cancelled() && !working.evicted().is_cancelled());
        assert_eq!((gate.open(), gate.evicted(), gate.refused()), (3, 1, 0));
        // The evicted connection ends later; its place is not given twice.
        drop(idle_old);
        assert_eq!(gate.open(), 3);
        // When every connection works, a newcomer is refused.
        idle_new.busy_flag().store(true, Ordering::Relaxed);
        newcomer.busy_flag().store(true, Ordering::Relaxed);
        assert_eq!(gate.admit(b).err(), Some(Refusal::Total));
        drop((working, idle_new, newcomer));
        assert_eq!(gate.open(), 0);
    }
}
