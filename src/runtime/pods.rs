//! Pods on this host, the `Host` verbs of their life cycle: create (a
//! clone of a base), start (the cell), stop, remove, and reconcile (what
//! the store says against what runs). Running a process in a pod is
//! `process`; telling the MDS of pods is `mds_link`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::datasets::DatasetError;
use super::jails::{Cell, CellSpec, Device};
use super::limits::{Limits, LimitsError, Usage};
use super::process::resolve_in_root;
use super::undo::Undo;
use super::{Host, Pod, RuntimeError};
use crate::names::{DatasetName, Name, PodId};
use crate::store::{self, BaseRow, BaseState, PodRow, PodState};

/// What a new pod may be given besides its base, name and command.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// Its own environment variables (checked by `env::check`).
    pub env: std::collections::BTreeMap<String, String>,
    /// Its volumes, `SOURCE:TARGET[:ro]` (`volumes::parse_spec`).
    pub volumes: Vec<String>,
    /// Its resource limits (`limits::Limits::parse`).
    pub limits: super::limits::Limits,
    /// Its restart policy, autostart and published ports.
    pub policy: store::PodPolicy,
}

impl PodOptions {
    /// Nothing asked beyond a base, a name and a command.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.volumes.is_empty()
            && self.policy == store::PodPolicy::default()
            && self.limits.is_empty()
    }
}

impl Host {
    /// Makes the pod network's host side exist; its address, which the
    /// MDS binds.
    pub fn prepare_pod_network(&self) -> Result<Ipv4Addr, RuntimeError> {
        self.jails
            .prepare_network(&self.config.jail_interface, self.config.ip4_range)?;
        Ok(self.config.ip4_range.host())
    }

    fn pod_view(&self, row: PodRow, bases: &[BaseRow]) -> Pod {
        let base_name = bases
            .iter()
            .find(|b| b.id == row.base_id)
            .map(|b| b.name.to_string())
            .unwrap_or_else(|| row.base_id.short().to_string());
        let root = self.datasets.path(&DatasetName::pod(&row.id));
        Pod {
            row,
            base_name,
            root,
            usage: None,
        }
    }

    /// A pod the store says is running whose cell is gone was lost (host
    /// reboot, holder killed): it is dead now. A running cell is found again.
    fn reconcile(&self, mut row: PodRow) -> Result<PodRow, RuntimeError> {
        if row.state.is_active() {
            let alive = row
                .cell
                .as_ref()
                .is_some_and(|c| self.jails.is_running(&Cell(c.clone())));
            if !alive {
                // What the lost cell leaves (its cgroup, its mounts) goes
                // with it; a failure is no reason to misreport the pod.
                if let Some(c) = &row.cell {
                    if let Err(e) = self.jails.destroy(&Cell(c.clone()), Duration::ZERO) {
                        tracing::warn!("cleaning up after lost cell {c}: {e}");
                    }
                }
                self.store().pod_finished(&row.id, PodState::Dead, None)?;
                if let Some(fresh) = self.store().pod(&row.id)? {
                    row = fresh;
                }
            }
        }
        Ok(row)
    }

    /// (state, count) of this host's pods as stored, without looking at
    /// their cells: what the metrics and the heartbeat report.
    pub fn pod_counts(&self) -> Result<Vec<(String, u64)>, RuntimeError> {
        Ok(self.store().pod_counts()?)
    }

    pub fn pods(&self) -> Result<Vec<Pod>, RuntimeError> {
        let rows = self.store().pods()?;
        let bases = self.store().bases()?;
        rows.into_iter()
            .map(|r| Ok(self.pod_view(self.reconcile(r)?, &bases)))
            .collect()
    }

    pub fn pod(&self, reference: &str) -> Result<Pod, RuntimeError> {
        let mut found = self.store().find_pods(reference)?;
        let row = match found.len() {
            0 => return Err(RuntimeError::NoSuchPod(reference.to_string())),
            1 => found.remove(0),
            count => {
                return Err(RuntimeError::Ambiguous {
                    kind: "pod",
                    reference: reference.to_string(),
                    count,
                })
            }
        };
        let bases = self.store().bases()?;
        Ok(self.pod_view(self.reconcile(row)?, &bases))
    }

    /// Clones a base into a new pod (not started).
    pub fn create_pod(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
    ) -> Result<Pod, RuntimeError> {
        self.create_pod_with(base, name, command, &PodOptions::default())
    }

    /// `create_pod` with the pod's own environment and volumes, checked
    /// before anything is made.
    pub fn create_pod_with(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Pod, RuntimeError> {
        super::env::check(&options.env)?;
        self.check_limits(&options.limits)?;
        let volumes = self.pod_volumes(&options.volumes)?;
        let base = self.base(base)?;
        if base.state != BaseState::Ready {
            return Err(RuntimeError::BaseNotReady(base.name.to_string()));
        }
        let name = name.map(|n| Name::new("pod name", n)).transpose()?;
        let command = if command.is_empty() {
            vec!["/bin/sh".to_string()]
        } else {
            command
        };
        let mut row = PodRow {
            id: PodId::random(),
            name,
            base_id: base.id.clone(),
            command,
            address: None,
            state: PodState::Creating,
            cell: None,
            exit_code: None,
            created_at: store::now(),
            started_at: None,
            finished_at: None,
            env: options.env.clone(),
            volumes,
            limits: options.limits.clone(),
            exit_reason: None,
            policy: options.policy.clone(),
            restarts: 0,
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
        // Pushed before the clone: a clone that fails half way may leave
        // its dataset.
        undo.push(format!("dataset {dataset}"), || {
            if self.datasets.exists(&dataset)? {
                self.datasets.destroy(&dataset)?;
            }
            Ok(())
        });
        let made = self
            .datasets
            .clone_sealed(&DatasetName::base(&base.id), &dataset)
            .and_then(|_| match row.limits.disk {
                Some(bytes) => self.datasets.set_quota(&dataset, bytes),
                None => Ok(()),
            })
            .map_err(RuntimeError::from)
            .and_then(|_| Ok(self.store().set_pod_state(&row.id, PodState::Created)?));
        undo.check(made)?;
        undo.commit();
        row.state = PodState::Created;
        let bases = [base];
        Ok(self.pod_view(row, &bases))
    }

    /// Starts an instance pod's cell: a pod given `devices` (the
    /// hypervisor's), and on FreeBSD the launch ruleset that unhides them.
    pub fn start_instance_pod(&self, pod: &Pod, devices: &[Device]) -> Result<Cell, RuntimeError> {
        let mut spec = self.cell_spec(pod);
        spec.devices = devices.to_vec();
        spec.devfs_ruleset = self.config.launch.devfs_ruleset;
        self.start_cell(pod, &spec)
    }

    /// Gives an instance pod's running cell its instance network.
    pub fn attach_instance_net(
        &self,
        pod: &Pod,
        cell: &Cell,
        net: &super::jails::instance_net::InstanceNet,
    ) -> Result<(), RuntimeError> {
        Ok(self
            .jails
            .attach_instance_net(cell, &self.cell_spec(pod), net)?)
    }

    fn cell_spec(&self, pod: &Pod) -> CellSpec {
        CellSpec {
            name: format!("{}{}", self.config.jail_name_prefix, pod.row.id),
            hostname: pod.label(),
            root: pod.root.clone(),
            address: pod.row.address.unwrap_or(Ipv4Addr::UNSPECIFIED),
            network: self.config.ip4_range,
            interface: self.config.jail_interface.clone(),
            securelevel: self.config.jail_securelevel,
            devfs_ruleset: self.config.jail_devfs_ruleset,
            // Only FreeBSD acts on it: a pod start on Linux reads nothing more.
            linux_abi: cfg!(target_os = "freebsd") && holds_linux_programs(&pod.root),
            params: self.config.jail_params.clone(),
            devices: Vec::new(),
            volumes: self.cell_volumes(&pod.row.volumes),
            limits: pod.row.limits.clone(),
            vnet: pod.row.policy.vnet,
        }
    }

    /// Refuses limits this host cannot enforce, before anything is made.
    fn check_limits(&self, limits: &Limits) -> Result<(), RuntimeError> {
        limits.check()?;
        if limits.disk.is_some() && !self.datasets.has_quotas() {
            return Err(LimitsError::NoDiskQuota {
                driver: self.datasets.driver(),
            }
            .into());
        }
        #[cfg(target_os = "linux")]
        if limits.needs_backend() {
            super::limits::cgroups::Cgroups::host()?;
        }
        Ok(())
    }

    /// The pod with what it uses against its limits: the cell's figures
    /// while it runs, its clone's space when it has a disk limit.
    pub fn with_usage(&self, mut pod: Pod) -> Pod {
        let limits = &pod.row.limits;
        let running = pod.row.state.is_active();
        let mut usage = match (&pod.row.cell, running) {
            (Some(c), true) => self.jails.usage(&Cell(c.clone())).unwrap_or_default(),
            _ => Usage::default(),
        };
        if limits.disk.is_some() {
            usage.disk_used = self.datasets.usage(&DatasetName::pod(&pod.row.id)).ok();
            usage.disk_quota = limits.disk;
        }
        if running {
            usage.memory_max = limits.memory;
            usage.pids_max = limits.process_cap();
            usage.cpus_max = limits.cpus;
        }
        if usage != Usage::default() {
            pod.usage = Some(usage);
        }
        pod
    }

    /// After a pod's process ended, before its cell goes: whether its
    /// memory limit had the kernel kill a process since `seen` kills (a
    /// restarted command's cell counts on). Recorded as the pod's exit
    /// reason; returned for the pod's log.
    pub(super) fn note_oom(&self, pod: &Pod, cell: &Cell, seen: &mut u64) -> Option<String> {
        // Only a memory limit makes the kernel kill for memory in a pod.
        pod.row.limits.memory?;
        let usage = self.jails.usage(cell)?;
        if usage.oom_kills <= *seen {
            return None;
        }
        *seen = usage.oom_kills;
        let reason = super::limits::oom_reason(&pod.row.limits);
        if let Err(e) = self.store().set_pod_exit_reason(&pod.row.id, &reason) {
            tracing::warn!("pod {}: recording {reason:?}: {e}", pod.label());
        }
        Some(reason)
    }

    /// Starts a pod's cell (its jail).
    pub fn start_pod(&self, pod: &Pod) -> Result<Cell, RuntimeError> {
        self.start_cell(pod, &self.cell_spec(pod))
    }

    fn start_cell(&self, pod: &Pod, spec: &CellSpec) -> Result<Cell, RuntimeError> {
        if !pod.row.state.can_start() {
            return Err(RuntimeError::PodCannotStart(pod.label(), pod.row.state));
        }
        let began = std::time::Instant::now();
        let figures = &crate::metrics::figures().pods;
        let cell = self
            .make_cell(pod, spec)
            .inspect_err(|_| figures.start_failed())?;
        figures.started(began.elapsed().as_secs_f64());
        if let Some(record) = self.mds_record(pod) {
            self.tell_mds(crate::mds::control::Request::Insert { pod: record });
        }
        Ok(cell)
    }

    /// The cell made and recorded as the pod's, or neither.
    fn make_cell(&self, pod: &Pod, spec: &CellSpec) -> Result<Cell, RuntimeError> {
        let cell = self.jails.create(spec)?;
        let mut undo = Undo::new();
        undo.push(format!("cell {}", cell.0), || {
            Ok(self.jails.destroy(&cell, Duration::ZERO)?)
        });
        undo.check(
            self.store()
                .pod_started(&pod.row.id, &cell.0)
                .map_err(RuntimeError::from),
        )?;
        undo.commit();
        Ok(cell)
    }

    /// The cell processes are run in (exec, run).
    pub(super) fn running_cell(&self, pod: &Pod) -> Result<Cell, RuntimeError> {
        self.cell_when(pod, PodState::can_exec)
    }

    /// The pod's cell, when its state allows what is asked (`allowed`, one
    /// of `PodState`'s predicates); else the pod is not running.
    fn cell_when(&self, pod: &Pod, allowed: fn(PodState) -> bool) -> Result<Cell, RuntimeError> {
        match (&pod.row.cell, allowed(pod.row.state)) {
            (Some(c), true) => Ok(Cell(c.clone())),
            _ => Err(RuntimeError::PodNotRunning {
                pod: pod.label(),
                state: pod.row.state,
            }),
        }
    }

    pub(crate) fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.config.jail_stop_timeout)
    }

    /// Stops a running pod: SIGTERM to its processes, SIGKILL after
    /// `jail.stop.timeout`, then its cell goes.
    pub fn kill_pod(&self, pod: &Pod) -> Result<(), RuntimeError> {
        let cell = self.cell_when(pod, PodState::can_stop)?;
        self.store()
            .set_pod_state(&pod.row.id, PodState::Stopping)?;
        self.jails.destroy(&cell, self.stop_grace())?;
        self.store()
            .pod_finished(&pod.row.id, PodState::Exited, None)?;
        Ok(())
    }

    /// Removes a pod and its clone; a running pod only with `force`.
    pub fn remove_pod(&self, pod: &Pod, force: bool) -> Result<(), RuntimeError> {
        if !pod.row.state.can_remove() {
            if !force {
                return Err(RuntimeError::PodRunning(pod.label()));
            }
            self.kill_pod(pod)?;
        }
        self.store()
            .set_pod_state(&pod.row.id, PodState::Removing)?;
        match self.datasets.destroy(&DatasetName::pod(&pod.row.id)) {
            Ok(()) | Err(DatasetError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store().delete_pod(&pod.row.id)?;
        if let Some(address) = pod.row.address {
            self.tell_mds(crate::mds::control::Request::Remove { address });
        }
        self.annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(pod.row.id.as_str());
        Ok(())
    }

    /// Cells with this host's name prefix that no pod in the store owns
    /// (left by a crash between start and record).
    pub fn orphan_cells(&self) -> Result<Vec<String>, RuntimeError> {
        let known: Vec<String> = self
            .store()
            .pods()?
            .into_iter()
            .filter_map(|p| p.cell)
            .collect();
        Ok(self
            .jails
            .list(&self.config.jail_name_prefix)?
            .into_iter()
            .filter(|(_, cell)| !known.contains(&cell.0))
            .map(|(name, _)| name)
            .collect())
    }
}

/// Whether the programs of `root` are Linux ones, judged by its /bin/sh
/// (followed inside the root): an ELF not branded FreeBSD in its OS/ABI
/// byte. A root without one counts as native.
fn holds_linux_programs(root: &Path) -> bool {
    use std::io::Read;
    let Some(sh) = resolve_in_root(root, "/bin/sh") else {
        return false;
    };
    let mut head = [0u8; 8];
    std::fs::File::open(sh)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && elf_is_linux(&head)
}

/// From an ELF's first bytes: FreeBSD brands its programs with OS/ABI 9;
/// Linux toolchains leave 0 (System V) or write 3 (GNU/Linux).
fn elf_is_linux(head: &[u8]) -> bool {
    const ELFOSABI_SYSV: u8 = 0;
    const ELFOSABI_LINUX: u8 = 3;
    head.starts_with(b"\x7fELF") && matches!(head.get(7), Some(&(ELFOSABI_SYSV | ELFOSABI_LINUX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_of_linux_programs_is_told_from_a_freebsd_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(!holds_linux_programs(root), "no /bin/sh: native");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        // This host's own shell is a Linux program, followed by a link.
        std::fs::copy("/bin/sh", root.join("bin/dash")).unwrap();
        std::os::unix::fs::symlink("dash", root.join("bin/sh")).unwrap();
        assert!(holds_linux_programs(root));

        let mut freebsd = *b"\x7fELF\x02\x01\x01\x09\0\0\0\0";
        assert!(!elf_is_linux(&freebsd), "branded FreeBSD");
        freebsd[7] = 3;
        assert!(elf_is_linux(&freebsd), "branded GNU/Linux");
        assert!(!elf_is_linux(b"#!/bin/sh\n"), "a script is no verdict");
        assert!(!elf_is_linux(b"\x7fELF"), "too short");
        std::fs::write(root.join("bin/dash"), b"#!/bin/sh\n").unwrap();
        assert!(!holds_linux_programs(root));
    }
}
