//! Announces the pod changes no API handler made: a detached pod's command
//! ending by itself (its supervisor, another process, records that), the
//! `jetpack pod` commands run on this host, a pod found dead after its
//! cell vanished. The store is what every process writes, so it is polled
//! once a second and what differs from what was last announced goes out
//! as events; the handlers announce their own changes at once, and
//! `Events` says each state once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::events::Events;
use crate::runtime::Host;

const EVERY: Duration = Duration::from_secs(1);

/// Every pod's id and state as the runtime sees them now (a pod whose cell
/// is gone is dead). None when the store cannot be read this time.
fn states(host: &Host) -> Option<HashMap<String, String>> {
    match host.pods() {
        Ok(pods) => Some(
            pods.into_iter()
                .map(|p| (p.row.id.to_string(), p.row.state.to_string()))
                .collect(),
        ),
        Err(e) => {
            tracing::debug!("watching pods: {e}");
            None
        }
    }
}

pub async fn watch(
    host: Arc<Host>,
    events: Arc<Events>,
    stop: tokio_util::sync::CancellationToken,
) {
    let first = {
        let host = host.clone();
        tokio::task::spawn_blocking(move || states(&host)).await
    };
    if let Ok(Some(now)) = first {
        events.pods_known(now);
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let host = host.clone();
        let Ok(Some(now)) = tokio::task::spawn_blocking(move || states(&host)).await else {
            continue;
        };
        let before = events.pods_announced();
        for (id, state) in &now {
            events.pod(id, state);
        }
        for id in before.keys().filter(|id| !now.contains_key(*id)) {
            events.pod_removed(id);
        }
    }
}
