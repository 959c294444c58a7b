//! Builds (`build.*`: how many at once, their time limits) and the bob
//! providers they take builders from (`bob.provider.NAME = KIND LOCATION`).

use super::keys::BOB_PROVIDER_PREFIX;
use super::values::Values;
use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BobProviderKind {
    Local,
    Http,
    Oci,
}

impl BobProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BobProviderKind::Local => "local",
            BobProviderKind::Http => "http",
            BobProviderKind::Oci => "oci",
        }
    }
}

/// One `bob.provider.NAME` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BobProviderConfig {
    pub name: String,
    pub kind: BobProviderKind,
    /// A directory (local) or a URL (http, oci).
    pub location: String,
}

impl BobProviderConfig {
    fn parse(name: &str, value: &str) -> Result<BobProviderConfig, String> {
        let (kind, location) = value
            .split_once(char::is_whitespace)
            .map(|(k, l)| (k, l.trim()))
            .ok_or("expected KIND LOCATION (local DIR, http URL or oci URL)")?;
        let is_url = location.starts_with("http://") || location.starts_with("https://");
        let kind = match kind {
            "local" if location.starts_with('/') => BobProviderKind::Local,
            "local" => return Err("a local provider's location is an absolute directory".into()),
            "http" | "oci" if !is_url => {
                return Err(format!("a {kind} provider's location is an http(s) URL"))
            }
            "http" => BobProviderKind::Http,
            "oci" => {
                let path = location.splitn(4, '/').nth(3).unwrap_or("");
                if path.is_empty() {
                    return Err(
                        "an oci provider's location is http(s)://REGISTRY/REPOSITORY".into(),
                    );
                }
                BobProviderKind::Oci
            }
            other => {
                return Err(format!(
                    "unknown provider kind {other:?}: local, http or oci"
                ))
            }
        };
        Ok(BobProviderConfig {
            name: name.to_string(),
            kind,
            location: location.trim_end_matches('/').to_string(),
        })
    }
}

/// This section's fields of `Config`, under the same names.
pub(super) struct Build {
    pub bob_providers: Vec<BobProviderConfig>,
    pub builders_dockerhub: bool,
    pub build_concurrency: usize,
    pub build_timeout: u64,
    pub build_validate_timeout: u64,
}

pub(super) fn read(v: &Values) -> Result<Build, ConfigError> {
    // In key order; the first bad one is the error.
    let bob_providers = v
        .with_prefix(BOB_PROVIDER_PREFIX)
        .map(|(key, name, value)| {
            BobProviderConfig::parse(name, value).map_err(|why| v.bad(key, why))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Build {
        bob_providers,
        builders_dockerhub: v.switch("builders.dockerhub")?,
        build_concurrency: v.positive("build.concurrency")? as usize,
        build_timeout: v.positive("build.timeout")?,
        build_validate_timeout: v.positive("build.validate.timeout")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_text;

    #[test]
    fn the_dockerhub_provider_is_on_unless_turned_off() {
        assert!(load_text("", &[]).unwrap().builders_dockerhub);
        assert!(
            !load_text("builders.dockerhub = off\n", &[])
                .unwrap()
                .builders_dockerhub
        );
        assert!(load_text("", &["builders.dockerhub=maybe"]).is_err());
    }

    #[test]
    fn bob_providers_are_checked() {
        let c = load_text(
            "bob.provider.local = local /srv/bobs/\nbob.provider.hub = oci https://registry-1.docker.io/includeos/builder\n",
            &["bob.provider.idx=http http://127.0.0.1:8000/index.json"],
        )
        .unwrap();
        let kinds: Vec<(&str, BobProviderKind, &str)> = c
            .bob_providers
            .iter()
            .map(|p| (p.name.as_str(), p.kind, p.location.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "hub",
                    BobProviderKind::Oci,
                    "https://registry-1.docker.io/includeos/builder"
                ),
                (
                    "idx",
                    BobProviderKind::Http,
                    "http://127.0.0.1:8000/index.json"
                ),
                ("local", BobProviderKind::Local, "/srv/bobs"),
            ]
        );
        for bad in [
            "bob.provider.x=local relative/dir",
            "bob.provider.x=oci https://registry-only",
            "bob.provider.x=http /not/a/url",
            "bob.provider.x=ftp ftp://h/x",
            "bob.provider.x=local",
            "build.concurrency=0",
        ] {
            assert!(load_text("", &[bad]).is_err(), "{bad} was accepted");
        }
        assert!(matches!(
            load_text("", &["bob.provider.../x=local /d"]),
            Err(ConfigError::UnknownKey(_))
        ));
    }
}
