#!/bin/sh
# jetpack's NaCl check for an adopted stock `includeos/builder` image,
# written by jetpack into the pod as /build/in/jetpack-validate (source:
# src/build/adopt/). IncludeOS's own transpiler, NaCl.py, is the
# reference: it stops at its first error with sys.exit("line L:C message")
# (stderr, status 1); ANTLR's syntax errors come as `line L:C message` on
# stderr too but leave the status 0. So every such line is printed and the
# verdict is invalid (exit 1) if there was one or the status was not 0.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
export INCLUDEOS_PREFIX=/usr/local
NACL_PY="$INCLUDEOS_PREFIX/includeos/nacl/NaCl.py"
nacl=/build/in/nacl.txt
[ -f "$nacl" ] || { echo "validate: missing $nacl" >&2; exit 2; }
if ! grep -q '[^[:space:]]' "$nacl"; then
    echo "line 1:0 Empty NaCl"
    exit 1
fi
work=$(mktemp -d /tmp/nacl.XXXXXX)
status=0
python "$NACL_PY" "$work/nacl_content.cpp" < "$nacl" > "$work/out" 2>&1 || status=$?
if grep '^line [0-9][0-9]*:[0-9][0-9]* ' "$work/out"; then
    exit 1
fi
if [ "$status" -ne 0 ]; then
    # A traceback, not a diagnostic: invalid all the same, with its last line.
    echo "line 1:0 NaCl.py failed (status $status): $(tail -n 1 "$work/out")"
    exit 1
fi
exit 0
