//! Validation by builder: a NaCl checked by the builder's own `validate`
//! entry point in a pod, its `line L:C message` output read back as a
//! verdict.

use super::{workspace, BuildError, Builders, PodGuard};
use crate::nacl::{self, Verdict};
use crate::runtime::Ended;

impl Builders {
    /// Runs the builder's `validate` entry point on `nacl` in a pod: valid,
    /// or the `line L:C message` lines it printed.
    pub fn validate(&self, builder: &str, nacl: &str) -> Result<Verdict, BuildError> {
        let builder = self.builder(builder)?;
        let _hold = self.hold(&builder.row.id);
        let _slot = self.validations.acquire(&|| false);
        let argv = builder.manifest.validate.clone();
        let pod = self
            .host
            .create_pod(builder.row.base_id.as_str(), None, argv.clone())?;
        let guard = PodGuard {
            host: &self.host,
            pod,
        };
        let pod = &guard.pod;
        workspace::write_inputs(
            &pod.root,
            &super::adopt::with_entry_points(&builder.manifest, &[("nacl.txt", nacl.as_bytes())]),
        )?;
        std::fs::create_dir_all(&self.staging).map_err(|source| BuildError::Io {
            what: format!("creating {}", self.staging.display()),
            source,
        })?;
        let log = self.staging.join(format!("validate-{}.log", pod.row.id));
        let ended = self
            .host
            .run_bounded(pod, argv, &log, self.validate_timeout, &|| false);
        let output = read_capped(&log, 256 * 1024);
        let _ = std::fs::remove_file(&log);
        drop(guard);
        let code = match ended? {
            Ended::Exited(code) => code,
            Ended::TimedOut => return Err(BuildError::TimedOut(self.validate_timeout.as_secs())),
            Ended::Cancelled => return Err(BuildError::Cancelled),
        };
        let mut errors = nacl::parse_reference_output(&output);
        if code == 0 {
            return Ok(Verdict {
                valid: true,
                errors: Vec::new(),
                warnings: Vec::new(),
            });
        }
        if errors.is_empty() {
            let last = output.lines().rev().find(|l| !l.trim().is_empty());
            errors.push(nacl::Diagnostic {
                line: 1,
                column: 0,
                message: format!(
                    "the builder's validator failed (status {code}) without a `line L:C message` line{}",
                    last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                ),
                severity: nacl::Severity::Error,
            });
        }
        errors.sort_by_key(|d| (d.line, d.column));
        // A builder's validator is the reference: it has no warnings.
        Ok(Verdict {
            valid: false,
            errors,
            warnings: Vec::new(),
        })
    }
}

/// Up to `limit` bytes of a file as text; a validator's output is bounded.
fn read_capped(path: &std::path::Path, limit: u64) -> String {
    use std::io::Read;
    let mut text = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(limit).read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}
