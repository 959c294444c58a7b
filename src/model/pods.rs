//! `/v1/pods`: a pod as the API shows it, the create body and the PATCH
//! body that starts or stops one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub id: String,
    pub name: Option<String>,
    /// The base's id
    pub base: String,
    pub base_name: String,
    pub command: Vec<String>,
    /// Its address on the pod network
    pub address: Option<String>,
    /// created | running | stopping | exited | dead (creating, removing while that work runs)
    pub state: String,
    pub exit_code: Option<i32>,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The pod's own environment variables (not a secret store: shown to
    /// whoever may read the pod)
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub volumes: Vec<PodVolume>,
    /// Its resource limits (none: unlimited)
    #[serde(default)]
    pub limits: PodLimits,
    /// Why it ended when the kernel ended it, e.g. "killed: out of memory (limit 64 MiB)"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    /// What it uses against its limits (while it runs; disk always), on GET of one pod
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<PodUsage>,
    /// no | on-failure | always: whether its detached command runs again
    /// when it ends (backoff 1 s doubling to 30 s)
    #[serde(default)]
    pub restart: String,
    /// Runs again since it was last started
    #[serde(default)]
    pub restarts: u32,
    /// Started when the host boots and when `jetpack serve` starts
    #[serde(default)]
    pub autostart: bool,
    /// Host ports forwarded to the pod, `ADDR:HOSTPORT:PORT/PROTO`
    #[serde(default)]
    pub publish: Vec<String>,
    /// Its own network stack (FreeBSD VNET); Linux cells always have one
    #[serde(default)]
    pub vnet: bool,
}

/// A pod's resource limits as stored: sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodLimits {
    /// Bytes of memory; past it the kernel kills (Linux) or pages out (FreeBSD)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// CPUs' worth of time (0.5 = half a cpu)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes at once
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Bytes of disk (a ZFS quota on the pod's clone)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// Processes at once (FreeBSD's name; with pids the lower wins)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxproc: Option<u64>,
}

/// What a pod uses against its limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// CPU time used, in seconds
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_max: Option<f64>,
    /// Processes the kernel killed for the memory limit
    #[serde(default)]
    pub oom_kills: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<u64>,
}

/// A size: bytes, or text with a binary unit (`512K`, `64M`, `1G`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// A number of cpus: a number, or its text (`"0.5"`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CpusValue {
    Number(f64),
    Text(String),
}

/// The limits a new pod asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodLimitsRequest {
    /// At least 4M
    pub memory: Option<SizeValue>,
    /// More than 0, at most the host's cpus
    pub cpus: Option<CpusValue>,
    /// At least 1
    pub pids: Option<u64>,
    /// At least 1M; only on the zfs datasets drivers
    pub disk: Option<SizeValue>,
    /// At least 1
    pub maxproc: Option<u64>,
}

/// A volume of a pod.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolume {
    /// A host directory (absolute, canonical) or a named volume
    pub source: String,
    /// Where the pod sees it
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WantedState {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodRequest {
    /// Base id, name or id prefix
    pub base: String,
    pub name: Option<String>,
    /// Command and arguments [default: /bin/sh]
    pub command: Option<Vec<String>>,
    /// Environment variables: POSIX names, values without NUL (at most
    /// 256 of them, 32 KiB a value)
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Volumes, `SOURCE:TARGET[:ro]`: SOURCE an absolute host directory
    /// or a named volume, TARGET an absolute path in the pod
    pub volumes: Option<Vec<String>>,
    /// Resource limits
    pub limits: Option<PodLimitsRequest>,
    /// no (default) | on-failure | always
    pub restart: Option<String>,
    /// Start it when the host boots and when `jetpack serve` starts
    pub autostart: Option<bool>,
    /// Host ports forwarded to the pod while it runs detached,
    /// `[ADDR:]HOSTPORT:PORT[/tcp|udp]`
    pub publish: Option<Vec<String>>,
    /// Its own network stack on FreeBSD (VNET: an epair) instead of an
    /// address on the shared interface; Linux cells always have one
    pub vnet: Option<bool>,
    /// `created` (default) or `running`
    pub state: Option<WantedState>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodPatch {
    /// `running` starts it, `exited` stops it
    pub state: WantedState,
}
