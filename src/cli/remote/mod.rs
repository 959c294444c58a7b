//! The commands that are clients of `jetpack serve` (Mothership's CLI
//! habits): the server flags, `login`, the uplink, NaCl, image, instance,
//! deploy and job commands, and `base`/`pod` when `--host` sends them to a
//! server. Each prints the server's own JSON for `-o json`, ids for `-o id`,
//! and tables (through `output`) otherwise; progress goes to stderr.
//!
//! This file only routes a parsed command to its family's module; the clap
//! definitions are in `args.rs`, the printing helpers in `print.rs`.

mod args;
mod bases;
mod bootfiles;
mod builders;
mod events;
mod hosts;
mod images;
mod info;
mod instances;
mod jobs;
mod launch;
mod login;
mod nacls;
mod netboot;
mod pods;
mod print;
mod progress;
mod top;
mod uplinks;
mod volumes;

pub use args::{RemoteCommand, ServerFlags};

use super::args::{BaseCommand, PodCommand, VolumeCommand};
use super::output::Format;
use super::CliError;
use crate::model::builders::BuilderModel;
use crate::model::documents::Document;
use crate::model::images::Image;
use crate::model::uplinks::Uplink;
use print::delete;

/// `base` on the server (`cli/base.rs` over the API client).
pub fn base(flags: &ServerFlags, cmd: BaseCommand, format: Format) -> Result<i32, CliError> {
    super::base::base(&flags.connect()?, cmd, format)
}

/// `pod` on the server (`cli/pod.rs` over the API client).
pub fn pod(flags: &ServerFlags, cmd: PodCommand, format: Format) -> Result<i32, CliError> {
    super::pod::pod(&flags.connect()?, cmd, format)
}

/// `volume` on the server (`cli/volume.rs` over the API client).
pub fn volume(flags: &ServerFlags, cmd: VolumeCommand, format: Format) -> Result<i32, CliError> {
    super::volume::volume(&flags.connect()?, cmd, format)
}

/// Runs one of the client commands.
pub fn run(flags: &ServerFlags, cmd: RemoteCommand, format: Format) -> Result<i32, CliError> {
    use RemoteCommand as R;
    if let R::Login = cmd {
        return login::login_command(flags, format);
    }
    let c = &flags.connect()?;
    match cmd {
        // Answered above without connecting (a login is what a connection
        // needs); repeated here so the match stays exhaustive without a panic.
        R::Login => return login::login_command(flags, format),
        R::Info => info::show(c, format)?,
        R::Uplinks => uplinks::table(c, format)?,
        R::PushUplink { file } => uplinks::push_uplink(c, &file, format)?,
        R::InspectUplink { id } => uplinks::inspect(c, id, format)?,
        R::DeleteUplink { id } => delete::<Uplink>(c, ("uplinks", "uplink"), &id, format)?,
        R::Nacls => nacls::table(c, format)?,
        R::PushNacl {
            file,
            builder,
            name,
            force,
        } => nacls::push_nacl(c, &file, builder.as_deref(), (&name, force), format)?,
        R::PullNacl { id, file } => nacls::pull(c, id, file)?,
        R::InspectNacl { id } => nacls::inspect(c, id, format)?,
        R::DeleteNacl { id } => delete::<Document>(c, ("nacls", "NaCl"), &id, format)?,
        R::Images => images::table(c, format)?,
        R::PushImage { file, name, tag } => images::push(c, file, name, tag, format)?,
        R::PullImage {
            id,
            file,
            file_flag,
            disk,
        } => images::pull(c, id, file.or(file_flag), disk)?,
        R::InspectImage { id } => images::inspect(c, id, format)?,
        R::DeleteImage { id } => delete::<Image>(c, ("images", "image"), &id, format)?,
        R::Instances { status } => instances::table(c, status, format)?,
        R::Search { term } => instances::search(c, term, format)?,
        R::InspectInstance { id } => instances::inspect(c, id, format)?,
        R::InstanceAlias {
            id,
            alias,
            description,
        } => instances::alias(c, id, alias, description, format)?,
        R::DeleteInstance { ids } => instances::delete(c, ids, format)?,
        R::InstanceLogs { id, follow, tail } => instances::logs(c, id, follow, tail)?,
        R::Launch {
            hypervisor,
            memory,
            cpus,
            name,
            restart,
            publish,
            net,
            attach,
            spread,
            host_affinity,
            kernel,
            initrd,
            append,
            image,
        } => {
            let req = crate::model::instances::LaunchRequest {
                image_id: None,
                kernel,
                initrd,
                append,
                hypervisor,
                memory,
                cpus,
                alias: name,
                restart,
                publish,
                net,
                spread,
                host: host_affinity,
            };
            launch::launch(c, req, image, attach, format)?
        }
        R::InstanceConsole { id, follow } => launch::console(c, id, follow)?,
        R::Stop { id } => launch::verb(c, "stop", id, format)?,
        R::Start { id } => launch::verb(c, "start", id, format)?,
        R::Restart { id } => launch::verb(c, "restart", id, format)?,
        R::InstancePanics { id } => instances::panics(c, id, format)?,
        R::InstancePanic { id, panic_id } => instances::panic_text(c, id, panic_id)?,
        R::Deploy {
            wait,
            force,
            timeout,
            instance,
            image,
        } => return instances::deploy(c, (wait, force, timeout), instance, image, format),
        R::Upgrade {
            instance,
            builder,
            nacl,
            service,
            force,
            wait,
        } => instances::upgrade(c, instance, (builder, nacl, service), (force, wait), format)?,
        R::Bob { cmd } => return builders::bob(c, cmd, format),
        R::Netboot { cmd } => return netboot::netboot(c, cmd, format),
        R::Hosts => hosts::list(c, format)?,
        R::Host { cmd } => hosts::host(c, cmd, format)?,
        R::Builders => builders::table(c, format)?,
        R::InspectBuilder { id } => builders::inspect(c, id, format)?,
        R::DeleteBuilder { id } => delete::<BuilderModel>(c, ("builders", "builder"), &id, format)?,
        R::Build {
            service,
            builder,
            nacl,
            nacl_file,
            uplink,
            tag,
            name,
            host_affinity,
            wait_and_print,
            launch,
        } => {
            return builders::build(
                c,
                (service, builder),
                (nacl, nacl_file),
                (uplink, tag, name, host_affinity),
                builders::Then::of(wait_and_print, launch),
                format,
            )
        }
        R::Isos => bootfiles::table(c, false, format)?,
        R::PushIso { file, name } => bootfiles::push(c, false, file, name, format)?,
        R::DeleteIso { name } => bootfiles::delete(c, false, name, format)?,
        R::Microkernels => bootfiles::table(c, true, format)?,
        R::PushMicrokernel { file, name } => bootfiles::push(c, true, file, name, format)?,
        R::DeleteMicrokernel { name } => bootfiles::delete(c, true, name, format)?,
        R::Osimages => bootfiles::osimages(c, format)?,
        R::AddOsimage {
            name,
            version,
            iso,
            url,
            sha256,
            file,
            path,
            wait,
        } => {
            let from = bootfiles::From {
                iso,
                url,
                sha256,
                file,
                path,
            };
            return bootfiles::add(c, name, version, from, wait, format);
        }
        R::DeleteOsimage { name, version } => bootfiles::delete_osimage(c, name, version, format)?,
        R::Jobs => jobs::table(c, format)?,
        R::Events => events::follow(c, format)?,
        R::Top { stat, limit, once } => return top::top(c, flags, (&stat, limit, once), format),
        R::Job { id, follow } => return jobs::show(c, id, follow, format),
    }
    Ok(0)
}
