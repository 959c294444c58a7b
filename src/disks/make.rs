//! Making one disk in a staging folder, with no loop device, no mount and
//! no root: the image and a grub.cfg in a tree, `grub-mkrescue` (GRUB's
//! i386-pc modules, xorriso) makes a hybrid ISO of it, which boots as a CD
//! (El Torito) and as a hard disk (GRUB's boot_hybrid.img in its MBR), so
//! the raw disk is the ISO's bytes and qcow2, vmdk and vdi are
//! `qemu-img convert` of them. The result is a folder (`disk`, `sha256`)
//! that mod.rs publishes by renaming it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use super::{io_err, DiskError, DiskFormat};
use crate::config::DisksConfig;
use crate::hypervisor::boot::{self, ImageProblem};
use crate::names::Name;
use crate::runtime::tool;
use crate::store::catalog::ImageRow;
use crate::store::private;

/// The modules GRUB needs to find its config on the ISO or the disk, give
/// the serial console and load a multiboot (or multiboot2) ELF; their
/// dependencies come along. Preloaded in the core image, so nothing else
/// is read before grub.cfg.
const MODULES: &str = "biosdisk iso9660 part_msdos normal configfile serial terminal \
                       multiboot multiboot2 echo";

/// What one disk is made from.
pub struct Job<'a> {
    pub config: &'a DisksConfig,
    pub image: &'a ImageRow,
    /// The image's blob.
    pub blob: &'a Path,
    pub format: DiskFormat,
    /// A fresh folder of this job only.
    pub staging: &'a Path,
    /// The time limit of each tool.
    pub limit: Duration,
}

/// Makes the disk; returns the folder to publish.
pub fn make(job: &Job) -> Result<PathBuf, DiskError> {
    check_tools(job.config, job.format)?;
    let loader = loader_command(job)?;
    // The ELF's name in the tree: the image's name, a checked name (it
    // is stored checked; checked again because it becomes a path).
    let elf_name = Name::new("image name", &job.image.name)
        .map_err(|e| DiskError::NotBootable {
            id: job.image.id.to_string(),
            why: e.to_string(),
        })?
        .to_string();
    let tree = job.staging.join("tree");
    let grub = tree.join("boot").join("grub");
    private::create_dir(&grub).map_err(io_err(format!("creating {}", grub.display())))?;
    let elf = tree.join("boot").join(&elf_name);
    copy(job.blob, &elf)?;
    write_file(
        &grub.join("grub.cfg"),
        grub_cfg(loader, &elf_name).as_bytes(),
    )?;

    let iso = job.staging.join("disk.iso");
    let mkrescue_args: Vec<String> = vec![
        "-d".into(),
        job.config.grub_dir.display().to_string(),
        format!("--xorriso={}", job.config.xorriso),
        "-o".into(),
        iso.display().to_string(),
        format!("--modules={MODULES}"),
        format!("--install-modules={MODULES}"),
        "--fonts=".into(),
        "--locales=".into(),
        "--themes=".into(),
        "--compress=xz".into(),
        tree.display().to_string(),
    ];
    tool::run_limited(&job.config.mkrescue, &mkrescue_args, job.staging, job.limit)?;

    let ready = job.staging.join("ready");
    private::create_dir(&ready).map_err(io_err(format!("creating {}", ready.display())))?;
    let disk = ready.join("disk");
    match job.format.qemu_img_format() {
        None => fs::rename(&iso, &disk).map_err(io_err(format!(
            "moving {} to {}",
            iso.display(),
            disk.display()
        )))?,
        Some(target) => {
            let args: Vec<String> = vec![
                "convert".into(),
                "-f".into(),
                "raw".into(),
                "-O".into(),
                target.into(),
                iso.display().to_string(),
                disk.display().to_string(),
            ];
            tool::run_limited(&job.config.qemu_img, &args, job.staging, job.limit)?;
        }
    }
    // The tools made it with the process's umask (077 in the server):
    // set again here, since that umask is not theirs to keep.
    set_private(&disk)?;
    let sha256 = sha256_and_sync(&disk)?;
    write_file(&ready.join("sha256"), sha256.as_bytes())?;
    Ok(ready)
}

/// `multiboot` for a multiboot (v1) ELF, as IncludeOS images are (ELF32
/// and ELF64 alike: GRUB loads both); `multiboot2` for one with only a
/// multiboot2 header; anything else cannot boot.
fn loader_command(job: &Job) -> Result<&'static str, DiskError> {
    let not_bootable = |why: String| DiskError::NotBootable {
        id: job.image.id.to_string(),
        why,
    };
    let mut head = Vec::new();
    fs::File::open(job.blob)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(io_err(format!("reading {}", job.blob.display())))?;
    match boot::inspect_bytes(&head) {
        Ok(_) => Ok("multiboot"),
        Err(ImageProblem::Multiboot2Only(_)) => Ok("multiboot2"),
        Err(problem) => Err(not_bootable(problem.to_string())),
    }
}

/// GRUB's config: no menu, the serial console on (COM1, 115200 baud) as
/// well as the screen, then the image. IncludeOS's own GRUB disks
/// (grubify.sh) have the same shape: timeout 0, serial terminal, one
/// `multiboot /boot/...` entry.
fn grub_cfg(loader: &str, elf_name: &str) -> String {
    format!(
        "# made by jetpack: boots one IncludeOS image\n\
         set default=0\n\
         set timeout=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         menuentry \"{elf_name}\" {{\n\
         \x20 {loader} /boot/{elf_name}\n\
         \x20 boot\n\
         }}\n"
    )
}

fn check_tools(config: &DisksConfig, format: DiskFormat) -> Result<(), DiskError> {
    let mut missing = Vec::new();
    if !config.grub_dir.join("boot_hybrid.img").is_file() {
        missing.push(format!(
            "GRUB's i386-pc files in {} (disks.grub.dir; Debian: grub-pc-bin, FreeBSD: grub2-pcbsd)",
            config.grub_dir.display()
        ));
    }
    for (program, key) in [
        (&config.mkrescue, "disks.grub.mkrescue"),
        (&config.xorriso, "disks.xorriso"),
    ] {
        if !tool::exists(program) {
            missing.push(format!("{program} ({key})"));
        }
    }
    if format.qemu_img_format().is_some() && !tool::exists(&config.qemu_img) {
        missing.push(format!("{} (disks.qemu-img)", config.qemu_img));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DiskError::Unavailable(format!(
            "missing {}",
            missing.join(", ")
        )))
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), DiskError> {
    let mut src = fs::File::open(from).map_err(io_err(format!("reading {}", from.display())))?;
    let mut dst = private::file_options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(io_err(format!("creating {}", to.display())))?;
    std::io::copy(&mut src, &mut dst).map_err(io_err(format!("writing {}", to.display())))?;
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DiskError> {
    let mut f = private::file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("writing {}", path.display())))
}

fn set_private(path: &Path) -> Result<(), DiskError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(private::FILE_MODE))
        .map_err(io_err(format!("setting the mode of {}", path.display())))
}

/// The disk's sha256 (the download's ETag, which the CLI checks), and the
/// disk flushed before it is published.
fn sha256_and_sync(path: &Path) -> Result<String, DiskError> {
    let what = || format!("reading {}", path.display());
    let mut f = fs::File::open(path).map_err(io_err(what()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(what()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    f.sync_all()
        .map_err(io_err(format!("flushing {}", path.display())))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_has_the_serial_console_and_the_loader() {
        let cfg = grub_cfg("multiboot", "svc.v1");
        assert!(cfg.contains("serial --unit=0 --speed=115200\n"));
        assert!(cfg.contains("terminal_input serial console\n"));
        assert!(cfg.contains("terminal_output serial console\n"));
        assert!(cfg.contains("  multiboot /boot/svc.v1\n"));
        assert!(cfg.contains("set timeout=0\n"));
    }

    #[test]
    fn missing_tools_are_named_with_their_keys() {
        let config = DisksConfig {
            grub_dir: PathBuf::from("/nonexistent/grub"),
            mkrescue: "/nonexistent/grub-mkrescue".into(),
            xorriso: "xorriso".into(),
            qemu_img: "/nonexistent/qemu-img".into(),
            timeout: 1,
        };
        let err = check_tools(&config, DiskFormat::Qcow2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("disks.grub.dir"), "{err}");
        assert!(err.contains("disks.grub.mkrescue"), "{err}");
        assert!(err.contains("disks.qemu-img"), "{err}");
        let err = check_tools(&config, DiskFormat::Iso)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("qemu-img"), "{err}");
    }
}
