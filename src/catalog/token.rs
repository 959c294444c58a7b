//! How strong an uplink token must be. The token is the only secret an
//! instance shows at `/auth`, so one a user chooses is refused when it is
//! short or predictable; one the server makes is 192 random bits.
//!
//! The strength is an estimate, in bits, of how many guesses the token is
//! worth, and the smaller of two views of it:
//!
//! - alphabet: `novel characters × log2(alphabet)`. The alphabet is the sum
//!   of the character classes the token uses (26 lowercase, 26 uppercase,
//!   10 digits, 32 other printable), or 16 when it is all hex digits. A
//!   token that repeats a shorter unit counts only that unit, and within it
//!   a character that repeats the one before (`aa`) or continues a run of
//!   steps of one (`abc`, `321`) is not novel.
//! - frequency: `length × H`, H the Shannon entropy per character of the
//!   token's own character counts, with the Miller–Madow correction
//!   (`+ (distinct - 1) / (2 · length · ln 2)`) so that short random tokens
//!   are not underrated for having few samples.
//!
//! It catches repetition, runs, patterns and a small character set; it
//! knows no dictionary or keyboard rows (`Password1!Password1!` or
//! `qwertyuiopasdfghjkl` pass), so the documentation asks for random tokens.

/// Fewer characters than this cannot hold 64 bits in printable ASCII
/// without each being drawn from all of it.
pub const MIN_LEN: usize = 16;
/// The bound tokens always had: longer is no stronger, and the hangar
/// reads an `/auth` body of at most 4 KiB.
pub const MAX_LEN: usize = 256;
/// The least estimated strength a user's token needs.
pub const MIN_BITS: f64 = 64.0;
/// Random bytes in a token the server makes (hex: 48 characters, 192
/// bits; at least 128 are promised).
pub const GENERATED_BYTES: usize = 24;
const _: () = assert!(
    GENERATED_BYTES * 8 >= 128,
    "generated tokens hold 128 bits or more"
);

/// Why a token given by a user cannot be used, or Ok. The reason never
/// quotes the token: it is a secret even when refused.
pub fn check(token: &str) -> Result<(), String> {
    let len = token.chars().count();
    if len < MIN_LEN {
        return Err(format!(
            "it is {len} character(s) long; at least {MIN_LEN} are needed{HINT}"
        ));
    }
    if len > MAX_LEN {
        return Err(format!(
            "it is {len} characters long; at most {MAX_LEN} are allowed"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("only printable ASCII characters are allowed, no spaces".into());
    }
    if token.contains('"') || token.contains('\\') {
        return Err(
            "no quotes or backslashes are allowed (IncludeOS builds its auth JSON by hand)".into(),
        );
    }
    let bits = estimate_bits(token);
    if bits < MIN_BITS {
        return Err(format!(
            "it is too guessable: an estimated {bits:.0} bits of entropy, at least {MIN_BITS:.0} \
             are needed (repeated characters, runs such as abc or 123 and repeated patterns \
             count for little){HINT}"
        ));
    }
    Ok(())
}

const HINT: &str =
    "; use a random string (`openssl rand -hex 16` makes one) or leave the token out to have one made";

/// The estimated strength of `token` in bits (see the module's doc).
pub fn estimate_bits(token: &str) -> f64 {
    let b = token.as_bytes();
    if b.is_empty() {
        return 0.0;
    }
    let has = |f: fn(&u8) -> bool| b.iter().any(f);
    let mut alphabet = 0u32;
    if has(u8::is_ascii_lowercase) {
        alphabet += 26;
    }
    if has(u8::is_ascii_uppercase) {
        alphabet += 26;
    }
    if has(u8::is_ascii_digit) {
        alphabet += 10;
    }
    if has(|c| !c.is_ascii_alphanumeric()) {
        alphabet += 32;
    }
    if b.iter().all(u8::is_ascii_hexdigit) {
        alphabet = alphabet.min(16);
    }
    let by_alphabet = novel(b) as f64 * f64::from(alphabet.max(1)).log2();
    by_alphabet.min(b.len() as f64 * shannon_bits(b))
}

/// Characters that are not repeats, runs or a repeated unit.
fn novel(b: &[u8]) -> usize {
    let unit = &b[..period(b)];
    (0..unit.len())
        .filter(|&i| {
            if i == 0 {
                return true;
            }
            let step = i16::from(unit[i]) - i16::from(unit[i - 1]);
            let repeat = step == 0;
            let run = i >= 2
                && step.abs() == 1
                && step == i16::from(unit[i - 1]) - i16::from(unit[i - 2]);
            !repeat && !run
        })
        .count()
}

/// The shortest unit `b` repeats (its whole length when it repeats none).
fn period(b: &[u8]) -> usize {
    (1..b.len())
        .find(|&p| (p..b.len()).all(|i| b[i] == b[i - p]))
        .unwrap_or(b.len())
}

/// Shannon entropy per character of `b`'s character counts, in bits, with
/// the Miller–Madow bias correction.
fn shannon_bits(b: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f64;
    let mut h = 0.0;
    let mut distinct = 0u32;
    for &c in counts.iter().filter(|&&c| c > 0) {
        let p = f64::from(c) / n;
        h -= p * p.log2();
        distinct += 1;
    }
    h + f64::from(distinct - 1) / (2.0 * n * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_are_refused_with_the_length() {
        for weak in [".", "-rf", "a/b", "s3cret", "fifteen-chars!!"] {
            let why = check(weak).unwrap_err();
            assert!(why.contains("at least 16"), "{weak}: {why}");
            assert!(!why.contains(weak), "the reason quotes the token: {why}");
        }
    }

    #[test]
    fn predictable_tokens_are_refused_with_the_estimate() {
        for weak in [
            "aaaaaaaaaaaaaaaaaaaa",
            "abababababababababab",
            "abcdefghijklmnopqrstuvwxyz",
            "0123456789abcdef",
            "12345678901234567890",
            "Password1234567890",
            "deadbeefdeadbeefdeadbeef",
            "aabbaabbaabbaabbaabbaabb",
            "0000000000000001",
        ] {
            let why = check(weak).unwrap_err();
            assert!(why.contains("too guessable"), "{weak}: {why}");
            assert!(estimate_bits(weak) < MIN_BITS, "{weak}");
        }
        assert!(estimate_bits("aaaaaaaaaaaaaaaaaaaa") < 5.0);
    }

    #[test]
    fn other_bad_characters_are_refused() {
        for bad in [
            "x7Gq2 mZ9vK4pW8rT3",
            "x7Gq2\tmZ9vK4pW8rT3",
            "x7Gq2\"mZ9vK4pW8rT3",
            "x7Gq2\\mZ9vK4pW8rT3",
            "x7Gq2émZ9vK4pW8rT3",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&"x7Gq2mZ9".repeat(33))
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn random_tokens_of_common_tools_pass() {
        for strong in [
            // openssl rand -hex 16
            "3f9c2a7e51d84b06c7e19a5f2d3b8c40",
            // openssl rand -base64 12 (16 characters, 96 bits)
            "q7Jd+Xz2LmP9w/Rt",
            // uuidgen
            "6f1c9a2e-8b4d-4e7a-9c3f-1d2b5a8e7f60",
            // pwgen -s 20
            "Zk4rT9qWm2Xv7LpB3nHs",
        ] {
            assert_eq!(check(strong), Ok(()), "{strong}: {}", estimate_bits(strong));
        }
    }

    #[test]
    fn generated_tokens_are_at_least_128_bits() {
        for _ in 0..200 {
            let token = super::super::random_hex(GENERATED_BYTES).unwrap();
            assert_eq!(token.len(), GENERATED_BYTES * 2);
            assert_eq!(check(&token), Ok(()));
            // Even the estimate, which underrates hex, finds 128 bits.
            assert!(estimate_bits(&token) >= 128.0, "{token}");
        }
    }
}
