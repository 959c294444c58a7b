//! Every key jetpack knows (the `KEYS` table: name, default, meaning), the
//! prefixes of the keys that are families (`jail.param.*`,
//! `bob.provider.*`), and the sample file made from them. Adding a key
//! starts here; its typed reading goes in its area's section.

use super::parse::{Entry, Origin};

/// Every key jetpack knows, with its default and what it means; the sample
/// file and `jetpack config` are made from this table.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "root.zfs",
        "zroot/jetpack",
        "root dataset (zfs and zfs-cli drivers)",
    ),
    (
        "root.zfs.mountpoint",
        "/var/jetpack",
        "where the root dataset (or the dir driver's tree) is mounted",
    ),
    (
        "datasets.driver",
        "auto",
        "zfs | zfs-cli | dir | auto (zfs when the pool of root.zfs exists, else dir)",
    ),
    (
        "jail.driver",
        "auto",
        "jail (FreeBSD) | linux | auto (by platform)",
    ),
    (
        "jail.interface",
        DEFAULT_INTERFACE,
        "interface that carries pod addresses: lo1 on FreeBSD, a bridge on Linux",
    ),
    (
        "jail.ip4.range",
        "172.23.0.0/24",
        "pod address range; the first address is the host's (the MDS listens there)",
    ),
    (
        "jail.namePrefix",
        "jetpack-",
        "prefix of jail names; the pod's uuid follows",
    ),
    ("jail.securelevel", "2", "securelevel of FreeBSD jails"),
    ("jail.devfs.ruleset", "4", "devfs ruleset of FreeBSD jails"),
    (
        "jail.stop.timeout",
        "10",
        "seconds between SIGTERM and SIGKILL when a pod is stopped",
    ),
    (
        "jail.autostart",
        "on",
        "`jetpack serve` starts the pods marked --autostart when it starts",
    ),
    (
        "launch.base",
        "qemu",
        "base instance pods are cloned from (images/qemu/make.sh makes it)",
    ),
    (
        "launch.chainloader",
        "/usr/share/jetpack/chainloader",
        "path in that base of the chainloader that boots ELF64 images",
    ),
    (
        "launch.devfs.ruleset",
        "20",
        "devfs ruleset of instance jails (FreeBSD): unhides vmm, nmdm and tap",
    ),
    (
        "launch.memory",
        "128",
        "MiB of memory of an instance by default",
    ),
    (
        "launch.accel",
        "auto",
        "qemu's accelerator: kvm | tcg | auto (kvm when /dev/kvm opens)",
    ),
    ("launch.cpus", "1", "cpus of an instance by default"),
    (
        "launch.kernels",
        "${data.dir}/kernels",
        "folder of kernels and initrds that launches name (the Linux boot path)",
    ),
    (
        "launch.console.bytes",
        "1048576",
        "size of an instance's console log before it is rotated",
    ),
    ("mds.port", "1104", "metadata service port"),
    ("mds.user", "_jetpack", "user the metadata service runs as"),
    (
        "mds.signing-key",
        "",
        "hex key (>= 32 bytes) the MDS signs pod data with",
    ),
    (
        "mds.token-key",
        "",
        "hex key (>= 32 bytes) pod tokens are derived with",
    ),
    (
        "data.dir",
        "${root.zfs.mountpoint}",
        "state database and blobs",
    ),
    (
        "store.driver",
        "sqlite",
        "where the fleet's tables live: sqlite (this host's state database) | postgres (one PostgreSQL several jetpack hosts share)",
    ),
    (
        "store.url",
        "",
        "postgres://USER@HOST:PORT/DATABASE (store.driver = postgres; no password in it)",
    ),
    (
        "store.password.file",
        "",
        "a file (mode 0600) holding the database password; empty: PGPASSWORD, else none",
    ),
    ("store.tls", "off", "TLS to the database, its certificate verified: on | off"),
    (
        "store.tls.ca",
        "",
        "CA certificate (PEM) the database's certificate is verified with; empty: the system's",
    ),
    ("store.pool", "16", "database connections at most"),
    (
        "store.timeout",
        "30",
        "seconds a statement, or a wait for a free connection, may take",
    ),
    (
        "host.name",
        "",
        "this server's name among the fleet's hosts; empty: the machine's host name",
    ),
    ("host.heartbeat", "5", "seconds between this server's heartbeats in the store"),
    (
        "host.down",
        "15",
        "seconds without a heartbeat after which a host is down",
    ),
    (
        "conf.dir",
        "/usr/local/etc",
        "the folder of jetpack.conf (set from the file's location)",
    ),
    (
        "server.name",
        "jetpack",
        "server name shown by /v1/info (--name)",
    ),
    (
        "server.listen",
        "0.0.0.0",
        "address the API and the hangar listen on",
    ),
    ("server.port", "8080", "API port (--serverport)"),
    (
        "server.tls",
        "on",
        "TLS on the API: on | off (--noservertls)",
    ),
    (
        "server.auth",
        "basic",
        "API auth: basic | none (--serverauth)",
    ),
    (
        "server.dir",
        "${conf.dir}/jetpack",
        "htpasswd, cert.pem, key.pem and admin.password (made on first start)",
    ),
    (
        "server.htpasswd",
        "${server.dir}/htpasswd",
        "users (htpasswd -B format)",
    ),
    (
        "server.certfile",
        "${server.dir}/cert.pem",
        "TLS certificate chain, PEM (--certfile)",
    ),
    (
        "server.keyfile",
        "${server.dir}/key.pem",
        "TLS private key, PEM (--keyfile)",
    ),
    (
        "server.maxbody",
        "1048576",
        "largest JSON or text request body, bytes (413 beyond)",
    ),
    (
        "server.maxupload",
        "17179869184",
        "largest image or base upload, bytes (413 beyond)",
    ),
    (
        "server.loglines",
        "1000",
        "recent log lines kept for /v1/log",
    ),
    (
        "server.verboselogging",
        "off",
        "debug logging: on | off (--verboselogging)",
    ),
    ("uplink.port", "9090", "hangar port (--uplinkport)"),
    (
        "uplink.tls",
        "on",
        "TLS on the hangar: on | off (--nouplinktls)",
    ),
    (
        "uplink.certfile",
        "${server.dir}/hangar-cert.pem",
        "hangar TLS certificate, PEM, RSA (IncludeOS needs AES256-SHA)",
    ),
    (
        "uplink.keyfile",
        "${server.dir}/hangar-key.pem",
        "hangar TLS private key, PEM",
    ),
    (
        "uplink.maxtransport",
        "16777216",
        "largest transport accepted from an instance, bytes (a longer one closes its dock)",
    ),
    (
        "uplink.authrate",
        "50",
        "auth requests per second allowed per source address (429 beyond)",
    ),
    (
        "uplink.authburst",
        "100",
        "auth requests one address may make at once before uplink.authrate applies",
    ),
    (
        "uplink.statshistory",
        "10",
        "STATS documents kept in memory per instance besides the latest",
    ),
    (
        "uplink.logbytes",
        "16384",
        "LOG bytes kept in memory per instance",
    ),
    (
        "uplink.ping",
        "5",
        "seconds between pings to docked instances (they expect one within 10)",
    ),
    (
        "builders.dockerhub",
        "on",
        "the default bob provider DockerHub (Docker Hub's includeos/builder, as in Mothership); off removes it",
    ),
    (
        "build.concurrency",
        "2",
        "builds and builder validations running at once; the rest queue",
    ),
    (
        "build.timeout",
        "1800",
        "seconds a build may run before its pod is killed",
    ),
    (
        "build.validate.timeout",
        "60",
        "seconds a builder's NaCl validation may run",
    ),
    (
        "uplink.url",
        "",
        "URL instances reach the hangar at [default: http(s)://HOSTNAME:uplink.port]",
    ),
    (
        "server.timeout.handshake",
        "10",
        "seconds a client has for the API's TLS handshake",
    ),
    (
        "server.timeout.head",
        "10",
        "seconds a client has to send a whole request head, from its first byte",
    ),
    (
        "server.timeout.idle",
        "60",
        "seconds an API connection may wait idle between requests",
    ),
    (
        "server.timeout.body",
        "30",
        "seconds a request body may stall (no byte) before the request fails",
    ),
    (
        "server.minbodyrate",
        "1024",
        "bytes per second a request body must average once it has run server.timeout.body",
    ),
    (
        "server.maxconns",
        "auto",
        "API connections at once (auto: a quarter of the descriptors, at most 4096)",
    ),
    (
        "server.maxconnsperip",
        "64",
        "API connections at once from one source address",
    ),
    (
        "uplink.maxconns",
        "auto",
        "hangar connections at once (auto: the descriptors left after the API's and a reserve)",
    ),
    (
        "uplink.maxconnsperip",
        "1024",
        "hangar connections at once from one source address",
    ),
    (
        "server.login.failrate",
        "1",
        "failed logins per second allowed per source address and per user name (429 beyond)",
    ),
    (
        "server.login.failburst",
        "10",
        "failed logins one address or user name may make at once before the rate applies",
    ),
    (
        "server.login.workers",
        "auto",
        "bcrypt verifications at once (auto: half the cores, at least 1)",
    ),
    (
        "metrics.auth",
        "api",
        "who may read /metrics: api (the API's auth, server.auth) | none (any scraper that reaches it)",
    ),
    (
        "metrics.listen",
        "",
        "ADDR:PORT of a separate plain-HTTP listener serving /metrics alone (empty: none)",
    ),
    (
        "metrics.instances.max",
        "1000",
        "instances whose per-instance series (jetpack_instance_*) a scrape shows (?instances=all: every one)",
    ),
    (
        "metrics.instances.stats",
        "500",
        "stats per instance a scrape shows (STATS entries beyond are dropped and counted)",
    ),
    (
        "metrics.reporter",
        "none",
        "push figures to: none | influxdb (Mothership's: INFLUXDB_ADDR, INFLUXDB_USERNAME, INFLUXDB_PASSWORD; databases instance_stats and mothership)",
    ),
    (
        "metrics.interval",
        "10",
        "seconds between the server's figures pushed by metrics.reporter",
    ),
    (
        "files.listen",
        "0.0.0.0:9091",
        "ADDR:PORT of the southbound file server booting machines read from (read-only, no auth) | off",
    ),
    (
        "files.allow",
        "",
        "source ranges (CIDR) or addresses allowed to the file server, comma-separated (empty: any; others get 403)",
    ),
    (
        "files.tls",
        "off",
        "serve files over TLS with the API's certificate (booting firmware rarely speaks TLS)",
    ),
    (
        "files.maxconns",
        "1024",
        "file server connections at once",
    ),
    (
        "files.maxconnsperip",
        "256",
        "file server connections at once from one source address",
    ),
    (
        "imageservice.port",
        "off",
        "port of the RackHD image-service compatibility listener (its scripts used 7070) | off",
    ),
    (
        "imageservice.listen",
        "127.0.0.1",
        "address the image-service compatibility listener binds",
    ),
    (
        "imageservice.auth",
        "basic",
        "image-service listener auth: basic (the API's users) | none (its scripts as they are)",
    ),
    (
        "imageservice.tls",
        "${server.tls}",
        "image-service listener over the API's certificate: on | off (plain-http scripts); follows server.tls",
    ),
    (
        "imageservice.allow",
        "",
        "source ranges (CIDR) or addresses allowed to the image-service listener, comma-separated (empty: any; others get 403)",
    ),
    (
        "imageservice.maxconns",
        "256",
        "image-service listener connections at once",
    ),
    (
        "imageservice.maxconnsperip",
        "64",
        "image-service listener connections at once from one source address",
    ),
    (
        "bootfiles.maxupload",
        "17179869184",
        "largest ISO, microkernel or OS image upload, bytes (413 beyond)",
    ),
    (
        "bootfiles.fetch.stall",
        "60",
        "seconds an OS image download may receive nothing before it fails",
    ),
    (
        "base.import.allow",
        "",
        "private networks (CIDR) and hosts base imports may fetch from, comma-separated",
    ),
    (
        "disks.grub.dir",
        super::disks::DEFAULT_GRUB_DIR,
        "GRUB's i386-pc directory for hypervisor disks: /usr/lib/grub/i386-pc (Debian's grub-pc-bin) | /usr/local/lib/grub/i386-pc (FreeBSD's grub2-pcbsd)",
    ),
    (
        "disks.grub.mkrescue",
        "grub-mkrescue",
        "the grub-mkrescue program that makes hypervisor disks (a name on PATH or a path)",
    ),
    ("disks.xorriso", "xorriso", "the xorriso program grub-mkrescue runs"),
    (
        "disks.qemu-img",
        "qemu-img",
        "the qemu-img program that converts disks to qcow2, vmdk and vdi",
    ),
    (
        "disks.timeout",
        "120",
        "seconds one tool making a disk may run before it is killed",
    ),
];

#[cfg(target_os = "freebsd")]
const DEFAULT_INTERFACE: &str = "lo1";
#[cfg(not(target_os = "freebsd"))]
const DEFAULT_INTERFACE: &str = "jetpack0";

/// Keys under this prefix are extra jail(2) parameters, passed as they are.
pub const JAIL_PARAM_PREFIX: &str = "jail.param.";

/// `bob.provider.NAME = KIND LOCATION` declares a bob provider: `local DIR`,
/// `http URL-OF-INDEX` or `oci http(s)://REGISTRY/REPOSITORY`.
pub const BOB_PROVIDER_PREFIX: &str = "bob.provider.";

/// The defaults of every key, before any file or override.
pub(super) fn defaults() -> Vec<Entry> {
    KEYS.iter()
        .map(|(k, v, _)| (k.to_string(), v.to_string(), Origin::Default))
        .collect()
}

/// Whether `key` is one of `KEYS` or a well-formed member of a family.
pub(super) fn is_known_key(key: &str) -> bool {
    KEYS.iter().any(|(k, _, _)| *k == key)
        || key.strip_prefix(JAIL_PARAM_PREFIX).is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
        })
        || key
            .strip_prefix(BOB_PROVIDER_PREFIX)
            .is_some_and(|p| crate::names::Name::new("bob provider name", p).is_ok())
}

/// The text of jetpack.conf.sample: every key, commented out at its default.
pub fn sample() -> String {
    let mut s = String::from(
        "# jetpack.conf: key = value; '#' starts a comment; ${key} expands to another\n\
         # key's value; when a key is given twice the later one wins. Every key is\n\
         # shown here at its default. Extra FreeBSD jail parameters: jail.param.NAME = VALUE\n\
         # (for example jail.param.allow.raw_sockets = 1). Bob providers, the sources of\n\
         # builders: bob.provider.NAME = local DIR | http URL-OF-INDEX | oci URL-OF-REPOSITORY\n\
         # (for example bob.provider.includeos = oci https://registry-1.docker.io/includeos/builder).\n",
    );
    for (k, v, help) in KEYS {
        // The defaults that differ by platform are shown for both.
        let v = if *k == "jail.interface" {
            "lo1 (FreeBSD) | jetpack0 (Linux)"
        } else if *k == "disks.grub.dir" {
            "/usr/local/lib/grub/i386-pc (FreeBSD) | /usr/lib/grub/i386-pc (Linux)"
        } else {
            v
        };
        s.push_str(&format!("\n# {help}\n# {k} = {v}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lists_every_key_and_matches_the_shipped_file() {
        let s = sample();
        for (k, _, _) in KEYS {
            assert!(s.contains(&format!("# {k} = ")), "{k} missing");
        }
        let shipped = include_str!("../../jetpack.conf.sample");
        assert_eq!(
            shipped, s,
            "jetpack.conf.sample is stale: regenerate it with `jetpack config --sample`"
        );
    }
}
