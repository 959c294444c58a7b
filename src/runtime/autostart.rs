//! Pods marked `--autostart`: started detached, with their own command,
//! when the host boots (`rc.d/jetpack_pods`, `jetpack pod autostart`) and
//! when `jetpack serve` starts; stopped at shutdown. Pods do not depend on
//! one another, so the order is simply the order they were made in, and
//! one that fails to start does not keep the others from starting.

use super::{Host, Pod, RuntimeError};

/// What became of one pod.
pub type Outcome = (Pod, Result<(), RuntimeError>);

impl Host {
    /// Starts every autostart pod that is not running.
    pub fn autostart_pods(&self) -> Result<Vec<Outcome>, RuntimeError> {
        let pods = self.pods()?;
        Ok(pods
            .into_iter()
            .filter(|p| p.row.policy.autostart && p.row.state.can_start())
            .map(|p| {
                let ran = self.run_pod_detached(&p, None).map(drop);
                (p, ran)
            })
            .collect())
    }

    /// Stops every autostart pod that runs (newest first, the reverse of
    /// their start).
    pub fn autostop_pods(&self) -> Result<Vec<Outcome>, RuntimeError> {
        let pods = self.pods()?;
        Ok(pods
            .into_iter()
            .rev()
            .filter(|p| p.row.policy.autostart && p.row.state.can_stop())
            .map(|p| {
                let stopped = self.kill_pod(&p);
                (p, stopped)
            })
            .collect())
    }
}
