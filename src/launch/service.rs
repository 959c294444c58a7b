//! Launches as the server offers them: a launch request checked against
//! the catalog (the image), the fleet (the alias) and the host (the rest)
//! before any pod exists, then made, and the instance known to the fleet
//! before it docks; the verbs by instance reference; and what a launched
//! instance adds to the instance a client sees.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::control::{self, PodRun};
use super::create::{self, BootSource, LaunchOrder};
use super::{LaunchError, LaunchRecord};
use crate::catalog::{Catalog, CatalogError};
use crate::hangar::fleet::{check_alias, Fleet, FleetError, InstanceQuery};
use crate::hangar::token::InstanceId;
use crate::hypervisor::{HypervisorKind, RestartPolicy};
use crate::model::instances::{Instance, InstanceStatus, LaunchRequest, Launched};
use crate::names::Name;
use crate::net::publish::PublishSpec;
use crate::runtime::jails::instance_net::InstanceNet;
use crate::runtime::Host;

/// Why a launch or a verb failed, with the layers it crosses.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed (an unknown hypervisor, a bad alias...).
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Job(#[from] crate::jobs::JobError),
    /// No host of the fleet can make the launch.
    #[error("{0}")]
    NoSeat(String),
    #[error("finding a host for the launch: {0}")]
    Seats(String),
}

/// The instance network of `--net GATEWAY/PREFIX`: the guest is the
/// network's 42nd address, as IncludeOS's examples have it (10.0.0.42),
/// or its second when the gateway took that.
fn instance_net(cidr: &str) -> Result<InstanceNet, String> {
    let (addr, prefix) = cidr.split_once('/').ok_or("expected GATEWAY/PREFIX")?;
    let gateway: std::net::Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
    if !(8..=30).contains(&prefix) {
        return Err("the prefix length must be 8..=30".into());
    }
    let mask = u32::MAX << (32 - prefix);
    let network = std::net::Ipv4Addr::from(u32::from(gateway) & mask);
    if gateway == network || u32::from(gateway) | mask == u32::MAX {
        return Err(format!(
            "{gateway} is the network's own or broadcast address, not a gateway"
        ));
    }
    let nth = |n: u32| std::net::Ipv4Addr::from(u32::from(network) + n);
    let guest = if nth(42) == gateway || prefix > 26 {
        nth(2)
    } else {
        nth(42)
    };
    let guest = if guest == gateway { nth(3) } else { guest };
    Ok(InstanceNet {
        network: crate::config::Ipv4Net::parse(&format!("{network}/{prefix}"))?,
        gateway,
        guest,
        ..InstanceNet::default()
    })
}

pub struct Launches {
    pub host: Arc<Host>,
    pub catalog: Arc<Catalog>,
    pub fleet: Arc<Fleet>,
    /// Set when several hosts share the store (`queue`).
    pub seats: std::sync::OnceLock<Arc<dyn super::queue::Seats>>,
}

/// A checked request, ready to be made (by a job).
pub struct Checked {
    order: LaunchOrder,
    alias: Option<String>,
    spread: Option<String>,
}

impl Checked {
    /// What a job's list shows as its target.
    pub fn target(&self) -> String {
        self.order.image_name.clone()
    }
}

/// What a request boots, found in the catalog (an image) or named (a kernel).
enum Source {
    Image(Box<crate::store::catalog::ImageRow>),
    Kernel {
        kernel: String,
        initrd: Option<String>,
    },
}

/// A request judged without this host: any host of the fleet may make it.
pub(super) struct Parsed {
    hypervisor: Option<HypervisorKind>,
    restart: RestartPolicy,
    publish: Vec<PublishSpec>,
    net: InstanceNet,
    append: String,
    source: Source,
    alias: Option<String>,
    spread: Option<String>,
    memory_mib: Option<u64>,
    cpus: Option<u32>,
}

impl Parsed {
    /// The image's full id, when it boots one.
    pub(super) fn image_id(&self) -> Option<&str> {
        match &self.source {
            Source::Image(row) => Some(row.id.as_str()),
            Source::Kernel { .. } => None,
        }
    }

    pub(super) fn target(&self) -> String {
        match &self.source {
            Source::Image(row) => match &row.tag {
                Some(tag) => format!("{}:{tag}", row.name),
                None => row.name.clone(),
            },
            Source::Kernel { kernel, .. } => kernel.clone(),
        }
    }
}

/// A spread tag: launches that carry the same one go to different hosts
/// as far as there are hosts.
fn check_spread(tag: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "spread {tag:?}: expected 1-64 of A-Z a-z 0-9 . _ -"
        ))
    }
}

impl Launches {
    /// Everything about `req` that can be judged without making anything.
    pub fn check(&self, req: LaunchRequest) -> Result<Checked, ServiceError> {
        let parsed = self.parse(&req)?;
        self.check_here(parsed, None)
    }

    /// What about `req` any host would judge alike: its words, the
    /// alias, the image (found; its bytes may be on another host).
    pub(super) fn parse(&self, req: &LaunchRequest) -> Result<Parsed, ServiceError> {
        let bad = |m: String| ServiceError::Request(m);
        let hypervisor = req
            .hypervisor
            .as_deref()
            .map(str::parse::<HypervisorKind>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let restart = req
            .restart
            .as_deref()
            .map(str::parse::<RestartPolicy>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        if let Some(alias) = &req.alias {
            check_alias(alias).map_err(bad)?;
            self.fleet.alias_free(alias)?;
        }
        if let Some(tag) = &req.spread {
            check_spread(tag).map_err(bad)?;
        }
        let publish = req
            .publish
            .iter()
            .map(|p| {
                p.parse::<PublishSpec>()
                    .map_err(|e| bad(format!("publish {p:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let net = match &req.net {
            Some(cidr) => instance_net(cidr).map_err(|e| bad(format!("net {cidr:?}: {e}")))?,
            None => InstanceNet::default(),
        };
        let source = match (&req.image_id, &req.kernel) {
            (Some(image), None) => {
                if req.initrd.is_some() {
                    return Err(bad("initrd goes with kernel, not with imageId".into()));
                }
                Source::Image(Box::new(self.catalog.image(image)?))
            }
            (None, Some(kernel)) => {
                for file in std::iter::once(kernel).chain(&req.initrd) {
                    Name::new("kernel file", file).map_err(|e| bad(e.to_string()))?;
                }
                Source::Kernel {
                    kernel: kernel.clone(),
                    initrd: req.initrd.clone(),
                }
            }
            _ => return Err(bad("give either imageId or kernel".into())),
        };
        Ok(Parsed {
            hypervisor,
            restart,
            publish,
            net,
            append: req.append.clone().unwrap_or_default(),
            source,
            alias: req.alias.clone(),
            spread: req.spread.clone(),
            memory_mib: req.memory,
            cpus: req.cpus,
        })
    }

    /// The rest, on this host: the image's bytes, the kernel files, the
    /// hypervisor and its base, the spec against the host's bounds.
    /// `uuid`: the identity of an instance that moves here.
    pub(super) fn check_here(
        &self,
        parsed: Parsed,
        uuid: Option<uuid::Uuid>,
    ) -> Result<Checked, ServiceError> {
        let image_name = parsed.target();
        let append = parsed.append;
        let (source, image_id) = match parsed.source {
            Source::Image(row) => (
                BootSource::Image {
                    path: self.catalog.image_blob(&row)?,
                    cmdline: append,
                },
                Some(row.id.as_str().to_string()),
            ),
            Source::Kernel { kernel, initrd } => (
                BootSource::Kernel {
                    kernel: self.kernel_file(&kernel)?,
                    initrd: initrd.as_deref().map(|i| self.kernel_file(i)).transpose()?,
                    append,
                },
                None,
            ),
        };
        let order = LaunchOrder {
            source,
            hypervisor: parsed.hypervisor,
            memory_mib: parsed.memory_mib,
            cpus: parsed.cpus,
            restart: parsed.restart,
            image_id,
            image_name,
            publish: parsed.publish,
            net: parsed.net,
            uuid,
        };
        create::check(&self.host, &order)?;
        Ok(Checked {
            order,
            alias: parsed.alias,
            spread: parsed.spread,
        })
    }

    /// A file of `launch.kernels` (a plain name: never a path).
    fn kernel_file(&self, name: &str) -> Result<PathBuf, ServiceError> {
        let name =
            Name::new("kernel file", name).map_err(|e| ServiceError::Request(e.to_string()))?;
        let path = self.host.config().launch.kernels.join(name.as_str());
        if !path.is_file() {
            return Err(ServiceError::Request(format!(
                "no kernel file {:?} in {}",
                name.as_str(),
                self.host.config().launch.kernels.display()
            )));
        }
        Ok(path)
    }

    /// Makes a checked launch; the instance is known to the fleet (as
    /// launching) when this returns.
    pub fn make(&self, checked: Checked) -> Result<LaunchRecord, ServiceError> {
        let record = create::launch(&self.host, checked.order)?;
        let adopted = InstanceId::new(&record.instance_id)
            .map_err(|e| ServiceError::Request(e.to_string()))
            .and_then(|id| Ok(self.fleet.adopt(&id, checked.alias.as_deref())?))
            .and_then(|()| {
                let me = self.catalog.host();
                let spread = checked.spread.as_deref();
                Ok(self
                    .catalog
                    .with_store(|s| s.set_instance_launched(&record.instance_id, me, spread))
                    .map_err(LaunchError::from)?)
            });
        if let Err(e) = adopted {
            if let Err(undo) = control::remove(&self.host, &record.instance_id) {
                tracing::warn!(
                    "instance {} could not be known ({e}) and its launch not undone: {undo}",
                    record.instance_id
                );
            }
            return Err(e);
        }
        Ok(record)
    }

    /// After an acknowledged deploy to a launched instance: its pod boots
    /// that image from now on.
    pub fn deployed(&self, id: &InstanceId, image_id: &str) -> Result<(), ServiceError> {
        if self
            .host
            .store()
            .launch(id.as_str())
            .map_err(LaunchError::from)?
            .is_none()
        {
            return Ok(());
        }
        let row = self.catalog.image(image_id)?;
        let path = self.catalog.image_blob(&row)?;
        control::deployed(&self.host, id.as_str(), &path, row.id.as_str())?;
        Ok(())
    }

    /// The launched instance `reference` names (id, alias, prefix).
    pub fn resolve(&self, reference: &str) -> Result<String, ServiceError> {
        let id = self.fleet.resolve(reference)?.to_string();
        if self
            .host
            .store()
            .launch(&id)
            .map_err(LaunchError::from)?
            .is_none()
        {
            return Err(LaunchError::NotLaunched(id).into());
        }
        Ok(id)
    }

    pub fn stop(&self, reference: &str) -> Result<String, ServiceError> {
        let id = self.resolve(reference)?;
        control::stop(&self.host, &id)?;
        Ok(id)
    }

    pub fn start(&self, reference: &str) -> Result<String, ServiceError> {
        let id = self.resolve(reference)?;
        control::start(&self.host, &id)?;
        Ok(id)
    }

    pub fn restart(&self, reference: &str) -> Result<String, ServiceError> {
        let id = self.resolve(reference)?;
        control::restart(&self.host, &id)?;
        Ok(id)
    }

    /// Before an instance is forgotten: a launched one is stopped and its
    /// pod removed. Others are left alone.
    pub fn forget(&self, id: &InstanceId) -> Result<(), ServiceError> {
        if self
            .host
            .store()
            .launch(id.as_str())
            .map_err(LaunchError::from)?
            .is_some()
        {
            control::remove(&self.host, id.as_str())?;
        }
        Ok(())
    }

    /// The console log's path of a launched instance.
    pub fn console(&self, reference: &str) -> Result<PathBuf, ServiceError> {
        let id = self.resolve(reference)?;
        Ok(super::console::path(&self.host.config().data_dir, &id))
    }

    /// Adds what jetpack launched to `instances`: the `launched` field, and
    /// the status of one that has not docked (launching or stopped).
    /// The fleet's instances as listed: annotated, and of `status` as shown
    /// (a launched instance's `launching` and `stopped` are not the fleet's
    /// own, so the filter and then the page come after the annotation).
    /// A page of instances and how many matched in all.
    pub fn list(
        &self,
        mut query: InstanceQuery,
        status: Option<InstanceStatus>,
    ) -> Result<(Vec<Instance>, usize), ServiceError> {
        let page = (query.offset as usize, query.limit.map(|l| l as usize));
        if status.is_some() {
            (query.status, query.offset, query.limit) = (None, 0, None);
        }
        let (views, total) = self.fleet.query_counted(&query)?;
        let mut list: Vec<Instance> = views.into_iter().map(Instance::from).collect();
        self.annotate(&mut list)?;
        let Some(status) = status else {
            return Ok((list, total));
        };
        let (offset, limit) = page;
        list.retain(|i| i.status == status);
        let total = list.len();
        Ok((
            list.into_iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .collect(),
            total,
        ))
    }

    pub fn annotate(&self, instances: &mut [Instance]) -> Result<(), ServiceError> {
        let launched: HashMap<String, (LaunchRecord, PodRun)> = control::all(&self.host)?
            .into_iter()
            .map(|(r, run)| (r.instance_id.clone(), (r, run)))
            .collect();
        let me = self.catalog.host();
        let elsewhere: HashMap<String, String> = self
            .catalog
            .with_store(|s| s.launched_elsewhere(me))
            .map_err(LaunchError::from)?
            .into_iter()
            .collect();
        for instance in instances {
            let Some((record, run)) = launched.get(&instance.id) else {
                instance.launched_on = elsewhere.get(&instance.id).cloned();
                continue;
            };
            instance.launched_on = Some(me.to_string());
            instance.launched = Some(Launched {
                pod_id: record.pod_id.as_str().to_string(),
                hypervisor: record.hypervisor.as_str().to_string(),
                memory: record.memory_mib,
                cpus: record.cpus,
                restart: record.restart.as_str().to_string(),
                publish: record.publish.iter().map(|p| p.to_string()).collect(),
                image: record
                    .image_id
                    .clone()
                    .unwrap_or_else(|| record.image_name.clone()),
            });
            if instance.status != InstanceStatus::Connected {
                instance.status = match run {
                    PodRun::Running => InstanceStatus::Launching,
                    PodRun::Stopped => InstanceStatus::Stopped,
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::instance_net;

    fn net(cidr: &str) -> (String, String, String) {
        let n = instance_net(cidr).unwrap();
        (
            n.network.to_string(),
            n.gateway.to_string(),
            n.guest.to_string(),
        )
    }

    #[test]
    fn the_guest_is_the_42nd_address_or_the_next_free_one() {
        assert_eq!(
            net("10.0.0.1/24"),
            ("10.0.0.0/24".into(), "10.0.0.1".into(), "10.0.0.42".into())
        );
        assert_eq!(net("192.168.7.42/24").2, "192.168.7.2");
        assert_eq!(net("172.16.0.2/28").2, "172.16.0.3");
        assert_eq!(net("172.16.0.1/28").2, "172.16.0.2");
        assert_eq!(net("10.1.2.3/16").0, "10.1.0.0/16");
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in [
            "10.0.0.1",
            "10.0.0.1/31",
            "10.0.0.1/7",
            "10.0.0/24",
            "10.0.0.1/x",
            "10.0.0.0/24",
            "10.0.0.255/24",
        ] {
            assert!(instance_net(bad).is_err(), "{bad}");
        }
    }
}
