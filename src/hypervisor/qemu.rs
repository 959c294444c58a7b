//! The qemu driver: a launch spec as a `qemu-system-x86_64` argv, modelled
//! on IncludeOS's vmrunner (`-kernel`, `-append`, virtio-net on a tap, KVM
//! when usable), and what qemu's exit status means.
//!
//! Choices the argv makes, and why:
//! - `-nodefaults -no-user-config -display none`: no default NIC (qemu
//!   would add a user-mode one, a way out of the pod's network), no VGA,
//!   no monitor on stdio, no host config file; the serial console is the
//!   one chardev given.
//! - KVM with `-cpu kvm64,+rdrand,+rdseed` (vmrunner's), else TCG with
//!   `-cpu max`: IncludeOS seeds its RNG from RDRAND/RDSEED, which qemu's
//!   default CPU model lacks. Not `-cpu host` (nor `max`) under KVM: on a
//!   nested host (these machines) qemu aborts setting MSR 0x10a
//!   (IA32_ARCH_CAPABILITIES); kvm64 boots the test kernel there.
//! - `-no-reboot` only under the `no` restart policy: otherwise qemu
//!   resets the guest in place, which is cheaper than a new process.
//! - `romfile=` on each NIC: a `-kernel` boot needs no iPXE option ROM,
//!   and the hypervisor base then need not ship one.
//! - ELF64 multiboot images boot through a 32-bit chainloader as
//!   vmrunner does: `-kernel CHAINLOADER -append ARGS -initrd "IMAGE ARGS"`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{
    BootPath, Console, ExitMeaning, Hypervisor, HypervisorError, HypervisorKind, Invocation,
    LaunchPlan, LaunchSpec, ProcessExit,
};

const NAME: &str = "qemu";

/// How qemu runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// KVM when the caller found it usable (`kvm_usable`), else TCG.
    pub fn choose(kvm_usable: bool) -> Accel {
        if kvm_usable {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

/// Whether this process can use KVM: /dev/kvm opens read-write (it may
/// exist and still be closed to us, or be absent from a pod).
pub fn kvm_usable() -> bool {
    kvm_usable_at(Path::new("/dev/kvm"))
}

pub fn kvm_usable_at(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .is_ok()
}

/// The qemu driver's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// The program, looked up in PATH when not absolute.
    pub program: PathBuf,
    pub accel: Accel,
    /// A 32-bit multiboot ELF that loads the ELF64 image given as its
    /// module; without one, ELF64 images cannot boot on qemu.
    pub chainloader: Option<PathBuf>,
}

impl Qemu {
    pub fn new(accel: Accel, chainloader: Option<PathBuf>) -> Qemu {
        Qemu {
            program: "qemu-system-x86_64".into(),
            accel,
            chainloader,
        }
    }

    /// qemu's arguments for `spec` (the program not included).
    pub fn args(&self, spec: &LaunchSpec) -> Result<Vec<OsString>, HypervisorError> {
        let mut a = Args::default();
        a.push(["-name", &spec.name]);
        a.push(["-no-user-config", "-nodefaults"]);
        match self.accel {
            Accel::Kvm => a.push(["-accel", "kvm", "-cpu", "kvm64,+rdrand,+rdseed"]),
            Accel::Tcg => a.push(["-accel", "tcg", "-cpu", "max"]),
        }
        a.push(["-m", &format!("{}M", spec.memory_mib)]);
        a.push(["-smp", &spec.cpus.to_string()]);
        a.push(["-uuid", &spec.uuid.hyphenated().to_string()]);
        a.push(["-display", "none"]);
        a.push(["-chardev"]);
        match &spec.console {
            Console::Stdio => a.push(["stdio,id=console,signal=off"]),
            Console::File(path) => {
                let mut value = OsString::from("file,id=console,append=on,path=");
                value.push(opt_value(path.as_os_str()));
                a.0.push(value);
            }
            Console::Nmdm(_) => {
                return Err(HypervisorError::Console {
                    hypervisor: NAME,
                    console: spec.console.to_string(),
                })
            }
        }
        a.push(["-serial", "chardev:console"]);
        if !spec.restart.reboots_in_place() {
            a.push(["-no-reboot"]);
        }
        if spec.debug_exit {
            a.push(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        self.boot_args(&spec.boot, &mut a)?;
        for (i, nic) in spec.nics.iter().enumerate() {
            // Tap names are checked (`LaunchSpec::validate`): no ',' in them.
            a.push([
                "-netdev",
                &format!("tap,id=net{i},ifname={},script=no,downscript=no", nic.tap),
                "-device",
                &format!("virtio-net-pci,netdev=net{i},mac={},romfile=", nic.mac),
            ]);
        }
        Ok(a.0)
    }

    fn boot_args(&self, boot: &BootPath, a: &mut Args) -> Result<(), HypervisorError> {
        match boot {
            BootPath::Multiboot32 { image, cmdline } => {
                a.path("-kernel", image);
                a.push(["-append", cmdline]);
            }
            BootPath::Multiboot64 { image, cmdline } => {
                let chainloader =
                    self.chainloader
                        .as_ref()
                        .ok_or_else(|| HypervisorError::NoChainloader {
                            image: image.clone(),
                        })?;
                // qemu splits the multiboot module list at ',' (",," is a
                // literal one) and a module's file name from its arguments
                // at the first space.
                if image.as_os_str().as_bytes().contains(&b' ') {
                    return Err(HypervisorError::Path {
                        hypervisor: NAME,
                        path: image.clone(),
                        why: "a chainloaded image's path cannot hold a space",
                    });
                }
                a.path("-kernel", chainloader);
                a.push(["-append", cmdline]);
                let mut module = opt_value(image.as_os_str());
                if !cmdline.is_empty() {
                    module.push(" ");
                    module.push(cmdline.replace(',', ",,"));
                }
                a.push(["-initrd"]);
                a.0.push(module);
            }
            BootPath::LinuxKernel {
                kernel,
                initrd,
                append,
            } => {
                a.path("-kernel", kernel);
                if let Some(initrd) = initrd {
                    a.path("-initrd", initrd);
                }
                a.push(["-append", append]);
            }
        }
        Ok(())
    }
}

impl Hypervisor for Qemu {
    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Qemu
    }

    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, HypervisorError> {
        Ok(LaunchPlan {
            files: Vec::new(),
            cleanup: Vec::new(),
            prepare: Vec::new(),
            main: Invocation {
                program: self.program.clone().into_os_string(),
                args: self.args(spec)?,
            },
        })
    }

    /// qemu exits 0 when the guest powers off, and also when it is told to
    /// stop by SIGTERM, SIGINT or SIGHUP (the supervisor knows when it sent
    /// one) and, under `-no-reboot`, on a guest reboot or triple fault
    /// (only under the `no` policy, where nothing restarts anyway). It
    /// exits 1 on its own errors. With isa-debug-exit, a guest's value V
    /// ends it with (V << 1) | 1: so an odd status is the guest's, and 1
    /// is read as the guest's 0 (qemu's own startup errors then look the
    /// same; the test kernel is the one guest that uses the device).
    fn exit_meaning(&self, spec: &LaunchSpec, exit: ProcessExit) -> ExitMeaning {
        match exit {
            ProcessExit::Signal(signal) => ExitMeaning::Signal(signal),
            ProcessExit::Code(0) => ExitMeaning::PowerOff,
            // An exit status has 8 bits: the guest's value keeps its low 7.
            ProcessExit::Code(code)
                if spec.debug_exit && (1..=255).contains(&code) && code & 1 == 1 =>
            {
                ExitMeaning::GuestExit((code >> 1) as u8)
            }
            ProcessExit::Code(code) => ExitMeaning::Error(code),
        }
    }
}

/// qemu's QemuOpts values double a literal ','.
fn opt_value(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    std::os::unix::ffi::OsStringExt::from_vec(out)
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push<const N: usize>(&mut self, items: [&str; N]) {
        self.0.extend(items.iter().map(OsString::from));
    }

    /// An option whose value is a file name taken as is (not a QemuOpts
    /// list).
    fn path(&mut self, option: &str, path: &Path) {
        self.0.push(option.into());
        self.0.push(path.as_os_str().to_os_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::tests::{mb32, spec, strings};
    use crate::hypervisor::{Nic, RestartPolicy};

    fn argv(qemu: &Qemu, spec: &LaunchSpec) -> Vec<String> {
        strings(&qemu.plan(spec).unwrap().main.argv())
    }

    const HEAD: [&str; 15] = [
        "qemu-system-x86_64",
        "-name",
        "jp-test",
        "-no-user-config",
        "-nodefaults",
        "-accel",
        "kvm",
        "-cpu",
        "kvm64,+rdrand,+rdseed",
        "-m",
        "128M",
        "-smp",
        "1",
        "-uuid",
        "11223344-5566-7788-99aa-bbccddeeff00",
    ];

    #[test]
    fn elf32_with_kvm_on_stdio() {
        let qemu = Qemu::new(Accel::Kvm, None);
        let mut expected: Vec<&str> = HEAD.to_vec();
        expected.extend([
            "-display",
            "none",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
            "-no-reboot",
            "-kernel",
            "/image/service",
            "-append",
            "-v",
            "-netdev",
            "tap,id=net0,ifname=tap0,script=no,downscript=no",
            "-device",
            "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=",
        ]);
        assert_eq!(argv(&qemu, &spec(mb32())), expected);
    }

    #[test]
    fn tcg_file_console_reboots_in_place_debug_exit_two_nics() {
        let qemu = Qemu::new(Accel::choose(false), None);
        let mut s = spec(mb32());
        s.memory_mib = 2048;
        s.cpus = 2;
        s.console = Console::File("/var/log/a,b.log".into());
        s.restart = RestartPolicy::Always;
        s.debug_exit = true;
        s.nics.push(Nic {
            tap: "tap1".into(),
            mac: "52:54:00:00:00:02".parse().unwrap(),
        });
        assert_eq!(
            argv(&qemu, &s),
            [
                "qemu-system-x86_64",
                "-name",
                "jp-test",
                "-no-user-config",
                "-nodefaults",
                "-accel",
                "tcg",
                "-cpu",
                "max",
                "-m",
                "2048M",
                "-smp",
                "2",
                "-uuid",
                "11223344-5566-7788-99aa-bbccddeeff00",
                "-display",
                "none",
                "-chardev",
                "file,id=console,append=on,path=/var/log/a,,b.log",
                "-serial",
                "chardev:console",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-kernel",
                "/image/service",
                "-append",
                "-v",
                "-netdev",
                "tap,id=net0,ifname=tap0,script=no,downscript=no",
                "-device",
                "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=",
                "-netdev",
                "tap,id=net1,ifname=tap1,script=no,downscript=no",
                "-device",
                "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02,romfile=",
            ]
        );
    }

    #[test]
    fn elf64_needs_the_chainloader() {
        let image = BootPath::Multiboot64 {
            image: "/image/svc,64".into(),
            cmdline: "a,b c".into(),
        };
        let mut s = spec(image);
        s.nics.clear();
        let err = Qemu::new(Accel::Kvm, None).plan(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/image/svc,64 is an ELF64 multiboot image, which qemu's -kernel cannot \
             load, and no chainloader is configured to load it"
        );
        let qemu = Qemu::new(Accel::Kvm, Some("/usr/share/jetpack/chainloader".into()));
        let mut expected: Vec<&str> = HEAD.to_vec();
        expected.extend([
            "-display",
            "none",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
            "-no-reboot",
            "-kernel",
            "/usr/share/jetpack/chainloader",
            "-append",
            "a,b c",
            "-initrd",
            "/image/svc,,64 a,,b c",
        ]);
        assert_eq!(argv(&qemu, &s), expected);
        s.boot = BootPath::Multiboot64 {
            image: "/image/my service".into(),
            cmdline: String::new(),
        };
        assert!(matches!(qemu.plan(&s), Err(HypervisorError::Path { .. })));
    }

    #[test]
    fn linux_kernel_with_initrd() {
        let qemu = Qemu::new(Accel::Kvm, None);
        let mut s = spec(BootPath::LinuxKernel {
            kernel: "/vm/vmlinuz".into(),
            initrd: Some("/vm/initrd.img".into()),
            append: "console=ttyS0 uplink=https://10.0.0.1:9090".into(),
        });
        s.nics.clear();
        s.restart = RestartPolicy::OnFailure;
        let mut expected: Vec<&str> = HEAD.to_vec();
        expected.extend([
            "-display",
            "none",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
            "-kernel",
            "/vm/vmlinuz",
            "-initrd",
            "/vm/initrd.img",
            "-append",
            "console=ttyS0 uplink=https://10.0.0.1:9090",
        ]);
        assert_eq!(argv(&qemu, &s), expected);
    }

    #[test]
    fn nmdm_is_not_a_qemu_console() {
        let mut s = spec(mb32());
        s.console = Console::Nmdm(0);
        assert!(matches!(
            Qemu::new(Accel::Kvm, None).plan(&s),
            Err(HypervisorError::Console { .. })
        ));
    }

    #[test]
    fn exit_statuses() {
        let qemu = Qemu::new(Accel::Kvm, None);
        let mut s = spec(mb32());
        let m = |s: &LaunchSpec, e| qemu.exit_meaning(s, e);
        assert_eq!(m(&s, ProcessExit::Code(0)), ExitMeaning::PowerOff);
        assert_eq!(m(&s, ProcessExit::Code(1)), ExitMeaning::Error(1));
        assert_eq!(m(&s, ProcessExit::Code(3)), ExitMeaning::Error(3));
        assert_eq!(m(&s, ProcessExit::Signal(9)), ExitMeaning::Signal(9));
        s.debug_exit = true;
        assert_eq!(m(&s, ProcessExit::Code(1)), ExitMeaning::GuestExit(0));
        assert_eq!(m(&s, ProcessExit::Code(7)), ExitMeaning::GuestExit(3));
        assert_eq!(m(&s, ProcessExit::Code(2)), ExitMeaning::Error(2));
    }

    #[test]
    fn kvm_usability_is_an_open() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!kvm_usable_at(&dir.path().join("kvm")));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(kvm_usable_at(&file));
    }
}
