//! The bhyve driver (FreeBSD): a launch spec as the argvs of
//! `grub-bhyve` (which loads the kernel into the VM, since bhyve has no
//! multiboot loader), `bhyve` (which runs it) and `bhyvectl --destroy`
//! (which frees the VM), and what bhyve's exit status means. Also the jail
//! pieces an instance pod needs to run bhyve inside it: `allow.vmm` and a
//! devfs ruleset that unhides vmm, nmdm and tap nodes.
//!
//! Pure code, compiled and tested everywhere; it runs nothing.
//!
//! grub-bhyve is not interactive here: `-r host -d DIR` makes it read
//! `DIR/grub.cfg` from the host's (the pod's) file system, which holds the
//! `multiboot IMAGE ARGS` (or `linux` and `initrd`) then `boot` commands.
//! GRUB's multiboot loader takes ELF32 and ELF64 alike, so both
//! multiboot paths go this way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{
    BootPath, Console, ExitMeaning, Hypervisor, HypervisorError, HypervisorKind, Invocation,
    LaunchPlan, LaunchSpec, PlanFile, ProcessExit,
};

const NAME: &str = "bhyve";

/// The bhyve driver's configuration: where its programs are, and where
/// it may write each VM's grub.cfg and device map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bhyve {
    pub grub_bhyve: PathBuf,
    pub bhyve: PathBuf,
    pub bhyvectl: PathBuf,
    /// Each VM gets `run_dir/NAME/` (grub.cfg, device.map).
    pub run_dir: PathBuf,
}

impl Bhyve {
    /// FreeBSD's base system paths, and grub2-bhyve's from packages.
    pub fn new(run_dir: PathBuf) -> Bhyve {
        Bhyve {
            grub_bhyve: "/usr/local/sbin/grub-bhyve".into(),
            bhyve: "/usr/sbin/bhyve".into(),
            bhyvectl: "/usr/sbin/bhyvectl".into(),
            run_dir,
        }
    }

    fn vm_dir(&self, spec: &LaunchSpec) -> PathBuf {
        self.run_dir.join(&spec.name)
    }

    /// grub-bhyve's arguments (the program not included).
    pub fn grub_args(&self, spec: &LaunchSpec) -> Vec<OsString> {
        let dir = self.vm_dir(spec);
        let mut a: Vec<OsString> = vec![
            "-m".into(),
            dir.join("device.map").into(),
            "-r".into(),
            "host".into(),
            "-d".into(),
            dir.into(),
            "-M".into(),
            format!("{}M", spec.memory_mib).into(),
        ];
        // GRUB's own output goes where the guest's will: the console log
        // then shows a loader's complaint.
        if let Console::Nmdm(unit) = spec.console {
            a.extend(["-c".into(), format!("/dev/nmdm{unit}A").into()]);
        }
        a.push(spec.name.clone().into());
        a
    }

    /// bhyve's arguments (the program not included).
    pub fn bhyve_args(&self, spec: &LaunchSpec) -> Result<Vec<String>, HypervisorError> {
        let com1 = match &spec.console {
            Console::Stdio => "com1,stdio".to_string(),
            Console::Nmdm(unit) => format!("com1,/dev/nmdm{unit}A"),
            Console::File(_) => {
                return Err(HypervisorError::Console {
                    hypervisor: NAME,
                    console: spec.console.to_string(),
                })
            }
        };
        if spec.debug_exit {
            return Err(HypervisorError::Unsupported {
                hypervisor: NAME,
                what: "isa-debug-exit device",
            });
        }
        let mut a: Vec<String> = [
            // ACPI tables, yield the cpu on HLT and on PAUSE, the UUID.
            "-A",
            "-H",
            "-P",
            "-U",
            &spec.uuid.hyphenated().to_string(),
            "-m",
            &format!("{}M", spec.memory_mib),
            "-c",
            &spec.cpus.to_string(),
            "-s",
            "0:0,hostbridge",
            "-s",
            "1:0,lpc",
            "-l",
            &com1,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (i, nic) in spec.nics.iter().enumerate() {
            // bhyve's virtio-net backend picks the device by name prefix.
            if !(nic.tap.starts_with("tap") || nic.tap.starts_with("vmnet")) {
                return Err(HypervisorError::Path {
                    hypervisor: NAME,
                    path: PathBuf::from("/dev").join(&nic.tap),
                    why: "its NICs are tapN or vmnetN devices",
                });
            }
            // Slots 0 and 1 are taken; PCI has 32.
            a.push("-s".into());
            a.push(format!(
                "{}:0,virtio-net,{},mac={}",
                i + 2,
                nic.tap,
                nic.mac
            ));
        }
        a.push(spec.name.clone());
        Ok(a)
    }

    /// `bhyvectl --destroy --vm=NAME`'s arguments.
    pub fn destroy_args(&self, spec: &LaunchSpec) -> Vec<String> {
        vec!["--destroy".into(), format!("--vm={}", spec.name)]
    }
}

/// The grub.cfg that boots `boot`: the loader command, then `boot`.
pub fn grub_cfg(boot: &BootPath) -> Result<String, HypervisorError> {
    let mut cfg = String::new();
    match boot {
        BootPath::Multiboot32 { image, cmdline } | BootPath::Multiboot64 { image, cmdline } => {
            cfg.push_str("multiboot ");
            cfg.push_str(&grub_word(image)?);
            push_words(&mut cfg, cmdline);
        }
        BootPath::LinuxKernel {
            kernel,
            initrd,
            append,
        } => {
            cfg.push_str("linux ");
            cfg.push_str(&grub_word(kernel)?);
            push_words(&mut cfg, append);
            if let Some(initrd) = initrd {
                cfg.push_str("\ninitrd ");
                cfg.push_str(&grub_word(initrd)?);
            }
        }
    }
    cfg.push_str("\nboot\n");
    Ok(cfg)
}

fn push_words(cfg: &mut String, line: &str) {
    for word in line.split_whitespace() {
        cfg.push(' ');
        cfg.push_str(&grub_quote(word));
    }
}

fn grub_word(path: &Path) -> Result<String, HypervisorError> {
    let text = path.to_str().ok_or_else(|| HypervisorError::Path {
        hypervisor: NAME,
        path: path.to_path_buf(),
        why: "grub.cfg needs UTF-8 paths",
    })?;
    Ok(grub_quote(text))
}

/// A word for GRUB's script parser, which quotes like sh: inside '...'
/// everything is literal, and a ' is closed, escaped, reopened.
fn grub_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl Hypervisor for Bhyve {
    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Bhyve
    }

    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, HypervisorError> {
        let dir = self.vm_dir(spec);
        let bhyve_args = self.bhyve_args(spec)?;
        Ok(LaunchPlan {
            files: vec![
                // No disks: GRUB reads the image from `host`.
                PlanFile {
                    path: dir.join("device.map"),
                    contents: String::new(),
                },
                PlanFile {
                    path: dir.join("grub.cfg"),
                    contents: grub_cfg(&spec.boot)?,
                },
            ],
            // A VM left by a crashed run would make grub-bhyve fail; as
            // FreeBSD's vmrun.sh, destroy before each start and after.
            cleanup: vec![Invocation {
                program: self.bhyvectl.clone().into(),
                args: os(self.destroy_args(spec)),
            }],
            prepare: vec![Invocation {
                program: self.grub_bhyve.clone().into(),
                args: self.grub_args(spec),
            }],
            main: Invocation {
                program: self.bhyve.clone().into(),
                args: os(bhyve_args),
            },
        })
    }

    /// bhyve(8): 0 the VM was reset, 1 powered off, 2 halted, 3 triple
    /// fault, 4 an error; anything else is an error too.
    fn exit_meaning(&self, _spec: &LaunchSpec, exit: ProcessExit) -> ExitMeaning {
        match exit {
            ProcessExit::Code(0) => ExitMeaning::Reboot,
            ProcessExit::Code(1) => ExitMeaning::PowerOff,
            ProcessExit::Code(2) => ExitMeaning::Halt,
            ProcessExit::Code(3) => ExitMeaning::TripleFault,
            ProcessExit::Code(code) => ExitMeaning::Error(code),
            ProcessExit::Signal(signal) => ExitMeaning::Signal(signal),
        }
    }
}

fn os(args: Vec<String>) -> Vec<OsString> {
    args.into_iter().map(OsString::from).collect()
}

/// The jail(2) parameters an instance pod's jail adds to a pod's: bhyve
/// inside a jail needs `allow.vmm` (FreeBSD 12 and later).
pub const JAIL_PARAMS: &[(&str, &str)] = &[("allow.vmm", "1")];

/// The device nodes an instance jail's devfs must show beyond a pod's:
/// the vmm control nodes, the null-modem consoles, the taps.
pub const DEVFS_UNHIDE: &[&str] = &["vmm", "vmm/*", "nmdm*", "tap*"];

/// devfs(8) argvs, run on the host, that make ruleset `ruleset`: emptied,
/// then `base` (the ruleset pods use, e.g. 4, devfsrules_jail) included,
/// then `DEVFS_UNHIDE` unhidden. Idempotent: rerunning rebuilds it.
pub fn devfs_rule_argvs(ruleset: u32, base: u32) -> Vec<Vec<String>> {
    let set = ruleset.to_string();
    let rule = |tail: &[&str]| -> Vec<String> {
        ["devfs", "rule", "-s", &set]
            .iter()
            .chain(tail)
            .map(|s| s.to_string())
            .collect()
    };
    let mut argvs = vec![
        rule(&["delset"]),
        rule(&["add", "include", &base.to_string()]),
    ];
    for path in DEVFS_UNHIDE {
        argvs.push(rule(&["add", "path", path, "unhide"]));
    }
    argvs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::tests::{mb32, spec, strings};
    use crate::hypervisor::{Nic, RestartPolicy};

    fn bhyve() -> Bhyve {
        Bhyve::new("/var/run/jetpack".into())
    }

    #[test]
    fn the_plan_for_an_elf32_image_on_a_nmdm_console() {
        let mut s = spec(mb32());
        s.console = Console::Nmdm(3);
        s.cpus = 2;
        let plan = bhyve().plan(&s).unwrap();
        assert_eq!(
            plan.files,
            [
                PlanFile {
                    path: "/var/run/jetpack/jp-test/device.map".into(),
                    contents: String::new()
                },
                PlanFile {
                    path: "/var/run/jetpack/jp-test/grub.cfg".into(),
                    contents: "multiboot '/image/service' '-v'\nboot\n".into()
                },
            ]
        );
        assert_eq!(plan.cleanup.len(), 1);
        assert_eq!(
            strings(&plan.cleanup[0].argv()),
            ["/usr/sbin/bhyvectl", "--destroy", "--vm=jp-test"]
        );
        assert_eq!(plan.prepare.len(), 1);
        assert_eq!(
            strings(&plan.prepare[0].argv()),
            [
                "/usr/local/sbin/grub-bhyve",
                "-m",
                "/var/run/jetpack/jp-test/device.map",
                "-r",
                "host",
                "-d",
                "/var/run/jetpack/jp-test",
                "-M",
                "128M",
                "-c",
                "/dev/nmdm3A",
                "jp-test",
            ]
        );
        assert_eq!(
            strings(&plan.main.argv()),
            [
                "/usr/sbin/bhyve",
                "-A",
                "-H",
                "-P",
                "-U",
                "11223344-5566-7788-99aa-bbccddeeff00",
                "-m",
                "128M",
                "-c",
                "2",
                "-s",
                "0:0,hostbridge",
                "-s",
                "1:0,lpc",
                "-l",
                "com1,/dev/nmdm3A",
                "-s",
                "2:0,virtio-net,tap0,mac=52:54:00:12:34:56",
                "jp-test",
            ]
        );
    }

    #[test]
    fn stdio_console_and_two_nics() {
        let mut s = spec(BootPath::Multiboot64 {
            image: "/image/it's".into(),
            cmdline: String::new(),
        });
        s.nics.push(Nic {
            tap: "vmnet7".into(),
            mac: "02:00:00:00:00:01".parse().unwrap(),
        });
        s.restart = RestartPolicy::Always;
        let b = bhyve();
        let args = b.bhyve_args(&s).unwrap();
        assert_eq!(
            args[args.len() - 6..],
            [
                "com1,stdio",
                "-s",
                "2:0,virtio-net,tap0,mac=52:54:00:12:34:56",
                "-s",
                "3:0,virtio-net,vmnet7,mac=02:00:00:00:00:01",
                "jp-test",
            ]
        );
        let grub = strings(&b.grub_args(&s));
        assert_eq!(grub.last().map(String::as_str), Some("jp-test"));
        assert!(!grub.contains(&"-c".to_string()));
        assert_eq!(
            grub_cfg(&s.boot).unwrap(),
            "multiboot '/image/it'\\''s'\nboot\n"
        );
    }

    #[test]
    fn a_linux_kernel_through_grub() {
        let boot = BootPath::LinuxKernel {
            kernel: "/vm/vmlinuz".into(),
            initrd: Some("/vm/initrd.img".into()),
            append: "console=ttyS0  quiet".into(),
        };
        assert_eq!(
            grub_cfg(&boot).unwrap(),
            "linux '/vm/vmlinuz' 'console=ttyS0' 'quiet'\ninitrd '/vm/initrd.img'\nboot\n"
        );
    }

    #[test]
    fn refusals() {
        let mut s = spec(mb32());
        s.console = Console::File("/log".into());
        assert!(matches!(
            bhyve().plan(&s),
            Err(HypervisorError::Console { .. })
        ));
        let mut s = spec(mb32());
        s.debug_exit = true;
        assert!(matches!(
            bhyve().plan(&s),
            Err(HypervisorError::Unsupported { .. })
        ));
        let mut s = spec(mb32());
        s.nics[0].tap = "eth0".into();
        assert!(matches!(
            bhyve().plan(&s),
            Err(HypervisorError::Path { .. })
        ));
    }

    #[test]
    fn exit_statuses() {
        let b = bhyve();
        let s = spec(mb32());
        let m = |e| b.exit_meaning(&s, e);
        assert_eq!(m(ProcessExit::Code(0)), ExitMeaning::Reboot);
        assert_eq!(m(ProcessExit::Code(1)), ExitMeaning::PowerOff);
        assert_eq!(m(ProcessExit::Code(2)), ExitMeaning::Halt);
        assert_eq!(m(ProcessExit::Code(3)), ExitMeaning::TripleFault);
        assert_eq!(m(ProcessExit::Code(4)), ExitMeaning::Error(4));
        assert_eq!(m(ProcessExit::Code(70)), ExitMeaning::Error(70));
        assert_eq!(m(ProcessExit::Signal(15)), ExitMeaning::Signal(15));
    }

    #[test]
    fn jail_pieces() {
        assert_eq!(JAIL_PARAMS, [("allow.vmm", "1")]);
        let argvs = devfs_rule_argvs(20, 4);
        let joined: Vec<String> = argvs.iter().map(|a| a.join(" ")).collect();
        assert_eq!(
            joined,
            [
                "devfs rule -s 20 delset",
                "devfs rule -s 20 add include 4",
                "devfs rule -s 20 add path vmm unhide",
                "devfs rule -s 20 add path vmm/* unhide",
                "devfs rule -s 20 add path nmdm* unhide",
                "devfs rule -s 20 add path tap* unhide",
            ]
        );
    }
}
