//! The launch record: what a launched instance is booted from on every
//! start, stored as JSON beside its pod (store::launches). A deploy that
//! an instance acknowledged changes `image`, so that a restart boots what
//! it last ran.

use serde::{Deserialize, Serialize};

use crate::hypervisor::{BootPath, HypervisorKind, MacAddr, Nic, RestartPolicy};
use crate::names::PodId;
use crate::net::publish::PublishSpec;
use crate::runtime::jails::instance_net::{Forward, InstanceNet};

/// Where the pod keeps what it boots (read-only files in its root).
pub const IMAGE_IN_POD: &str = "/jetpack/instance/image";
pub const KERNEL_IN_POD: &str = "/jetpack/instance/kernel";
pub const INITRD_IN_POD: &str = "/jetpack/instance/initrd";
/// A hypervisor's own files (bhyve's grub.cfg and device.map).
pub const RUN_IN_POD: &str = "/jetpack/instance/run";

/// How the instance boots, with paths inside its pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Boot {
    /// A multiboot image (IncludeOS), ELF32 or ELF64 (through the
    /// chainloader): the class is found again on every start, since a
    /// deploy may change it.
    Multiboot { cmdline: String },
    /// A kernel, maybe an initrd, and its command line.
    Linux { initrd: bool, append: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRecord {
    pub instance_id: String,
    pub uuid: uuid::Uuid,
    pub pod_id: PodId,
    pub hypervisor: HypervisorKind,
    pub memory_mib: u64,
    pub cpus: u32,
    pub restart: RestartPolicy,
    pub boot: Boot,
    /// The catalog image it boots, when it came from there.
    pub image_id: Option<String>,
    /// What it was launched from, for people (an image's tag, a file name).
    pub image_name: String,
    /// Host ports forwarded to the guest (through the pod's address).
    pub publish: Vec<PublishSpec>,
    /// The guest's network in the pod (its forwards are `publish`'s ports).
    #[serde(default)]
    pub net: InstanceNet,
}

impl LaunchRecord {
    /// The name the hypervisor gives the VM (bhyve's limit is 31).
    pub fn vm_name(&self) -> String {
        format!("jp-{}", &self.instance_id[..24.min(self.instance_id.len())])
    }

    /// A locally administered MAC address from the uuid, stable across
    /// restarts (52:54:00 is qemu's prefix).
    pub fn mac(&self) -> MacAddr {
        let b = self.uuid.as_bytes();
        MacAddr([0x52, 0x54, 0x00, b[13], b[14], b[15]])
    }

    /// The boot path in the pod, for `class` of the image it holds now.
    pub fn boot_path(&self, elf64: bool) -> BootPath {
        match &self.boot {
            Boot::Multiboot { cmdline } if elf64 => BootPath::Multiboot64 {
                image: IMAGE_IN_POD.into(),
                cmdline: cmdline.clone(),
            },
            Boot::Multiboot { cmdline } => BootPath::Multiboot32 {
                image: IMAGE_IN_POD.into(),
                cmdline: cmdline.clone(),
            },
            Boot::Linux { initrd, append } => BootPath::LinuxKernel {
                kernel: KERNEL_IN_POD.into(),
                initrd: initrd.then(|| INITRD_IN_POD.into()),
                append: append.clone(),
            },
        }
    }

    /// The instance network with the pod-side forwards `publish` needs.
    pub fn instance_net(&self) -> InstanceNet {
        let mut net = self.net.clone();
        net.forwards = self
            .publish
            .iter()
            .map(|p| Forward {
                proto: p.proto,
                port: p.port,
            })
            .collect();
        net.forwards.sort_by_key(|f| (f.port, f.proto as u8));
        net.forwards.dedup();
        net
    }

    /// The guest's NIC: the pod's tap.
    pub fn nic(&self) -> Nic {
        Nic {
            tap: self.net.tap.clone(),
            mac: self.mac(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_names_its_vm_within_bhyves_limit() {
        let uuid = uuid::Uuid::parse_str("11223344-5566-7788-99aa-bbccddeeff00").unwrap();
        let r = LaunchRecord {
            instance_id: crate::hypervisor::smbios::instance_id(&uuid),
            uuid,
            pod_id: PodId::random(),
            hypervisor: HypervisorKind::Qemu,
            memory_mib: 64,
            cpus: 1,
            restart: RestartPolicy::OnFailure,
            boot: Boot::Multiboot {
                cmdline: "idle".into(),
            },
            image_id: None,
            image_name: "kernel.elf".into(),
            publish: vec!["8080:80".parse().unwrap()],
            net: InstanceNet::default(),
        };
        let back: LaunchRecord = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert!(r.to_json().contains("\"restart\":\"on-failure\""));
        assert_eq!(r.vm_name(), "jp-443322116655887799aabbcc");
        assert!(r.vm_name().len() <= crate::hypervisor::MAX_NAME);
        assert_eq!(r.mac().to_string(), "52:54:00:ee:ff:00");
        assert!(matches!(r.boot_path(true), BootPath::Multiboot64 { .. }));
        let net = r.instance_net();
        assert_eq!(net.forwards.len(), 1);
        assert_eq!(net.forwards[0].port, 80);
        assert_eq!(r.nic().tap, "tap0");
    }
}
