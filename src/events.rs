//! The server's one stream of events (docs/CONSOLE.md): instance status
//! changes and counts, panics, jobs, pods. Producers publish; each event is
//! serialized once and shared by every subscriber, so a client costs a
//! queue slot per event, never work per instance. The last `BACKLOG`
//! events are kept so that a client that reconnects resumes where it left
//! off; one that asks for more than that, or falls `CLIENT_QUEUE` events
//! behind, is told to resync. Nothing here knows HTTP: the API turns
//! subscriptions into Server-Sent Events, the CLI prints them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for clients that reconnect.
pub const BACKLOG: usize = 1024;
/// Events a client may be behind before it must resync.
pub const CLIENT_QUEUE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counts,
    Instance,
    InstanceRemoved,
    Panic,
    Job,
    Pod,
    PodRemoved,
    Resync,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counts => "counts",
            Kind::Instance => "instance",
            Kind::InstanceRemoved => "instance-removed",
            Kind::Panic => "panic",
            Kind::Job => "job",
            Kind::Pod => "pod",
            Kind::PodRemoved => "pod-removed",
            Kind::Resync => "resync",
        }
    }
}

/// One event as every client gets it.
#[derive(Debug)]
pub struct Record {
    /// Grows by one per event; a server starts from its start time in
    /// microseconds, so ids from an earlier run are never taken for
    /// this run's.
    pub id: u64,
    pub kind: Kind,
    /// The JSON data.
    pub data: Box<str>,
}

/// Where a new subscriber starts.
#[derive(Debug)]
pub enum Start {
    /// These first (missed events, or the current counts), then the live
    /// ones.
    Replay(Vec<Arc<Record>>),
    /// What the client missed is gone: it must reload what it shows.
    Resync,
}

pub struct Events {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<Record>>,
    /// Set when an instance changed: the counts may have.
    instances_changed: AtomicBool,
    /// The state last announced per pod: pods are announced by the API's
    /// handlers and by the store's watcher, and a state is said once.
    pods: Mutex<HashMap<String, String>>,
    /// Cancelled when the server stops: streams end instead of holding
    /// the shutdown's drain.
    closed: tokio_util::sync::CancellationToken,
}

struct Ring {
    next: u64,
    recent: VecDeque<Arc<Record>>,
    /// The latest counts, which every new subscriber gets first.
    counts: Option<Arc<Record>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceData<'a> {
    id: &'a str,
    status: &'a str,
    panicked: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PanicData<'a> {
    instance_id: &'a str,
    panic_id: &'a str,
}

#[derive(Serialize)]
struct Removed<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct JobData<'a> {
    id: &'a str,
    kind: &'a str,
    state: &'a str,
    progress: f64,
}

#[derive(Serialize)]
struct PodData<'a> {
    id: &'a str,
    state: &'a str,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        let (tx, _) = broadcast::channel(CLIENT_QUEUE);
        Events {
            ring: Mutex::new(Ring {
                next: start,
                recent: VecDeque::with_capacity(BACKLOG),
                counts: None,
            }),
            tx,
            instances_changed: AtomicBool::new(false),
            pods: Mutex::new(HashMap::new()),
            closed: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `data` as an event of `kind`.
    pub fn publish(&self, kind: Kind, data: &impl Serialize) {
        let Ok(json) = serde_json::to_string(data) else {
            return;
        };
        let mut ring = self.ring();
        let record = Arc::new(Record {
            id: ring.next,
            kind,
            data: json.into_boxed_str(),
        });
        ring.next += 1;
        if ring.recent.len() == BACKLOG {
            ring.recent.pop_front();
        }
        ring.recent.push_back(record.clone());
        if kind == Kind::Counts {
            ring.counts = Some(record.clone());
        }
        // Sent under the lock, so that a subscriber's replay and its live
        // events neither overlap nor leave a gap. No subscriber is fine.
        let _ = self.tx.send(record);
    }

    /// A new subscriber: where it starts and its live events. `last` is the
    /// id of the last event it saw (a reconnecting client's Last-Event-ID).
    pub fn subscribe(&self, last: Option<u64>) -> (Start, broadcast::Receiver<Arc<Record>>) {
        let ring = self.ring();
        let rx = self.tx.subscribe();
        let counts: Vec<Arc<Record>> = ring.counts.iter().cloned().collect();
        let Some(last) = last else {
            return (Start::Replay(counts), rx);
        };
        let oldest = ring.recent.front().map_or(ring.next, |r| r.id);
        if last >= ring.next || last + 1 < oldest {
            return (Start::Resync, rx);
        }
        let mut missed: Vec<Arc<Record>> = ring
            .recent
            .iter()
            .filter(|r| r.id > last)
            .cloned()
            .collect();
        if !missed.iter().any(|r| r.kind == Kind::Counts) {
            missed.extend(counts);
        }
        (Start::Replay(missed), rx)
    }

    /// Ends every subscriber's stream (the server stops).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Cancelled once the stream is closed.
    pub fn closed(&self) -> tokio_util::sync::CancellationToken {
        self.closed.clone()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// An instance's status, panic flag, names or image changed.
    pub fn instance(&self, id: &str, status: &str, panicked: bool) {
        self.instances_changed.store(true, Ordering::Relaxed);
        self.publish(
            Kind::Instance,
            &InstanceData {
                id,
                status,
                panicked,
            },
        );
    }

    pub fn instance_removed(&self, id: &str) {
        self.instances_changed.store(true, Ordering::Relaxed);
        self.publish(Kind::InstanceRemoved, &Removed { id });
    }

    pub fn panic(&self, instance_id: &str, panic_id: &str) {
        self.publish(
            Kind::Panic,
            &PanicData {
                instance_id,
                panic_id,
            },
        );
    }

    pub fn job(&self, id: &str, kind: &str, state: &str, progress: f64) {
        self.publish(
            Kind::Job,
            &JobData {
                id,
                kind,
                state,
                progress,
            },
        );
    }

    /// Announces a pod's state, unless it is the one last announced.
    pub fn pod(&self, id: &str, state: &str) {
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        if pods.get(id).is_some_and(|s| s == state) {
            return;
        }
        pods.insert(id.to_string(), state.to_string());
        self.publish(Kind::Pod, &PodData { id, state });
    }

    /// Announces a pod's removal.
    pub fn pod_removed(&self, id: &str) {
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        pods.remove(id);
        self.publish(Kind::PodRemoved, &Removed { id });
    }

    /// Takes `pods` as already known, without announcing them: the pods
    /// that exist when the server starts.
    pub fn pods_known(&self, pods: impl IntoIterator<Item = (String, String)>) {
        let mut known = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(pods);
    }

    /// The pods announced and not removed, with their states.
    pub fn pods_announced(&self) -> HashMap<String, String> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether an instance changed since the last call: the counts must be
    /// counted again.
    pub fn take_instances_changed(&self) -> bool {
        self.instances_changed.swap(false, Ordering::Relaxed)
    }

    /// The counts as last published, as JSON.
    pub fn counts(&self) -> Option<Arc<Record>> {
        self.ring().counts.clone()
    }
}

/// Publishes the counts that `count` gives whenever an instance changed,
/// at most every `every`: once for all clients, however many instances
/// changed in between. At `stop` it closes every stream.
pub async fn publish_counts<T: Serialize + PartialEq>(
    events: Arc<Events>,
    every: std::time::Duration,
    count: impl Fn() -> T,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut last: Option<T> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                events.close();
                return;
            }
            _ = tick.tick() => {}
        }
        if last.is_some() && !events.take_instances_changed() {
            continue;
        }
        let now = count();
        if last.as_ref() != Some(&now) {
            events.publish(Kind::Counts, &now);
            last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(start: &Start) -> Vec<(u64, Kind)> {
        match start {
            Start::Replay(r) => r.iter().map(|r| (r.id, r.kind)).collect(),
            Start::Resync => panic!("a resync"),
        }
    }

    #[tokio::test]
    async fn subscribers_get_counts_first_then_live_events_serialized_once() {
        let events = Events::new();
        let (start, _) = events.subscribe(None);
        assert!(ids(&start).is_empty(), "no counts yet");
        events.publish(Kind::Counts, &serde_json::json!({"total": 1}));
        events.instance("a", "connected", false);
        let (start, mut rx) = events.subscribe(None);
        let first = ids(&start);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1, Kind::Counts);
        events.instance("a", "disconnected", false);
        let live = rx.recv().await.unwrap();
        assert_eq!(live.kind, Kind::Instance);
        assert_eq!(
            &*live.data,
            r#"{"id":"a","status":"disconnected","panicked":false}"#
        );
        assert_eq!(live.id, first[0].0 + 2);
        assert!(events.take_instances_changed());
        assert!(!events.take_instances_changed());
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed_or_a_resync() {
        let events = Events::new();
        events.publish(Kind::Counts, &serde_json::json!({}));
        let (Start::Replay(c), _) = events.subscribe(None) else {
            panic!()
        };
        let counts_id = c[0].id;
        events.pod("p1", "running");
        events.pod("p2", "running");
        let (start, _) = events.subscribe(Some(counts_id + 1));
        assert_eq!(
            ids(&start),
            vec![(counts_id + 2, Kind::Pod), (counts_id, Kind::Counts)],
            "the missed pod, then the counts"
        );
        let (start, _) = events.subscribe(Some(counts_id + 2));
        assert_eq!(ids(&start), vec![(counts_id, Kind::Counts)]);
        assert!(matches!(
            events.subscribe(Some(counts_id + 50)).0,
            Start::Resync
        ));
        for i in 0..BACKLOG {
            events.pod(&format!("q{i}"), "running");
        }
        assert!(
            matches!(events.subscribe(Some(counts_id + 1)).0, Start::Resync),
            "gone from the backlog"
        );
        assert!(matches!(events.subscribe(Some(0)).0, Start::Resync));
    }

    #[test]
    fn a_pod_state_is_said_once() {
        let events = Events::new();
        let (_, mut rx) = events.subscribe(None);
        events.pod("p1", "running");
        events.pod("p1", "running");
        events.pod("p1", "exited");
        events.pod_removed("p1");
        let mut kinds = Vec::new();
        while let Ok(r) = rx.try_recv() {
            kinds.push((r.kind, r.data.to_string()));
        }
        assert_eq!(
            kinds,
            vec![
                (Kind::Pod, r#"{"id":"p1","state":"running"}"#.to_string()),
                (Kind::Pod, r#"{"id":"p1","state":"exited"}"#.to_string()),
                (Kind::PodRemoved, r#"{"id":"p1"}"#.to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told() {
        let events = Events::new();
        let (_, mut rx) = events.subscribe(None);
        for i in 0..CLIENT_QUEUE + 10 {
            events.pod(&format!("p{i}"), "running");
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
        assert!(rx.recv().await.is_ok(), "then it goes on from the present");
        drop(rx);
        assert_eq!(events.subscribers(), 0, "a gone client is freed");
    }
}
