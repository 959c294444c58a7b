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
    let (start, rx) = state.events.subscribe(last);
    let first: Vec<Event> = match start {
        Start::Replay(records) => records.iter().map(|r| sse(r)).collect(),
        Start::Resync => vec![resync()],
    };
    let closed = state.events.closed();
    let live = futures_util::stream::unfold(rx, move |mut rx| {
        let closed = closed.clone();
        async move {
            let received = tokio::select! {
                _ = closed.cancelled() => return None,
                received = rx.recv() => received,
            };
            match received {
                Ok(record) => Some((sse(&record), rx)),
                // It fell behind: what it shows is stale; it goes on from
                // the present.
                Err(RecvError::Lagged(_)) => Some((resync(), rx)),
                Err(RecvError::Closed) => None,
            }
        }
    });
    let stream = futures_util::stream::iter(first).chain(live).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
