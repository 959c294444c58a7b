//! Where a launch goes when several hosts share the store. Hosts pull
//! work from the queue, so placement is each host's answer to "is this
//! launch mine?": it is when this host is the best seat for it, and any
//! seat takes it once it has waited `GRACE` (the best may be slow to look,
//! or gone since its last heartbeat). The best seat is, among the hosts
//! that are up (not draining, not down), can launch with the hypervisor
//! it needs and have the memory and cpus it asks for, the one with the
//! fewest launched instances of its spread tag,
//! then the fewest launched instances (least loaded), then the first by
//! name, so that every host computes the same answer. A launch pinned to
//! a host (affinity) is that host's as soon as it can make it.

use std::collections::HashMap;
use std::time::Duration;

use super::{HostStatus, HostView};
use crate::launch::queue::Need;
use crate::store::placement::LaunchedCount;

/// How long a launch waits for its best seat before any seat takes it.
pub const GRACE: Duration = Duration::from_secs(10);

/// A host a launch may go to, and what runs there.
#[derive(Debug, Clone, PartialEq)]
struct Seat {
    name: String,
    hypervisors: Vec<String>,
    /// 0: not said (an older host), which fits any launch.
    memory_mib: u64,
    cpus: u32,
    launched: u64,
    by_spread: HashMap<String, u64>,
}

/// The seats of the fleet now.
#[derive(Debug, Default)]
pub struct Board {
    seats: Vec<Seat>,
}

/// What a waiting launch asks of its host.
#[derive(Debug, Clone, Copy)]
pub struct Wants<'a> {
    pub needs: Need<'a>,
    pub spread: Option<&'a str>,
    /// It is pinned to this host.
    pub pinned_here: bool,
    pub waited: Duration,
}

impl Board {
    /// `placed`: (host, spread tag) of each launch a host has taken and
    /// not finished (it counts as launched there already).
    pub fn new(
        hosts: &[HostView],
        counts: &[LaunchedCount],
        placed: &[(String, Option<String>)],
    ) -> Board {
        let mut seats: Vec<Seat> = hosts
            .iter()
            .filter(|h| h.status == HostStatus::Up)
            .map(|h| Seat {
                name: h.row.beat.name.clone(),
                hypervisors: h.row.beat.hypervisors().map(str::to_string).collect(),
                memory_mib: h.row.beat.memory_mib,
                cpus: h.row.beat.cpus,
                launched: 0,
                by_spread: HashMap::new(),
            })
            .filter(|s| !s.hypervisors.is_empty())
            .collect();
        let runs = counts
            .iter()
            .map(|c| (c.host.as_str(), c.spread.as_deref(), c.n))
            .chain(placed.iter().map(|(h, s)| (h.as_str(), s.as_deref(), 1)));
        for (host, spread, n) in runs {
            let Some(seat) = seats.iter_mut().find(|s| s.name == host) else {
                continue;
            };
            seat.launched += n;
            if let Some(tag) = spread {
                *seat.by_spread.entry(tag.to_string()).or_default() += n;
            }
        }
        seats.sort_by(|a, b| a.name.cmp(&b.name));
        Board { seats }
    }

    fn fits<'s>(&'s self, needs: Need<'s>) -> impl Iterator<Item = &'s Seat> + 's {
        self.seats.iter().filter(move |s| s.fits(needs))
    }

    /// The host a launch should go to, if any can make it.
    pub fn best<'s>(&'s self, needs: Need<'s>, spread: Option<&str>) -> Option<&'s str> {
        self.fits(needs)
            .min_by_key(|s| {
                let same = spread.map_or(0, |t| s.by_spread.get(t).copied().unwrap_or(0));
                (same, s.launched)
            })
            .map(|s| s.name.as_str())
    }

    /// Whether host `me` takes a launch that wants `w`.
    pub fn takes(&self, me: &str, w: Wants<'_>) -> bool {
        if !self.fits(w.needs).any(|s| s.name == me) {
            return false;
        }
        w.pinned_here || w.waited >= GRACE || self.best(w.needs, w.spread) == Some(me)
    }
}

impl Seat {
    fn fits(&self, needs: Need<'_>) -> bool {
        let said_and_over =
            |asked: Option<u64>, has: u64| asked.is_some_and(|a| has > 0 && a > has);
        needs
            .hypervisor
            .is_none_or(|n| self.hypervisors.iter().any(|h| h == n))
            && !said_and_over(needs.memory_mib, self.memory_mib)
            && !said_and_over(needs.cpus.map(u64::from), u64::from(self.cpus))
    }
}

impl Board {
    /// Why no seat can take a launch that needs `needs`, pinned to `host`,
    /// if none can.
    pub fn refuse(&self, needs: Need<'_>, host: Option<&str>) -> Option<String> {
        let mut what = needs.hypervisor.unwrap_or("a hypervisor").to_string();
        if let Some(m) = needs.memory_mib {
            what += &format!(", {m} MiB");
        }
        if let Some(c) = needs.cpus {
            what += &format!(", {c} cpu(s)");
        }
        match host {
            Some(name) if !self.fits(needs).any(|s| s.name == name) => Some(format!(
                "host {name} cannot launch with {what} now (it must be up, not draining, \
                 with the hypervisor base imported and that much memory and cpus)"
            )),
            None if self.fits(needs).next().is_none() => Some(format!(
                "no host that is up and not draining can launch with {what}: import the \
                 hypervisor base (launch.base) on one, or ask for less than the largest \
                 host has (GET /v1/hosts: memoryMib, cpus)"
            )),
            _ => None,
        }
    }
}

impl crate::launch::queue::Seats for super::Hosts {
    fn refuse(&self, needs: Need<'_>, host: Option<&str>) -> Result<Option<String>, String> {
        let hosts = self.list_now().map_err(|e| e.to_string())?;
        let counts = self
            .catalog
            .with_store(|s| s.launched_counts())
            .map_err(|e| e.to_string())?;
        Ok(Board::new(&hosts, &counts, &[]).refuse(needs, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hosts::{HostBeat, HostRow, HostState};

    fn host(name: &str, status: HostStatus, launch: &str) -> HostView {
        HostView {
            row: HostRow {
                beat: HostBeat {
                    name: name.into(),
                    api_url: String::new(),
                    hangar_url: String::new(),
                    pool: String::new(),
                    capacity: 1,
                    version: String::new(),
                    instances: 0,
                    pods: 0,
                    started_at: 0,
                    api_pin: String::new(),
                    launch: launch.into(),
                    memory_mib: 8192,
                    cpus: 4,
                },
                state: HostState::Up,
                silent_ms: 0,
            },
            status,
            me: false,
        }
    }

    fn count(host: &str, spread: Option<&str>, n: u64) -> LaunchedCount {
        LaunchedCount {
            host: host.into(),
            spread: spread.map(str::to_string),
            n,
        }
    }

    fn need(hypervisor: Option<&str>) -> Need<'_> {
        Need {
            hypervisor,
            ..Need::default()
        }
    }

    fn wants<'a>(hypervisor: Option<&'a str>, spread: Option<&'a str>) -> Wants<'a> {
        Wants {
            needs: need(hypervisor),
            spread,
            pinned_here: false,
            waited: Duration::ZERO,
        }
    }

    #[test]
    fn the_least_loaded_host_that_can_launch_it_takes_it() {
        let hosts = [
            host("a", HostStatus::Up, "qemu"),
            host("b", HostStatus::Up, "qemu,bhyve"),
            host("c", HostStatus::Up, ""),
            host("d", HostStatus::Draining, "qemu"),
            host("e", HostStatus::Down, "qemu"),
        ];
        let board = Board::new(&hosts, &[count("a", None, 2), count("b", None, 1)], &[]);
        assert_eq!(board.best(need(None), None), Some("b"));
        // A launch b has taken counts: a tie, and the first name wins.
        let board = Board::new(
            &hosts,
            &[count("a", None, 2), count("b", None, 1)],
            &[("b".into(), None)],
        );
        assert_eq!(board.best(need(None), None), Some("a"));
        assert!(board.takes("a", wants(None, None)));
        assert!(!board.takes("b", wants(None, None)));
        // Only b has bhyve; nobody has xen.
        assert_eq!(board.best(need(Some("bhyve")), None), Some("b"));
        assert_eq!(board.best(need(Some("xen")), None), None);
        // c has no hypervisor base; d drains; e is down: never theirs,
        // not even after the grace.
        let late = Wants {
            waited: GRACE,
            ..wants(None, None)
        };
        for other in ["c", "d", "e"] {
            assert!(!board.takes(other, late), "{other}");
        }
        // After the grace any seat that can make it takes it; pinned, at once.
        assert!(board.takes("b", late));
        let pinned = Wants {
            pinned_here: true,
            ..wants(None, None)
        };
        assert!(board.takes("b", pinned));
        assert!(!board.takes("c", pinned));
    }

    #[test]
    fn a_spread_tag_goes_where_it_is_not_yet_before_the_least_loaded() {
        let hosts = [
            host("a", HostStatus::Up, "qemu"),
            host("b", HostStatus::Up, "qemu"),
        ];
        // a runs two, b none; b runs one "web" (launching).
        let board = Board::new(
            &hosts,
            &[count("a", None, 2)],
            &[("b".into(), Some("web".into()))],
        );
        assert_eq!(board.best(need(None), None), Some("b"));
        assert_eq!(board.best(need(None), Some("web")), Some("a"));
        assert_eq!(board.best(need(None), Some("db")), Some("b"));
    }

    #[test]
    fn no_host_is_no_seat() {
        let board = Board::new(&[], &[], &[]);
        assert_eq!(board.best(need(None), None), None);
        assert!(!board.takes("a", wants(None, None)));
        assert!(board.refuse(need(None), None).unwrap().contains("no host"));
    }

    #[test]
    fn a_launch_no_seat_can_take_is_refused() {
        let hosts = [
            host("a", HostStatus::Up, "qemu"),
            host("c", HostStatus::Up, ""),
            host("d", HostStatus::Draining, "qemu"),
        ];
        let board = Board::new(&hosts, &[], &[]);
        assert_eq!(board.refuse(need(None), None), None);
        assert_eq!(board.refuse(need(Some("qemu")), Some("a")), None);
        assert!(board
            .refuse(need(Some("bhyve")), None)
            .unwrap()
            .contains("bhyve"));
        for pinned in ["c", "d", "zz"] {
            let why = board.refuse(need(None), Some(pinned)).unwrap();
            assert!(why.contains(&format!("host {pinned} cannot")), "{why}");
        }
    }

    #[test]
    fn a_launch_is_seated_only_where_its_memory_and_cpus_fit() {
        let mut small = host("a", HostStatus::Up, "qemu");
        (small.row.beat.memory_mib, small.row.beat.cpus) = (1024, 1);
        let mut unsaid = host("o", HostStatus::Up, "qemu");
        (unsaid.row.beat.memory_mib, unsaid.row.beat.cpus) = (0, 0);
        let big = host("b", HostStatus::Up, "qemu");
        let size = |memory_mib, cpus| Need {
            hypervisor: None,
            memory_mib,
            cpus,
        };
        // a is least loaded and first by name, but only b has 2 GiB and 2 cpus.
        let board = Board::new(&[small.clone(), big.clone()], &[count("b", None, 3)], &[]);
        assert_eq!(board.best(size(None, None), None), Some("a"));
        assert_eq!(board.best(size(Some(1024), Some(1)), None), Some("a"));
        assert_eq!(board.best(size(Some(2048), None), None), Some("b"));
        assert_eq!(board.best(size(None, Some(2)), None), Some("b"));
        // Not even after the grace, nor pinned, does a take what it cannot hold.
        let late_pinned = Wants {
            needs: size(Some(2048), None),
            spread: None,
            pinned_here: true,
            waited: GRACE,
        };
        assert!(!board.takes("a", late_pinned));
        assert!(board.takes("b", late_pinned));
        let why = board.refuse(size(Some(2048), None), Some("a")).unwrap();
        assert!(why.contains("2048 MiB"), "{why}");
        let why = board.refuse(size(Some(9000), Some(8)), None).unwrap();
        assert!(why.contains("9000 MiB, 8 cpu(s)"), "{why}");
        // A host that did not say its size (an older jetpack) seats anything.
        let board = Board::new(&[small, unsaid], &[], &[]);
        assert_eq!(board.best(size(Some(9000), Some(8)), None), Some("o"));
    }
}
