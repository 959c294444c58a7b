//! Bases fetched from another host of the fleet when a job placed here
//! needs one this host lacks (a builder's base): its export (a `zfs send`
//! stream or the dir driver's tar, in jetpack's envelope with the payload's
//! sha256) from the first up host that has it, imported here under the
//! same id. One fetch at a time: two builds that need the same base wait
//! for the first to bring it.

use std::sync::{Arc, Mutex};

use super::blobs::BodyReader;
use super::Hosts;
use crate::build::queue::BaseSource;
use crate::jobs::{JobContext, WorkError};
use crate::names::BaseId;
use crate::runtime::Host;
use crate::store::BaseState;

pub struct PeerBases {
    pub hosts: Arc<Hosts>,
    pub host: Arc<Host>,
    pub runtime: tokio::runtime::Handle,
    pub fetching: Mutex<()>,
}

impl PeerBases {
    fn have(&self, id: &BaseId) -> bool {
        self.host
            .base(id.as_str())
            .is_ok_and(|b| b.state == BaseState::Ready)
    }
}

impl BaseSource for PeerBases {
    fn ensure(&self, id: &BaseId, job: &JobContext) -> Result<(), WorkError> {
        if self.have(id) {
            return Ok(());
        }
        let _one = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if self.have(id) {
            return Ok(());
        }
        let mut tried = Vec::new();
        for peer in self.hosts.peers()? {
            let req = hyper::Request::get(format!("/v1/bases/{id}/export"))
                .body(axum::body::Body::empty())?;
            let answer =
                match self
                    .runtime
                    .block_on(peer.send(self.hosts.secret(), self.hosts.name(), req))
                {
                    Ok(a) if a.status() == hyper::StatusCode::OK => a,
                    Ok(a) => {
                        tried.push(format!("{}: {}", peer.name, a.status()));
                        continue;
                    }
                    Err(e) => {
                        tried.push(e.to_string());
                        continue;
                    }
                };
            job.log(&format!(
                "base {id} is not here: importing it from host {}",
                peer.name
            ));
            let mut reader = BodyReader::new(self.runtime.clone(), answer.into_body());
            let imported = self.host.import_export(&mut reader, &mut |_| {})?;
            job.log(&format!(
                "base {} ({}) imported from host {}",
                imported.base.name, imported.base.id, peer.name
            ));
            return Ok(());
        }
        Err(format!(
            "base {id} is on no host that answers ({})",
            if tried.is_empty() {
                "no other host is up".to_string()
            } else {
                tried.join("; ")
            }
        )
        .into())
    }
}
