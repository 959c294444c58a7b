/* The test builder's image: a multiboot (v1) kernel that prints one line
 * on COM1, "jetpack test kernel: config=<config.json>", and leaves QEMU
 * through the isa-debug-exit port. The NaCl and config.json are embedded
 * in their own sections (.nacl, .config), as an IncludeOS image embeds them,
 * so that tests can read them back with objcopy. */
        .set MAGIC, 0x1BADB002
        .set FLAGS, 0

        .section .multiboot, "a"
        .align 4
        .long MAGIC
        .long FLAGS
        .long -(MAGIC + FLAGS)

        .text
        .code32
        .globl _start
_start:
        mov $stack_top, %esp
        mov $banner, %esi
        mov $banner_end, %ecx
        call puts
        mov $config_start, %esi
        mov $config_end, %ecx
        call puts
        mov $newline, %esi
        mov $newline_end, %ecx
        call puts
        /* isa-debug-exit: QEMU exits with status (0 << 1) | 1. */
        mov $0xf4, %dx
        xor %al, %al
        outb %al, %dx
halt:   cli
        hlt
        jmp halt

/* Writes the bytes [%esi, %ecx) to COM1; a newline inside config.json
 * becomes a space so that the kernel prints exactly one line. */
puts:   cmp %ecx, %esi
        jae done
        mov $0x3fd, %dx
wait:   inb %dx, %al
        test $0x20, %al
        jz wait
        movb (%esi), %al
        cmp $10, %al
        jne put
        mov $32, %al
put:    mov $0x3f8, %dx
        outb %al, %dx
        inc %esi
        jmp puts
done:   ret

        .section .rodata
banner: .ascii "jetpack test kernel: config="
banner_end:
newline: .ascii "\n"
newline_end:

        .section .config, "a"
config_start:
        .incbin "/build/in/config.json"
config_end:

        .section .nacl, "a"
        .incbin "/build/in/nacl.txt"

        .bss
        .align 16
        .skip 16384
stack_top:
