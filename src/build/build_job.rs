//! Builds: `plan` checks a request before it becomes a job (the builder
//! offers the service, the NaCl and uplink exist, the names are good) and
//! holds the builder; `build` runs the plan in a pod cloned from the
//! builder (its slot is taken by the job, from `build_slots`), under the
//! time limit, and stores the ELF it leaves in the catalog.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{workspace, BuildError, Builder, Builders, Hold, PodGuard};
use crate::catalog::{self, CatalogError, ImageMeta};
use crate::jobs::JobContext;
use crate::names::{NaclId, Name};
use crate::runtime::{Ended, Pod};
use crate::store::catalog::{DocumentKind, ImageRow, UplinkRow};

/// Which NaCl a build or validation takes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NaclInput {
    /// A stored NaCl, by id, name or id prefix.
    Stored(String),
    /// Text given with the request.
    Text(String),
}

/// What a client asks to build (and, resolved to ids, what a queued build
/// job keeps as its spec).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuildRequest {
    pub service: String,
    pub builder: String,
    pub nacl: NaclInput,
    /// An uplink by id, name or id prefix; the default uplink if absent.
    pub uplink: Option<String>,
    /// The image's tag; the uplink's if absent.
    pub tag: Option<String>,
    /// The image's name; the NaCl's (or the service's) if absent.
    pub name: Option<String>,
}

/// A checked build, ready to run: everything it names exists.
pub struct BuildPlan {
    pub builder: Builder,
    pub service: String,
    pub nacl_id: Option<NaclId>,
    pub nacl: String,
    pub uplink: UplinkRow,
    pub tag: Option<String>,
    pub name: Name,
    _hold: Hold,
}

/// What a build made, and how long its parts took.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: ImageRow,
    /// The same binary had been stored already.
    pub existed: bool,
    /// The builder's `build` entry point alone.
    pub build_time: Duration,
    /// The whole build, pod made to pod gone.
    pub total_time: Duration,
}

impl Builders {
    /// Checks a build before it becomes a job: the builder exists and
    /// offers the service, the NaCl and the uplink exist, the names are good.
    pub fn plan(&self, req: BuildRequest) -> Result<BuildPlan, BuildError> {
        let builder = self.builder(&req.builder)?;
        if !builder.manifest.offers(&req.service) {
            return Err(BuildError::ServiceNotOffered {
                builder: builder.row.id.to_string(),
                service: req.service,
                offered: builder.manifest.services.join(", "),
            });
        }
        let (nacl_id, nacl_name, nacl) = match req.nacl {
            NaclInput::Stored(reference) => {
                let doc = self.catalog.document(DocumentKind::Nacl, &reference)?;
                (Some(doc.id), Some(doc.name), doc.content)
            }
            NaclInput::Text(text) => (None, None, text),
        };
        let uplink = self
            .catalog
            .uplink(req.uplink.as_deref().unwrap_or(catalog::DEFAULT_UPLINK))?;
        let tag = req.tag.or_else(|| uplink.tag.clone());
        catalog::check_tag(&tag)?;
        let name = req
            .name
            .or(nacl_name)
            .unwrap_or_else(|| req.service.to_lowercase());
        let name =
            Name::new("image name", &name).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let hold = self.hold(&builder.row.id);
        Ok(BuildPlan {
            builder,
            service: req.service,
            nacl_id,
            nacl,
            uplink,
            tag,
            name,
            _hold: hold,
        })
    }

    /// Runs a planned build: a pod from the builder, the inputs in, its
    /// `build` entry point under the time limit, the ELF out into the
    /// catalog; the pod goes whatever happens.
    pub fn build(&self, plan: &BuildPlan, ctx: &JobContext) -> Result<Built, BuildError> {
        let started = Instant::now();
        let manifest = &plan.builder.manifest;
        let pod = self.host.create_pod(
            plan.builder.row.base_id.as_str(),
            None,
            manifest.build.clone(),
        )?;
        let guard = PodGuard {
            host: &self.host,
            pod,
        };
        let pod = &guard.pod;
        // The same parameters through the MDS, for builders that ask it.
        self.host.annotate(
            pod,
            vec![
                ("jetpack/build-service".into(), plan.service.clone()),
                ("jetpack/build-name".into(), plan.name.to_string()),
                (
                    "jetpack/build-tag".into(),
                    plan.tag.clone().unwrap_or_default(),
                ),
            ],
        );
        let config = config_json(&plan.uplink, plan.tag.as_deref());
        let parameters = json!({
            "service": plan.service,
            "name": plan.name.as_str(),
            "tag": plan.tag,
        });
        let config = config.to_string();
        let parameters = parameters.to_string();
        workspace::write_inputs(
            &pod.root,
            &super::adopt::with_entry_points(
                manifest,
                &[
                    ("nacl.txt", plan.nacl.as_bytes()),
                    ("config.json", config.as_bytes()),
                    ("build.json", parameters.as_bytes()),
                ],
            ),
        )?;
        ctx.log(&format!(
            "building {} {} with builder {} ({}) in pod {}",
            plan.service,
            plan.name.as_str(),
            plan.builder.row.id,
            manifest.version,
            pod.row.id.short()
        ));
        let ran = Instant::now();
        let ended = self.host.run_bounded(
            pod,
            manifest.build.clone(),
            ctx.log_path(),
            self.build_timeout,
            &|| ctx.cancelled(),
        )?;
        let build_time = ran.elapsed();
        match ended {
            Ended::Exited(0) => {}
            Ended::Exited(code) => {
                return Err(BuildError::Failed(format!(
                    "{} exited with status {code}",
                    manifest.build[0]
                )))
            }
            Ended::TimedOut => return Err(BuildError::TimedOut(self.build_timeout.as_secs())),
            Ended::Cancelled => return Err(BuildError::Cancelled),
        }
        let (file, staged) = workspace::collect_output(&pod.root, self.catalog.blobs())?;
        if manifest.signs {
            self.verify_output(pod, &staged.sha256_hex(), ctx)?;
        }
        let (image, existed) = self
            .catalog
            .add_image(
                staged,
                ImageMeta {
                    name: plan.name.to_string(),
                    tag: plan.tag.clone(),
                    builder_id: Some(plan.builder.row.id.clone()),
                    nacl_id: plan.nacl_id.clone(),
                    uplink_id: Some(plan.uplink.id.clone()),
                    uplink_url: Some(plan.uplink.url.clone()),
                    includeos_version: Some(manifest.version.clone()),
                },
            )
            .map_err(|e| match e {
                CatalogError::NotAnImage(why) => {
                    BuildError::Failed(format!("/build/out/{file} is not an image: {why}"))
                }
                e => e.into(),
            })?;
        drop(guard);
        ctx.log(&format!(
            "image {} ({} bytes){}",
            image.id,
            image.size,
            if existed { ", stored already" } else { "" }
        ));
        Ok(Built {
            image,
            existed,
            build_time,
            total_time: started.elapsed(),
        })
    }

    /// A signing builder's output must carry the MDS's signature of its
    /// sha256, made for this very pod.
    fn verify_output(&self, pod: &Pod, sha256: &str, ctx: &JobContext) -> Result<(), BuildError> {
        let Some(signature) = workspace::read_signature(&pod.root)? else {
            if self.host.has_mds() {
                return Err(BuildError::Failed(
                    "the builder signs its output but left no /build/signature; refused".into(),
                ));
            }
            ctx.log("output not verified: this host runs no MDS");
            return Ok(());
        };
        match self
            .host
            .pod_signature_is(pod, sha256.as_bytes(), &signature)
        {
            Some(true) => {
                ctx.log(&format!("output sha256 {sha256}: MDS signature verified"));
                Ok(())
            }
            Some(false) => Err(BuildError::Failed(format!(
                "the output's signature does not verify (sha256 {sha256}); refused"
            ))),
            None => {
                ctx.log("output not verified: this host runs no MDS");
                Ok(())
            }
        }
    }
}

/// The `config.json` a build embeds: its `uplink` object is the chosen
/// uplink, in the keys IncludeOS reads (spec/uplink.md), plus its name and id.
pub fn config_json(uplink: &UplinkRow, tag: Option<&str>) -> serde_json::Value {
    let mut object = json!({
        "id": uplink.id,
        "name": uplink.name,
        "url": uplink.url,
        "token": uplink.token,
        "tag": tag.unwrap_or(""),
        "verify": uplink.verify,
        "reboot": uplink.reboot,
        "ws_logging": uplink.ws_logging,
        "serialize_ct": uplink.serialize_ct,
        "send_stats": uplink.send_stats,
    });
    if let Some(index) = &uplink.index {
        object["index"] = index.clone();
    }
    if let Some(certs) = &uplink.certs {
        object["certs"] = json!(certs);
    }
    json!({ "uplink": object })
}
