/*
 * jetpack test kernel: a multiboot (v1) ELF32 that stands in for an
 * IncludeOS unikernel in jetpack's build tests.
 *
 * It carries the build's inputs the way IncludeOS does (the NaCl and the
 * uplink's config.json baked into the image), prints two lines on COM1:
 *
 *   jetpack test kernel: service=<service> config=<config.json>\n
 *   jetpack test kernel: uuid=<32 hex digits | none>\n
 *
 * (CR and LF inside config.json are printed as spaces so that it stays one
 * line). The uuid is the SMBIOS system UUID as IncludeOS reports it (its
 * x86 smbios.cpp: "%02hhx" of the 16 bytes at offset 8 of the type 1
 * structure, in table order, so qemu's -uuid 11223344-5566-7788-99aa-...
 * reads 4433221166558877 99aa...: SMBIOS 2.6+ stores the first three fields
 * little-endian); `none` without an SMBIOS entry point or a type 1 UUID.
 *
 * Then it asks QEMU to exit through isa-debug-exit (status 1) and halts if
 * that device is absent; or, when the multiboot command line has the word
 * `idle` (qemu -append idle), it stays up halted (cli; hlt) for good.
 *
 * Assembled by /jetpack/build inside the builder's pod:
 *   as --32 -o /tmp/kernel.o /jetpack/kernel.S
 *   ld -m elf_i386 -T /jetpack/kernel.ld -o /build/out/NAME /tmp/kernel.o
 * or, for a NaCl line "// test: elf64", as an ELF64 x86-64 file like an
 * IncludeOS x86_64 image (the code stays 32-bit: .code32 below; qemu boots
 * it through the chainloader, images/chainloader):
 *   as --64 -o /tmp/kernel.o /jetpack/kernel.S
 *   ld -m elf_x86_64 -T /jetpack/kernel64.ld -o /build/out/NAME /tmp/kernel.o
 * The .incbin paths are absolute: they are the pod's build inputs, plus
 * /tmp/jetpack-service, which /jetpack/build writes from build.json.
 */

        .set MB_MAGIC,    0x1BADB002
        .set MB_FLAGS,    0x00000003        /* page-align modules + meminfo */
        .set MB_CHECKSUM, -(MB_MAGIC + MB_FLAGS)

        .set COM1,        0x3F8
        .set DEBUG_EXIT,  0xF4
        .set MB_BOOTED,   0x2BADB002        /* %eax from a multiboot loader */

/* The loader looks for the header in the first 8 KiB: kernel.ld puts this
   section first in the first loaded segment. */
        .section .multiboot, "a"
        .balign 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long MB_CHECKSUM

/* Allocated ("a") so that they are loaded with the image and so that
   `objcopy -O binary --only-section=.config` gives the file back: nothing
   but the input goes in these two sections, not even a terminator. */
        .section .nacl, "a"
        .globl nacl_start, nacl_end
nacl_start:
        .incbin "/build/in/nacl.txt"
nacl_end:

        .section .config, "a"
        .globl config_start, config_end
config_start:
        .incbin "/build/in/config.json"
config_end:

        .section .rodata
banner:
        .ascii "jetpack test kernel: service="
banner_end:
service:
        .incbin "/tmp/jetpack-service"
service_end:
config_label:
        .ascii " config="
config_label_end:
uuid_label:
        .ascii "jetpack test kernel: uuid="
uuid_label_end:
none:
        .ascii "none"
none_end:
hex_digits:
        .ascii "0123456789abcdef"

        .section .bss
        .balign 16
stack_bottom:
        .skip 16384
stack_top:

        .section .text
        .code32
        .globl _start
_start:
        /* The loader leaves us in protected mode with no usable stack. */
        cli
        movl $stack_top, %esp
        cld
        /* %ebx: the multiboot info, when %eax says a loader put it there. */
        xorl %edi, %edi
        cmpl $MB_BOOTED, %eax
        jne 1f
        movl %ebx, %edi
1:      pushl %edi

        call serial_init

        movl $banner, %esi
        movl $banner_end, %ecx
        call put_bytes
        movl $service, %esi
        movl $service_end, %ecx
        call put_bytes
        movl $config_label, %esi
        movl $config_label_end, %ecx
        call put_bytes
        movl $config_start, %esi
        movl $config_end, %ecx
        call put_bytes
        movb $'\n', %al
        call put_raw

        call put_uuid

        /* `idle` on the command line: stay up, halted. */
        popl %edi
        call idle_asked
        jc halt

        /* isa-debug-exit: QEMU exits with (value << 1) | 1 = 1. */
        movb $0, %al
        outb %al, $DEBUG_EXIT
halt:
        cli
        hlt
        jmp halt

/* CF set if the multiboot info at %edi (0: none) has a command line
   (flags bit 2, pointer at offset 16) with the word `idle` in it, words
   being split by spaces (the loader's first word is the kernel's path). */
idle_asked:
        testl %edi, %edi
        jz 9f
        testb $0x04, (%edi)
        jz 9f
        movl 16(%edi), %esi
        movb $' ', %ah              /* the byte before: start = a space */
1:      lodsb
        testb %al, %al
        jz 9f
        cmpb $' ', %ah
        movb %al, %ah
        jne 1b
        cmpl $0x656C6469, -1(%esi)  /* "idle" */
        jne 1b
        movb 3(%esi), %al           /* and then a space or the end */
        testb %al, %al
        jz 8f
        cmpb $' ', %al
        jne 1b
8:      stc
        ret
9:      clc
        ret

/* Prints "jetpack test kernel: uuid=<hex|none>\n". The SMBIOS entry point
   is in 0xF0000-0xFFFFF on a 16-byte boundary: "_SM_" (2.x: table at 0x18,
   length at 0x16, count at 0x1C) or "_SM3_" (3.x: 64-bit table address at
   0x10, maximum size at 0x0C, no count). Structures: type, length, handle,
   then `length - 4` more bytes, then strings ending in a double NUL. */
put_uuid:
        movl $uuid_label, %esi
        movl $uuid_label_end, %ecx
        call put_bytes
        movl $0xF0000, %esi
1:      cmpl $0x5F4D535F, (%esi)    /* "_SM_" */
        je 2f
        cmpl $0x334D535F, (%esi)    /* "_SM3" */
        jne 3f
        cmpb $'_', 4(%esi)
        je 4f
3:      addl $16, %esi
        cmpl $0x100000, %esi
        jb 1b
        jmp 8f
2:      movl 0x18(%esi), %ebx       /* 2.x */
        movzwl 0x16(%esi), %edx
        movzwl 0x1C(%esi), %ecx
        jmp 5f
4:      cmpl $0, 0x14(%esi)         /* 3.x: above 4 GiB is out of reach */
        jne 8f
        movl 0x10(%esi), %ebx
        movl 0x0C(%esi), %edx
        movl $0xFFFF, %ecx
5:      addl %ebx, %edx             /* %ebx: structure, %edx: table end */
6:      jecxz 8f
        leal 4(%ebx), %eax
        cmpl %edx, %eax
        ja 8f
        movzbl (%ebx), %eax         /* type */
        cmpb $127, %al
        je 8f
        cmpb $1, %al
        je 9f
        movzbl 1(%ebx), %eax        /* skip the formatted area */
        addl %eax, %ebx
7:      leal 1(%ebx), %eax          /* then the strings, to a double NUL */
        cmpl %edx, %eax
        jae 8f
        cmpw $0, (%ebx)
        je 10f
        incl %ebx
        jmp 7b
10:     addl $2, %ebx
        decl %ecx
        jmp 6b
9:      cmpb $0x18, 1(%ebx)         /* type 1 with a UUID (length >= 0x18) */
        jb 8f
        leal 8(%ebx), %esi
        movl $16, %ecx
11:     lodsb
        movzbl %al, %ebx
        shrl $4, %ebx
        movb hex_digits(%ebx), %al
        call put_raw
        movzbl -1(%esi), %ebx
        andl $15, %ebx
        movb hex_digits(%ebx), %al
        call put_raw
        loop 11b
        jmp 12f
8:      movl $none, %esi
        movl $none_end, %ecx
        call put_bytes
12:     movb $'\n', %al
        jmp put_raw

/* COM1 at 115200 8N1, FIFO on, no interrupts. */
serial_init:
        movw $COM1 + 1, %dx
        movb $0x00, %al             /* IER: no interrupts */
        outb %al, %dx
        movw $COM1 + 3, %dx
        movb $0x80, %al             /* LCR: DLAB on */
        outb %al, %dx
        movw $COM1 + 0, %dx
        movb $0x01, %al             /* divisor 1 = 115200 baud */
        outb %al, %dx
        movw $COM1 + 1, %dx
        movb $0x00, %al
        outb %al, %dx
        movw $COM1 + 3, %dx
        movb $0x03, %al             /* LCR: 8N1, DLAB off */
        outb %al, %dx
        movw $COM1 + 2, %dx
        movb $0xC7, %al             /* FCR: enable + clear FIFOs */
        outb %al, %dx
        movw $COM1 + 4, %dx
        movb $0x03, %al             /* MCR: DTR + RTS */
        outb %al, %dx
        ret

/* Bytes [%esi, %ecx) to COM1, CR and LF as spaces. */
put_bytes:
1:      cmpl %ecx, %esi
        jae 3f
        lodsb
        cmpb $'\n', %al
        je 2f
        cmpb $'\r', %al
        jne 4f
2:      movb $' ', %al
4:      call put_raw
        jmp 1b
3:      ret

/* %al to COM1 once the transmit holding register is empty. */
put_raw:
        pushl %eax
        movw $COM1 + 5, %dx
1:      inb %dx, %al                /* LSR */
        testb $0x20, %al
        jz 1b
        popl %eax
        movw $COM1, %dx
        outb %al, %dx
        ret

/* No executable stack: keeps ld from warning about one. */
        .section .note.GNU-stack, "", @progbits
