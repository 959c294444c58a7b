//! Validated names: every string that becomes a path, a dataset or a jail name
//! passes through one of these newtypes first, so the rest of the code never
//! sees an unchecked name.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid {kind} {name:?}: {why}")]
    Invalid {
        kind: &'static str,
        name: String,
        why: &'static str,
    },
}

fn invalid(kind: &'static str, name: &str, why: &'static str) -> NameError {
    NameError::Invalid {
        kind,
        name: name.to_string(),
        why,
    }
}

/// The pattern every human name and tag follows: 1..=`max` letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit, no `..`. Nothing in it
/// needs quoting in a path, a shell word, a log line or an HTTP header.
fn check_name(
    kind: &'static str,
    s: &str,
    max: usize,
    too_long: &'static str,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(invalid(kind, s, "it is empty"));
    }
    if s.len() > max {
        return Err(invalid(kind, s, too_long));
    }
    if s.contains('/') || s.contains("..") {
        return Err(invalid(kind, s, "it must not contain '/' or '..'"));
    }
    let first = s.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err(invalid(kind, s, "it must start with a letter or digit"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(invalid(
            kind,
            s,
            "only letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// The human name of a base or pod: what users type. Never a path by itself,
/// but kept to a strict pattern so that it is safe in logs, hostnames and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 63;

    pub fn new(kind: &'static str, s: &str) -> Result<Name, NameError> {
        check_name(kind, s, Self::MAX_LEN, "it is longer than 63 characters")?;
        Ok(Name(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Name::new("name", &s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image's (or an uplink's) tag, such as `v1.2` or `lab-tag`: the
/// pattern of names, up to 128 characters (as container tags). It ends up
/// in download file names (`NAME-TAG`) and config.json, so it must never
/// need quoting or escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    pub const MAX_LEN: usize = 128;

    pub fn new(kind: &'static str, s: &str) -> Result<Tag, NameError> {
        check_name(kind, s, Self::MAX_LEN, "it is longer than 128 characters")?;
        Ok(Tag(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Tag::new("tag", &s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A dataset below the root dataset, such as `bases/<id>` or `pods/<uuid>`.
/// Opaque ids only (containerd's habit): human names live in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatasetName(String);

impl DatasetName {
    pub fn new(s: &str) -> Result<DatasetName, NameError> {
        if s.is_empty() || s.len() > 200 {
            return Err(invalid("dataset name", s, "length must be 1..=200"));
        }
        for part in s.split('/') {
            let ok = !part.is_empty()
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(invalid(
                    "dataset name",
                    s,
                    "each part must be lowercase letters, digits and '-'",
                ));
            }
        }
        Ok(DatasetName(s.to_string()))
    }

    pub fn base(id: &BaseId) -> DatasetName {
        DatasetName(format!("bases/{}", id.0))
    }

    pub fn pod(id: &PodId) -> DatasetName {
        DatasetName(format!("pods/{}", id.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A base's id: the sha256 (hex) of the archive it was imported from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BaseId(String);

impl BaseId {
    pub fn new(s: &str) -> Result<BaseId, NameError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(BaseId(s.to_string()))
        } else {
            Err(invalid("base id", s, "expected 64 lowercase hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for BaseId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BaseId::new(&s)
    }
}

impl From<BaseId> for String {
    fn from(n: BaseId) -> String {
        n.0
    }
}

impl fmt::Display for BaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pod's id: a random UUID (appc's pod identity), lowercase hyphenated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PodId(String);

impl PodId {
    pub fn random() -> PodId {
        PodId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn new(s: &str) -> Result<PodId, NameError> {
        match uuid::Uuid::parse_str(s) {
            Ok(u) if u.hyphenated().to_string() == s => Ok(PodId(s.to_string())),
            _ => Err(invalid("pod id", s, "expected a lowercase hyphenated UUID")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 hex digits: enough to tell pods apart in tables and
    /// short enough for interface names.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl TryFrom<String> for PodId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PodId::new(&s)
    }
}

impl From<PodId> for String {
    fn from(n: PodId) -> String {
        n.0
    }
}

impl fmt::Display for PodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_paths_and_odd_characters() {
        assert!(Name::new("base", "busybox-1.36").is_ok());
        for bad in [
            "",
            "a/b",
            "..",
            "a..b",
            "-x",
            ".hidden",
            "a b",
            "a;b",
            &"x".repeat(64),
        ] {
            assert!(Name::new("base", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags_follow_names_up_to_128_characters() {
        for ok in ["v1", "1.2.3", "lab-tag", "rc_2", &"x".repeat(128)] {
            assert!(Tag::new("tag", ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "",
            "a\"b",
            "a;b",
            "a/b",
            "..",
            "-rf",
            "a b",
            "v1\r\nX: y",
            "caf\u{e9}",
            &"x".repeat(129),
        ] {
            assert!(Tag::new("tag", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dataset_names_are_lowercase_parts() {
        assert!(DatasetName::new("pods/0a1b-2c").is_ok());
        for bad in [
            "",
            "/pods",
            "pods/",
            "pods//x",
            "pods/../x",
            "Pods/x",
            "pods/x@snap",
            "a b",
        ] {
            assert!(DatasetName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_are_strict() {
        let id = PodId::random();
        assert_eq!(PodId::new(id.as_str()).unwrap(), id);
        assert!(PodId::new(&id.as_str().to_uppercase()).is_err());
        assert!(PodId::new("../etc").is_err());
        assert!(BaseId::new(&"a".repeat(64)).is_ok());
        assert!(BaseId::new(&"A".repeat(64)).is_err());
        assert!(BaseId::new("abc").is_err());
    }
}
