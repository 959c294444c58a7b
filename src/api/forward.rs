//! Requests only another host can answer, sent on to it: what needs the
//! dock of an instance that host's hangar holds (its log, stats, history,
//! a deploy or an upgrade) or its pod when that host launched it (its
//! console, stop, start, restart, delete: `instances.launched_on` says
//! which), and the cancel of a job that host runs (the cancel
//! flag is there). A job's log is not sent on here: a build waiting in the
//! fleet's queue has no host yet, and its follower must move to whichever
//! host takes it, so the follower itself reads it from that host
//! (`hosts::job_log`, through the same `Peer`). The user
//! is authenticated here; the other host serves the request as its own on
//! the fleet secret (`auth.rs`), and never forwards it again. The user's
//! credentials stay here. Which host answers is `hosts::route`'s call.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::hosts::peer::Peer;
use crate::hosts::route;

/// Marks a request another host sent (with the fleet secret): it is
/// answered here, whatever this host would say of who holds what.
#[derive(Debug, Clone, Copy)]
pub struct FromPeer;

/// What a path asks about, if only its holder may answer it.
#[derive(Debug, PartialEq, Eq)]
enum Subject<'a> {
    /// `pod`: what the host whose pod runs it answers, when it was launched.
    Instance {
        id: &'a str,
        pod: bool,
    },
    Job(&'a str),
}

/// The instance routes that need its dock.
const DOCK: &[&str] = &["logs", "stats", "history", "deploy", "upgrade"];
/// The instance routes that need its pod, when jetpack launched it.
const POD: &[&str] = &["console", "stop", "start", "restart"];

fn subject<'a>(method: &Method, path: &'a str) -> Option<Subject<'a>> {
    let mut parts = path.strip_prefix("/v1/")?.split('/');
    let (kind, id, verb) = (parts.next()?, parts.next()?, parts.next());
    match (kind, verb) {
        ("instances", Some(verb)) if DOCK.contains(&verb) => {
            Some(Subject::Instance { id, pod: false })
        }
        ("instances", Some(verb)) if POD.contains(&verb) => {
            Some(Subject::Instance { id, pod: true })
        }
        ("jobs", None) if method == Method::DELETE => Some(Subject::Job(id)),
        ("instances", None) if method == Method::DELETE => {
            Some(Subject::Instance { id, pod: true })
        }
        _ => None,
    }
}

pub async fn to_holder(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.extensions().get::<FromPeer>().is_some() {
        return next.run(req).await;
    }
    let Some(subject) = subject(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let (reference, pod) = match subject {
        Subject::Instance { id, pod } => (id.to_string(), Some(pod)),
        Subject::Job(r) => (r.to_string(), None),
    };
    let decided = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || match pod {
            None => route::for_job(&state.hosts, &state.jobs, &reference),
            Some(pod) => route::for_instance(&state.hosts, &state.fleet, &reference, pod),
        })
        .await
    };
    match decided {
        Ok(Ok(Some(peer))) => forward(&state, &peer, req).await,
        // Not held elsewhere, or not found: the handler says so itself.
        Ok(Ok(None)) => next.run(req).await,
        Ok(Err(e)) => ApiError::internal(e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

async fn forward(state: &AppState, peer: &Peer, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    for h in [header::AUTHORIZATION, header::COOKIE, header::CONNECTION] {
        parts.headers.remove(h);
    }
    parts.headers.remove("x-csrf-token");
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = match path.parse() {
        Ok(uri) => uri,
        Err(_) => return ApiError::internal("a request path that is no URI").into_response(),
    };
    let sent = peer
        .send(
            state.hosts.secret(),
            state.hosts.name(),
            Request::from_parts(parts, body),
        )
        .await;
    match sent {
        Ok(answer) => answer.map(axum::body::Body::new).into_response(),
        Err(e) => ApiError::new(StatusCode::BAD_GATEWAY, "host_unreachable", e.to_string())
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_needs_the_holder_is_a_subject() {
        let get = |p| subject(&Method::GET, p);
        assert_eq!(
            get("/v1/instances/abc/logs"),
            Some(Subject::Instance {
                id: "abc",
                pod: false
            })
        );
        assert_eq!(
            subject(&Method::POST, "/v1/instances/edge/deploy/0123"),
            Some(Subject::Instance {
                id: "edge",
                pod: false
            })
        );
        assert_eq!(
            subject(&Method::DELETE, "/v1/jobs/1d9b"),
            Some(Subject::Job("1d9b"))
        );
        assert_eq!(
            subject(&Method::DELETE, "/v1/instances/abc"),
            Some(Subject::Instance {
                id: "abc",
                pod: true
            })
        );
        for here in [
            "/v1/instances",
            "/v1/instances/abc",
            "/v1/instances/abc/panics",
            "/v1/jobs/1d9b",
            // Followed by hosts::job_log, wherever the job comes to run.
            "/v1/jobs/1d9b/log",
            "/v1/jobs/1d9b/log/x",
            "/v2/instances/abc/logs",
        ] {
            assert_eq!(get(here), None, "{here}");
        }
    }
}
