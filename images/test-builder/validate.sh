#!/bin/sh
# The test builder's NaCl checker, /jetpack/validate: a small stand-in for
# IncludeOS's NaCl.py that prints problems the way it does, one per line,
# "line L:C message" (L from 1, C from 0). Exit 0 valid, 1 invalid.
# It knows the top-level block types and checks braces; nothing more.
nacl=${1:-/build/in/nacl.txt}
[ -f "$nacl" ] || { echo "validate: missing $nacl" >&2; exit 2; }
exec awk '
BEGIN {
    n = split("Iface Vlan Filter Nat Gateway Load_balancer Conntrack Syslog Timer", t, " ")
    for (i = 1; i <= n; i++) known[t[i]] = 1
    depth = 0; content = 0
}
# Only the first problem on a line is told, as NaCl.py does.
function report(l, c, msg) {
    if (!(l in err)) err[l] = sprintf("line %d:%d %s", l, c, msg)
}
{
    line = $0
    sub(/\r$/, "", line)
    # Comments (// or #) run to the end of the line; cut at whichever is first.
    cut = index(line, "//"); h = index(line, "#")
    if (h > 0 && (cut == 0 || h < cut)) cut = h
    if (cut > 0) line = substr(line, 1, cut - 1)
    if (line ~ /[^ \t]/) content = 1

    # A block at top level: TYPE NAME { or TYPE::SUBTYPE NAME {
    if (depth == 0 && match(line, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?[ \t]+[A-Za-z_][A-Za-z0-9_.-]*[ \t]*\{/)) {
        col = match(line, /[A-Za-z_]/) - 1
        type = substr(line, col + 1)
        sub(/[^A-Za-z0-9_].*/, "", type)
        if (!(type in known)) report(NR, col, "Invalid type " type)
    }

    len = length(line)
    for (i = 1; i <= len; i++) {
        c = substr(line, i, 1)
        if (c == "{") { depth++; openl[depth] = NR; openc[depth] = i - 1 }
        else if (c == "}") {
            if (depth == 0) report(NR, i - 1, "Unmatched }")
            else depth--
        }
    }
}
END {
    if (!content) report(1, 0, "Empty NaCl")
    else for (d = 1; d <= depth; d++) report(openl[d], openc[d], "Missing } for { opened here")
    bad = 0
    for (l = 1; l <= (NR > 1 ? NR : 1); l++) if (l in err) { print err[l]; bad = 1 }
    exit bad
}' "$nacl"
