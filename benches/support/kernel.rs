//! The test builder's kernel (images/test-builder/kernel.S) assembled
//! here with binutils, its input paths pointed at a folder of sample
//! inputs: the multiboot image the launch and disk tests and benches
//! boot, as ELF32 (qemu's `-kernel`, GRUB) and ELF64 (like an IncludeOS
//! x86_64 image). Include it with `#[path = ".../support/kernel.rs"]`.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct Kernels {
    pub elf32: PathBuf,
    pub elf64: PathBuf,
}

/// Assembles both kernels in `dir`, with `config_json` as the service's
/// config.json and `service` as its name (what it prints on COM1).
pub fn assemble(dir: &Path, config_json: &str, service: &str) -> Kernels {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).expect("the kernel's folder");
    let write = |name: &str, text: &str| {
        std::fs::write(input.join(name), text).expect("the kernel's inputs");
    };
    write("nacl.txt", "Iface eth0 {\n  index: 0\n}\n");
    write("config.json", config_json);
    write("service", service);
    let source = std::fs::read_to_string(Path::new(ROOT).join("images/test-builder/kernel.S"))
        .expect("images/test-builder/kernel.S")
        .replace("\"/build/in/", &format!("\"{}/", input.display()))
        .replace(
            "\"/tmp/jetpack-service\"",
            &format!("\"{}\"", input.join("service").display()),
        );
    std::fs::write(dir.join("kernel.S"), source).expect("kernel.S");
    let run = |argv: &[&str]| {
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
        assert!(status.success(), "{argv:?}");
    };
    let ld = |script: &str| format!("{ROOT}/images/test-builder/{script}");
    for (bits, emulation, script, out) in [
        ("--32", "elf_i386", "kernel.ld", "kernel32"),
        ("--64", "elf_x86_64", "kernel64.ld", "kernel64"),
    ] {
        let object = format!("{out}.o");
        run(&["as", bits, "-o", &object, "kernel.S"]);
        run(&[
            "ld",
            "-m",
            emulation,
            "--no-warn-rwx-segments",
            "-T",
            &ld(script),
            "-o",
            out,
            &object,
        ]);
    }
    Kernels {
        elf32: dir.join("kernel32"),
        elf64: dir.join("kernel64"),
    }
}
