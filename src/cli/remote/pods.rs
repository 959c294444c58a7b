//! The server's side of `pod` (`--host`): the `Pods` of `cli/pod.rs` over
//! the API. A pod started there runs its own command under the server's
//! supervisor; what needs the pod's terminal is refused before asking.

use crate::runtime::restart::RestartPolicy;
use ureq::http::Method;

use super::print::shown;
use super::CliError;
use crate::cli::output::Shown;
use crate::cli::pod::{Pods, Started};
use crate::client::{enc, Client};
use crate::model::pods::{Pod, PodPatch, PodRequest, WantedState};
use crate::runtime::{Host, PodOptions};

impl Pods for Client {
    /// What cannot be done through the API, said once, the same way.
    fn host(&self, what: &str) -> Result<&Host, CliError> {
        Err(CliError::Usage(format!(
            "{what} needs the pod's terminal, which the API does not carry: run it on the server's host (without --host){}",
            if what.starts_with("pod run") { ", or use `pod run -d`" } else { "" }
        )))
    }

    fn create(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Shown<Pod>, CliError> {
        let body = pod_request(base, name, command, options, WantedState::Created);
        shown(&self.send(Method::POST, "/v1/pods", &body)?)
    }

    fn find(&self, target: &str) -> Result<Option<Shown<Pod>>, CliError> {
        match self.get(&pod_path(target)) {
            Ok(a) => Ok(Some(shown(&a)?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn start(&self, target: &str, argv: Option<Vec<String>>) -> Result<Started, CliError> {
        if argv.is_some() {
            return Err(CliError::Usage(format!(
                "{target} is a pod: over the API it runs its own command (give a command when creating it)"
            )));
        }
        Ok(Started {
            pod: patch(self, target, WantedState::Running)?,
            log: None,
        })
    }

    fn create_started(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Option<Started>, CliError> {
        let body = pod_request(base, name, command, options, WantedState::Running);
        match self.send(Method::POST, "/v1/pods", &body) {
            Ok(a) => Ok(Some(Started {
                pod: shown(&a)?,
                log: None,
            })),
            // A missing named volume is its own 404, said as it is.
            Err(e) if e.status() == Some(404) && !e.to_string().contains("volume") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Shown<Vec<Pod>>, CliError> {
        shown(&self.get("/v1/pods")?)
    }

    /// The server warns of its own orphans in its log.
    fn orphans(&self) -> Result<Vec<String>, CliError> {
        Ok(Vec::new())
    }

    fn show(&self, pod: &str) -> Result<Shown<Pod>, CliError> {
        shown(&self.get(&pod_path(pod))?)
    }

    fn kill(&self, pod: &str) -> Result<Shown<Pod>, CliError> {
        patch(self, pod, WantedState::Exited)
    }

    fn remove(&self, pod: &str, force: bool) -> Result<Shown<Pod>, CliError> {
        let mut path = pod_path(pod);
        if force {
            path.push_str("?force=true");
        }
        shown(&self.delete(&path)?)
    }
}

/// Starts (`running`) or stops (`exited`) a pod.
fn patch(c: &Client, pod: &str, state: WantedState) -> Result<Shown<Pod>, CliError> {
    shown(&c.send(Method::PATCH, &pod_path(pod), &PodPatch { state })?)
}

fn pod_path(pod: &str) -> String {
    format!("/v1/pods/{}", enc(pod))
}

/// The create body; `created` is the server's default, so it is left out.
fn pod_request(
    base: &str,
    name: Option<&str>,
    command: Vec<String>,
    options: &PodOptions,
    state: WantedState,
) -> PodRequest {
    PodRequest {
        base: base.to_string(),
        name: name.map(str::to_string),
        command: (!command.is_empty()).then_some(command),
        env: (!options.env.is_empty()).then(|| options.env.clone()),
        volumes: (!options.volumes.is_empty()).then(|| options.volumes.clone()),
        limits: limits_request(&options.limits),
        restart: (options.policy.restart != RestartPolicy::No)
            .then(|| options.policy.restart.to_string()),
        autostart: options.policy.autostart.then_some(true),
        publish: (!options.policy.publish.is_empty()).then(|| {
            options
                .policy
                .publish
                .iter()
                .map(|p| p.to_string())
                .collect()
        }),
        vnet: options.policy.vnet.then_some(true),
        state: (state != WantedState::Created).then_some(state),
    }
}

/// The create body's limits for checked `limits` (what a client sends).
fn limits_request(
    l: &crate::runtime::limits::Limits,
) -> Option<crate::model::pods::PodLimitsRequest> {
    (!l.is_empty()).then(|| crate::model::pods::PodLimitsRequest {
        memory: l.memory.map(crate::model::pods::SizeValue::Bytes),
        cpus: l.cpus.map(crate::model::pods::CpusValue::Number),
        pids: l.pids,
        disk: l.disk.map(crate::model::pods::SizeValue::Bytes),
        maxproc: l.maxproc,
    })
}
