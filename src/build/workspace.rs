//! The files of a build pod: the inputs under `/build/in`, written before
//! it starts, and the one output under `/build/out`, taken after it has
//! stopped. The pod's tree comes from an untrusted base and was written by
//! an untrusted build, so nothing here follows a symlink: a `/build` that
//! points at the host's `/etc` must not be written to or read from.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::BuildError;
use crate::store::blobs::{Blobs, StagedBlob};

/// The directories of the contract, relative to the pod's root.
const BUILD: &str = "build";
const INPUTS: &str = "build/in";
const OUTPUTS: &str = "build/out";

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// `root/rel`, made a real directory (not a symlink) if it is not one.
fn real_dir(root: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let path = root.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_dir() => Ok(path),
        Ok(_) => Err(BuildError::Failed(format!(
            "/{rel} in the pod is not a directory (a symlink?); refused"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(&path).map_err(io(format!("creating /{rel} in the pod")))?;
            Ok(path)
        }
        Err(e) => Err(io(format!("/{rel} in the pod"))(e)),
    }
}

/// Writes `files` (name, bytes) into the pod's `/build/in` and makes an
/// empty `/build/out`. A name there already (the base's) is refused rather
/// than followed.
pub fn write_inputs(root: &Path, files: &[(&str, &[u8])]) -> Result<(), BuildError> {
    real_dir(root, BUILD)?;
    let inputs = real_dir(root, INPUTS)?;
    real_dir(root, OUTPUTS)?;
    for (name, bytes) in files {
        let path = inputs.join(name);
        // create_new is O_EXCL: it fails on anything there, a symlink too.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io(format!("writing /{INPUTS}/{name} in the pod")))?;
        file.write_all(bytes)
            .map_err(io(format!("writing /{INPUTS}/{name} in the pod")))?;
    }
    Ok(())
}

/// Takes the build's output, the one regular file in `/build/out`, into a
/// staged blob. Call it only once the pod has stopped, so that nothing can
/// swap the file while it is read.
pub fn collect_output(root: &Path, blobs: &Blobs) -> Result<(String, StagedBlob), BuildError> {
    let failed = BuildError::Failed;
    for rel in [BUILD, OUTPUTS] {
        match std::fs::symlink_metadata(root.join(rel)) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => {
                return Err(failed(format!(
                    "/{rel} in the pod is gone or is not a directory; no output"
                )))
            }
        }
    }
    let dir = root.join(OUTPUTS);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(format!("reading /{OUTPUTS} in the pod")))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(format!("reading /{OUTPUTS} in the pod")))?;
    let path = match entries.len() {
        0 => return Err(failed(format!("the build wrote nothing to /{OUTPUTS}"))),
        1 => entries.remove(0),
        n => {
            return Err(failed(format!(
                "the build wrote {n} entries to /{OUTPUTS}; the contract is one image file"
            )))
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = std::fs::symlink_metadata(&path).map_err(io(format!("/{OUTPUTS}/{name}")))?;
    if meta.file_type().is_symlink() {
        return Err(failed(format!(
            "the build output /{OUTPUTS}/{name} is a symlink; refused"
        )));
    }
    if !meta.file_type().is_file() {
        return Err(failed(format!(
            "the build output /{OUTPUTS}/{name} is not a regular file"
        )));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io(format!("opening /{OUTPUTS}/{name}")))?;
    Ok((name, copy_into_blob(&mut file, blobs)?))
}

/// The MDS signature a build left in /build/signature, if it left one:
/// read like the output (no symlink, a regular file) and bounded.
pub fn read_signature(root: &Path) -> Result<Option<String>, BuildError> {
    let path = root.join(BUILD).join("signature");
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("/build/signature".to_string())(e)),
        Ok(m) if !m.file_type().is_file() => {
            return Err(BuildError::Failed(
                "/build/signature is not a regular file".into(),
            ))
        }
        Ok(_) => {}
    }
    let mut text = String::new();
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|f| f.take(1024).read_to_string(&mut text))
        .map_err(io("reading /build/signature".to_string()))?;
    Ok(Some(text.trim().to_string()))
}

fn copy_into_blob(file: &mut File, blobs: &Blobs) -> Result<StagedBlob, BuildError> {
    let mut staged = blobs.stage()?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io("reading the build output"))?;
        if n == 0 {
            return Ok(staged);
        }
        staged.write_chunk(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_written_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pod");
        std::fs::create_dir(&root).unwrap();
        write_inputs(
            &root,
            &[("nacl.txt", b"Iface eth0 {}"), ("config.json", b"{}")],
        )
        .unwrap();
        assert_eq!(
            std::fs::read(root.join("build/in/nacl.txt")).unwrap(),
            b"Iface eth0 {}"
        );
        assert!(root.join("build/out").is_dir());

        let evil = dir.path().join("evil");
        std::fs::create_dir_all(evil.join("host")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, evil.join("build")).unwrap();
        assert!(write_inputs(&evil, &[("nacl.txt", b"x")]).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        // A file planted by the base where an input goes is not replaced.
        let planted = dir.path().join("planted");
        std::fs::create_dir_all(planted.join("build/in")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", planted.join("build/in/nacl.txt")).unwrap();
        assert!(write_inputs(&planted, &[("nacl.txt", b"x")]).is_err());
    }

    fn refused(root: &Path, blobs: &Blobs) -> String {
        match collect_output(root, blobs) {
            Ok(_) => panic!("an output was taken"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_output_is_one_regular_file_not_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(&dir.path().join("blobs")).unwrap();
        let root = dir.path().join("pod");
        std::fs::create_dir(&root).unwrap();
        write_inputs(&root, &[]).unwrap();
        let out = root.join("build/out");
        let err = refused(&root, &blobs);
        assert!(err.contains("nothing"), "{err}");
        std::fs::write(dir.path().join("secret"), b"host file").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), out.join("image")).unwrap();
        let err = refused(&root, &blobs);
        assert!(err.contains("symlink"), "{err}");
        std::fs::remove_file(out.join("image")).unwrap();
        std::fs::write(out.join("image"), b"\x7fELF...").unwrap();
        std::fs::write(out.join("extra"), b"x").unwrap();
        let err = refused(&root, &blobs);
        assert!(err.contains("2 entries"), "{err}");
        std::fs::remove_file(out.join("extra")).unwrap();
        let (name, staged) = collect_output(&root, &blobs).unwrap();
        assert_eq!((name.as_str(), staged.size()), ("image", 7));
        std::fs::remove_dir_all(&out).unwrap();
        std::os::unix::fs::symlink(dir.path(), &out).unwrap();
        assert!(collect_output(&root, &blobs).is_err());
    }
}
