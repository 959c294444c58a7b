/*
 * jetpack chainloader: a multiboot (v1) ELF32 that qemu's -kernel loads,
 * which loads the ELF64 x86-64 multiboot kernel given as module 0
 * (qemu -initrd) and starts it the way a multiboot loader would.
 *
 *   qemu-system-x86_64 -kernel chainloader -initrd IMAGE -append ARGS
 *
 * What it does (README.md has the memory layout and the exit statuses):
 *  1. loads its own flat GDT in low memory (0x6000) and reloads the segment
 *     registers, so that the kernel gets flat 4 GiB segments that stay
 *     valid whatever it does to the memory above 1 MiB;
 *  2. checks module 0 is an ELF64, little-endian, x86-64, ET_EXEC file
 *     whose program headers and PT_LOAD segments are inside the file;
 *  3. checks every PT_LOAD segment lands (by p_paddr, p_memsz) within
 *     [1 MiB, the chainloader's start) and not over the module;
 *  4. builds the kernel's multiboot info in low memory: the info at
 *     0x7000, the memory map (copied) at 0x7100, the command line (the
 *     chainloader's own, that is qemu's "KERNEL-PATH -append ARGS") at
 *     0x8000, the boot loader name at 0x6100;
 *  5. copies each segment's p_filesz bytes to p_paddr, zeroes the rest up
 *     to p_memsz, and jumps to e_entry with %eax = 0x2BADB002, %ebx =
 *     0x7000, in 32-bit protected mode, paging off, interrupts off.
 * Nothing the copy writes can overlap the chainloader (its code, its
 * stack), the module or the new info (3. checks it), so the copy runs from
 * where the chainloader is and needs no trampoline. On an error it prints one line on COM1, beginning
 * "jetpack chainloader: error: ", and exits through isa-debug-exit (or
 * halts if there is none).
 *
 * Built by make.sh: as --32, ld -m elf_i386 -T chainloader.ld.
 */

        .set MB_MAGIC,    0x1BADB002
        .set MB_FLAGS,    0x00000003        /* page-align modules + meminfo */
        .set MB_CHECKSUM, -(MB_MAGIC + MB_FLAGS)
        .set MB_BOOTED,   0x2BADB002

        .set COM1,        0x3F8
        .set DEBUG_EXIT,  0xF4

        /* Low memory the chainloader writes (below qemu's own multiboot
           structures at 0x9000, above the BIOS data area). */
        .set GDT_ADDR,    0x6000            /* 3 descriptors + the pointer */
        .set NAME_ADDR,   0x6100            /* boot_loader_name */
        .set INFO_ADDR,   0x7000            /* the kernel's multiboot info */
        .set INFO_SIZE,   0x100
        .set MMAP_ADDR,   0x7100            /* its memory map */
        .set MMAP_MAX,    0x0F00            /* up to 0x8000 */
        .set CMDLINE_ADDR, 0x8000           /* its command line */
        .set CMDLINE_MAX, 0x0FFF            /* bytes, a NUL after them */

        .set KERNEL_MIN,  0x100000          /* segments from 1 MiB */

        /* Exit values: qemu exits with (value << 1) | 1. */
        .set EXIT_NO_MODULE,    1           /* status 3 */
        .set EXIT_NOT_ELF64,    2           /* status 5 */
        .set EXIT_PLACEMENT,    3           /* status 7 */
        .set EXIT_MALFORMED,    4           /* status 9 */
        .set EXIT_NO_MULTIBOOT, 5           /* status 11 */

        .section .multiboot, "a"
        .balign 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long MB_CHECKSUM

        .section .rodata
gdt:
        .quad 0                             /* null */
        .quad 0x00CF9A000000FFFF            /* 0x08: code, flat, 32-bit */
        .quad 0x00CF92000000FFFF            /* 0x10: data, flat */
gdt_end:
loader_name:
        .asciz "jetpack chainloader"
loader_name_end:
hex_digits:
        .ascii "0123456789abcdef"
msg_prefix:
        .asciz "jetpack chainloader: error: "
msg_no_multiboot:
        .asciz "not started by a multiboot loader"
msg_no_module:
        .asciz "no module: boot with -kernel chainloader -initrd IMAGE"
msg_not_elf64:
        .asciz "module 0 is not an ELF64 x86-64 executable"
msg_malformed:
        .asciz "module 0 is a malformed ELF64: "
msg_phdrs:
        .asciz "program headers outside the file"
msg_no_load:
        .asciz "no PT_LOAD segment"
msg_entry:
        .asciz "entry point above 4 GiB"
msg_seg_file:
        .asciz "a segment outside the file"
msg_seg_size:
        .asciz "a segment with p_filesz > p_memsz"
msg_segment:
        .asciz "module 0: segment "
msg_below:
        .asciz " lands below 1 MiB"
msg_over_loader:
        .asciz " does not end below the chainloader at "
msg_over_module:
        .asciz " lands over the module at "
msg_dash:
        .asciz "-"

        .section .bss
        .balign 16
stack_bottom:
        .skip 4096
stack_top:
info_in:    .skip 4                         /* qemu's multiboot info */
mod_start:  .skip 4
mod_size:   .skip 4
phdr:       .skip 4                         /* first program header */
phnum:      .skip 4
entry:      .skip 4

        .section .text
        .code32
        .globl _start
_start:
        cli
        cld
        movl $stack_top, %esp
        movl %ebx, info_in
        movl %eax, %ebp

        /* Our own flat GDT at GDT_ADDR, its pointer after it. */
        movl $gdt, %esi
        movl $GDT_ADDR, %edi
        movl $(gdt_end - gdt), %ecx
        rep movsb
        movw $(gdt_end - gdt - 1), (%edi)
        movl $GDT_ADDR, 2(%edi)
        lgdt (%edi)
        ljmp $0x08, $1f
1:      movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %fs
        movw %ax, %gs
        movw %ax, %ss

        movl $msg_no_multiboot, %esi
        movb $EXIT_NO_MULTIBOOT, %bl
        cmpl $MB_BOOTED, %ebp
        jne fail

        /* Module 0: flags bit 3, mods_count at 20, mods_addr at 24. */
        movl $msg_no_module, %esi
        movb $EXIT_NO_MODULE, %bl
        movl info_in, %edx
        testb $0x08, (%edx)
        jz fail
        cmpl $0, 20(%edx)
        je fail
        movl 24(%edx), %eax
        movl (%eax), %ecx                   /* mod_start */
        movl 4(%eax), %edx                  /* mod_end */
        movl %ecx, mod_start
        subl %ecx, %edx
        jb fail
        movl %edx, mod_size

        /* The ELF header: 64 bytes. */
        movl $msg_not_elf64, %esi
        movb $EXIT_NOT_ELF64, %bl
        cmpl $64, %edx
        jb fail
        cmpl $0x464C457F, (%ecx)            /* "\x7fELF" */
        jne fail
        cmpb $2, 4(%ecx)                    /* ELFCLASS64 */
        jne fail
        cmpb $1, 5(%ecx)                    /* little-endian */
        jne fail
        cmpb $1, 6(%ecx)                    /* EV_CURRENT */
        jne fail
        cmpw $2, 16(%ecx)                   /* ET_EXEC */
        jne fail
        cmpw $62, 18(%ecx)                  /* EM_X86_64 */
        jne fail

        movl $msg_entry, %edi
        movb $EXIT_MALFORMED, %bl
        cmpl $0, 28(%ecx)                   /* e_entry, high half */
        jne malformed
        movl 24(%ecx), %eax
        movl %eax, entry
        movl $msg_phdrs, %edi
        cmpw $56, 54(%ecx)                  /* e_phentsize */
        jne malformed
        cmpl $0, 36(%ecx)                   /* e_phoff, high half */
        jne malformed
        movzwl 56(%ecx), %eax               /* e_phnum */
        movl %eax, phnum
        imull $56, %eax
        addl 32(%ecx), %eax                 /* + e_phoff: no carry, */
        jc malformed
        cmpl mod_size, %eax                 /* within the file */
        ja malformed
        movl 32(%ecx), %eax
        addl %ecx, %eax
        movl %eax, phdr

        /* Pass 1: check every PT_LOAD. %esi: program header, %ecx: left,
           %ebp: PT_LOADs seen. */
        movl phdr, %esi
        movl phnum, %ecx
        xorl %ebp, %ebp
2:      jecxz 3f
        cmpl $1, (%esi)                     /* PT_LOAD */
        jne 4f
        incl %ebp
        call check_segment
4:      addl $56, %esi
        decl %ecx
        jmp 2b
3:      movl $msg_no_load, %edi
        movb $EXIT_MALFORMED, %bl
        testl %ebp, %ebp
        jz malformed

        call build_info

        /* Pass 2: copy and zero. */
        movl phdr, %ebx
        movl phnum, %edx
5:      testl %edx, %edx
        jz 6f
        cmpl $1, (%ebx)
        jne 7f
        movl mod_start, %esi
        addl 8(%ebx), %esi                  /* p_offset */
        movl 24(%ebx), %edi                 /* p_paddr */
        movl 32(%ebx), %ecx                 /* p_filesz */
        rep movsb
        movl 40(%ebx), %ecx                 /* p_memsz - p_filesz */
        subl 32(%ebx), %ecx
        xorl %eax, %eax
        rep stosb
7:      addl $56, %ebx
        decl %edx
        jmp 5b

6:      movl entry, %ecx
        movl $MB_BOOTED, %eax
        movl $INFO_ADDR, %ebx
        xorl %edx, %edx
        xorl %esi, %esi
        xorl %edi, %edi
        xorl %ebp, %ebp
        jmp *%ecx

/* Checks the PT_LOAD program header at %esi; on success returns with
   every register but %eax, %edx as it was. */
check_segment:
        pushl %ecx
        pushl %esi
        /* Inside the file: p_offset + p_filesz <= size, 32-bit values. */
        movl $msg_seg_file, %edi
        movb $EXIT_MALFORMED, %bl
        cmpl $0, 12(%esi)                   /* p_offset, high */
        jne malformed
        cmpl $0, 36(%esi)                   /* p_filesz, high */
        jne malformed
        movl 8(%esi), %eax
        addl 32(%esi), %eax
        jc malformed
        cmpl mod_size, %eax
        ja malformed
        movl $msg_seg_size, %edi
        cmpl $0, 44(%esi)                   /* p_memsz, high */
        jne 1f
        movl 32(%esi), %eax
        cmpl 40(%esi), %eax
        ja malformed
1:      /* Placement: [p_paddr, p_paddr + p_memsz) in [1 MiB, start). */
        movb $EXIT_PLACEMENT, %bl
        movl 24(%esi), %eax                 /* %eax: start, %edx: end */
        movl 40(%esi), %edx
        cmpl $0, 28(%esi)                   /* p_paddr, high */
        jne over_loader
        cmpl $0, 44(%esi)
        jne over_loader
        addl %eax, %edx
        jc over_loader
        cmpl $KERNEL_MIN, %eax
        jb below
        cmpl $__chainloader_start, %edx
        ja over_loader
        /* Not over the module: end <= mod_start or start >= mod_end. */
        cmpl mod_start, %edx
        jbe 2f
        movl mod_start, %ecx
        addl mod_size, %ecx
        cmpl %ecx, %eax
        jb over_module
2:      popl %esi
        popl %ecx
        ret

below:
        movl $msg_below, %edi
        xorl %ecx, %ecx
        jmp segment_fail
over_loader:
        movl $msg_over_loader, %edi
        movl $__chainloader_start, %ecx
        jmp segment_fail
over_module:
        movl $msg_over_module, %edi
        movl mod_start, %ecx
segment_fail:
        /* "module 0: segment 0xSTART-0xEND" + %edi [+ " 0xADDR"]. */
        pushl %ecx
        pushl %edi
        pushl %edx
        pushl %eax
        call serial_init
        movl $msg_prefix, %esi
        call put_string
        movl $msg_segment, %esi
        call put_string
        popl %eax
        call put_hex
        movl $msg_dash, %esi
        call put_string
        popl %eax
        call put_hex
        popl %esi
        call put_string
        popl %eax
        testl %eax, %eax
        jz 1f
        call put_hex
1:      jmp exit

/* Malformed: the message %edi after msg_malformed. */
malformed:
        pushl %edi
        call serial_init
        movl $msg_prefix, %esi
        call put_string
        movl $msg_malformed, %esi
        call put_string
        popl %esi
        call put_string
        jmp exit

/* The message %esi after the prefix, then exit with value %bl. */
fail:
        pushl %esi
        call serial_init
        movl $msg_prefix, %esi
        call put_string
        popl %esi
        call put_string
exit:
        movb $'\n', %al
        call put_raw
        movb %bl, %al
        outb %al, $DEBUG_EXIT
1:      cli
        hlt
        jmp 1b

/* The kernel's multiboot info at INFO_ADDR from qemu's (info_in). */
build_info:
        pushl %ebx
        movl $INFO_ADDR, %edi
        movl $INFO_SIZE, %ecx
        xorl %eax, %eax
        rep stosb
        movl info_in, %ebx
        xorl %edx, %edx                     /* the new flags */
        testb $0x01, (%ebx)                 /* mem_lower, mem_upper */
        jz 1f
        movl 4(%ebx), %eax
        movl %eax, INFO_ADDR + 4
        movl 8(%ebx), %eax
        movl %eax, INFO_ADDR + 8
        orl $0x01, %edx
1:      testb $0x04, (%ebx)                 /* cmdline */
        jz 3f
        movl 16(%ebx), %esi
        movl $CMDLINE_ADDR, %edi
        movl $CMDLINE_MAX, %ecx
2:      lodsb
        testb %al, %al
        jz 8f
        stosb
        loop 2b
8:      movb $0, (%edi)
        movl $CMDLINE_ADDR, INFO_ADDR + 16
        orl $0x04, %edx
3:      testb $0x40, (%ebx)                 /* mmap_length, mmap_addr */
        jz 4f
        movl 44(%ebx), %ecx
        cmpl $MMAP_MAX, %ecx                /* too long: left out */
        ja 4f
        movl 48(%ebx), %esi
        movl $MMAP_ADDR, %edi
        movl %ecx, INFO_ADDR + 44
        movl %edi, INFO_ADDR + 48
        rep movsb
        orl $0x40, %edx
4:      movl $loader_name, %esi             /* boot_loader_name */
        movl $NAME_ADDR, %edi
        movl $(loader_name_end - loader_name), %ecx
        rep movsb
        movl $NAME_ADDR, INFO_ADDR + 64
        orl $0x200, %edx
        movl %edx, INFO_ADDR
        popl %ebx
        ret

/* COM1 at 115200 8N1, FIFO on, no interrupts. */
serial_init:
        movw $COM1 + 1, %dx
        movb $0x00, %al
        outb %al, %dx
        movw $COM1 + 3, %dx
        movb $0x80, %al
        outb %al, %dx
        movw $COM1 + 0, %dx
        movb $0x01, %al
        outb %al, %dx
        movw $COM1 + 1, %dx
        movb $0x00, %al
        outb %al, %dx
        movw $COM1 + 3, %dx
        movb $0x03, %al
        outb %al, %dx
        movw $COM1 + 2, %dx
        movb $0xC7, %al
        outb %al, %dx
        movw $COM1 + 4, %dx
        movb $0x03, %al
        outb %al, %dx
        ret

/* The NUL-terminated string at %esi to COM1. */
put_string:
1:      lodsb
        testb %al, %al
        jz 2f
        call put_raw
        jmp 1b
2:      ret

/* %eax as 0x and 8 hex digits. */
put_hex:
        pushl %ecx
        pushl %ebx
        movl %eax, %ebx
        movb $'0', %al
        call put_raw
        movb $'x', %al
        call put_raw
        movl $8, %ecx
1:      roll $4, %ebx
        movl %ebx, %eax
        andl $15, %eax
        movb hex_digits(%eax), %al
        call put_raw
        loop 1b
        popl %ebx
        popl %ecx
        ret

/* %al to COM1 once the transmit holding register is empty. */
put_raw:
        pushl %eax
        pushl %edx
        movw $COM1 + 5, %dx
1:      inb %dx, %al
        testb $0x20, %al
        jz 1b
        movl 4(%esp), %eax
        movw $COM1, %dx
        outb %al, %dx
        popl %edx
        popl %eax
        ret

        .section .note.GNU-stack, "", @progbits
