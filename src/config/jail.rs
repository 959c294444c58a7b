//! The pods' jails (`jail.*`): the driver, the interface and address range
//! of the pod network (`Ipv4Net`), jail names, FreeBSD's securelevel and
//! devfs ruleset, the stop timeout, and the extra jail(2) parameters
//! (`jail.param.*`, kept as checked `JailParam`s for the drivers).

use std::fmt;
use std::net::Ipv4Addr;

use super::keys::JAIL_PARAM_PREFIX;
use super::values::Values;
use super::ConfigError;
use crate::names::JailParam;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailsDriver {
    Jail,
    Linux,
}

/// This section's fields of `Config`, under the same names.
pub(super) struct Jail {
    pub jails_driver: JailsDriver,
    pub jail_interface: String,
    pub ip4_range: Ipv4Net,
    pub jail_name_prefix: String,
    pub jail_securelevel: i32,
    pub jail_devfs_ruleset: u32,
    pub jail_stop_timeout: u64,
    pub jail_autostart: bool,
    pub jail_params: Vec<JailParam>,
}

pub(super) fn read(v: &Values) -> Result<Jail, ConfigError> {
    let jails_driver = match v.str("jail.driver") {
        "jail" => JailsDriver::Jail,
        "linux" => JailsDriver::Linux,
        "auto" | "" if cfg!(target_os = "freebsd") => JailsDriver::Jail,
        "auto" | "" => JailsDriver::Linux,
        _ => return Err(v.bad("jail.driver", "expected jail, linux or auto".into())),
    };
    let ip4_range =
        Ipv4Net::parse(v.str("jail.ip4.range")).map_err(|w| v.bad("jail.ip4.range", w))?;
    let interface = v.str("jail.interface").to_string();
    if interface.is_empty()
        || interface.len() > 15
        || !interface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(v.bad(
            "jail.interface",
            "expected an interface name (1-15 letters, digits)".into(),
        ));
    }
    let prefix = v.str("jail.namePrefix").to_string();
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
    {
        return Err(v.bad(
            "jail.namePrefix",
            "only letters, digits, '-', '_' and ':'".into(),
        ));
    }
    // In key order; the first bad one is the error.
    let jail_params = v
        .with_prefix(JAIL_PARAM_PREFIX)
        .map(|(key, name, value)| {
            JailParam::new(name, value).map_err(|why| v.bad(key, why.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let jail_securelevel = match v.str("jail.securelevel").parse::<i32>() {
        Ok(n) if (-1..=3).contains(&n) => n,
        _ => return Err(v.bad("jail.securelevel", "expected -1..=3".into())),
    };
    Ok(Jail {
        jails_driver,
        jail_interface: interface,
        ip4_range,
        jail_name_prefix: prefix,
        jail_securelevel,
        jail_devfs_ruleset: v.number("jail.devfs.ruleset")? as u32,
        jail_stop_timeout: v.number("jail.stop.timeout")?,
        jail_autostart: v.switch("jail.autostart")?,
        jail_params,
    })
}

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn parse(s: &str) -> Result<Ipv4Net, String> {
        let (a, p) = s.split_once('/').ok_or("expected ADDRESS/PREFIX")?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err("prefix length must be 8..=30".into());
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(format!(
                "host bits set; the network is {}/{prefix}",
                net.network()
            ));
        }
        Ok(net)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The host's own address in the range: the first usable one.
    pub fn host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    /// Addresses pods may get: all usable ones after the host's.
    pub fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network()) + 2;
        let last = u32::from(self.network()) | !self.mask(); // broadcast
        (first..last).map(Ipv4Addr::from)
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ipv4Net::parse(&s)
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_text;

    #[test]
    fn address_range() {
        let n = Ipv4Net::parse("10.5.0.0/29").unwrap();
        assert_eq!(n.host(), Ipv4Addr::new(10, 5, 0, 1));
        let pods: Vec<_> = n.pod_addresses().collect();
        assert_eq!(pods.first(), Some(&Ipv4Addr::new(10, 5, 0, 2)));
        assert_eq!(pods.last(), Some(&Ipv4Addr::new(10, 5, 0, 6)));
        assert_eq!(pods.len(), 5);
    }

    #[test]
    fn the_first_bad_jail_param_is_the_error() {
        let e = load_text(
            "jail.param.allow.mount = 1\njail.param.name = x\njail.param.jid = 7\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"jid\""), "{e}");
        assert!(e.contains("jetpack.conf:3"), "{e}");
    }
}
