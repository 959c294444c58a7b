//! `GET /v1/events`: the server's event stream (`crate::events`) as
//! Server-Sent Events (docs/CONSOLE.md). Each event goes out as the one
//! text the hub serialized for every client.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiQuery, AppState, State};
use crate::events::{Kind, Record, Start};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(stream_events))
}

/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a browser's stream looks whether its session still holds.
const SESSION_RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct EventParams {
    /// Resume after this event id (as the `Last-Event-ID` header does, which wins)
    last_event_id: Option<u64>,
}

fn sse(record: &Record) -> Event {
    Event::default()
        .id(record.id.to_string())
        .event(record.kind.as_str())
        .data(&*record.data)
}

fn resync() -> Event {
    Event::default().event(Kind::Resync.as_str()).data("{}")
}

/// Server-Sent Events: instance status changes and counts, panics, jobs and pods; resumable with `Last-Event-ID`
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams),
    responses((status = 200, content_type = "text/event-stream",
        description = "events `counts`, `instance`, `instance-removed`, `panic`, `job`, `pod`, `pod-removed`, `resync` (docs/CONSOLE.md)")))]
async fn stream_events(
    state: State,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<EventParams>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(p.last_event_id);
    // A browser's stream lasts as long as its session: a removed user's
    // open page must not go on hearing of the fleet.
    let session = match (state.users.clone(), super::session::cookie(&headers)) {
        (Some(users), Some(id)) => Some((users, id.to_string())),
        _ => None,
    };
    let (start, rx) = state.events.subscribe(last);
    let first: Vec<Event> = match start {
        Start::Replay(records) => records.iter().map(|r| sse(r)).collect(),
        Start::Resync => vec![resync()],
    };
    let closed = state.events.closed();
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let live = futures_util::stream::unfold((rx, recheck), move |(mut rx, mut recheck)| {
        let closed = closed.clone();
        let state = state.clone();
        let session = session.clone();
        async move {
            let received = loop {
                tokio::select! {
                    _ = closed.cancelled() => return None,
                    received = rx.recv() => break received,
                    _ = recheck.tick() => {
                        if let Some((users, id)) = &session {
                            state.sessions.check(users, id)?;
                        }
                    }
                }
            };
            let event = match received {
                Ok(record) => sse(&record),
                // It fell behind: what it shows is stale; it goes on from
                // the present.
                Err(RecvError::Lagged(_)) => resync(),
                Err(RecvError::Closed) => return None,
            };
            Some((event, (rx, recheck)))
        }
    });
    let stream = futures_util::stream::iter(first).chain(live).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
