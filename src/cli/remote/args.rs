//! The clap definitions of the client commands: the server flags (global:
//! where the API is and who we are to it), `RemoteCommand` and `bob`'s
//! subcommands. No dispatch here: `remote/mod.rs` routes each command to
//! its family's module.

use std::path::PathBuf;

use clap::Subcommand;

use crate::client::{login, Client, ClientError, Login};

/// Where the API server is and who we are to it. Global: they may be given
/// anywhere on the command line.
#[derive(Debug, Default, clap::Args)]
pub struct ServerFlags {
    /// API server; with it, `base` and `pod` go to that server [default: the stored login, else localhost]
    #[arg(long, global = true, env = "JETPACK_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// API port [default: the stored login, else 8080]
    #[arg(long, global = true, value_name = "PORT")]
    pub port: Option<u16>,
    /// API user [default: the stored login]
    #[arg(long, global = true, env = "JETPACK_USERNAME", value_name = "USER")]
    pub username: Option<String>,
    /// API password (or JETPACK_PASSWORD); for `user add`, the new user's password
    #[arg(long, global = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Talk plain HTTP to the API server
    #[arg(long, global = true)]
    pub notls: bool,
    /// Do not verify the API server's TLS certificate
    #[arg(long = "tlsInsecureSkipVerify", global = true)]
    pub tls_insecure_skip_verify: bool,
    /// Trust this PEM certificate (the server's <conf dir>/jetpack/cert.pem) instead of the usual roots
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

impl ServerFlags {
    /// The flags, with JETPACK_PASSWORD read here rather than by clap: the
    /// global `--password` is also `user add`'s, and an API password in the
    /// environment must not silently become a new user's password.
    pub(super) fn overrides(&self) -> login::Overrides {
        login::Overrides {
            host: self.host.clone(),
            port: self.port,
            username: self.username.clone(),
            password: self.password.clone().or_else(|| {
                std::env::var("JETPACK_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty())
            }),
            notls: self.notls,
            insecure: self.tls_insecure_skip_verify,
            cacert: self.cacert.clone(),
        }
    }

    /// The login to use: these flags over the stored one.
    pub(super) fn login(&self) -> Result<Login, ClientError> {
        let stored = login::load(&login::path()?)?;
        Ok(Login::resolve(&self.overrides(), stored))
    }

    pub(super) fn connect(&self) -> Result<Client, ClientError> {
        Client::new(&self.login()?)
    }
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Check credentials with the API server and store them for later commands
    Login,
    /// The API server's name, version, uptime and features
    #[command(alias = "serverinfo")]
    Info,
    /// List uplinks
    Uplinks,
    /// Create an uplink from a JSON file, or replace the one with its name
    PushUplink {
        /// `{name, url, token?, tag?, verify?, ...}` (an inspect-uplink -o json file will do)
        file: PathBuf,
    },
    /// Show an uplink
    InspectUplink {
        /// Id, name or id prefix
        id: String,
    },
    /// Delete an uplink
    DeleteUplink {
        /// Id, name or id prefix
        id: String,
    },
    /// List NaCls
    Nacls,
    /// Store a NaCl file under a name (replacing that NaCl's content if it
    /// exists); with BUILDER, only once that builder's own tool finds it valid
    PushNacl {
        /// The NaCl text (UTF-8)
        file: PathBuf,
        /// Validate with this builder first (id or prefix)
        builder: Option<String>,
        /// The NaCl's name
        #[arg(long)]
        name: String,
        /// Store it even if jetpack's checker finds errors in it
        #[arg(long)]
        force: bool,
    },
    /// A NaCl's text, to stdout or a file
    PullNacl {
        /// Id, name or id prefix
        id: String,
        /// Write it here instead of stdout
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Show a NaCl's metadata
    InspectNacl {
        /// Id, name or id prefix
        id: String,
    },
    /// Delete a NaCl
    DeleteNacl {
        /// Id, name or id prefix
        id: String,
    },
    /// List the ISO store
    Isos,
    /// Store an ISO file on the server
    PushIso {
        /// The ISO file
        file: PathBuf,
        /// Its name in the store
        #[arg(long)]
        name: String,
    },
    /// Delete an ISO (refused while an OS image is made from it)
    DeleteIso {
        /// Its name in the store
        name: String,
    },
    /// List the microkernel store (kernels, initrds, squashfs and overlay images)
    Microkernels,
    /// Store a microkernel file on the server
    PushMicrokernel {
        /// The file
        file: PathBuf,
        /// Its name in the store
        #[arg(long)]
        name: String,
    },
    /// Delete a microkernel file
    DeleteMicrokernel {
        /// Its name in the store
        name: String,
    },
    /// List OS images (ISOs extracted for booting machines)
    Osimages,
    /// Make an OS image from an ISO: a stored one, a URL, a file here, or a path on the server
    #[command(group = clap::ArgGroup::new("from").required(true).args(["iso", "url", "file", "path"]))]
    AddOsimage {
        /// The OS image's name
        name: String,
        /// Its version
        version: String,
        /// An ISO of the server's store
        #[arg(long)]
        iso: Option<String>,
        /// An http(s) URL the server downloads
        #[arg(long)]
        url: Option<String>,
        /// Refuse the download unless its sha256 is this
        #[arg(long, requires = "url")]
        sha256: Option<String>,
        /// An ISO file here, uploaded
        #[arg(long)]
        file: Option<PathBuf>,
        /// An ISO file on the server
        #[arg(long)]
        path: Option<String>,
        /// Follow the job until the OS image is ready (or failed)
        #[arg(long)]
        wait: bool,
    },
    /// Delete an OS image and its contents
    DeleteOsimage {
        /// The OS image's name
        name: String,
        /// Its version
        version: String,
    },
    /// List images
    Images,
    /// Upload an image (an IncludeOS ELF binary)
    PushImage {
        /// The ELF binary
        file: PathBuf,
        /// The image's name
        #[arg(long)]
        name: String,
        /// The image's tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// Download an image's binary into FILE, or with --disk a bootable
    /// disk made of it for a hypervisor
    PullImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
        /// Where to write it (replaced only once the download is complete)
        #[arg(required_unless_present_any = ["disk", "file_flag"], conflicts_with = "file_flag")]
        file: Option<PathBuf>,
        /// Where to write it (with --disk, the default is NAME-TAG-VERSION.EXT here)
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file_flag: Option<PathBuf>,
        /// A GRUB-bootable disk: raw | qcow2 | vmdk | vdi | iso
        #[arg(long, value_name = "FORMAT")]
        disk: Option<String>,
    },
    /// Show an image's metadata
    InspectImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
    },
    /// Delete an image
    DeleteImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
    },
    /// List instances: the IncludeOS unikernels known through the hangar
    Instances {
        /// Only those with this status: connected, disconnected, connecting or unknown
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
    },
    /// Instances whose id, alias, description, tag, version, service, image, addresses or devices contain TERM
    Search {
        /// Case-insensitive
        term: String,
    },
    /// Show an instance in full (JSON): with its last IDENT, UPLINK echo and STATS
    InspectInstance {
        /// Id, alias or id prefix
        id: String,
    },
    /// Set an instance's alias (and description)
    InstanceAlias {
        /// Id, alias or id prefix
        id: String,
        /// The new alias; "" clears it
        alias: String,
        /// Also set its description ("" clears it)
        #[arg(long)]
        description: Option<String>,
    },
    /// Forget instances and what is stored of them (none unless all exist)
    DeleteInstance {
        /// Ids, aliases or id prefixes
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Launch an image in a pod of its own under a hypervisor; prints the instance's id
    Launch {
        /// qemu or bhyve (the host's by default)
        #[arg(long, value_name = "HV")]
        hypervisor: Option<String>,
        /// MiB of memory (launch.memory by default)
        #[arg(long, value_name = "MIB")]
        memory: Option<u64>,
        #[arg(long, value_name = "N")]
        cpus: Option<u32>,
        /// Its alias
        #[arg(long, value_name = "ALIAS")]
        name: Option<String>,
        /// no (default), on-failure or always
        #[arg(long, value_name = "POLICY")]
        restart: Option<String>,
        /// [ADDR:]HOSTPORT:PORT[/tcp|udp], repeatable
        #[arg(long, value_name = "SPEC")]
        publish: Vec<String>,
        /// The instance network's gateway (10.0.0.1/24 by default)
        #[arg(long, value_name = "CIDR")]
        net: Option<String>,
        /// Then print its console until interrupted
        #[arg(long)]
        attach: bool,
        /// Put it on another host than launches with the same TAG, as far as there are hosts
        #[arg(long, value_name = "TAG")]
        spread: Option<String>,
        /// Launch it on this host only (several hosts on one store)
        #[arg(long = "host-affinity", value_name = "HOST")]
        host_affinity: Option<String>,
        /// A kernel in the server's launch.kernels folder, instead of an image
        #[arg(long, value_name = "NAME", conflicts_with = "image")]
        kernel: Option<String>,
        /// An initrd in the same folder (with --kernel)
        #[arg(long, value_name = "NAME", requires = "kernel")]
        initrd: Option<String>,
        /// The kernel's or the image's command line
        #[arg(long, value_name = "ARGS")]
        append: Option<String>,
        /// An image (id, id prefix or tag), or a local ELF file (pushed first)
        #[arg(required_unless_present = "kernel")]
        image: Option<String>,
    },
    /// A launched instance's serial console
    InstanceConsole {
        /// Id, alias or id prefix
        id: String,
        /// Keep printing new output until interrupted
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop a launched instance (its restart policy waits until it is started)
    Stop {
        /// Id, alias or id prefix
        id: String,
    },
    /// Start a stopped launched instance
    Start {
        /// Id, alias or id prefix
        id: String,
    },
    /// Stop and start a launched instance: it boots the image it last ran
    Restart {
        /// Id, alias or id prefix
        id: String,
    },
    /// An instance's recent log output, as it sent it
    InstanceLogs {
        /// Id, alias or id prefix
        id: String,
        /// Keep printing new output until interrupted (or the instance is deleted)
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// List the panics an instance reported
    InstancePanics {
        /// Id, alias or id prefix
        id: String,
    },
    /// The text of one of an instance's panics
    InstancePanic {
        /// Id, alias or id prefix
        id: String,
        /// As instance-panics lists it
        panic_id: String,
    },
    /// Live-update an instance with an image (a job); prints the job's id
    Deploy {
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
        /// Deploy even when the image's uplink URL differs from the instance's or is unknown
        #[arg(long)]
        force: bool,
        /// Seconds for the instance to come back with the image [default: 120]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// Id, alias or id prefix
        instance: String,
        /// Image id (SHA-1) or a prefix of it
        image: String,
    },
    /// Bob providers and their bobs: the candidate builders
    Bob {
        #[command(subcommand)]
        cmd: BobCommand,
    },
    /// Netboot: which image a machine booting with iPXE gets, by its MAC
    Netboot {
        #[command(subcommand)]
        cmd: NetbootCommand,
    },
    /// List the fleet's jetpack hosts (up, draining or down)
    Hosts,
    /// One of the fleet's jetpack hosts: show, drain, forget
    Host {
        #[command(subcommand)]
        cmd: HostCommand,
    },
    /// List builders
    Builders,
    /// Show a builder
    InspectBuilder {
        /// Builder id or a prefix of it
        id: String,
    },
    /// Delete a builder and its base (refused while a build uses it)
    DeleteBuilder {
        /// Builder id or a prefix of it
        id: String,
    },
    /// Build an image of SERVICE with BUILDER (a job); prints the job's id,
    /// or with --waitAndPrint the image's
    Build {
        /// The service, e.g. Starbase
        service: String,
        /// Builder id or a prefix of it
        builder: String,
        /// NaCl id, name or id prefix
        #[arg(long)]
        nacl: Option<String>,
        /// Or a NaCl file, sent with the request
        #[arg(long = "nacl-file", value_name = "FILE", conflicts_with = "nacl")]
        nacl_file: Option<PathBuf>,
        /// Uplink id, name or id prefix [default: the default uplink; with
        /// --launch, the launch uplink]
        #[arg(long)]
        uplink: Option<String>,
        /// Image tag [default: the uplink's]
        #[arg(long)]
        tag: Option<String>,
        /// Image name [default: the NaCl's name]
        #[arg(long)]
        name: Option<String>,
        /// The jetpack host that must run it, when several share the fleet [default: the first with a free build slot]
        #[arg(long = "host-affinity", value_name = "HOST")]
        host_affinity: Option<String>,
        /// Follow the build's log (to stderr) and print the image id; exit 1 if it failed
        #[arg(long = "waitAndPrint")]
        wait_and_print: bool,
        /// Build it to run on this host (the `launch` uplink unless --uplink)
        /// and launch it with the defaults: prints the instance's id
        #[arg(long)]
        launch: bool,
    },
    /// Rebuild an instance's image with a builder (its own uplink and tag)
    /// and live-update it: one job
    Upgrade {
        /// Id, alias or id prefix
        instance: String,
        /// Builder id or a prefix of it
        #[arg(long)]
        builder: String,
        /// NaCl [default: the one of the image it runs]
        #[arg(long)]
        nacl: Option<String>,
        /// Service [default: the one it reports]
        #[arg(long)]
        service: Option<String>,
        /// Deploy even when the deploy check warns
        #[arg(long)]
        force: bool,
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
    },
    /// List jobs (newest first)
    Jobs,
    /// Print the server's events as they happen (instance status changes
    /// and counts, panics, jobs, pods) until interrupted
    Events,
    /// A live view of the fleet: counts per status, the busiest docked
    /// instances by a stat, recent panics (Ctrl-C quits)
    Top {
        /// The stat that ranks the instances (a dotted STATS name)
        #[arg(long, default_value = "eth0.ethernet.packets_rx")]
        stat: String,
        /// How many docked instances to show (1..=1000)
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print one frame and exit (what a non-terminal stdout gets anyway)
        #[arg(long)]
        once: bool,
    },
    /// Show a job, or follow its log until it ends (exit 0 if it succeeded)
    Job {
        /// Job id or a prefix of it
        id: String,
        /// Print its log as it grows until the job ends
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BobCommand {
    /// Refresh a provider's list of bobs (every provider's without PROVIDER)
    Update { provider: Option<String> },
    /// List the bobs of a provider (of every provider without PROVIDER)
    List { provider: Option<String> },
    /// Fetch, verify and import a bob as a builder (a job); prints the job's id
    Prepare {
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
        /// Prepare it on this host only (several hosts on one store)
        #[arg(long = "host-affinity", value_name = "HOST")]
        host_affinity: Option<String>,
        provider: String,
        /// Bob id, as `bob list` shows it
        bob: String,
    },
    /// List bob providers
    Providers,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Show a host
    Show { name: String },
    /// Place no new work on a host (`--undo`: place work on it again)
    Drain {
        name: String,
        #[arg(long)]
        undo: bool,
    },
    /// Forget a host that is down (refused while it beats)
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum NetbootCommand {
    /// Map a machine (by MAC) to an image or a tag (its newest image at boot time)
    #[command(group = clap::ArgGroup::new("what").required(true).args(["tag", "image"]))]
    Set {
        /// aa:bb:cc:dd:ee:ff (or with '-', any case)
        mac: String,
        /// Boot the newest image with this tag
        #[arg(long)]
        tag: Option<String>,
        /// Boot this image (id or unique prefix)
        #[arg(long)]
        image: Option<String>,
        /// The kernel command line
        #[arg(long, allow_hyphen_values = true)]
        append: Option<String>,
    },
    /// List netboot mappings
    List,
    /// Show a machine's mapping
    Show { mac: String },
    /// Delete a machine's mapping
    Rm { mac: String },
}
