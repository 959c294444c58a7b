//! The supervisor of a launched instance (`jetpack instance __supervise
//! ID`, detached): it starts the instance pod with the hypervisor's
//! devices, runs the hypervisor in it with the serial console piped into
//! the console log, and when the hypervisor ends asks the restart policy
//! (and what the operator wants now) whether to boot it again, after a
//! backoff. SIGTERM, SIGINT or SIGHUP (`jetpack stop`, a host shutdown)
//! end the cell and the supervisor. The cell lives as long as the
//! supervisor does: a running instance pod always has one.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use super::console::{self, ConsoleLog};
use super::record::{LaunchRecord, IMAGE_IN_POD, RUN_IN_POD};
use super::{io_err, LaunchError};
use crate::hypervisor::qemu::{self, Accel};
use crate::hypervisor::{
    boot, Console, ExitMeaning, Hypervisor, HypervisorKind, LaunchSpec, ProcessExit, Qemu,
};
use crate::runtime::jails::{self, Device, Process};
use crate::runtime::restart::Backoff;
use crate::runtime::{Host, Pod};
use crate::store::launches::Wanted;
use crate::store::PodState;

enum Event {
    Exited(ProcessExit),
    Stop,
}

/// The supervisor process: nobody reads its stderr, so its own failure
/// goes to the console log, where `instance-console` shows it.
pub fn main(host: &Host, instance_id: &str) -> i32 {
    // One malloc arena for the supervisor's few threads, instead of one
    // each: a supervisor per instance, so its resident pages count.
    #[cfg(target_os = "linux")]
    // SAFETY: mallopt sets an allocator tunable; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    match supervise(host, instance_id) {
        Ok(()) => 0,
        Err(e) => {
            let path = console::path(&host.config().data_dir, instance_id);
            if let Ok(mut log) = ConsoleLog::open(path, host.config().launch.console_bytes) {
                let _ = log.note(&format!("supervisor: {e}"));
            }
            1
        }
    }
}

/// Runs the supervisor of `instance_id` until the instance is to stay
/// down. Records its pid on the launch while it runs.
pub fn supervise(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    let signals = SigSet::from_iter([Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]);
    // Blocked in every thread, taken by one (started with the cell): a stop
    // is an event like an exit, and one that comes early waits its turn.
    signals
        .thread_block()
        .map_err(|e| io_err("blocking signals")(e.into()))?;
    let (events, inbox) = mpsc::channel();
    let me = std::process::id() as i32;
    host.store()
        .set_launch_supervisor(instance_id, Some(me), None)?;
    let ran = run(host, instance_id, signals, &events, &inbox);
    let _ = host
        .store()
        .set_launch_supervisor(instance_id, None, Some(me));
    ran
}

fn load(host: &Host, instance_id: &str) -> Result<(LaunchRecord, Wanted), LaunchError> {
    let row = host
        .store()
        .launch(instance_id)?
        .ok_or_else(|| LaunchError::NotLaunched(instance_id.to_string()))?;
    let record = serde_json::from_str(&row.spec).map_err(|e| LaunchError::BadRecord {
        id: instance_id.to_string(),
        why: e.to_string(),
    })?;
    Ok((record, row.wanted))
}

fn run(
    host: &Host,
    instance_id: &str,
    signals: SigSet,
    events: &mpsc::Sender<Event>,
    inbox: &mpsc::Receiver<Event>,
) -> Result<(), LaunchError> {
    let (record, _) = load(host, instance_id)?;
    let mut pod = host.pod(record.pod_id.as_str())?;
    if pod.row.state.can_stop() {
        // A cell left by a supervisor that was killed outright.
        host.kill_pod(&pod)?;
        pod = host.pod(record.pod_id.as_str())?;
    }
    let accel = host
        .config()
        .launch
        .accel
        .unwrap_or_else(|| Accel::choose(qemu::kvm_usable()));
    let mut devices = vec![Device::Tun];
    if accel == Accel::Kvm {
        devices.push(Device::Kvm);
    }
    let log = ConsoleLog::open(
        console::path(&host.config().data_dir, instance_id),
        host.config().launch.console_bytes,
    )
    .map_err(io_err("opening the console log"))?;
    let log = Arc::new(Mutex::new(log));
    if record.hypervisor == HypervisorKind::Bhyve {
        devfs_ruleset(host)?;
    }
    // Before the first thread: a single-threaded supervisor forks the
    // cell's holder without exec, sharing its pages (jails::linux::start).
    trim_heap();
    let cell = host.start_instance_pod(&pod, &devices)?;
    let stopper = events.clone();
    std::thread::spawn(move || {
        if let Ok(signal) = signals.wait() {
            let _ = stopper.send(Event::Stop);
            tracing::info!("{signal}: stopping");
        }
    });
    let pod = host.pod(record.pod_id.as_str())?;
    // Held for the supervisor's life: dropping it ends the forwarding.
    let _published = match network(host, &pod, &cell, &record) {
        Ok(published) => published,
        Err(e) => {
            let _ = host.jails().destroy(&cell, std::time::Duration::ZERO);
            host.store()
                .pod_finished(&pod.row.id, PodState::Exited, None)?;
            return Err(e);
        }
    };
    let boots = Boots {
        host,
        instance_id,
        pod: &pod,
        cell: &cell,
        accel,
        log: &log,
        events,
        inbox,
    };
    // Whatever ends the loop (a stop, the policy, an error), the cell ends.
    let outcome = boots.run();
    let stopped = host.jails().destroy(&cell, host.stop_grace());
    host.store()
        .pod_finished(&pod.row.id, PodState::Exited, None)?;
    stopped.map_err(crate::runtime::RuntimeError::from)?;
    outcome
}

/// The boots of one supervisor's life, in its running cell.
struct Boots<'a> {
    host: &'a Host,
    instance_id: &'a str,
    pod: &'a Pod,
    cell: &'a jails::Cell,
    accel: Accel,
    log: &'a Arc<Mutex<ConsoleLog>>,
    events: &'a mpsc::Sender<Event>,
    inbox: &'a mpsc::Receiver<Event>,
}

impl Boots<'_> {
    fn note(&self, line: String) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let _ = log.note(&line);
    }

    fn step(&self, argv: Vec<String>) -> Result<Option<ProcessExit>, LaunchError> {
        run_once(
            self.host,
            self.cell,
            argv,
            self.log,
            self.events,
            self.inbox,
        )
    }

    /// Boots until a stop, the policy or an error says no more.
    fn run(&self) -> Result<(), LaunchError> {
        let mut backoff = Backoff::new();
        loop {
            // Read again on every start: a deploy may have changed the
            // image, the operator may have asked for a stop.
            let (record, wanted) = load(self.host, self.instance_id)?;
            if wanted == Wanted::Stopped {
                return Ok(());
            }
            let spec = spec_of(self.pod, &record)?;
            let hypervisor = hypervisor_for(self.host, &record, self.accel)?;
            let plan = hypervisor.plan(&spec)?;
            self.note(format!(
                "starting {} ({}) for instance {}",
                hypervisor.name(),
                match (self.accel, self.host.config().launch.accel) {
                    (Accel::Kvm, _) => "KVM",
                    (Accel::Tcg, Some(_)) => "TCG: launch.accel",
                    (Accel::Tcg, None) => "TCG: no usable /dev/kvm",
                },
                self.instance_id
            ));
            write_plan_files(self.pod, &plan.files)?;
            // bhyve's: a VM left by a crashed run is destroyed, its loader run.
            for step in plan.cleanup.iter().chain(&plan.prepare) {
                match self.step(argv(step))? {
                    Some(ProcessExit::Code(0)) => {}
                    Some(exit) => self.note(format!("{} ended with {exit:?}", argv(step)[0])),
                    None => return Ok(()),
                }
            }
            let started = Instant::now();
            let Some(exit) = self.step(argv(&plan.main))? else {
                return Ok(());
            };
            for step in &plan.cleanup {
                if let Err(e) = self.step(argv(step)) {
                    self.note(format!("{}: {e}", argv(step)[0]));
                }
            }
            let meaning = hypervisor.exit_meaning(&spec, exit);
            let (_, wanted) = load(self.host, self.instance_id)?;
            if wanted == Wanted::Stopped || !record.restart.should_restart(meaning) {
                self.note(format!(
                    "{} ended ({}); restart policy {}: not restarting",
                    hypervisor.name(),
                    describe(meaning),
                    record.restart
                ));
                return Ok(());
            }
            let wait = backoff.after(started.elapsed());
            self.note(format!(
                "{} ended ({}); restarting in {} s",
                hypervisor.name(),
                describe(meaning),
                wait.as_secs()
            ));
            if let Ok(Event::Stop) = self.inbox.recv_timeout(wait) {
                return Ok(());
            }
        }
    }
}

/// Runs the hypervisor once; its exit, or `None` when a stop came first
/// (the cell is then ended, which ends the hypervisor).
fn run_once(
    host: &Host,
    cell: &jails::Cell,
    argv: Vec<String>,
    log: &Arc<Mutex<ConsoleLog>>,
    events: &mpsc::Sender<Event>,
    inbox: &mpsc::Receiver<Event>,
) -> Result<Option<ProcessExit>, LaunchError> {
    let process = Process {
        argv,
        env: jails::base_env("instance"),
        terminal: false,
    };
    let mut cmd = host
        .jails()
        .command(cell, &process)
        .map_err(crate::runtime::RuntimeError::from)?;
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: sigprocmask is async-signal-safe. The supervisor blocks
        // its stop signals (one thread takes them), and a blocked mask
        // survives exec: the hypervisor must get its SIGTERM again, or a
        // stop waits out jail.stop.timeout and ends in SIGKILL. This runs
        // after the jail's own pre_exec, in the process that execs.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::signal::SigSet::empty()
                    .thread_set_mask()
                    .map_err(std::io::Error::from)
            });
        }
    }
    let (reader, writer) = std::io::pipe().map_err(io_err("making the console pipe"))?;
    let err_writer = writer
        .try_clone()
        .map_err(io_err("duplicating the console pipe"))?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(err_writer);
    trim_heap();
    let mut child = cmd
        .spawn()
        .map_err(io_err("starting the hypervisor in the instance pod"))?;
    // The command holds the pipe's write ends: drop them so that the pump
    // sees the end when the hypervisor goes.
    drop(cmd);
    let pump_log = log.clone();
    let pump = std::thread::spawn(move || pump_console(reader, &pump_log));
    let exits = events.clone();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = exits.send(Event::Exited(status.into()));
        }
    });
    let exit = match inbox.recv() {
        Ok(Event::Exited(exit)) => Some(exit),
        Ok(Event::Stop) | Err(_) => {
            let _ = host.jails().destroy(cell, host.stop_grace());
            // The waiter's exit, so that the console is complete.
            let _ = inbox.recv_timeout(host.stop_grace() + Duration::from_secs(5));
            None
        }
    };
    let _ = pump.join();
    Ok(exit)
}

/// Returns the heap's free pages to the kernel before a fork: a page the
/// supervisor frees or writes after forking stays private in the fork (the
/// cell's holder, the hypervisor's waiter) for as long as it lives.
fn trim_heap() {
    #[cfg(target_os = "linux")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn pump_console(mut reader: std::io::PipeReader, log: &Mutex<ConsoleLog>) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                if log.write(&buf[..n]).is_err() {
                    tracing::warn!("the console log cannot be written");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// The instance network in the pod, and the host's published ports.
fn network(
    host: &Host,
    pod: &Pod,
    cell: &jails::Cell,
    record: &LaunchRecord,
) -> Result<Option<crate::net::publish::Running>, LaunchError> {
    host.attach_instance_net(pod, cell, &record.instance_net())?;
    if record.publish.is_empty() {
        return Ok(None);
    }
    let target = pod.row.address.unwrap_or(std::net::Ipv4Addr::LOCALHOST);
    let publisher = crate::net::publish::Publisher::bind(&record.publish, target)?;
    Ok(Some(publisher.start()?))
}

/// bhyve's devfs ruleset (`launch.devfs.ruleset`: the pods' own plus vmm,
/// nmdm and tap), made from the host before the jail starts. Idempotent.
fn devfs_ruleset(host: &Host) -> Result<(), LaunchError> {
    let config = host.config();
    for argv in crate::hypervisor::bhyve::devfs_rule_argvs(
        config.launch.devfs_ruleset,
        config.jail_devfs_ruleset,
    ) {
        crate::runtime::tool::run(&argv[0], &argv[1..])?;
    }
    Ok(())
}

fn argv(invocation: &crate::hypervisor::Invocation) -> Vec<String> {
    invocation
        .argv()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Writes a plan's files (bhyve's grub.cfg) at their paths in the pod.
fn write_plan_files(pod: &Pod, files: &[crate::hypervisor::PlanFile]) -> Result<(), LaunchError> {
    for file in files {
        let inside = file.path.strip_prefix("/").unwrap_or(&file.path);
        let path = pod.root.join(inside);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        std::fs::write(&path, &file.contents)
            .map_err(io_err(format!("writing {}", path.display())))?;
    }
    Ok(())
}

fn spec_of(pod: &Pod, record: &LaunchRecord) -> Result<LaunchSpec, LaunchError> {
    let elf64 = match record.boot {
        super::record::Boot::Multiboot { .. } => {
            let image = pod
                .root
                .join(IMAGE_IN_POD.strip_prefix('/').unwrap_or(IMAGE_IN_POD));
            boot::inspect(&image)?.class == boot::ElfClass::Elf64
        }
        super::record::Boot::Linux { .. } => false,
    };
    Ok(LaunchSpec {
        name: record.vm_name(),
        boot: record.boot_path(elf64),
        memory_mib: record.memory_mib,
        cpus: record.cpus,
        uuid: record.uuid,
        nics: vec![record.nic()],
        console: Console::Stdio,
        restart: record.restart,
        debug_exit: false,
    })
}

fn hypervisor_for(
    host: &Host,
    record: &LaunchRecord,
    accel: Accel,
) -> Result<Box<dyn Hypervisor>, LaunchError> {
    match record.hypervisor {
        HypervisorKind::Qemu => Ok(Box::new(Qemu::new(
            accel,
            Some(host.config().launch.chainloader.clone()),
        ))),
        HypervisorKind::Bhyve if cfg!(target_os = "freebsd") => {
            Ok(Box::new(crate::hypervisor::Bhyve::new(RUN_IN_POD.into())))
        }
        kind => Err(LaunchError::HypervisorUnavailable(kind)),
    }
}

fn describe(meaning: ExitMeaning) -> String {
    match meaning {
        ExitMeaning::Reboot => "reboot".into(),
        ExitMeaning::PowerOff => "powered off".into(),
        ExitMeaning::Halt => "halted".into(),
        ExitMeaning::TripleFault => "triple fault".into(),
        ExitMeaning::GuestExit(v) => format!("the guest exited with {v}"),
        ExitMeaning::Error(code) => format!("error, status {code}"),
        ExitMeaning::Signal(s) => format!("killed by signal {s}"),
    }
}
