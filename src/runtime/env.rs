//! A pod's own environment variables: their checks (POSIX names, no NUL,
//! bounded sizes), `K=V` words from the command line and env files.
//! Pure functions: the CLI parses with them before anything is sent, and
//! the runtime checks again whatever reaches it (the API's body).

use std::collections::BTreeMap;

/// Bounds on what a pod's environment may hold: enough for any real
/// configuration, small enough that a request cannot bloat the store or
/// the argument area of every process started in the pod.
pub const MAX_VARS: usize = 256;
pub const MAX_KEY: usize = 256;
pub const MAX_VALUE: usize = 32 * 1024;
pub const MAX_TOTAL: usize = 256 * 1024;
/// An env file larger than this is refused before it is read.
pub const MAX_FILE: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("environment variable name {0:?} is not a POSIX name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_KEY} bytes)")]
    BadKey(String),
    #[error("environment variable {0}: its value holds a NUL byte")]
    Nul(String),
    #[error("environment variable {0}: its value is longer than {MAX_VALUE} bytes")]
    TooLong(String),
    #[error("too many environment variables (at most {MAX_VARS}, {MAX_TOTAL} bytes in all)")]
    TooMany,
    #[error("{0:?} is not KEY=VALUE")]
    NotPair(String),
    #[error("{file} line {line}: {why}")]
    FileLine {
        file: String,
        line: usize,
        why: Box<EnvError>,
    },
}

/// A POSIX environment variable name.
pub fn check_key(key: &str) -> Result<(), EnvError> {
    let mut bytes = key.bytes();
    let ok = key.len() <= MAX_KEY
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EnvError::BadKey(key.to_string()))
    }
}

fn check_value(key: &str, value: &str) -> Result<(), EnvError> {
    if value.contains('\0') {
        return Err(EnvError::Nul(key.to_string()));
    }
    if value.len() > MAX_VALUE {
        return Err(EnvError::TooLong(key.to_string()));
    }
    Ok(())
}

/// Checks a whole environment: every pair, and the bounds on the lot.
pub fn check(env: &BTreeMap<String, String>) -> Result<(), EnvError> {
    let mut total = 0;
    for (k, v) in env {
        check_key(k)?;
        check_value(k, v)?;
        total += k.len() + v.len() + 2;
    }
    if env.len() > MAX_VARS || total > MAX_TOTAL {
        return Err(EnvError::TooMany);
    }
    Ok(())
}

/// `KEY=VALUE` (the value may be empty and may hold `=`).
pub fn parse_pair(word: &str) -> Result<(String, String), EnvError> {
    let (k, v) = word
        .split_once('=')
        .ok_or_else(|| EnvError::NotPair(word.to_string()))?;
    check_key(k)?;
    check_value(k, v)?;
    Ok((k.to_string(), v.to_string()))
}

/// An env file's text (`file` names it in errors): `KEY=VALUE` lines, the
/// value taken literally to the end of the line (no quotes, no
/// expansion: what is written is what the pod gets); blank lines and
/// lines starting with `#` are skipped.
pub fn parse_file(file: &str, text: &str) -> Result<Vec<(String, String)>, EnvError> {
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        pairs.push(parse_pair(trimmed).map_err(|why| EnvError::FileLine {
            file: file.to_string(),
            line: n + 1,
            why: Box::new(why),
        })?);
    }
    Ok(pairs)
}

/// The environment a pod's process gets: `base` (jetpack's PATH, HOME,
/// HOSTNAME), overridden by the pod's own variables.
pub fn merge(base: Vec<(String, String)>, own: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base
        .into_iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
        .collect();
    env.extend(own.iter().cloned());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_posix_names() {
        for good in ["A", "_", "a_1", "PATH", "x9"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A=B", &"A".repeat(MAX_KEY + 1)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(parse_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_pair("A=").unwrap(), ("A".into(), "".into()));
        assert!(matches!(parse_pair("A"), Err(EnvError::NotPair(_))));
        assert!(matches!(parse_pair("A=x\0y"), Err(EnvError::Nul(_))));
        assert!(matches!(parse_pair("-=x"), Err(EnvError::BadKey(_))));
    }

    #[test]
    fn env_files_skip_comments_and_name_a_bad_line() {
        let text = "# a comment\n\nA=1\n  B=two words\r\nC=\n";
        let pairs = parse_file("f", text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "".into())
            ]
        );
        let err = parse_file("x.env", "A=1\n# ok\nnot a pair\n").unwrap_err();
        assert!(err.to_string().starts_with("x.env line 3:"), "{err}");
    }

    #[test]
    fn bounds_hold() {
        let mut env = BTreeMap::new();
        env.insert("A".to_string(), "x".repeat(MAX_VALUE + 1));
        assert!(matches!(check(&env), Err(EnvError::TooLong(_))));
        let many: BTreeMap<String, String> = (0..=MAX_VARS)
            .map(|i| (format!("K{i}"), String::new()))
            .collect();
        assert_eq!(check(&many), Err(EnvError::TooMany));
    }

    #[test]
    fn the_pod_overrides_the_base() {
        let base = vec![
            ("PATH".into(), "/bin".into()),
            ("HOME".into(), "/root".into()),
        ];
        let env = merge(
            base,
            &[("HOME".into(), "/srv".into()), ("X".into(), "1".into())],
        );
        assert_eq!(
            env,
            vec![
                ("PATH".to_string(), "/bin".to_string()),
                ("HOME".into(), "/srv".into()),
                ("X".into(), "1".into())
            ]
        );
    }
}
