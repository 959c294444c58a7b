//! `files.*`: the southbound file server booting machines read from (its
//! address or `off`, who may reach it, TLS, its connection caps).

use std::net::SocketAddr;

use super::values::Values;
use super::ConfigError;
use crate::runtime::fetch_policy::Net;

#[derive(Debug, Clone, PartialEq)]
pub struct FilesConfig {
    /// None: `files.listen = off`.
    pub listen: Option<SocketAddr>,
    /// Source ranges allowed in; empty: every source.
    pub allow: Vec<Net>,
    /// Serve over the API's certificate (booting firmware rarely can).
    pub tls: bool,
    pub max_conns: usize,
    pub max_conns_per_ip: usize,
}

pub(super) fn read(v: &Values) -> Result<FilesConfig, ConfigError> {
    let listen = match v.str("files.listen") {
        "off" => None,
        s => Some(s.parse().map_err(|_| {
            v.bad(
                "files.listen",
                "expected ADDR:PORT (e.g. 0.0.0.0:9091) or off".into(),
            )
        })?),
    };
    let mut allow = Vec::new();
    for entry in v.str("files.allow").split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        // A bad entry is an error, not skipped: a typo must not open the
        // server to everyone.
        allow.push(
            Net::parse(entry).map_err(|why| v.bad("files.allow", format!("{entry:?} {why}")))?,
        );
    }
    Ok(FilesConfig {
        listen,
        allow,
        tls: v.switch("files.tls")?,
        max_conns: v.positive("files.maxconns")? as usize,
        max_conns_per_ip: v.positive("files.maxconnsperip")? as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load_text;

    #[test]
    fn files_keys_are_typed() {
        let c = load_text("", &[]).unwrap();
        assert_eq!(c.files.listen, Some("0.0.0.0:9091".parse().unwrap()));
        assert!(c.files.allow.is_empty() && !c.files.tls);
        let c = load_text(
            "files.listen = off\nfiles.allow = 10.0.0.0/8, 192.168.1.7\nfiles.tls = on\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.files.listen, None);
        assert_eq!(c.files.allow.len(), 2);
        assert!(c.files.allow[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!c.files.allow[0].contains("11.1.2.3".parse().unwrap()));
        assert!(c.files.tls);
        for bad in [
            "files.listen = 9091\n",
            "files.allow = 10.0.0.1/8\n",
            "files.allow = everyone\n",
            "files.tls = maybe\n",
            "files.maxconns = 0\n",
        ] {
            let e = load_text(bad, &[]).unwrap_err().to_string();
            assert!(e.contains("files."), "{bad}: {e}");
        }
    }
}
