//! Adoption of stock `includeos/builder` images, Mothership's builders as
//! Docker Hub has them: they carry label-schema labels but no
//! `/jetpack/builder.json`, and build a service through their ENTRYPOINT
//! (CC/CXX from the clang version the image names) and CMD (`cmake ..`,
//! `make` in the service folder), with IncludeOS installed under
//! `/usr/local/includeos` (NaCl.py in `nacl/`) and Starbase's sources in
//! `/root/IncludeOS/lib/uplink/starbase`.
//!
//! This module owns recognising that layout in an imported base, the
//! manifest jetpack makes for it from the bob's labels, and the two entry
//! points (`build.sh`, `validate.sh` beside this file) that jetpack writes
//! into each build or validation pod of such a builder, since the base has
//! none of its own and is read-only. Only the `oci` provider adopts: the
//! archives of `local` and `http` providers are jetpack's own format and
//! must carry their manifest.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest};
use super::providers::Bob;
use super::BuildError;

/// The `adopted` value of a manifest made here: the layout it follows.
pub const LAYOUT: &str = "includeos/builder";

/// What the image must hold to be adopted, relative to its root, and the
/// kind of each (a directory or a file): its entrypoint, IncludeOS's
/// NaCl transpiler, and the sources of the service it builds.
const REQUIRED: &[(&str, bool)] = &[
    ("entrypoint.sh", false),
    ("usr/local/includeos/nacl/NaCl.py", false),
    ("root/IncludeOS/lib/uplink/starbase", true),
];

/// `git describe --tags` of the IncludeOS the image holds, one line.
const VERSION_FILE: &str = "ios_version.txt";

/// The entry points' names in the pod's `/build/in`, and their text.
const BUILD_NAME: &str = "jetpack-build";
const VALIDATE_NAME: &str = "jetpack-validate";
const BUILD_SCRIPT: &[u8] = include_bytes!("build.sh");
const VALIDATE_SCRIPT: &[u8] = include_bytes!("validate.sh");

/// The service a stock image builds: Mothership built Starbase with it.
const SERVICE: &str = "Starbase";

/// The manifest of the base whose root is `root`, imported from `bob`: its
/// own `/jetpack/builder.json`, or, when it has none and `adoptable` (the
/// bob came from an `oci` provider), one made here if the base is a stock
/// `includeos/builder`.
pub fn manifest_for(root: &Path, bob: &Bob, adoptable: bool) -> Result<Manifest, BuildError> {
    let own = Manifest::read_from(root);
    if own.is_ok() || !adoptable || !manifest_absent(root) {
        return own;
    }
    if let Some(missing) = REQUIRED.iter().find(|(rel, dir)| !holds(root, rel, *dir)) {
        return Err(BuildError::Manifest {
            origin: format!("/{} of the builder", manifest::PATH),
            why: format!(
                "it is missing, and the image is not a stock {LAYOUT} either (it has no /{})",
                missing.0
            ),
        });
    }
    adopted(root, bob)
}

/// The manifest of an adopted image: identity from the bob (the image's
/// label-schema labels), the version from the image's own record of it
/// when it has one, the entry points jetpack writes into the pod.
fn adopted(root: &Path, bob: &Bob) -> Result<Manifest, BuildError> {
    let or = |value: &str, default: &str| {
        if value.trim().is_empty() {
            default.to_string()
        } else {
            value.to_string()
        }
    };
    let version = read_version(root).unwrap_or_else(|| or(&bob.version, &bob.id));
    let manifest = Manifest {
        name: or(&bob.name, LAYOUT),
        version,
        vcs_ref: or(&bob.vcs_ref, "unknown"),
        build_date: or(&bob.build_date, "unknown"),
        vendor: or(&bob.vendor, "IncludeOS"),
        services: vec![SERVICE.to_string()],
        build: vec!["/bin/sh".into(), format!("/build/in/{BUILD_NAME}")],
        validate: vec!["/bin/sh".into(), format!("/build/in/{VALIDATE_NAME}")],
        signs: false,
        adopted: Some(LAYOUT.to_string()),
    };
    // The same checks as a manifest read from a base (labels are untrusted).
    let text = serde_json::to_vec(&manifest).map_err(|e| BuildError::Invalid(e.to_string()))?;
    Manifest::parse(&text, &format!("made for the {LAYOUT} image {}", bob.id))
}

/// The files jetpack adds to a pod's `/build/in` for `manifest`: the entry
/// points of an adopted builder, nothing for one with its own.
pub fn entry_points(manifest: &Manifest) -> &'static [(&'static str, &'static [u8])] {
    match manifest.adopted.as_deref() {
        Some(LAYOUT) => &[(BUILD_NAME, BUILD_SCRIPT), (VALIDATE_NAME, VALIDATE_SCRIPT)],
        _ => &[],
    }
}

/// `files` and the entry points `manifest` needs, in one list for
/// `workspace::write_inputs`.
pub fn with_entry_points<'a>(
    manifest: &Manifest,
    files: &[(&'a str, &'a [u8])],
) -> Vec<(&'a str, &'a [u8])> {
    let mut all = files.to_vec();
    all.extend(entry_points(manifest).iter().copied());
    all
}

/// Whether the base has no `/jetpack/builder.json` at all (a symlink in
/// its place, or in place of `/jetpack`, is not an absence: read_from's
/// refusal stands).
fn manifest_absent(root: &Path) -> bool {
    let mut at = root.to_path_buf();
    for part in manifest::PATH.split('/') {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
            Ok(m) if m.file_type().is_symlink() => return false,
            Ok(_) => {}
        }
    }
    false
}

/// Whether `root/rel` is a directory (`dir`) or a regular file, reached
/// without following a symlink at any step: the base is untrusted.
fn holds(root: &Path, rel: &str, dir: bool) -> bool {
    let mut at = PathBuf::from(root);
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return false;
        };
        let last = i + 1 == parts.len();
        let ft = meta.file_type();
        let fits = if !last || dir {
            ft.is_dir()
        } else {
            ft.is_file()
        };
        if !fits {
            return false;
        }
    }
    true
}

/// The first line of `/ios_version.txt`, if it is a regular file and that
/// line is a plausible version (printable, at most 128 bytes).
fn read_version(root: &Path) -> Option<String> {
    if !holds(root, VERSION_FILE, false) {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::open(root.join(VERSION_FILE))
        .ok()?
        .take(256)
        .read_to_end(&mut text)
        .ok()?;
    let text = String::from_utf8(text).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty() && line.len() <= 128 && !line.chars().any(char::is_control))
        .then(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> Bob {
        Bob {
            id: "v0.13.0".into(),
            name: "includeos/builder".into(),
            version: "v0.13.0".into(),
            vcs_ref: "abc1234".into(),
            build_date: String::new(),
            vendor: String::new(),
            services: vec![],
            size: 1,
            digest: format!("sha256:{}", "0".repeat(64)),
            location: "x".into(),
        }
    }

    fn stock(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("usr/local/includeos/nacl")).unwrap();
        std::fs::create_dir_all(root.join("root/IncludeOS/lib/uplink/starbase")).unwrap();
        std::fs::write(root.join("entrypoint.sh"), "#!/bin/bash\nexec \"$@\"\n").unwrap();
        std::fs::write(root.join("usr/local/includeos/nacl/NaCl.py"), "").unwrap();
        root
    }

    #[test]
    fn a_stock_image_is_adopted_with_its_labels_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let root = stock(dir.path());
        std::fs::write(root.join(VERSION_FILE), "v0.13.0-42-gabcdef0\n").unwrap();
        let m = manifest_for(&root, &bob(), true).unwrap();
        assert_eq!(m.adopted.as_deref(), Some(LAYOUT));
        assert_eq!(m.version, "v0.13.0-42-gabcdef0");
        assert_eq!(
            (m.vcs_ref.as_str(), m.build_date.as_str()),
            ("abc1234", "unknown")
        );
        assert_eq!(m.vendor, "IncludeOS");
        assert!(m.offers("Starbase"));
        assert_eq!(m.build, ["/bin/sh", "/build/in/jetpack-build"]);
        assert_eq!(entry_points(&m).len(), 2);
        // Its stored form reads back the same (the builder row keeps it).
        let again = Manifest::parse(&serde_json::to_vec(&m).unwrap(), "t").unwrap();
        assert_eq!(again, m);
        // Without the version file, the label's.
        std::fs::remove_file(root.join(VERSION_FILE)).unwrap();
        assert_eq!(
            manifest_for(&root, &bob(), true).unwrap().version,
            "v0.13.0"
        );
    }

    #[test]
    fn only_an_oci_bob_with_the_whole_layout_and_no_manifest_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let root = stock(dir.path());
        // Not from an oci provider: its manifest is required.
        let e = manifest_for(&root, &bob(), false).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        // A part of the layout missing, or a symlink where it should be.
        std::fs::remove_file(root.join("entrypoint.sh")).unwrap();
        let e = manifest_for(&root, &bob(), true).unwrap_err().to_string();
        assert!(e.contains("/entrypoint.sh"), "{e}");
        std::os::unix::fs::symlink("/bin/sh", root.join("entrypoint.sh")).unwrap();
        assert!(manifest_for(&root, &bob(), true).is_err());
        std::fs::remove_file(root.join("entrypoint.sh")).unwrap();
        std::fs::write(root.join("entrypoint.sh"), "").unwrap();
        assert!(manifest_for(&root, &bob(), true).is_ok());
        // A manifest planted as a symlink is refused, not adopted around.
        std::fs::create_dir(root.join("jetpack")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join(manifest::PATH)).unwrap();
        let e = manifest_for(&root, &bob(), true).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn an_image_with_its_own_manifest_keeps_it_and_gets_no_entry_points() {
        let dir = tempfile::tempdir().unwrap();
        let root = stock(dir.path());
        std::fs::create_dir(root.join("jetpack")).unwrap();
        std::fs::write(
            root.join(manifest::PATH),
            r#"{"name": "n", "version": "v", "vcsRef": "r", "buildDate": "d", "vendor": "x",
                "services": ["Acorn"], "build": ["/jetpack/build"], "validate": ["/jetpack/validate"]}"#,
        )
        .unwrap();
        let m = manifest_for(&root, &bob(), true).unwrap();
        assert_eq!((m.adopted, m.services), (None, vec!["Acorn".to_string()]));
        assert!(
            with_entry_points(
                &Manifest::parse(&std::fs::read(root.join(manifest::PATH)).unwrap(), "t").unwrap(),
                &[("nacl.txt", b"x")]
            )
            .len()
                == 1
        );
    }
}
