//! OS images across the hosts of a fleet. An OS image is a tree in a
//! dataset of the host that made it; when another host is asked for its
//! files (its file server, a machine booting through a load balancer), it
//! copies the dataset first from the maker: the datasets driver's stream
//! (`zfs send`, or the dir driver's framed tar), read from the maker's API
//! (`GET /v1/osimages/{name}/{version}/export`) and received here under
//! the same dataset name. Both streams end with a mark of their own, so a
//! cut transfer leaves nothing; TLS keeps the bytes as sent. Copies whose
//! OS image was deleted (on any host) go at this host's next start.

use std::collections::HashSet;
use std::io::Write;

use super::{BootFiles, BootFilesError, OsImageRow, OsImageState};
use crate::runtime::datasets::DatasetError;

impl BootFiles {
    /// Makes sure this host has `row`'s tree, copying it from the host
    /// that made it when not. What is known to be here is remembered, so
    /// that serving a file asks the datasets driver nothing. The rest runs
    /// under one lock: a dataset being received (ZFS shows it before it is
    /// whole) is never taken for a copy, and a second request for the same
    /// OS image waits for the first and finds it there.
    pub(super) fn copy_here(&self, row: &OsImageRow) -> Result<(), BootFilesError> {
        let known = || {
            self.osimages_here
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(row.dataset.as_str())
        };
        let remember = || {
            self.osimages_here
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(row.dataset.as_str().to_string())
        };
        if known() {
            return Ok(());
        }
        let _one = self.copying.lock().unwrap_or_else(|p| p.into_inner());
        let datasets = self.host.datasets();
        if known() || datasets.exists(&row.dataset)? {
            remember();
            return Ok(());
        }
        let not_here = || BootFilesError::NotFound {
            what: "copy of the OS image",
            name: format!("{} {}", row.name, row.version),
        };
        let maker = self
            .made_on(row)
            .filter(|h| h != self.catalog.host())
            .ok_or_else(not_here)?;
        let what = format!("OS image {} {}", row.name, row.version);
        let api_path = format!(
            "/v1/osimages/{}/{}/export?stream={}",
            row.name,
            row.version,
            datasets.stream_kind()
        );
        let mut stream = self.catalog.fetch_from(&maker, &api_path, &what)?;
        // `receive` leaves nothing behind when the stream breaks off.
        datasets.receive(&row.dataset, &mut stream)?;
        remember();
        tracing::info!("{what} copied from host {maker}");
        Ok(())
    }

    /// Writes a ready OS image's tree as this host's datasets driver
    /// streams it, for another host's `copy_here`. Refused before the
    /// first byte when this host has no copy or the asker's driver reads
    /// other streams.
    pub fn export_osimage(
        &self,
        name: &str,
        version: &str,
        stream: &str,
    ) -> Result<impl FnOnce(&mut dyn Write) -> Result<(), BootFilesError>, BootFilesError> {
        let row = self.osimage(name, version)?;
        let datasets = self.host.datasets();
        if row.state != OsImageState::Ready || !datasets.exists(&row.dataset)? {
            return Err(BootFilesError::NotFound {
                what: "OS image on this host",
                name: format!("{name} {version}"),
            });
        }
        if stream != datasets.stream_kind() {
            return Err(BootFilesError::Invalid(format!(
                "this host's OS images stream as {:?}, not {stream:?}: hosts of one fleet need \
                 datasets drivers of one kind to copy OS images",
                datasets.stream_kind()
            )));
        }
        let host = self.host.clone();
        Ok(move |out: &mut dyn Write| Ok(host.datasets().send(&row.dataset, out)?))
    }

    /// The host whose job made `row` (its job's host).
    pub(super) fn made_on(&self, row: &OsImageRow) -> Option<String> {
        let job = row.job_id.as_deref()?;
        self.jobs.get(job).ok()?.host
    }

    /// At start: removes the OS image datasets that no row names any more
    /// (copies of OS images deleted through another host). Rows are read
    /// after the datasets, so an OS image made meanwhile is kept: its row
    /// comes before its dataset.
    pub(super) fn sweep_copies(&self) -> Result<usize, BootFilesError> {
        let prefix = format!("{}/", super::OSIMAGES);
        let datasets = self.host.datasets();
        let present: Vec<String> = datasets
            .list()?
            .into_iter()
            .map(|d| d.name)
            .filter(|n| n.starts_with(&prefix) && !n[prefix.len()..].contains('/'))
            .collect();
        let named: HashSet<String> = self
            .osimages()?
            .into_iter()
            .map(|r| r.dataset.as_str().to_string())
            .collect();
        let mut swept = 0;
        for name in present.iter().filter(|n| !named.contains(*n)) {
            let dataset = crate::names::DatasetName::new(name)?;
            match datasets.destroy(&dataset) {
                Ok(()) | Err(DatasetError::NotFound(_)) => swept += 1,
                Err(e) => tracing::warn!("a copy of a deleted OS image stays: {dataset}: {e}"),
            }
        }
        if swept > 0 {
            tracing::info!("removed {swept} OS image dataset(s) whose OS image was deleted");
        }
        Ok(swept)
    }
}
