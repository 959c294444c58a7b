//! `jetpack volume`, on this host (the runtime's `Host`) or a server given
//! with `--host` (`remote/volumes.rs`): named volumes, datasets that pods
//! mount with `--volume NAME:/path` and that outlive them. The flow and
//! the tables are here; a side only acts and answers in the API's types.

use super::args::VolumeCommand;
use super::output::{ago_at, short, text, Format, Shown};
use super::CliError;
use crate::model::volumes::Volume;
use crate::runtime::Host;
use crate::store::VolumeRow;

/// Where the volumes are.
pub(super) trait Volumes {
    fn create(&self, name: &str) -> Result<Shown<Volume>, CliError>;
    fn list(&self) -> Result<Shown<Vec<Volume>>, CliError>;
    fn remove(&self, name: &str) -> Result<Shown<Volume>, CliError>;
}

pub(super) fn volume(
    side: &impl Volumes,
    cmd: VolumeCommand,
    format: Format,
) -> Result<i32, CliError> {
    match cmd {
        VolumeCommand::Create { name } => {
            let v = side.create(&name)?;
            v.print_made(format, &v.item.name);
        }
        VolumeCommand::List => side.list()?.print_list(
            format,
            &["NAME", "CREATED", "PODS"],
            |v| {
                let pods: Vec<String> = v.pods.iter().map(|p| short(p)).collect();
                vec![
                    v.name.clone(),
                    ago_at(Some(&v.created)),
                    text(Some(&pods.join(","))),
                ]
            },
            |v| v.name.clone(),
        ),
        VolumeCommand::Rm { name } => {
            let v = side.remove(&name)?;
            eprintln!("removed volume {}", v.item.name);
            if format != Format::Table {
                v.print_made(format, &v.item.name);
            }
        }
    }
    Ok(0)
}

fn model(host: &Host, row: VolumeRow) -> Result<Volume, CliError> {
    let pods = host.volume_users(&row.name)?;
    Ok(Volume::from((row, pods)))
}

/// This host.
impl Volumes for Host {
    fn create(&self, name: &str) -> Result<Shown<Volume>, CliError> {
        let row = self.create_volume(name)?;
        let path = self.volume_path(&row.name)?;
        let v = model(self, row)?;
        let mut shown = Shown::local(v, |v| v)?;
        shown.extra.push(("path", path.display().to_string()));
        Ok(shown)
    }

    fn list(&self) -> Result<Shown<Vec<Volume>>, CliError> {
        let all: Vec<Volume> = self
            .volumes_in_use()?
            .into_iter()
            .map(Volume::from)
            .collect();
        Shown::local(all, |v| v)
    }

    fn remove(&self, name: &str) -> Result<Shown<Volume>, CliError> {
        let row = self.remove_volume(name)?;
        Shown::local(
            Volume {
                name: row.name.to_string(),
                created: crate::api::time(row.created_at),
                pods: Vec::new(),
            },
            |v| v,
        )
    }
}
