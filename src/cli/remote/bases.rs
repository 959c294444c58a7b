//! The server's side of `base` (`--host`): the `Bases` of `cli/base.rs`
//! over the API. An import is a job (a URL the server fetches, or a file
//! uploaded), followed to its end; `-o json` shows the server's documents.

use std::path::PathBuf;

use ureq::http::Method;

use super::jobs::finished_job;
use super::print::{job_result, shown};
use super::progress::Progress;
use super::CliError;
use crate::cli::base::{Bases, Imported};
use crate::cli::output::Shown;
use crate::client::{enc, Client};
use crate::model::bases::{Base, ImportRequest};

impl Bases for Client {
    fn import(
        &self,
        source: &str,
        name: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<Imported, CliError> {
        let job = if source.starts_with("http://") || source.starts_with("https://") {
            let body = ImportRequest {
                url: Some(source.to_string()),
                sha256: sha256.map(str::to_string),
                name: name.map(str::to_string),
            };
            self.send(Method::POST, "/v1/bases", &body)?
        } else {
            let file = PathBuf::from(source);
            let name = name.map_or_else(
                || crate::runtime::archive::name_from_source(source),
                str::to_string,
            );
            let mut path = format!("/v1/bases?name={}", enc(&name));
            if let Some(d) = sha256 {
                path.push_str(&format!("&sha256={}", enc(d)));
            }
            let mut bar = Progress::new(format!("uploading {source}"));
            let sent = self.upload_file(&file, &path, &mut |d, t| bar.update(d, t));
            bar.finish();
            sent?
        };
        // The job's log is commentary: stderr, so stdout stays the base.
        let done = finished_job(self, &job, &format!("importing {source}"))?;
        let (made, _): (Base, _) = job_result(self, done)?;
        // The job's log said whether the archive was there already.
        Ok(Imported {
            base: self.show(&made.id)?,
            existed: false,
        })
    }

    fn list(&self) -> Result<Shown<Vec<Base>>, CliError> {
        shown(&self.get("/v1/bases")?)
    }

    fn show(&self, base: &str) -> Result<Shown<Base>, CliError> {
        shown(&self.get(&format!("/v1/bases/{}", enc(base)))?)
    }

    fn remove(&self, base: &str) -> Result<Shown<Base>, CliError> {
        shown(&self.delete(&format!("/v1/bases/{}", enc(base)))?)
    }
}
