//! Hypervisors: DESIGN.md's third backend, for launched instances (issue
//! 15). This module owns the pure part of a launch: what an image is and
//! how it boots (`boot`), the argument vectors that run it under each
//! hypervisor (one driver per mechanism behind the small `Hypervisor`
//! trait: `qemu`, `bhyve`), what the hypervisor's exit status means to a
//! restart policy, the jail pieces bhyve needs (`bhyve`), and the id an
//! IncludeOS instance will report for the SMBIOS UUID it is given
//! (`smbios`).
//!
//! It runs nothing (but for `qemu::kvm_usable`, one open(2)): the instance
//! pod spawns the `LaunchPlan`s made here and supervises them. Plans are
//! argument vectors, never shell strings.

pub mod bhyve;
pub mod boot;
pub mod qemu;
pub mod smbios;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use bhyve::Bhyve;
pub use boot::{BootError, BootPath};
pub use qemu::Qemu;

/// Errors in a launch spec, found before anything is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("an instance needs some memory: 0 MiB asked")]
    NoMemory,
    #[error("{asked} MiB of memory asked, more than the host's {host} MiB")]
    MemoryOverHost { asked: u64, host: u64 },
    #[error("an instance needs at least one cpu")]
    NoCpus,
    #[error("{asked} cpus asked, more than the host's {host}")]
    CpusOverHost { asked: u32, host: u32 },
    #[error("{asked} NICs asked, more than the {max} an instance may have")]
    TooManyNics { asked: usize, max: usize },
    #[error(
        "bad instance name {0:?}: 1 to {max} letters, digits, '-' or '_' \
         (bhyve's limit on VM names)",
        max = MAX_NAME
    )]
    BadName(String),
    #[error("bad tap name {0:?}: 1 to 15 letters, digits, '-', '_' or '.'")]
    BadTap(String),
    #[error("tap {0} is given to more than one NIC")]
    DuplicateTap(String),
    #[error("MAC address {0} is given to more than one NIC")]
    DuplicateMac(MacAddr),
}

/// Errors turning a valid spec into a plan on one hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HypervisorError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "{image} is an ELF64 multiboot image, which qemu's -kernel cannot load, \
         and no chainloader is configured to load it"
    )]
    NoChainloader { image: PathBuf },
    #[error("{hypervisor} cannot take the serial console {console}")]
    Console {
        hypervisor: &'static str,
        console: String,
    },
    #[error("{hypervisor} has no {what}")]
    Unsupported {
        hypervisor: &'static str,
        what: &'static str,
    },
    #[error("{path} cannot be given to {hypervisor}: {why}")]
    Path {
        hypervisor: &'static str,
        path: PathBuf,
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hypervisor {name:?}: the known ones are {known}")]
pub struct UnknownHypervisor {
    pub name: String,
    pub known: String,
}

/// The hypervisors jetpack can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum HypervisorKind {
    Qemu,
    Bhyve,
}

impl HypervisorKind {
    pub const ALL: [HypervisorKind; 2] = [HypervisorKind::Qemu, HypervisorKind::Bhyve];

    pub fn as_str(self) -> &'static str {
        match self {
            HypervisorKind::Qemu => "qemu",
            HypervisorKind::Bhyve => "bhyve",
        }
    }

    /// What `launch` uses when not told: the platform's own hypervisor.
    pub fn host_default() -> HypervisorKind {
        if cfg!(target_os = "freebsd") {
            HypervisorKind::Bhyve
        } else {
            HypervisorKind::Qemu
        }
    }
}

impl fmt::Display for HypervisorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HypervisorKind {
    type Err = UnknownHypervisor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HypervisorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownHypervisor {
                name: s.to_string(),
                known: HypervisorKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

pub use crate::runtime::restart::{RestartPolicy, UnknownRestartPolicy};

/// What a restart policy means for a guest: a reboot it asked for counts
/// as a failure for `on-failure`.
impl RestartPolicy {
    /// Whether an instance that ended this way boots again. A reboot the
    /// guest asked for is honoured unless the policy is `no` (then the
    /// instance stops: qemu gets `-no-reboot`, bhyve's loop ends), so both
    /// hypervisors behave alike.
    pub fn should_restart(self, meaning: ExitMeaning) -> bool {
        self.restarts(meaning == ExitMeaning::Reboot || meaning.is_failure())
    }

    /// Whether the hypervisor should reset the guest itself on a guest
    /// reboot (qemu's default) rather than exit.
    pub fn reboots_in_place(self) -> bool {
        self != RestartPolicy::No
    }
}

impl TryFrom<String> for HypervisorKind {
    type Error = UnknownHypervisor;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<HypervisorKind> for &'static str {
    fn from(k: HypervisorKind) -> &'static str {
        k.as_str()
    }
}

/// How a hypervisor process ended, as wait(2) says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessExit {
    Code(i32),
    Signal(i32),
}

impl From<std::process::ExitStatus> for ProcessExit {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ProcessExit::Code(code),
            (None, Some(signal)) => ProcessExit::Signal(signal),
            // Stopped or continued: not an end; said as the raw status.
            (None, None) => ProcessExit::Code(status.into_raw()),
        }
    }
}

/// What a hypervisor's exit says about the guest, as far as a restart
/// policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitMeaning {
    /// The guest asked for a reset (bhyve's 0).
    Reboot,
    /// The guest powered off (bhyve's 1; qemu's 0).
    PowerOff,
    /// The guest stopped its cpus for good (bhyve's 2).
    Halt,
    /// The guest triple-faulted (bhyve's 3).
    TripleFault,
    /// The guest wrote this value to qemu's isa-debug-exit port.
    GuestExit(u8),
    /// The hypervisor failed (bad arguments, a missing device, bhyve's 4):
    /// its status.
    Error(i32),
    /// The hypervisor was killed by this signal.
    Signal(i32),
}

impl ExitMeaning {
    /// Whether `on-failure` brings the instance back. A halt counts: an
    /// IncludeOS guest that stops its cpus without powering off has
    /// panicked or hung (a deliberate shutdown is an ACPI power-off).
    pub fn is_failure(self) -> bool {
        match self {
            ExitMeaning::Reboot | ExitMeaning::PowerOff => false,
            ExitMeaning::GuestExit(value) => value != 0,
            ExitMeaning::Halt
            | ExitMeaning::TripleFault
            | ExitMeaning::Error(_)
            | ExitMeaning::Signal(_) => true,
        }
    }
}

/// A MAC address, written `52:54:00:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad MAC address {0:?}: six hex byte pairs separated by ':'")]
pub struct BadMacAddr(pub String);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = BadMacAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMacAddr(s.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(bytes))
    }
}

/// One virtio NIC, backed by a tap the pod made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub tap: String,
    pub mac: MacAddr,
}

/// Where the guest's first serial port (COM1, IncludeOS's console) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// The hypervisor's standard input and output: the supervisor pipes
    /// them into the instance's bounded console log.
    Stdio,
    /// Appended to a file or FIFO (qemu only: bhyve's COM1 is stdio or a
    /// tty device).
    File(PathBuf),
    /// A null-modem pair, nmdm(4) (bhyve): the guest has /dev/nmdmNA, the
    /// reader opens /dev/nmdmNB.
    Nmdm(u32),
}

impl fmt::Display for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Console::Stdio => f.write_str("stdio"),
            Console::File(path) => write!(f, "file {}", path.display()),
            Console::Nmdm(unit) => write!(f, "/dev/nmdm{unit}A"),
        }
    }
}

/// The longest instance name: bhyve's VM names are at most 31 bytes
/// (VM_MAX_NAMELEN less the NUL) and the name is also qemu's `-name`.
pub const MAX_NAME: usize = 31;

/// Everything a hypervisor needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The VM's name (bhyve's VM, qemu's `-name`): see `MAX_NAME`.
    pub name: String,
    pub boot: BootPath,
    pub memory_mib: u64,
    pub cpus: u32,
    /// The SMBIOS system UUID; `smbios::instance_id` says what id the
    /// instance reports for it.
    pub uuid: uuid::Uuid,
    pub nics: Vec<Nic>,
    pub console: Console,
    pub restart: RestartPolicy,
    /// qemu's isa-debug-exit device at port 0xf4 (tests: the guest ends
    /// qemu with a status it chooses).
    pub debug_exit: bool,
}

/// What the host can give an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub memory_mib: u64,
    pub cpus: u32,
    pub max_nics: usize,
}

impl LaunchSpec {
    /// Checks the spec against the host, before any pod exists.
    pub fn validate(&self, host: &HostLimits) -> Result<(), SpecError> {
        if !valid_name(&self.name) {
            return Err(SpecError::BadName(self.name.clone()));
        }
        if self.memory_mib == 0 {
            return Err(SpecError::NoMemory);
        }
        if self.memory_mib > host.memory_mib {
            return Err(SpecError::MemoryOverHost {
                asked: self.memory_mib,
                host: host.memory_mib,
            });
        }
        if self.cpus == 0 {
            return Err(SpecError::NoCpus);
        }
        if self.cpus > host.cpus {
            return Err(SpecError::CpusOverHost {
                asked: self.cpus,
                host: host.cpus,
            });
        }
        if self.nics.len() > host.max_nics {
            return Err(SpecError::TooManyNics {
                asked: self.nics.len(),
                max: host.max_nics,
            });
        }
        let (mut taps, mut macs) = (HashSet::new(), HashSet::new());
        for nic in &self.nics {
            if !valid_tap(&nic.tap) {
                return Err(SpecError::BadTap(nic.tap.clone()));
            }
            if !taps.insert(nic.tap.as_str()) {
                return Err(SpecError::DuplicateTap(nic.tap.clone()));
            }
            if !macs.insert(nic.mac) {
                return Err(SpecError::DuplicateMac(nic.mac));
            }
        }
        Ok(())
    }
}

// Names end up inside qemu's comma-separated options and bhyve's VM
// device names, so the alphabet is small and has no ','.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// IFNAMSIZ is 16 with the NUL on Linux and FreeBSD.
fn valid_tap(tap: &str) -> bool {
    !tap.is_empty()
        && tap.len() <= 15
        && tap
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// One program to run, as an argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl Invocation {
    /// The program and its arguments, as exec sees them.
    pub fn argv(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// A command for it; the caller sets stdio, spawns and waits.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// A file a plan needs written before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub path: PathBuf,
    pub contents: String,
}

/// What running one instance takes. The runner writes `files`, runs
/// `cleanup` (its failures ignored: it clears what a crashed run left),
/// runs each of `prepare` to success, then spawns `main` and supervises
/// it; when `main` ends it runs `cleanup` again, asks
/// `Hypervisor::exit_meaning` and the restart policy, and may start over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    pub files: Vec<PlanFile>,
    pub cleanup: Vec<Invocation>,
    pub prepare: Vec<Invocation>,
    pub main: Invocation,
}

/// One hypervisor: turns a launch spec into the programs to run, and says
/// what its exit status means.
pub trait Hypervisor: Send + Sync {
    fn kind(&self) -> HypervisorKind;

    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The plan for `spec` (which `LaunchSpec::validate` has passed; the
    /// driver checks only what is its own).
    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, HypervisorError>;

    /// What `main`'s end means, for the spec it was launched with.
    fn exit_meaning(&self, spec: &LaunchSpec, exit: ProcessExit) -> ExitMeaning;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plain spec the drivers' tests vary.
    pub(crate) fn spec(boot: BootPath) -> LaunchSpec {
        LaunchSpec {
            name: "jp-test".into(),
            boot,
            memory_mib: 128,
            cpus: 1,
            uuid: uuid::Uuid::parse_str("11223344-5566-7788-99aa-bbccddeeff00").unwrap(),
            nics: vec![Nic {
                tap: "tap0".into(),
                mac: "52:54:00:12:34:56".parse().unwrap(),
            }],
            console: Console::Stdio,
            restart: RestartPolicy::No,
            debug_exit: false,
        }
    }

    pub(crate) fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    pub(crate) fn mb32() -> BootPath {
        BootPath::Multiboot32 {
            image: "/image/service".into(),
            cmdline: "-v".into(),
        }
    }

    const HOST: HostLimits = HostLimits {
        memory_mib: 1024,
        cpus: 2,
        max_nics: 4,
    };

    #[test]
    fn kinds_parse_and_print() {
        assert_eq!("qemu".parse::<HypervisorKind>(), Ok(HypervisorKind::Qemu));
        assert_eq!("bhyve".parse::<HypervisorKind>(), Ok(HypervisorKind::Bhyve));
        assert_eq!(HypervisorKind::Bhyve.to_string(), "bhyve");
        let err = "xen".parse::<HypervisorKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown hypervisor \"xen\": the known ones are qemu, bhyve"
        );
    }

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!("on-failure".parse(), Ok(RestartPolicy::OnFailure));
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        use ExitMeaning::*;
        let all = [
            Reboot,
            PowerOff,
            Halt,
            TripleFault,
            GuestExit(0),
            GuestExit(3),
            Error(4),
            Signal(9),
        ];
        for m in all {
            assert!(!RestartPolicy::No.should_restart(m));
            assert!(RestartPolicy::Always.should_restart(m));
        }
        let on_failure: Vec<_> = all
            .into_iter()
            .filter(|m| RestartPolicy::OnFailure.should_restart(*m))
            .collect();
        assert_eq!(
            on_failure,
            [Reboot, Halt, TripleFault, GuestExit(3), Error(4), Signal(9)]
        );
    }

    #[test]
    fn process_exits_from_wait_statuses() {
        use std::os::unix::process::ExitStatusExt;
        let code = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(ProcessExit::from(code), ProcessExit::Code(3));
        let signal = std::process::ExitStatus::from_raw(9);
        assert_eq!(ProcessExit::from(signal), ProcessExit::Signal(9));
    }

    #[test]
    fn mac_addresses_round_trip() {
        let mac: MacAddr = "52:54:00:AB:cd:0f".parse().unwrap();
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:0f");
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "5:54:00:ab:cd:0f",
            "zz:54:00:ab:cd:0f",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plain_spec_is_valid() {
        assert_eq!(spec(mb32()).validate(&HOST), Ok(()));
    }

    #[test]
    fn validation_bounds_memory_cpus_and_nics() {
        let check = |f: &dyn Fn(&mut LaunchSpec)| {
            let mut s = spec(mb32());
            f(&mut s);
            s.validate(&HOST).unwrap_err()
        };
        assert_eq!(check(&|s| s.memory_mib = 0), SpecError::NoMemory);
        assert_eq!(
            check(&|s| s.memory_mib = 1025),
            SpecError::MemoryOverHost {
                asked: 1025,
                host: 1024
            }
        );
        assert_eq!(check(&|s| s.cpus = 0), SpecError::NoCpus);
        assert_eq!(
            check(&|s| s.cpus = 3),
            SpecError::CpusOverHost { asked: 3, host: 2 }
        );
        let nic = |i: u8| Nic {
            tap: format!("tap{i}"),
            mac: MacAddr([0x52, 0x54, 0, 0, 0, i]),
        };
        assert_eq!(
            check(&|s| s.nics = (0..5).map(nic).collect()),
            SpecError::TooManyNics { asked: 5, max: 4 }
        );
        let mut edge = spec(mb32());
        edge.memory_mib = 1024;
        edge.cpus = 2;
        edge.nics = (0..4).map(nic).collect();
        assert_eq!(edge.validate(&HOST), Ok(()));
    }

    #[test]
    fn validation_checks_names_taps_and_duplicates() {
        let mut s = spec(mb32());
        s.name = "a,b".into();
        assert_eq!(s.validate(&HOST), Err(SpecError::BadName("a,b".into())));
        s.name = "x".repeat(MAX_NAME + 1);
        assert!(matches!(s.validate(&HOST), Err(SpecError::BadName(_))));
        let mut s = spec(mb32());
        s.nics[0].tap = "tap0,script=/bin/sh".into();
        assert!(matches!(s.validate(&HOST), Err(SpecError::BadTap(_))));
        let mut s = spec(mb32());
        let first = s.nics[0].clone();
        s.nics.push(first.clone());
        assert_eq!(
            s.validate(&HOST),
            Err(SpecError::DuplicateTap("tap0".into()))
        );
        s.nics[1].tap = "tap1".into();
        assert_eq!(s.validate(&HOST), Err(SpecError::DuplicateMac(first.mac)));
    }
}
