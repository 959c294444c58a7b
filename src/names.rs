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

/// One extra jail(2) parameter from `jail.param.NAME = VALUE`, checked:
/// a name like the kernel's (`[a-z0-9._]+`, dot-separated words) that
/// jetpack does not own, and a value without control characters
/// (jail_set(2) takes C strings). The configuration stores these and the
/// jail drivers consume them, so neither needs the other to check one.
/// Serialized as the pair `[name, value]`, checked again when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(String, String)", into = "(String, String)")]
pub struct JailParam {
    name: String,
    value: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JailParamError {
    #[error("jail parameter {0:?}: expected a name of 1 to {max} characters", max = JailParam::MAX_NAME)]
    Length(String),
    #[error("jail parameter {0:?}: only a-z, 0-9, '.' and '_' are allowed")]
    Characters(String),
    #[error("jail parameter {0:?}: empty component")]
    EmptyComponent(String),
    #[error("jail parameter {0:?} is set by jetpack itself and cannot be configured")]
    Owned(String),
    #[error("jail parameter {0}: the value must not contain control characters")]
    ControlCharacter(String),
}

impl JailParam {
    /// Parameters jetpack owns: the jail's identity and life cycle (`name`,
    /// `path`, `persist`, `jid`) and its address (`ip4.addr`, `ip4`), which
    /// is the pod's identity at the MDS: a pod given another address, or
    /// the host's, could speak as another pod.
    pub const OWNED: &'static [&'static str] =
        &["name", "path", "persist", "jid", "ip4", "ip4.addr", "vnet"];

    /// Longest parameter name accepted; the kernel's are far shorter.
    pub const MAX_NAME: usize = 64;

    pub fn new(name: &str, value: &str) -> Result<JailParam, JailParamError> {
        let err = |make: fn(String) -> JailParamError| Err(make(name.to_string()));
        if name.is_empty() || name.len() > Self::MAX_NAME {
            return err(JailParamError::Length);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        {
            return err(JailParamError::Characters);
        }
        if name.split('.').any(str::is_empty) {
            return err(JailParamError::EmptyComponent);
        }
        if Self::OWNED.contains(&name) {
            return err(JailParamError::Owned);
        }
        if value.chars().any(char::is_control) {
            return err(JailParamError::ControlCharacter);
        }
        Ok(JailParam {
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    /// A parameter that skips the checks, so that tests of the drivers can
    /// show what they do with one that got past them.
    #[cfg(test)]
    pub(crate) fn unchecked(name: &str, value: &str) -> JailParam {
        JailParam {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl TryFrom<(String, String)> for JailParam {
    type Error = JailParamError;
    fn try_from((name, value): (String, String)) -> Result<Self, Self::Error> {
        JailParam::new(&name, &value)
    }
}

impl From<JailParam> for (String, String) {
    fn from(p: JailParam) -> (String, String) {
        (p.name, p.value)
    }
}

/// The catalog's ids share their shape: a checked string, serialized as
/// that string (checked again when read), shown as it is.
macro_rules! catalog_id {
    ($t:ident) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $t::new(&s)
            }
        }

        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

/// A lowercase hyphenated UUID: the catalog's own ids (documents, jobs).
fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// An image's id: the SHA-1 (40 lowercase hex digits) of its binary, the
/// value an instance acknowledges an UPDATE with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(String);

impl ImageId {
    pub fn new(s: &str) -> Result<ImageId, NameError> {
        if s.len() == 40
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ImageId(s.to_string()))
        } else {
            Err(invalid("image id", s, "expected 40 lowercase hex digits"))
        }
    }
}
catalog_id!(ImageId);

/// An uplink's id: a UUID, or `default` for the uplink the server makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UplinkId(String);

impl UplinkId {
    /// The id of the uplink the server makes at first start.
    pub const DEFAULT: &'static str = "default";

    pub fn random() -> UplinkId {
        UplinkId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn new(s: &str) -> Result<UplinkId, NameError> {
        if s == UplinkId::DEFAULT || is_uuid(s) {
            Ok(UplinkId(s.to_string()))
        } else {
            Err(invalid(
                "uplink id",
                s,
                "expected a lowercase hyphenated UUID or \"default\"",
            ))
        }
    }
}
catalog_id!(UplinkId);

/// A NaCl's id: a UUID. Snippets, kept in a table of the same shape
/// (`store::catalog::DocumentRow`), have ids of the same rule and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NaclId(String);

impl NaclId {
    pub fn random() -> NaclId {
        NaclId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn new(s: &str) -> Result<NaclId, NameError> {
        if is_uuid(s) {
            Ok(NaclId(s.to_string()))
        } else {
            Err(invalid(
                "NaCl id",
                s,
                "expected a lowercase hyphenated UUID",
            ))
        }
    }
}
catalog_id!(NaclId);

/// A builder's id: the id of the bob it was prepared from, which a
/// provider lists. It becomes part of a base name (`builder-ID`, within
/// `Name`'s 63 characters), so it follows the pattern of names, up to 48
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuilderId(String);

impl BuilderId {
    pub const MAX_LEN: usize = 48;

    pub fn new(s: &str) -> Result<BuilderId, NameError> {
        check_name(
            "builder id",
            s,
            Self::MAX_LEN,
            "it is longer than 48 characters",
        )?;
        Ok(BuilderId(s.to_string()))
    }
}
catalog_id!(BuilderId);

/// A job's id: a UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    pub fn random() -> JobId {
        JobId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn new(s: &str) -> Result<JobId, NameError> {
        if is_uuid(s) {
            Ok(JobId(s.to_string()))
        } else {
            Err(invalid("job id", s, "expected a lowercase hyphenated UUID"))
        }
    }
}
catalog_id!(JobId);

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

    #[test]
    fn jail_params_reject_owned_and_malformed() {
        let one = |k: &str, v: &str| JailParam::new(k, v).map_err(|e| e.to_string());
        assert!(one("allow.raw_sockets", "1").is_ok());
        assert!(one("children.max", "2").is_ok());
        assert!(one("host.domainname", "example.org").is_ok());
        for owned in JailParam::OWNED {
            let e = one(owned, "x").unwrap_err();
            assert!(e.contains("set by jetpack"), "{owned}: {e}");
        }
        for bad in [
            "",
            "Allow.mount",
            "allow mount",
            "allow..mount",
            ".allow",
            "allow.",
            "allow-mount",
            "a/b",
            "ö",
        ] {
            assert!(one(bad, "1").is_err(), "{bad:?} should be rejected");
        }
        assert!(one(&"a".repeat(65), "1").is_err());
        assert!(one("host.domainname", "a\0b").is_err());
        assert!(one("host.domainname", "a\nb").is_err());
    }

    #[test]
    fn jail_params_are_pairs_checked_when_read() {
        let p = JailParam::new("allow.mount", "1").unwrap();
        let json = serde_json::to_string(&vec![p.clone()]).unwrap();
        assert_eq!(json, r#"[["allow.mount","1"]]"#);
        assert_eq!(serde_json::from_str::<Vec<JailParam>>(&json).unwrap(), [p]);
        assert!(serde_json::from_str::<JailParam>(r#"["jid","7"]"#).is_err());
    }

    #[test]
    fn catalog_ids() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(ImageId::new(sha1).unwrap().as_str(), sha1);
        assert!(ImageId::new(&sha1.to_uppercase()).is_err());
        assert!(ImageId::new(&sha1[..39]).is_err());
        let uuid = "0b6c3a5e-9a4f-4c43-8f53-6f1c1d2e3f40";
        assert!(UplinkId::new("default").is_ok());
        assert!(UplinkId::new(uuid).is_ok());
        assert!(UplinkId::new("other").is_err());
        assert!(NaclId::new(uuid).is_ok());
        assert!(NaclId::new("default").is_err());
        assert!(UplinkId::new(UplinkId::random().as_str()).is_ok());
        assert!(NaclId::new(NaclId::random().as_str()).is_ok());
        assert!(JobId::new(&uuid.to_uppercase()).is_err());
        let job = JobId::random();
        assert_eq!(JobId::new(job.as_str()).unwrap(), job);
        assert!(job == *job.as_str());
        assert!(BuilderId::new("test-builder-1").is_ok());
        assert!(BuilderId::new(&"b".repeat(48)).is_ok());
        for bad in ["", "-b", "a/b", "a b", &"b".repeat(49)] {
            assert!(BuilderId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
