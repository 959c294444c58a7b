//! This process's CPU time, memory and descriptors, read at scrape time:
//! from /proc on Linux; on FreeBSD from getrusage(2), which gives CPU time
//! and the peak (not the current) resident size, and no descriptor count,
//! so those figures are left out there rather than guessed.

use super::snapshot::{Family, Kind, Snapshot, Value};

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

#[cfg(target_os = "linux")]
pub fn read_process() -> Process {
    let mut p = Process::default();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The command name (field 2) may hold spaces and parentheses: the
        // fields after it start after the last ')'.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): utime is field 14, stime 15,
            // num_threads 20, vsize 23, rss 24.
            let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (field(14), field(15)) {
                if ticks > 0 {
                    p.cpu_seconds = Some((u + s) as f64 / ticks as f64);
                }
            }
            p.threads = field(20);
            p.virtual_bytes = field(23);
            if page > 0 {
                p.resident_bytes = field(24).map(|r| r * page as u64);
            }
        }
    }
    p.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    p.max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    p
}

#[cfg(not(target_os = "linux"))]
pub fn read_process() -> Process {
    use nix::sys::resource::{getrlimit, getrusage, Resource, UsageWho};
    let mut p = Process::default();
    if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        p.cpu_seconds = Some(secs(u.user_time()) + secs(u.system_time()));
    }
    // rlim_t is signed on FreeBSD; RLIM_INFINITY (-1 there) is no figure.
    #[allow(clippy::useless_conversion)]
    {
        p.max_fds = getrlimit(Resource::RLIMIT_NOFILE)
            .ok()
            .and_then(|(soft, _)| u64::try_from(soft).ok());
    }
    p
}

/// Adds the process families (Prometheus's own names for them).
pub fn read(started_at: i64, out: &mut Snapshot) {
    let p = read_process();
    let gauge = |out: &mut Snapshot, name, help, v: Option<u64>| {
        if let Some(v) = v {
            out.add(Family::single(name, help, Kind::Gauge, Value::Int(v)));
        }
    };
    if let Some(cpu) = p.cpu_seconds {
        out.add(Family::single(
            "process_cpu_seconds",
            "User and system CPU time of the jetpack server, seconds",
            Kind::Counter,
            Value::Float(cpu),
        ));
    }
    gauge(
        out,
        "process_resident_memory_bytes",
        "Resident memory of the jetpack server, bytes",
        p.resident_bytes,
    );
    gauge(
        out,
        "process_virtual_memory_bytes",
        "Virtual memory of the jetpack server, bytes",
        p.virtual_bytes,
    );
    gauge(
        out,
        "process_open_fds",
        "Open descriptors of the jetpack server",
        p.open_fds,
    );
    gauge(
        out,
        "process_max_fds",
        "The descriptor limit of the jetpack server",
        p.max_fds,
    );
    gauge(
        out,
        "process_threads",
        "Threads of the jetpack server",
        p.threads,
    );
    gauge(
        out,
        "process_start_time_seconds",
        "When the jetpack server started, Unix time",
        Some(started_at.max(0) as u64),
    );
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn this_process_is_read() {
        let p = super::read_process();
        assert!(p.cpu_seconds.is_some());
        assert!(p.resident_bytes.unwrap_or(0) > 0);
        assert!(p.open_fds.unwrap_or(0) >= 3);
        assert!(p.threads.unwrap_or(0) >= 1);
    }
}
