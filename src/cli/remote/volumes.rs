//! The server's side of `volume` (`--host`): the `Volumes` of
//! `cli/volume.rs` over `/v1/volumes`.

use ureq::http::Method;

use super::print::shown;
use super::CliError;
use crate::cli::output::Shown;
use crate::cli::volume::Volumes;
use crate::client::{enc, Client};
use crate::model::volumes::{Volume, VolumeRequest};

impl Volumes for Client {
    fn create(&self, name: &str) -> Result<Shown<Volume>, CliError> {
        let body = VolumeRequest {
            name: name.to_string(),
        };
        shown(&self.send(Method::POST, "/v1/volumes", &body)?)
    }

    fn list(&self) -> Result<Shown<Vec<Volume>>, CliError> {
        shown(&self.get("/v1/volumes")?)
    }

    fn remove(&self, name: &str) -> Result<Shown<Volume>, CliError> {
        shown(&self.delete(&format!("/v1/volumes/{}", enc(name)))?)
    }
}
