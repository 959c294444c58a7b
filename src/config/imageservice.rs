//! `imageservice.*`: the opt-in listener that answers RackHD
//! image-service's northbound routes (its port or `off`, its address, auth,
//! TLS, who may reach it, its connection caps). Off by default, and when
//! on, secure by default: loopback only, the API's users, the API's TLS.

use std::net::IpAddr;

use super::values::Values;
use super::ConfigError;
use crate::runtime::fetch_policy::Net;

#[derive(Debug, Clone, PartialEq)]
pub struct ImageServiceConfig {
    /// None: `imageservice.port = off` (the default).
    pub port: Option<u16>,
    pub listen: IpAddr,
    /// `basic`: the API's users; false: `none`, anyone who reaches it.
    pub auth: bool,
    /// Over the API's certificate (the default when the API has TLS).
    pub tls: bool,
    /// Source ranges allowed in; empty: every source.
    pub allow: Vec<Net>,
    pub max_conns: usize,
    pub max_conns_per_ip: usize,
}

pub(super) fn read(v: &Values) -> Result<ImageServiceConfig, ConfigError> {
    let port = match v.str("imageservice.port") {
        "off" => None,
        _ => Some(v.port("imageservice.port")?),
    };
    let listen = v.str("imageservice.listen").parse().map_err(|_| {
        v.bad(
            "imageservice.listen",
            "expected an IP address (e.g. 127.0.0.1)".into(),
        )
    })?;
    let auth = match v.str("imageservice.auth") {
        "basic" => true,
        "none" => false,
        _ => return Err(v.bad("imageservice.auth", "expected basic or none".into())),
    };
    let mut allow = Vec::new();
    for entry in v.str("imageservice.allow").split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        // A typo must not open the listener to everyone: an error.
        allow.push(
            Net::parse(entry)
                .map_err(|why| v.bad("imageservice.allow", format!("{entry:?} {why}")))?,
        );
    }
    Ok(ImageServiceConfig {
        port,
        listen,
        auth,
        tls: v.switch("imageservice.tls")?,
        allow,
        max_conns: v.positive("imageservice.maxconns")? as usize,
        max_conns_per_ip: v.positive("imageservice.maxconnsperip")? as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load_text;

    #[test]
    fn imageservice_keys_are_typed_and_off_by_default() {
        let c = load_text("", &[]).unwrap();
        let i = &c.imageservice;
        assert_eq!(i.port, None);
        assert_eq!(i.listen, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
        assert!(i.auth && i.tls && i.allow.is_empty());
        // TLS follows the API's unless set.
        let c = load_text("server.tls = off\n", &[]).unwrap();
        assert!(!c.imageservice.tls);
        let c = load_text(
            "imageservice.port = 7070\nimageservice.listen = 0.0.0.0\nimageservice.auth = none\n\
             imageservice.tls = off\nimageservice.allow = 10.0.0.0/8, 192.168.1.7\n",
            &[],
        )
        .unwrap();
        let i = &c.imageservice;
        assert_eq!(i.port, Some(7070));
        assert!(!i.auth && !i.tls && i.allow.len() == 2);
        assert!(i.allow[0].contains("10.1.2.3".parse().unwrap()));
        for bad in [
            "imageservice.port = 0\n",
            "imageservice.port = on\n",
            "imageservice.listen = localhost\n",
            "imageservice.auth = digest\n",
            "imageservice.tls = maybe\n",
            "imageservice.allow = everyone\n",
            "imageservice.maxconns = 0\n",
        ] {
            let e = load_text(bad, &[]).unwrap_err().to_string();
            assert!(e.contains("imageservice."), "{bad}: {e}");
        }
    }
}
