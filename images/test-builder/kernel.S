/*
 * jetpack test kernel: a multiboot (v1) ELF32 that stands in for an
 * IncludeOS unikernel in jetpack's build tests.
 *
 * It carries the build's inputs the way IncludeOS does (the NaCl and the
 * uplink's config.json baked into the image), prints one line on COM1:
 *
 *   jetpack test kernel: service=<service> config=<config.json>\n
 *
 * (CR and LF inside config.json are printed as spaces so that it stays one
 * line), then asks QEMU to exit through isa-debug-exit (status 1) and
 * halts if that device is absent.
 *
 * Assembled by /jetpack/build inside the builder's pod:
 *   as --32 -o /tmp/kernel.o /jetpack/kernel.S
 *   ld -m elf_i386 -T /jetpack/kernel.ld -o /build/out/NAME /tmp/kernel.o
 * The .incbin paths are absolute: they are the pod's build inputs, plus
 * /tmp/jetpack-service, which /jetpack/build writes from build.json.
 */

        .set MB_MAGIC,    0x1BADB002
        .set MB_FLAGS,    0x00000003        /* page-align modules + meminfo */
        .set MB_CHECKSUM, -(MB_MAGIC + MB_FLAGS)

        .set COM1,        0x3F8
        .set DEBUG_EXIT,  0xF4

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

        /* isa-debug-exit: QEMU exits with (value << 1) | 1 = 1. */
        movb $0, %al
        outb %al, $DEBUG_EXIT
halt:
        cli
        hlt
        jmp halt

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
