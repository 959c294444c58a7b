//! Jail parameters: from the jail.conf-style strings of `jail_params` to
//! the names and values jail_set(2) takes, typed the way libjail types
//! them, by asking the kernel (security.jail.param) for each one's kind.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use jail::param::Value;
use jail::StoppedJail;

use crate::runtime::jails::jail_params::jail_params;
use crate::runtime::jails::CellSpec;

const SJPARAM: &str = "security.jail.param";

/// The sysctl kind (CTLTYPE_*) and format of a jail parameter, found the way
/// libjail finds them: the kernel describes every parameter it knows under
/// security.jail.param.
fn param_kind(name: &str) -> io::Result<(libc::c_int, String)> {
    let full = format!("{SJPARAM}.{name}");
    let cname = CString::new(full.as_str())?;
    let mut mib = vec![0 as libc::c_int; libc::CTL_MAXNAME as usize];
    let mut len: libc::size_t = mib.len();
    // SAFETY: mib has room for `len` entries; cname is NUL-terminated.
    if unsafe { libc::sysctlnametomib(cname.as_ptr(), mib.as_mut_ptr(), &mut len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    mib.truncate(len);
    let (kind, format) = oid_format(&mib)?;
    if kind != libc::CTLTYPE_NODE {
        return Ok((kind, format));
    }
    // A parameter with children (allow.mount, ip4, host) is a node whose
    // value is described by an empty-named child registered right before or
    // after it, so numbered one off: libjail looks there too.
    let last = *mib
        .last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let wanted = format!("{full}.");
    for n in [last - 1, last + 1] {
        let mut child = mib.clone();
        child.push(n);
        if oid_name(&child).ok().as_deref() == Some(wanted.as_str()) {
            return oid_format(&child);
        }
    }
    Err(io::Error::from(io::ErrorKind::NotFound))
}

/// Queries the sysctl meta-OID `{0, what, mib...}` into `buf`.
fn sysctl_meta(what: libc::c_int, mib: &[libc::c_int], buf: &mut [u8]) -> io::Result<usize> {
    let mut query = vec![0, what];
    query.extend_from_slice(mib);
    let mut len: libc::size_t = buf.len();
    // SAFETY: query and buf are valid for their lengths; nothing is written.
    let r = unsafe {
        libc::sysctl(
            query.as_ptr(),
            query.len() as libc::c_uint,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len)
}

fn oid_format(mib: &[libc::c_int]) -> io::Result<(libc::c_int, String)> {
    let mut buf = [0u8; 256];
    let len = sysctl_meta(libc::CTL_SYSCTL_OIDFMT, mib, &mut buf)?;
    // A u_int kind, then the format as a C string.
    let (kind, format) = buf[..len]
        .split_at_checked(4)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    let kind =
        u32::from_ne_bytes([kind[0], kind[1], kind[2], kind[3]]) as libc::c_int & libc::CTLTYPE;
    let format = CStr::from_bytes_until_nul(format)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((kind, format))
}

fn oid_name(mib: &[libc::c_int]) -> io::Result<String> {
    let mut buf = [0u8; 1024];
    let len = sysctl_meta(libc::CTL_SYSCTL_NAME, mib, &mut buf)?;
    CStr::from_bytes_until_nul(&buf[..len])
        .map(|s| s.to_string_lossy().into_owned())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `allow.mount.devfs` -> `allow.mount.nodevfs`, `persist` -> `nopersist`.
fn no_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((head, tail)) => format!("{head}.no{tail}"),
        None => format!("no{name}"),
    }
}

/// One parameter as jail_set(2) takes it: the name to send (a boolean is
/// said by its name or its `no` name: the kernel ignores a boolean's value,
/// so `allow.raw_sockets = 0` sent as is would *allow* raw sockets) and a
/// value of the kernel's type for it.
fn typed(name: &str, value: &str) -> Result<(String, Value), String> {
    let (kind, format) = param_kind(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => format!("this kernel has no jail parameter {name}"),
        _ => format!("looking up jail parameter {name}: {e}"),
    })?;
    let bad = |what: &str| format!("jail parameter {name} = {value:?}: expected {what}");
    fn num<T: std::str::FromStr>(
        v: &str,
        what: &str,
        bad: &dyn Fn(&str) -> String,
    ) -> Result<T, String> {
        v.parse().map_err(|_| bad(what))
    }
    let typed = match kind {
        libc::CTLTYPE_INT if format.starts_with('B') => {
            let on = parse_bool(value).ok_or_else(|| bad("a boolean (0 or 1)"))?;
            let sent = if on { name.to_string() } else { no_name(name) };
            return Ok((sent, Value::Int(1)));
        }
        libc::CTLTYPE_INT if format == "E,jailsys" => Value::Int(match value {
            "disable" => 0,
            "new" => 1,
            "inherit" => 2,
            v => num(v, "disable, new or inherit", &bad)?,
        }),
        libc::CTLTYPE_INT => Value::Int(num(value, "an integer", &bad)?),
        libc::CTLTYPE_UINT => Value::Uint(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_LONG => Value::Long(num(value, "an integer", &bad)?),
        libc::CTLTYPE_ULONG => Value::Ulong(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_S64 => Value::S64(num(value, "an integer", &bad)?),
        libc::CTLTYPE_U64 => Value::U64(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_S8 => Value::S8(num(value, "an integer", &bad)?),
        libc::CTLTYPE_S16 => Value::S16(num(value, "an integer", &bad)?),
        libc::CTLTYPE_S32 => Value::S32(num(value, "an integer", &bad)?),
        libc::CTLTYPE_U8 => Value::U8(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_U16 => Value::U16(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_U32 => Value::U32(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_STRING => Value::String(value.to_string()),
        libc::CTLTYPE_STRUCT if format == "S,in_addr" => Value::Ipv4Addrs(
            value
                .split(',')
                .map(|a| a.trim().parse::<Ipv4Addr>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("IPv4 addresses separated by commas"))?,
        ),
        libc::CTLTYPE_STRUCT if format == "S,in6_addr" => Value::Ipv6Addrs(
            value
                .split(',')
                .map(|a| a.trim().parse::<Ipv6Addr>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("IPv6 addresses separated by commas"))?,
        ),
        _ => {
            return Err(format!(
                "jail parameter {name} has a type jetpack cannot set ({kind}, {format:?})"
            ))
        }
    };
    Ok((name.to_string(), typed))
}

/// The jail of `spec`, ready to start; every parameter is typed before
/// anything changes on the host, so a bad one fails early.
pub(super) fn stopped_jail(spec: &CellSpec) -> Result<StoppedJail, String> {
    let mut jail = StoppedJail::new(spec.root.clone());
    for (name, value) in jail_params(spec) {
        // jail_create adds path and persist itself.
        if name == "path" || name == "persist" {
            continue;
        }
        let (name, value) = typed(&name, &value)?;
        jail = jail.param(name, value);
    }
    Ok(jail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_names() {
        assert_eq!(no_name("allow.raw_sockets"), "allow.noraw_sockets");
        assert_eq!(no_name("allow.mount.devfs"), "allow.mount.nodevfs");
        assert_eq!(no_name("persist"), "nopersist");
    }

    #[cfg(feature = "freebsd-integration")]
    #[test]
    fn kernel_types_of_the_default_parameters() {
        // Every default must be known to the kernel and typed as expected.
        assert!(
            matches!(typed("allow.raw_sockets", "0"), Ok((n, Value::Int(1))) if n == "allow.noraw_sockets")
        );
        assert!(matches!(typed("allow.mount", "1"), Ok((n, Value::Int(1))) if n == "allow.mount"));
        assert!(matches!(typed("securelevel", "2"), Ok((_, Value::Int(2)))));
        assert!(matches!(
            typed("host.hostname", "a"),
            Ok((_, Value::String(_)))
        ));
        assert!(matches!(
            typed("ip4.addr", "172.23.0.5"),
            Ok((_, Value::Ipv4Addrs(_)))
        ));
        assert!(matches!(typed("ip4", "new"), Ok((_, Value::Int(1)))));
        assert!(typed("no.such.param", "1").is_err());
        assert!(typed("securelevel", "high").is_err());
    }
}
