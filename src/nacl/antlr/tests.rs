//! Syntax errors as the reference reports them (shared/nacl-reference).

use super::first_error;

fn first(src: &str) -> String {
    first_error(src).map_or_else(|| "OK".to_string(), |d| d.to_string())
}

#[test]
fn antlr_messages_and_positions() {
    let cases = [
        ("Filter::IP f {\n", "line 2:0 mismatched input '<EOF>' expecting {'if', Identifier}"),
        ("x: { a: 1\n", "line 2:0 missing '}' at '<EOF>'"),
        ("x: { a: 1, : 2 }\n", "line 1:11 extraneous input ':' expecting Identifier"),
        ("x: { a: . }\n", "line 1:8 no viable alternative at input 'a: .'"),
        ("Filter:IP f { drop }\n", "line 1:12 no viable alternative at input 'f {'"),
        ("x: [ (-1).0 ]\n", "line 1:9 mismatched input '.' expecting ']'"),
        ("Iface eth0 { index: 0 0, address: 10.0.0.1, netmask: 255.255.255.0 }\n", "OK"),
        ("Filter::IP f {\n  log(\"50% done\")\n  accept\n}\n", "line 2:9 token recognition error at: '%'"),
        ("a: 1.2.3.\nb: 1\n", "line 2:0 no viable alternative at input '1.2.3.\\nb'"),
        (
            "Filter::IP f {\n  if (ip.ttl > 1 and (ip.ttl > 2 or ip.ttl  3)) { drop }\n  accept\n}\n",
            "line 2:17 mismatched input 'and' expecting ')'",
        ),
        ("x: { a: ( 1 }\n", "line 1:10 no viable alternative at input 'a: ( 1'"),
        ("Filter::IP f { a: 1 }\n", "line 1:18 mismatched input '1' expecting ':'"),
        ("x: 1\n/* never closed\n", "line 2:0 extraneous input '/*' expecting {<EOF>, Number, '(', Identifier}"),
        (
            "Filter::IP f {\n  if (ip.ttl > 1) { drop } else if (ip.ttl > 2) { drop }\n  accept\n}\n",
            "line 2:32 missing '{' at 'if'",
        ),
        ("Filter::IP f {\n  if (ip.ttl x > 1) { drop }\n  accept\n}\n", "line 2:13 mismatched input 'x' expecting ')'"),
        ("x: { a 1 }\n", "line 1:7 no viable alternative at input 'a 1'"),
        (
            "Filter::IP f {\n  if (ip.ttl == :) { drop }\n  accept\n}\n",
            "line 2:16 mismatched input ':' expecting {'true', 'false', Number, '{', '[', '(', '\"', Identifier}",
        ),
        ("a: \"x\" \"y\"\n", "line 1:7 extraneous input '\"' expecting {<EOF>, Number, '(', Identifier}"),
        ("x: { a: 1 }\nx..b: 2\n", "line 2:2 extraneous input '.' expecting Identifier"),
        ("Filter::IP f g {\n  accept\n}\n", "line 1:13 extraneous input 'g' expecting '{'"),
        ("Filter::IP f {\n  accept\n  x: 1\n}\n", "line 3:5 mismatched input '1' expecting ':'"),
    ];
    let mut wrong = Vec::new();
    for (src, want) in cases {
        let got = first(src);
        if got != want {
            wrong.push(format!("{src:?}\n    want {want}\n    got  {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_fast_path_only_where_both_lexers_agree() {
    use super::tokens_agree;
    assert!(tokens_agree(
        "x: { a: \"some text\" } // c\nIface e dhcp # c\n"
    ));
    assert!(tokens_agree(
        "if (a in 10.0.0.0/24 && !b) { log(\"a\\n\") }"
    ));
    // A comment start inside a string, a character the reference's lexer
    // cannot take, a lone `#` or `//` at a line's end: not the same.
    assert!(!tokens_agree("f(\"see http://x\")\n"));
    assert!(!tokens_agree("f(\"50% done\")\n"));
    assert!(!tokens_agree("x: 1 #\ny: 2\n"));
    assert!(!tokens_agree("x: 1 //\n"));
    assert!(!tokens_agree("x: 1\n/* open\n"));
}
