//! The MDS's figures in a scrape: asked of the MDS process over its
//! control socket (it keeps them; pods never see a metrics port), with a
//! short wait so that a stuck MDS cannot hold a scrape.

use std::path::Path;
use std::time::Duration;

use super::snapshot::{text, Family, Kind, Snapshot, Value};
use crate::mds::control::{ask, Answer, Request};

/// The longest a scrape waits for the MDS.
const WAIT: Duration = Duration::from_millis(250);

/// Adds `jetpack_mds_up` and, when the MDS at `socket` answers, its
/// requests and refusals. `socket` is None when no MDS is configured.
pub fn read(socket: Option<&Path>, out: &mut Snapshot) {
    let figures = socket.and_then(|s| match ask(s, &Request::Figures, WAIT) {
        Ok(Answer::Figures(f)) => Some(f),
        // An MDS from before `figures`, or one that is down.
        Ok(_) | Err(_) => None,
    });
    out.add(Family::single(
        "jetpack_mds_up",
        "1 when the metadata service answered this scrape on its control socket",
        Kind::Gauge,
        Value::Int(u64::from(figures.is_some())),
    ));
    let Some(figures) = figures else { return };
    let mut requests = Family::new(
        "jetpack_mds_requests",
        "Requests the metadata service answered for pods, by endpoint and status code",
        Kind::Counter,
    );
    for a in figures.answered {
        requests.push(
            vec![
                ("endpoint", text(&a.endpoint)),
                ("code", text(&a.code.to_string())),
            ],
            Value::Int(a.count),
        );
    }
    out.add(requests);
    let mut refusals = Family::new(
        "jetpack_mds_refusals",
        "Requests the metadata service refused (403) before reading them, by reason",
        Kind::Counter,
    );
    for r in figures.refused {
        refusals.push(vec![("reason", text(&r.reason))], Value::Int(r.count));
    }
    out.add(refusals);
}
