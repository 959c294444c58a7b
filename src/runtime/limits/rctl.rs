//! The FreeBSD limits driver: rctl(8) rules on the cell's jail, each by
//! argument vector (`rctl -a jail:NAME:memoryuse:deny=BYTES`), removed
//! with `rctl -r jail:NAME` when the jail goes, read with `rctl -u`.
//!
//! FreeBSD does as it does: `memoryuse:deny` makes the jail's pages the
//! pageout daemon's first choice rather than killing, `pcpu:deny`
//! throttles, `maxproc:deny` fails fork(2). rctl needs
//! `kern.racct.enable=1` at boot; without it `rctl -a` fails and the pod
//! does not start (the error says so). The argv and the parsing of
//! `rctl -u` are pure and tested on every platform.

use super::{check_cell_name, Limits, LimitsBackend, LimitsError, Usage};
use crate::runtime::tool;

pub const RCTL: &str = "rctl";

pub struct Rctl;

/// The rules for `limits` on jail `cell`, one `rctl -a RULE` each.
pub fn rules(cell: &str, limits: &Limits) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(m) = limits.memory {
        rules.push(format!("jail:{cell}:memoryuse:deny={m}"));
    }
    if let Some(c) = limits.cpus {
        // pcpu is in percents of one cpu.
        let percent = ((c * 100.0).round() as u64).max(1);
        rules.push(format!("jail:{cell}:pcpu:deny={percent}"));
    }
    if let Some(n) = limits.process_cap() {
        rules.push(format!("jail:{cell}:maxproc:deny={n}"));
    }
    rules
}

/// The argument vectors that apply `limits`.
pub fn apply_argvs(cell: &str, limits: &Limits) -> Vec<Vec<String>> {
    rules(cell, limits)
        .into_iter()
        .map(|r| vec!["-a".to_string(), r])
        .collect()
}

/// `rctl -u jail:NAME` prints `resource=value` lines.
pub fn parse_usage(text: &str) -> Usage {
    let mut u = Usage::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let Ok(n) = v.trim().parse::<u64>() else {
            continue;
        };
        match k {
            "memoryuse" => u.memory_current = Some(n),
            "maxproc" => u.pids_current = Some(n),
            "cputime" => u.cpu_seconds = Some(n as f64),
            _ => {}
        }
    }
    u
}

fn failed(what: String) -> impl FnOnce(tool::ToolError) -> LimitsError {
    move |e| LimitsError::Sys {
        what,
        why: format!("{e} (rctl needs kern.racct.enable=1 in /boot/loader.conf)"),
    }
}

impl LimitsBackend for Rctl {
    fn driver(&self) -> &'static str {
        "rctl"
    }

    fn apply(&self, cell: &str, limits: &Limits) -> Result<(), LimitsError> {
        check_cell_name(cell)?;
        for argv in apply_argvs(cell, limits) {
            if let Err(e) = tool::run(RCTL, &argv).map_err(failed(format!("rctl {}", argv[1]))) {
                let _ = self.remove(cell);
                return Err(e);
            }
        }
        Ok(())
    }

    fn usage(&self, cell: &str) -> Result<Option<Usage>, LimitsError> {
        check_cell_name(cell)?;
        let subject = format!("jail:{cell}");
        let out =
            tool::run(RCTL, &["-u", &subject]).map_err(failed(format!("rctl -u {subject}")))?;
        Ok(Some(parse_usage(&out)))
    }

    fn remove(&self, cell: &str) -> Result<(), LimitsError> {
        check_cell_name(cell)?;
        let subject = format!("jail:{cell}");
        tool::run(RCTL, &["-r", &subject])
            .map(drop)
            .map_err(failed(format!("rctl -r {subject}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_argument_vectors() {
        let l = Limits {
            memory: Some(64 << 20),
            cpus: Some(1.5),
            pids: Some(20),
            maxproc: Some(30),
            disk: Some(1 << 30),
        };
        assert_eq!(
            apply_argvs("jp-a", &l),
            vec![
                vec!["-a", "jail:jp-a:memoryuse:deny=67108864"],
                vec!["-a", "jail:jp-a:pcpu:deny=150"],
                vec!["-a", "jail:jp-a:maxproc:deny=20"],
            ]
        );
        assert!(rules("jp-a", &Limits::default()).is_empty());
    }

    #[test]
    fn usage_is_read() {
        let out = "cputime=12\ndatasize=1000\nmemoryuse=4194304\nmaxproc=3\npcpu=0\n";
        let u = parse_usage(out);
        assert_eq!(u.memory_current, Some(4 << 20));
        assert_eq!(u.pids_current, Some(3));
        assert_eq!(u.cpu_seconds, Some(12.0));
        assert_eq!(parse_usage("garbage\n"), Usage::default());
    }

    #[test]
    fn bad_cell_names_run_nothing() {
        assert!(Rctl.apply("a:b", &Limits::default()).is_err());
        assert!(Rctl.remove("../x").is_err());
    }
}
