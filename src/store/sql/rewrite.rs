//! The store writes placeholders as SQLite numbers them (`?1`, or `?` for
//! "the next one"); PostgreSQL numbers them `$1`. Rewritten once per
//! statement text (the driver caches the result with the prepared
//! statement), outside quoted strings, identifiers and comments.

/// `sql` with every `?N` as `$N` and every bare `?` as `$K`, K one past the
/// highest number seen so far (SQLite's rule).
pub fn placeholders(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut highest = 0u32;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'?' => {
                out.push_str(&sql[copied..i]);
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let n = if digits > 0 {
                    sql[i + 1..i + 1 + digits].parse().unwrap_or(u32::MAX)
                } else {
                    highest + 1
                };
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
                i += 1 + digits;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_bare_placeholders_become_dollars() {
        assert_eq!(
            placeholders("UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?2"),
            "UPDATE t SET a = $2 WHERE id = $1 AND b = $2"
        );
        assert_eq!(
            placeholders("SELECT * FROM t WHERE a LIKE ? ESCAPE '\\' OR b LIKE ? LIMIT ?"),
            "SELECT * FROM t WHERE a LIKE $1 ESCAPE '\\' OR b LIKE $2 LIMIT $3"
        );
        assert_eq!(
            placeholders("SELECT ?3, ?"),
            "SELECT $3, $4",
            "a bare one follows the highest"
        );
    }

    #[test]
    fn quoted_text_and_comments_are_left_alone() {
        assert_eq!(
            placeholders("SELECT '?1', \"a?\" -- why?\nFROM t WHERE x = ?1"),
            "SELECT '?1', \"a?\" -- why?\nFROM t WHERE x = $1"
        );
        assert_eq!(placeholders("SELECT 'it''s?' , ?"), "SELECT 'it''s?' , $1");
        assert_eq!(placeholders("unterminated '?"), "unterminated '?");
    }
}
