//! A pod's own snapshots, the `Host` verbs that keep and restore its tree:
//! snapshot (keep it as it is now, under a name), rollback (put it back;
//! the pod must be stopped), the list, and clone (a new pod from the
//! pod's current state or one of its snapshots). The datasets driver does
//! the work (`Datasets::snapshot` and its siblings); the snapshots go
//! with the pod's dataset when the pod is removed.

use super::datasets::{DatasetError, SnapshotInfo, SEALED};
use super::undo::Undo;
use super::{Host, Pod, RuntimeError};
use crate::names::{DatasetName, Name, NameError, PodId};
use crate::store::{self, PodRow, PodState};

/// A snapshot name as users give it: a `Name`, never the base's seal.
fn snapshot_name(s: &str) -> Result<Name, RuntimeError> {
    let name = Name::new("snapshot name", s)?;
    if name.as_str() == SEALED {
        return Err(NameError::Invalid {
            kind: "snapshot name",
            name: s.to_string(),
            why: "it is reserved for bases",
        }
        .into());
    }
    Ok(name)
}

impl Host {
    /// Keeps the pod's tree as it is now as snapshot `name` (running or
    /// not: a running pod's files are taken as they are at that moment).
    pub fn snapshot_pod(&self, pod: &Pod, name: &str) -> Result<SnapshotInfo, RuntimeError> {
        let snap = snapshot_name(name)?;
        let dataset = DatasetName::pod(&pod.row.id);
        self.datasets.snapshot(&dataset, &snap)?;
        let made = self
            .datasets
            .snapshots(&dataset)?
            .into_iter()
            .find(|s| s.name == snap.as_str());
        Ok(made.unwrap_or(SnapshotInfo {
            name: snap.to_string(),
            created: store::now(),
        }))
    }

    /// Puts a stopped pod's tree back as it was at snapshot `name`.
    pub fn rollback_pod(&self, pod: &Pod, name: &str) -> Result<(), RuntimeError> {
        let snap = snapshot_name(name)?;
        if pod.row.state.is_active() || !pod.row.state.can_remove() {
            return Err(RuntimeError::PodActive {
                pod: pod.label(),
                state: pod.row.state,
                what: "a rollback",
            });
        }
        Ok(self
            .datasets
            .rollback(&DatasetName::pod(&pod.row.id), &snap)?)
    }

    /// The pod's snapshots, oldest first.
    pub fn pod_snapshots(&self, pod: &Pod) -> Result<Vec<SnapshotInfo>, RuntimeError> {
        Ok(self.datasets.snapshots(&DatasetName::pod(&pod.row.id))?)
    }

    /// A new pod named `new_name` (not started) whose tree is `pod`'s
    /// snapshot `snapshot`, or `pod`'s tree as it is now. It has `pod`'s
    /// base, command, environment, volumes, limits and restart policy, an
    /// address of its own, and neither `pod`'s published ports nor its
    /// autostart.
    /// On ZFS the new pod is a clone: `pod` cannot be removed before it.
    pub fn clone_pod(
        &self,
        pod: &Pod,
        new_name: &str,
        snapshot: Option<&str>,
    ) -> Result<Pod, RuntimeError> {
        let name = Name::new("pod name", new_name)?;
        let snap = snapshot.map(snapshot_name).transpose()?;
        let origin = DatasetName::pod(&pod.row.id);
        let mut row = PodRow {
            id: PodId::random(),
            name: Some(name),
            base_id: pod.row.base_id.clone(),
            command: pod.row.command.clone(),
            address: None,
            state: PodState::Creating,
            cell: None,
            exit_code: None,
            created_at: store::now(),
            started_at: None,
            finished_at: None,
            env: pod.row.env.clone(),
            volumes: pod.row.volumes.clone(),
            // Host ports are one pod's, and a copy should not start at
            // boot unasked: the restart policy and VNET come along only.
            policy: store::PodPolicy {
                autostart: false,
                publish: Vec::new(),
                ..pod.row.policy.clone()
            },
            restarts: 0,
            limits: pod.row.limits.clone(),
            exit_reason: None,
        };
        let range = self.config.ip4_range;
        row.address = Some(self.store().insert_pod(
            &row,
            range.pod_addresses(),
            &range.to_string(),
        )?);
        let dataset = DatasetName::pod(&row.id);
        let mut undo = Undo::new();
        undo.push(format!("the row of pod {}", row.id.short()), || {
            Ok(self.store().delete_pod(&row.id)?)
        });
        // The current state is cloned through a snapshot of its own, named
        // for the new pod; it stays only where the clone needs it (ZFS).
        let (snap, made_here) = match snap {
            Some(s) => (s, false),
            None => {
                let s = Name::new("snapshot name", &format!("clone-{}", row.id.short()))?;
                undo.check(
                    self.datasets
                        .snapshot(&origin, &s)
                        .map_err(RuntimeError::from),
                )?;
                (s, true)
            }
        };
        if made_here {
            let s = snap.clone();
            let origin = origin.clone();
            undo.push(format!("snapshot {origin}@{s}"), move || {
                Ok(self.datasets.destroy_snapshot(&origin, &s)?)
            });
        }
        undo.push(format!("dataset {dataset}"), || {
            if self.datasets.exists(&dataset)? {
                self.datasets.destroy(&dataset)?;
            }
            Ok(())
        });
        let made = self
            .datasets
            .clone_snapshot(&origin, &snap, &dataset)
            .and_then(|_| match row.limits.disk {
                Some(bytes) => self.datasets.set_quota(&dataset, bytes),
                None => Ok(()),
            })
            .map_err(RuntimeError::from)
            .and_then(|_| Ok(self.store().set_pod_state(&row.id, PodState::Created)?));
        undo.check(made)?;
        undo.commit();
        if made_here {
            match self.datasets.destroy_snapshot(&origin, &snap) {
                Ok(()) | Err(DatasetError::InUse(_)) => {}
                // Harmless: a snapshot the user can see and remove.
                Err(e) => tracing::warn!("keeping snapshot {origin}@{snap}: {e}"),
            }
        }
        row.state = PodState::Created;
        self.pod(row.id.as_str())
    }
}
