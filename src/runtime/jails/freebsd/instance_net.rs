//! The instance network of a FreeBSD jail (`Jails::attach_instance_net`),
//! for a VNET jail: the tap, its gateway address, forwarding and the pf
//! rules are all made inside the jail's own network stack, by commands
//! run attached to the jail (as `command` runs a pod's processes), so
//! that every pod can use the same 10.0.0.0/24 without seeing another's.
//!
//! Type-checked on Linux, run only in the Vagrant VM, which must have:
//! - pf loaded (`kldload pf`, or `pf_load="YES"` in /boot/loader.conf):
//!   pf is virtualized per VNET, and a jail cannot load the module;
//! - jails made with `vnet=new` and an interface of their own carrying
//!   the pod's address: the driver makes an instance pod so (a cell given
//!   the tap device, `jails::vnet`: an epair routed to the host), while
//!   other pods share the host's stack (`ip4.addr` on `jail.interface`);
//! - a devfs ruleset for the jail that unhides `pf`, `tap*` and `vmm*`.
//!
//! The rules are the jail's whole pf ruleset (`pfctl -f -` inside the
//! jail), not an anchor of the host's: the guest's traffic never crosses
//! the host's pf as 10.0.0.0/24 (the jail's stack rewrites it first), and
//! the jail's own main ruleset has no one else to share it with. Loading
//! replaces it whole, so a repeat converges.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::attach::attach;
use crate::runtime::jails::instance_net::{InstanceNet, Proto};
use crate::runtime::jails::{CellSpec, JailError};

/// Runs `program args` attached to jail `jid`, `input` on its stdin; its
/// stdout, or its stderr in the error.
pub(super) fn run_in(
    jid: i32,
    program: &str,
    args: &[&str],
    input: &str,
) -> Result<String, JailError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: `attach` calls only async-signal-safe functions, as in
    // `FreeBsdJails::command`.
    unsafe {
        cmd.pre_exec(move || attach(jid));
    }
    let what = format!("{program} {} (in jail {jid})", args.join(" "));
    Ok(crate::runtime::tool::run_command(cmd, &what, input)?)
}

/// Applies `net` inside the VNET jail `jid` whose pod address is
/// `spec.address`.
pub(super) fn attach_in(jid: i32, spec: &CellSpec, net: &InstanceNet) -> Result<(), JailError> {
    net.validate(spec.network)?;
    match run_in(jid, "ifconfig", &[net.tap.as_str(), "create"], "") {
        Ok(_) => {}
        // Made by an earlier attach: kept, the hypervisor may hold it.
        Err(JailError::Network(e)) if e.stderr().contains("exists") => {}
        Err(e) => return Err(e),
    }
    let cidr = format!("{}/{}", net.gateway, net.network.prefix);
    // Without `alias`, ifconfig replaces the tap's address: a repeat
    // leaves one.
    run_in(
        jid,
        "ifconfig",
        &[net.tap.as_str(), "inet", cidr.as_str(), "up"],
        "",
    )?;
    run_in(jid, "sysctl", &["net.inet.ip.forwarding=1"], "")?;
    run_in(jid, "pfctl", &["-f", "-"], &pf_rules(spec.address, net))?;
    match run_in(jid, "pfctl", &["-e"], "") {
        Ok(_) => Ok(()),
        Err(JailError::Network(e)) if e.stderr().contains("already enabled") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The jail's pf ruleset: the guest's network NATed to the pod's address
/// (on whichever interface the traffic leaves by, so the rule needs no
/// interface name), each forward redirected from the pod's address to the
/// guest (`rdr pass`: past the filter), everything else passed as pf does
/// with no rules. Only typed values are interpolated.
fn pf_rules(pod: Ipv4Addr, net: &InstanceNet) -> String {
    let mut text = format!(
        "# jetpack: the instance network\n\
         set skip on lo0\n\
         nat from {n} to ! {n} -> {pod}\n",
        n = net.network,
    );
    for f in &net.forwards {
        let proto = match f.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        text.push_str(&format!(
            "rdr pass proto {proto} from any to {pod} port {p} -> {guest} port {p}\n",
            p = f.port,
            guest = net.guest,
        ));
    }
    text.push_str("pass all\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::jails::instance_net::Forward;

    #[test]
    fn pf_rules_nat_the_guest_and_redirect_forwards() {
        let net = InstanceNet {
            forwards: vec![
                Forward {
                    proto: Proto::Tcp,
                    port: 80,
                },
                Forward {
                    proto: Proto::Udp,
                    port: 53,
                },
            ],
            ..InstanceNet::default()
        };
        let text = pf_rules("10.200.1.2".parse().unwrap(), &net);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"nat from 10.0.0.0/24 to ! 10.0.0.0/24 -> 10.200.1.2"));
        assert!(lines
            .contains(&"rdr pass proto tcp from any to 10.200.1.2 port 80 -> 10.0.0.42 port 80"));
        assert!(lines
            .contains(&"rdr pass proto udp from any to 10.200.1.2 port 53 -> 10.0.0.42 port 53"));
        // pf requires translation rules before filter rules.
        let last_rdr = lines.iter().rposition(|l| l.starts_with("rdr")).unwrap();
        let pass = lines.iter().position(|l| *l == "pass all").unwrap();
        assert!(last_rdr < pass);
    }
}
