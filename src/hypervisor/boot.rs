//! Boot paths: what an image file is and how a hypervisor can start it.
//! Reads only the first 32 KiB of a file (the most any multiboot header
//! search needs) and decides before any pod exists whether it can boot.
//!
//! - `Multiboot32`: an ELF32 with a multiboot (v1) header, what qemu's
//!   `-kernel` loads itself.
//! - `Multiboot64`: an ELF64 with a multiboot header (an x86_64 IncludeOS
//!   image: its entry is 32-bit code that enters long mode itself). qemu's
//!   multiboot loader refuses ELF64, so qemu boots a 32-bit chainloader
//!   with the image as its module; GRUB's multiboot loader takes ELF64, so
//!   bhyve (through grub-bhyve) boots both alike.
//! - `LinuxKernel`: a kernel, an initrd and a command line, given
//!   explicitly (a Linux VM; a chainloader's own path).
//!
//! Multiboot2 headers are found and reported, but a multiboot2-only image
//! is refused: qemu's `-kernel` has no multiboot2 loader.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The multiboot (v1) header's magic; the header is 4-byte aligned and
/// wholly within the file's first 8 KiB.
pub const MULTIBOOT_MAGIC: u32 = 0x1BAD_B002;
pub const MULTIBOOT_SEARCH: usize = 8192;
/// The multiboot2 header's magic; 8-byte aligned within the first 32 KiB.
pub const MULTIBOOT2_MAGIC: u32 = 0xE852_50D6;
pub const MULTIBOOT2_SEARCH: usize = 32768;

/// How an instance boots; made by `detect` for an image file, or given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootPath {
    Multiboot32 {
        image: PathBuf,
        cmdline: String,
    },
    Multiboot64 {
        image: PathBuf,
        cmdline: String,
    },
    LinuxKernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

/// A multiboot (v1) header found in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootHeader {
    /// Its byte offset in the file.
    pub offset: usize,
    pub flags: u32,
}

impl MultibootHeader {
    /// Bit 16: the header carries load addresses (the "a.out kludge"), so
    /// a loader need not read the ELF headers.
    pub fn has_addresses(&self) -> bool {
        self.flags & 0x0001_0000 != 0
    }
}

/// What `inspect` found in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub class: ElfClass,
    /// e_machine: 3 (i386) or 62 (x86_64).
    pub machine: u16,
    pub multiboot: Option<MultibootHeader>,
    /// The offset of a valid multiboot2 header, if any.
    pub multiboot2: Option<usize>,
}

/// Why bytes are not a bootable image; `BootError::NotMultiboot` says
/// whose bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("not an ELF file")]
    NotElf,
    #[error("the file ends inside its ELF header")]
    Truncated,
    #[error("unknown ELF class {0}")]
    BadClass(u8),
    #[error("a big-endian ELF, not an x86 one")]
    BigEndian,
    #[error("an ELF for machine {0}, not x86")]
    NotX86(u16),
    #[error("no multiboot header in its first 8 KiB")]
    NoHeader,
    #[error("no multiboot header in its first 8 KiB (the magic at byte {0} has a wrong checksum)")]
    BadChecksum(usize),
    #[error(
        "no multiboot header in its first 8 KiB, only a multiboot2 one (at byte {0}), \
         which qemu's -kernel cannot load"
    )]
    Multiboot2Only(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot read image {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a multiboot image: {problem}")]
    NotMultiboot {
        path: PathBuf,
        problem: ImageProblem,
    },
}

/// The boot path of the image file at `image`, booted with `cmdline`: an
/// error unless it is an x86 ELF with a multiboot header.
pub fn detect(image: &Path, cmdline: &str) -> Result<BootPath, BootError> {
    let info = inspect(image)?;
    let (image, cmdline) = (image.to_path_buf(), cmdline.to_string());
    Ok(match info.class {
        ElfClass::Elf32 => BootPath::Multiboot32 { image, cmdline },
        ElfClass::Elf64 => BootPath::Multiboot64 { image, cmdline },
    })
}

/// Reads the head of `path` and inspects it; an image with no multiboot
/// header is an error.
pub fn inspect(path: &Path) -> Result<ImageInfo, BootError> {
    let read_err = |source| BootError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut head = Vec::with_capacity(MULTIBOOT2_SEARCH);
    // Bounded: an image may be large, and only its head matters.
    file.take(MULTIBOOT2_SEARCH as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    inspect_bytes(&head).map_err(|problem| BootError::NotMultiboot {
        path: path.to_path_buf(),
        problem,
    })
}

/// Inspects the head of an image (at least its first 32 KiB, or all of a
/// shorter file).
pub fn inspect_bytes(head: &[u8]) -> Result<ImageInfo, ImageProblem> {
    if head.len() < 4 || head[..4] != *b"\x7fELF" {
        return Err(ImageProblem::NotElf);
    }
    // e_ident (16 bytes), e_type (2), e_machine (2): the rest of the ELF
    // header does not matter to a multiboot loader that has the header.
    if head.len() < 20 {
        return Err(ImageProblem::Truncated);
    }
    let class = match head[4] {
        1 => ElfClass::Elf32,
        2 => ElfClass::Elf64,
        other => return Err(ImageProblem::BadClass(other)),
    };
    let header_len = match class {
        ElfClass::Elf32 => 52,
        ElfClass::Elf64 => 64,
    };
    if head.len() < header_len {
        return Err(ImageProblem::Truncated);
    }
    if head[5] != 1 {
        return Err(ImageProblem::BigEndian);
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if machine != 3 && machine != 62 {
        return Err(ImageProblem::NotX86(machine));
    }
    let multiboot2 = find_multiboot2(head);
    let multiboot = match find_multiboot(head) {
        Ok(header) => header,
        Err(problem) => {
            return Err(match multiboot2 {
                Some(offset) => ImageProblem::Multiboot2Only(offset),
                None => problem,
            })
        }
    };
    Ok(ImageInfo {
        class,
        machine,
        multiboot: Some(multiboot),
        multiboot2,
    })
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The first valid multiboot header: magic, flags, checksum with
/// magic + flags + checksum == 0 (mod 2^32), all 12 bytes within the
/// first 8 KiB, 4-byte aligned.
fn find_multiboot(head: &[u8]) -> Result<MultibootHeader, ImageProblem> {
    let end = head.len().min(MULTIBOOT_SEARCH);
    let mut bad_checksum = None;
    for offset in (0..end.saturating_sub(11)).step_by(4) {
        if word(head, offset) != Some(MULTIBOOT_MAGIC) {
            continue;
        }
        let (Some(flags), Some(checksum)) = (word(head, offset + 4), word(head, offset + 8)) else {
            continue;
        };
        if MULTIBOOT_MAGIC.wrapping_add(flags).wrapping_add(checksum) == 0 {
            return Ok(MultibootHeader { offset, flags });
        }
        bad_checksum.get_or_insert(offset);
    }
    Err(match bad_checksum {
        Some(offset) => ImageProblem::BadChecksum(offset),
        None => ImageProblem::NoHeader,
    })
}

/// The first valid multiboot2 header's offset: magic, architecture,
/// header length, checksum summing to 0, 8-byte aligned within 32 KiB.
fn find_multiboot2(head: &[u8]) -> Option<usize> {
    let end = head.len().min(MULTIBOOT2_SEARCH);
    (0..end.saturating_sub(15)).step_by(8).find(|&offset| {
        let fields: Option<Vec<u32>> = (0..4).map(|i| word(head, offset + 4 * i)).collect();
        match fields.as_deref() {
            Some([magic, arch, len, sum]) => {
                *magic == MULTIBOOT2_MAGIC
                    && magic
                        .wrapping_add(*arch)
                        .wrapping_add(*len)
                        .wrapping_add(*sum)
                        == 0
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian x86 ELF header of `class`, padded to `len`.
    fn elf(class: ElfClass, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len.max(64)];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = match class {
            ElfClass::Elf32 => 1,
            ElfClass::Elf64 => 2,
        };
        b[5] = 1;
        b[6] = 1;
        let machine: u16 = match class {
            ElfClass::Elf32 => 3,
            ElfClass::Elf64 => 62,
        };
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b
    }

    fn put_multiboot(b: &mut [u8], at: usize, flags: u32, checksum: u32) {
        b[at..at + 4].copy_from_slice(&MULTIBOOT_MAGIC.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        b[at + 8..at + 12].copy_from_slice(&checksum.to_le_bytes());
    }

    fn good(flags: u32) -> u32 {
        0u32.wrapping_sub(MULTIBOOT_MAGIC.wrapping_add(flags))
    }

    fn put_multiboot2(b: &mut [u8], at: usize) {
        let (arch, len) = (0u32, 16u32);
        let sum = 0u32.wrapping_sub(MULTIBOOT2_MAGIC.wrapping_add(arch).wrapping_add(len));
        for (i, w) in [MULTIBOOT2_MAGIC, arch, len, sum].into_iter().enumerate() {
            b[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
    }

    #[test]
    fn elf32_with_a_header_is_multiboot32() {
        let mut b = elf(ElfClass::Elf32, 4096);
        put_multiboot(&mut b, 0x1000 - 12, 3, good(3));
        let info = inspect_bytes(&b).unwrap();
        assert_eq!(info.class, ElfClass::Elf32);
        assert_eq!(
            info.multiboot,
            Some(MultibootHeader {
                offset: 0x1000 - 12,
                flags: 3
            })
        );
        assert!(!info.multiboot.unwrap().has_addresses());
        assert_eq!(info.multiboot2, None);
    }

    #[test]
    fn elf64_with_a_header_and_multiboot2_is_reported() {
        let mut b = elf(ElfClass::Elf64, 32768);
        put_multiboot(&mut b, 0x40, 0x0001_0003, good(0x0001_0003));
        put_multiboot2(&mut b, 0x2000);
        let info = inspect_bytes(&b).unwrap();
        assert_eq!(info.class, ElfClass::Elf64);
        assert_eq!(info.machine, 62);
        assert!(info.multiboot.unwrap().has_addresses());
        assert_eq!(info.multiboot2, Some(0x2000));
    }

    #[test]
    fn the_header_must_end_within_8_kib() {
        let mut b = elf(ElfClass::Elf32, 16384);
        put_multiboot(&mut b, 8192 - 12, 0, good(0));
        assert!(inspect_bytes(&b).is_ok());
        let mut b = elf(ElfClass::Elf32, 16384);
        put_multiboot(&mut b, 8192 - 8, 0, good(0));
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NoHeader));
        let mut b = elf(ElfClass::Elf32, 16384);
        put_multiboot(&mut b, 8192, 0, good(0));
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NoHeader));
    }

    #[test]
    fn a_misaligned_header_is_not_one() {
        let mut b = elf(ElfClass::Elf32, 4096);
        put_multiboot(&mut b, 0x102, 0, good(0));
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NoHeader));
    }

    #[test]
    fn a_bad_checksum_is_named() {
        let mut b = elf(ElfClass::Elf32, 4096);
        put_multiboot(&mut b, 0x100, 3, good(3).wrapping_add(1));
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::BadChecksum(0x100)));
        // A later good header still counts.
        put_multiboot(&mut b, 0x200, 3, good(3));
        assert_eq!(inspect_bytes(&b).unwrap().multiboot.unwrap().offset, 0x200);
    }

    #[test]
    fn truncated_files() {
        let mut b = elf(ElfClass::Elf32, 4096);
        put_multiboot(&mut b, 0x100, 0, good(0));
        // Cut inside the header: no header.
        assert_eq!(inspect_bytes(&b[..0x108]), Err(ImageProblem::NoHeader));
        // Cut inside the ELF header.
        assert_eq!(inspect_bytes(&b[..30]), Err(ImageProblem::Truncated));
        assert_eq!(inspect_bytes(&b[..10]), Err(ImageProblem::Truncated));
        let b64 = elf(ElfClass::Elf64, 64);
        assert_eq!(inspect_bytes(&b64[..60]), Err(ImageProblem::Truncated));
    }

    #[test]
    fn not_elf_or_not_x86() {
        assert_eq!(inspect_bytes(b""), Err(ImageProblem::NotElf));
        let mut b = vec![0u8; 4096];
        put_multiboot(&mut b, 0x100, 0, good(0));
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NotElf));
        let mut b = elf(ElfClass::Elf32, 4096);
        b[4] = 7;
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::BadClass(7)));
        let mut b = elf(ElfClass::Elf32, 4096);
        b[5] = 2;
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::BigEndian));
        let mut b = elf(ElfClass::Elf64, 4096);
        b[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NotX86(183)));
    }

    #[test]
    fn multiboot2_only_is_refused_by_name() {
        let mut b = elf(ElfClass::Elf64, 32768);
        put_multiboot2(&mut b, 0x1000);
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::Multiboot2Only(0x1000)));
        // Misaligned: not found.
        let mut b = elf(ElfClass::Elf64, 32768);
        put_multiboot2(&mut b, 0x1004);
        assert_eq!(inspect_bytes(&b), Err(ImageProblem::NoHeader));
    }

    #[test]
    fn detect_reads_files_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service");
        let mut b = elf(ElfClass::Elf64, 100_000);
        put_multiboot(&mut b, 0x40, 0, good(0));
        std::fs::write(&path, &b).unwrap();
        assert_eq!(
            detect(&path, "-v").unwrap(),
            BootPath::Multiboot64 {
                image: path.clone(),
                cmdline: "-v".into()
            }
        );
        std::fs::write(&path, b"#!/bin/sh\n").unwrap();
        let err = detect(&path, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a multiboot image: not an ELF file",
                path.display()
            )
        );
        let mut b = elf(ElfClass::Elf32, 100);
        b[0x50..0x54].copy_from_slice(&[1, 2, 3, 4]);
        std::fs::write(&path, &b).unwrap();
        let err = detect(&path, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a multiboot image: no multiboot header in its first 8 KiB",
                path.display()
            )
        );
        assert!(matches!(
            detect(&dir.path().join("absent"), ""),
            Err(BootError::Read { .. })
        ));
    }

    /// The test builder's kernel, assembled as its builder does with the
    /// .incbin inputs in a temporary directory; skipped without binutils.
    #[test]
    fn the_test_kernel_is_multiboot32() {
        let have = |tool: &str| {
            std::process::Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("as") || !have("ld") {
            eprintln!("skipped: no as/ld");
            return;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/test-builder");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("nacl.txt"), "Iface eth0 dhcp\n").unwrap();
        std::fs::write(d.join("config.json"), "{}\n").unwrap();
        std::fs::write(d.join("service"), "test").unwrap();
        let source = std::fs::read_to_string(root.join("kernel.S"))
            .unwrap()
            .replace("/build/in/", &format!("{}/", d.display()))
            .replace(
                "/tmp/jetpack-service",
                &d.join("service").display().to_string(),
            );
        std::fs::write(d.join("kernel.S"), source).unwrap();
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new(program)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{program}: {:?}", out);
        };
        let (obj, out) = (d.join("kernel.o"), d.join("kernel"));
        run(
            "as",
            &[
                "--32".as_ref(),
                "-o".as_ref(),
                obj.as_os_str(),
                d.join("kernel.S").as_os_str(),
            ],
        );
        let ld_script = root.join("kernel.ld");
        run(
            "ld",
            &[
                "-m".as_ref(),
                "elf_i386".as_ref(),
                "-T".as_ref(),
                ld_script.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
                obj.as_os_str(),
            ],
        );
        let info = inspect(&out).unwrap();
        assert_eq!(info.class, ElfClass::Elf32);
        assert_eq!(info.machine, 3);
        assert_eq!(info.multiboot.unwrap().flags, 3);
        assert!(matches!(
            detect(&out, "").unwrap(),
            BootPath::Multiboot32 { .. }
        ));
    }
}
