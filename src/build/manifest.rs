//! The builder manifest, `/jetpack/builder.json` in a builder's base: who
//! the builder is (Mothership's label-schema fields), which services it
//! builds, and its two entry points (or, for a stock image jetpack
//! adopted, the manifest `adopt` made for it). Read from an untrusted base, so it is
//! bounded in size and never read through a symlink.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BuildError;
use crate::names::Name;

/// Where the manifest is, relative to the base's root.
pub const PATH: &str = "jetpack/builder.json";

const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    /// IncludeOS's `git describe` for the version it builds.
    pub version: String,
    pub vcs_ref: String,
    pub build_date: String,
    pub vendor: String,
    /// Services it can build, e.g. `Starbase`.
    pub services: Vec<String>,
    /// The build entry point (argv): inputs in /build/in, one ELF out in /build/out.
    pub build: Vec<String>,
    /// The NaCl check (argv): reads /build/in/nacl.txt, prints `line L:C message`.
    pub validate: Vec<String>,
    /// Whether `build` has the MDS sign its output's sha256 (hex) into
    /// /build/signature; a host with an MDS then requires it to verify.
    #[serde(default)]
    pub signs: bool,
    /// Set when jetpack made this manifest for a stock image it adopted
    /// (`adopt::LAYOUT`): jetpack then writes the entry points into each
    /// pod. Never read from a base: a base's own manifest has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
}

impl Manifest {
    /// Parses and checks a manifest; `origin` names it in errors.
    pub fn parse(text: &[u8], origin: &str) -> Result<Manifest, BuildError> {
        let bad = |why: String| BuildError::Manifest {
            origin: origin.to_string(),
            why,
        };
        let m: Manifest = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        for (field, value) in [
            ("name", &m.name),
            ("version", &m.version),
            ("vcsRef", &m.vcs_ref),
            ("buildDate", &m.build_date),
            ("vendor", &m.vendor),
        ] {
            if value.trim().is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
                return Err(bad(format!(
                    "{field} must be 1 to 256 printable characters"
                )));
            }
        }
        if m.services.is_empty() {
            return Err(bad("services lists no service".into()));
        }
        for service in &m.services {
            Name::new("service name", service).map_err(|e| bad(e.to_string()))?;
        }
        for (field, argv) in [("build", &m.build), ("validate", &m.validate)] {
            match argv.first() {
                Some(program) if program.starts_with('/') => {}
                _ => {
                    return Err(bad(format!(
                        "{field} must be an argument vector whose first element is an absolute path"
                    )))
                }
            }
        }
        match m.adopted.as_deref() {
            None | Some(super::adopt::LAYOUT) => {}
            Some(other) => return Err(bad(format!("adopted: unknown layout {other:?}"))),
        }
        Ok(m)
    }

    /// Reads the manifest of the base whose root is `root`.
    pub fn read_from(root: &Path) -> Result<Manifest, BuildError> {
        let origin = format!("/{PATH} of the builder");
        let missing = |why: &str| BuildError::Manifest {
            origin: origin.clone(),
            why: why.to_string(),
        };
        let mut at = root.to_path_buf();
        for part in PATH.split('/') {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(missing("it (or its folder) is a symlink; refused"))
                }
                Ok(_) => {}
                Err(_) => return Err(missing("it is missing: a builder's base must carry it")),
            }
        }
        let file = std::fs::File::open(&at).map_err(|_| missing("it cannot be read"))?;
        let mut text = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|_| missing("it cannot be read"))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(missing("it is larger than 64 KiB"));
        }
        let manifest = Manifest::parse(&text, &origin)?;
        // Adoption is jetpack's word about a base, never the base's own.
        if manifest.adopted.is_some() {
            return Err(missing("it may not set `adopted`"));
        }
        Ok(manifest)
    }

    pub fn offers(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"name": "jetpack/test-builder", "version": "v0.1.0-test",
        "vcsRef": "1234567", "buildDate": "2026-01-01T00:00:00Z", "vendor": "jetpack",
        "services": ["Starbase"], "build": ["/jetpack/build"], "validate": ["/jetpack/validate"]}"#;

    fn without(field: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    }

    #[test]
    fn a_manifest_needs_every_field() {
        let m = Manifest::parse(GOOD.as_bytes(), "t").unwrap();
        assert!(m.offers("Starbase") && !m.offers("Acorn"));
        for field in [
            "name",
            "version",
            "vcsRef",
            "buildDate",
            "vendor",
            "services",
            "build",
            "validate",
        ] {
            let e = Manifest::parse(without(field).as_bytes(), "t").unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (from, to) in [
            (r#""services": ["Starbase"]"#, r#""services": []"#),
            (r#""services": ["Starbase"]"#, r#""services": ["../x"]"#),
            (r#""build": ["/jetpack/build"]"#, r#""build": ["build.sh"]"#),
            (r#""validate": ["/jetpack/validate"]"#, r#""validate": []"#),
            (r#""vendor": "jetpack""#, r#""vendor": " ""#),
        ] {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD);
            assert!(Manifest::parse(text.as_bytes(), "t").is_err(), "{to}");
        }
        assert!(Manifest::parse(b"not json", "t").is_err());
    }

    #[test]
    fn the_manifest_is_not_read_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("jetpack")).unwrap();
        assert!(Manifest::read_from(&root)
            .unwrap_err()
            .to_string()
            .contains("missing"));
        let outside = dir.path().join("builder.json");
        std::fs::write(&outside, GOOD).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(PATH)).unwrap();
        assert!(Manifest::read_from(&root)
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        std::fs::remove_file(root.join(PATH)).unwrap();
        std::fs::write(root.join(PATH), GOOD).unwrap();
        assert_eq!(
            Manifest::read_from(&root).unwrap().name,
            "jetpack/test-builder"
        );
    }
}
