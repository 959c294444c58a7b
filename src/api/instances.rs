//! `/v1/instances`: the IncludeOS instances the hangar knows (Mothership's
//! resource). Lists, summaries and details are read from the fleet's
//! memory; alias and description are set through it; deletes forget an
//! instance and what is stored of it; logs (also streamed), stats (also
//! asked for on demand), event history and panics are the fleet's; a
//! deploy is checked here and runs as a job. The wire shapes here are the
//! API's own, apart from the fleet's types. A list walks the fleet once
//! (20,000 instances and more), searching and ordering in place, and copies
//! out only the page it answers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::jobs::Job;
use super::{
    blocking, time, unknown_sort, wants_raw, ApiBytes, ApiError, ApiJson, ApiQuery, ApiResult,
    AppState, ListParams, State,
};
use crate::catalog::Catalog;
use crate::hangar::deploy;
use crate::hangar::fleet::{rfc3339_ms, Fleet, FleetError, Live, StatsSample, Status};
use crate::hangar::frame::{encode, Code};
use crate::hangar::token::InstanceId;
use crate::store::catalog::{ImageRow, ListQuery};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(instance_summary))
        .routes(routes!(list_instances, delete_instances))
        .routes(routes!(get_instance, patch_instance, delete_instance))
        .routes(routes!(get_logs))
        .routes(routes!(get_stats, request_stats))
        .routes(routes!(get_history))
        .routes(routes!(list_panics))
        .routes(routes!(get_panic))
        .routes(routes!(deploy_image))
        .routes(routes!(upgrade_instance))
}

/// How often a followed log looks for new bytes.
const LOG_POLL: Duration = Duration::from_millis(200);
/// How long `POST .../stats` waits for the instance's answer.
const STATS_WAIT: Duration = Duration::from_secs(5);
const STATS_POLL: Duration = Duration::from_millis(20);
/// Above this many distinct images on one page, one list of every image
/// is cheaper than a lookup per image.
const FEW_IMAGES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Connected,
    Disconnected,
    Connecting,
    /// Known from before a server restart, not seen since
    Unknown,
}

impl From<Status> for InstanceStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Connected => InstanceStatus::Connected,
            Status::Disconnected => InstanceStatus::Disconnected,
            Status::Connecting => InstanceStatus::Connecting,
            Status::Unknown => InstanceStatus::Unknown,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// What it authenticates with: its SMBIOS UUID (32 hex digits) or a MAC
    pub id: String,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub status: InstanceStatus,
    /// It reported a panic since the server started
    pub panicked: bool,
    /// From IDENT (else the UPLINK echo)
    pub tag: Option<String>,
    /// IncludeOS version (IDENT)
    pub version: Option<String>,
    /// Service name (IDENT)
    pub service: Option<String>,
    /// SHA-1 of the image it runs, once known (after a live update)
    pub image_id: Option<String>,
    /// The NaCl that image was built with, when the image is in the catalog
    pub nacl_id: Option<String>,
    /// The uplink whose token it authenticated with
    pub uplink_id: Option<String>,
    /// The uplink URL it reports (UPLINK echo)
    pub uplink_url: Option<String>,
    /// Addresses of its network stacks (IDENT.net)
    pub addresses: Vec<String>,
    pub devices: Vec<String>,
    pub arch: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// Address and port its current or last dock came from
    pub remote: Option<String>,
}

/// One instance with its full last IDENT, UPLINK echo and latest STATS.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetail {
    #[serde(flatten)]
    pub instance: Instance,
    #[schema(value_type = Option<Object>)]
    pub ident: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub uplink: Option<serde_json::Value>,
    pub latest_stats: Option<StatsReading>,
}

/// One STATS document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsReading {
    /// When it arrived (RFC 3339, milliseconds)
    pub at: String,
    /// `[{name, value}]` as the instance sent it
    #[schema(value_type = Vec<Object>)]
    pub stats: serde_json::Value,
}

impl From<&StatsSample> for StatsReading {
    fn from(s: &StatsSample) -> Self {
        StatsReading {
            at: rfc3339_ms(s.at_ms),
            // The fleet keeps only documents that parsed as arrays.
            stats: serde_json::from_str(&s.json).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceStats {
    pub latest: Option<StatsReading>,
    /// The ones before it, oldest first
    pub history: Vec<StatsReading>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsRequested {
    /// Asked for; the instance did not answer in time (see GET .../stats later)
    pub requested: bool,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceSummary {
    pub connected: usize,
    pub disconnected: usize,
    pub connecting: usize,
    pub unknown: usize,
    /// Instances that reported a panic (whatever their status)
    pub panicked: usize,
    pub total: usize,
}

impl InstanceSummary {
    fn count(&mut self, status: Status, panicked: bool) {
        match status {
            Status::Connected => self.connected += 1,
            Status::Disconnected => self.disconnected += 1,
            Status::Connecting => self.connecting += 1,
            Status::Unknown => self.unknown += 1,
        }
        self.panicked += usize::from(panicked);
        self.total += 1;
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceEvent {
    /// RFC 3339, milliseconds
    pub at: String,
    /// docked, disconnected, ident, panicked, deploy, deployed, ...
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstancePanic {
    /// `panic_<RFC 3339 time>.txt`
    pub id: String,
    pub created: String,
    /// Bytes of text
    pub size: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstancePanicText {
    pub id: String,
    pub created: String,
    /// The system log of the boot that panicked
    pub text: String,
}

/// PATCH body: a field left out is kept; `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    /// 1-64 of `A-Za-z0-9._-`, not only hex digits and dashes (that reads as an id), unique
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub alias: Option<Option<String>>,
    /// Up to 1024 characters
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
}

/// Tells a field given as `null` (Some(None)) from one left out (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A deploy's options, in the query or a JSON body (the body wins).
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeployRequest {
    /// Deploy even when the image's uplink URL differs from the instance's or is unknown [default: false]
    pub force: Option<bool>,
    /// Seconds from sending the image to the instance being back with it, 1..=3600 [default: 120]
    pub timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InstanceListParams {
    /// Search: a case-insensitive substring of the id, alias, description, tag, version, service, image id, addresses or devices
    q: Option<String>,
    /// Only instances with this status: connected, disconnected, connecting, unknown
    status: Option<String>,
    /// Only instances that did (true) or did not (false) report a panic
    panicked: Option<bool>,
    /// Order by id (the default), alias, status, version, service, tag, imageId, firstSeen or lastSeen; `-` reverses
    sort: Option<String>,
    /// At most this many (1..=1000)
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteParams {
    /// Instances to forget, comma-separated (ids, aliases or id prefixes); all must exist
    ids: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// Only the bytes after this offset (an `X-Log-Offset` from before)
    since: Option<u64>,
    /// Only the last N lines
    tail: Option<usize>,
    /// Keep the answer open and send new bytes as they arrive
    #[serde(default)]
    follow: bool,
}

/// What the API shows of an instance, copied out of the fleet under its
/// lock (times still numbers, for sorting).
#[derive(Debug)]
struct Snapshot {
    id: String,
    alias: Option<String>,
    description: Option<String>,
    status: Status,
    panicked: bool,
    tag: Option<String>,
    version: Option<String>,
    service: Option<String>,
    arch: Option<String>,
    image_id: Option<String>,
    uplink_id: Option<String>,
    uplink_url: Option<String>,
    addresses: Vec<String>,
    devices: Vec<String>,
    first_seen: i64,
    last_seen: i64,
    remote: Option<String>,
}

/// The IDENT fields lists show and search, read in one walk over the
/// object: on a large fleet a lookup per field costs several times more,
/// each one chasing the map's pointers again.
#[derive(Default)]
struct IdentFields<'a> {
    /// IDENT's, else the UPLINK echo's
    tag: Option<&'a str>,
    version: Option<&'a str>,
    service: Option<&'a str>,
    arch: Option<&'a str>,
    devices: &'a [Value],
    net: &'a [Value],
}

impl<'a> IdentFields<'a> {
    fn of(l: &'a Live) -> IdentFields<'a> {
        let text = |v: &'a Value| v.as_str().filter(|t| !t.is_empty());
        let list = |v: &'a Value| v.as_array().map_or(&[][..], Vec::as_slice);
        let mut f = IdentFields::default();
        if let Some(ident) = l.ident.as_ref().and_then(Value::as_object) {
            for (key, value) in ident {
                match key.as_str() {
                    "tag" => f.tag = text(value),
                    "version" => f.version = text(value),
                    "service" => f.service = text(value),
                    "arch" => f.arch = text(value),
                    "devices" => f.devices = list(value),
                    "net" => f.net = list(value),
                    _ => {}
                }
            }
        }
        if f.tag.is_none() {
            f.tag = l.uplink.as_ref().and_then(|u| u.get("tag")).and_then(text);
        }
        f
    }

    fn devices(&self) -> impl Iterator<Item = &'a str> {
        self.devices.iter().filter_map(Value::as_str)
    }

    /// The addresses of the network stacks.
    fn addresses(&self) -> impl Iterator<Item = &'a str> {
        self.net
            .iter()
            .filter_map(|stack| stack.get("addr")?.as_str())
    }
}

impl Snapshot {
    fn take(id: &InstanceId, l: &Live) -> Snapshot {
        let f = IdentFields::of(l);
        let owned = |t: Option<&str>| t.map(str::to_string);
        Snapshot {
            id: id.to_string(),
            alias: l.alias.clone(),
            description: l.description.clone(),
            status: l.status,
            panicked: l.panicked,
            tag: owned(f.tag),
            version: owned(f.version),
            service: owned(f.service),
            arch: owned(f.arch),
            image_id: l.image_id.clone(),
            uplink_id: l.uplink_id.clone(),
            uplink_url: l.uplink_url().map(str::to_string),
            addresses: f.addresses().map(str::to_string).collect(),
            devices: f.devices().map(str::to_string).collect(),
            first_seen: l.first_seen,
            last_seen: l.last_seen,
            remote: l.remote.map(|r| r.to_string()),
        }
    }

    fn into_model(self, nacls: &HashMap<String, String>) -> Instance {
        Instance {
            nacl_id: self.image_id.as_ref().and_then(|i| nacls.get(i)).cloned(),
            id: self.id,
            alias: self.alias,
            description: self.description,
            status: self.status.into(),
            panicked: self.panicked,
            tag: self.tag,
            version: self.version,
            service: self.service,
            image_id: self.image_id,
            uplink_id: self.uplink_id,
            uplink_url: self.uplink_url,
            addresses: self.addresses,
            devices: self.devices,
            arch: self.arch,
            first_seen: time(self.first_seen),
            last_seen: time(self.last_seen),
            remote: self.remote,
        }
    }
}

/// A `?q=` term, matched case-insensitively without an allocation per
/// field (a search looks at every instance of the fleet).
struct Needle {
    lower: String,
    ascii: bool,
}

impl Needle {
    fn new(q: &str) -> Needle {
        let lower = q.to_lowercase();
        Needle {
            ascii: lower.is_ascii(),
            lower,
        }
    }

    fn found_in(&self, text: &str) -> bool {
        if !self.ascii {
            return text.to_lowercase().contains(&self.lower);
        }
        let needle = self.lower.as_bytes();
        needle.is_empty()
            || text
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
    }

    /// Whether the instance's id, alias, description, image id, tag,
    /// version, service, addresses or devices hold the term.
    fn found(&self, id: &InstanceId, l: &Live) -> bool {
        let own = [
            Some(id.as_str()),
            l.alias.as_deref(),
            l.description.as_deref(),
            l.image_id.as_deref(),
        ];
        if own.into_iter().flatten().any(|t| self.found_in(t)) {
            return true;
        }
        let f = IdentFields::of(l);
        [f.tag, f.version, f.service]
            .into_iter()
            .flatten()
            .chain(f.addresses())
            .chain(f.devices())
            .any(|t| self.found_in(t))
    }
}

/// What a list can be ordered by (`?sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Id,
    Alias,
    Status,
    Version,
    Service,
    Tag,
    ImageId,
    FirstSeen,
    LastSeen,
}

const ORDERS: [(&str, Order); 9] = [
    ("id", Order::Id),
    ("alias", Order::Alias),
    ("status", Order::Status),
    ("version", Order::Version),
    ("service", Order::Service),
    ("tag", Order::Tag),
    ("imageId", Order::ImageId),
    ("firstSeen", Order::FirstSeen),
    ("lastSeen", Order::LastSeen),
];

/// An instance's place in a list: only what it is ordered by, so that
/// only the page asked for is copied out in full.
struct Place {
    text: Option<String>,
    number: i64,
    id: InstanceId,
}

impl Order {
    /// `?sort=` (default: by id) and whether it is reversed.
    fn of(list: &ListParams) -> ApiResult<(Order, bool)> {
        let Some((field, desc)) = list.sort_field() else {
            return Ok((Order::Id, false));
        };
        let names = ORDERS.map(|(name, _)| name);
        ORDERS
            .iter()
            .find(|(name, _)| *name == field)
            .map(|&(_, order)| (order, desc))
            .ok_or_else(|| unknown_sort(field, &names))
    }

    fn place(self, id: &InstanceId, l: &Live) -> Place {
        let ident = || IdentFields::of(l);
        let owned = |t: Option<&str>| t.map(str::to_string);
        let (text, number) = match self {
            Order::Id => (None, 0),
            Order::Alias => (l.alias.clone(), 0),
            Order::Status => (Some(l.status.as_str().to_string()), 0),
            Order::Version => (owned(ident().version), 0),
            Order::Service => (owned(ident().service), 0),
            Order::Tag => (owned(ident().tag), 0),
            Order::ImageId => (l.image_id.clone(), 0),
            Order::FirstSeen => (None, l.first_seen),
            Order::LastSeen => (None, l.last_seen),
        };
        Place {
            text,
            number,
            id: id.clone(),
        }
    }
}

fn parse_status(s: &str) -> ApiResult<Status> {
    Status::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!("status {s:?}: use one of {}", names.join(", ")))
    })
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The NaCl of each catalog image that `snaps` run (image id -> NaCl id).
/// Blocking.
fn nacl_ids(catalog: &Catalog, snaps: &[Snapshot]) -> ApiResult<HashMap<String, String>> {
    let wanted: HashSet<&str> = snaps
        .iter()
        .filter_map(|s| s.image_id.as_deref())
        .filter(|id| is_sha1(id))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ImageRow> = if wanted.len() <= FEW_IMAGES {
        catalog.with_store(|s| {
            let mut rows = Vec::new();
            for id in &wanted {
                rows.extend(s.find_images(id)?);
            }
            Ok::<_, ApiError>(rows)
        })?
    } else {
        catalog.images(&ListQuery::default())?
    };
    Ok(rows
        .into_iter()
        .filter(|r| wanted.contains(r.id.as_str()))
        .filter_map(|r| Some((r.id, r.nacl_id?)))
        .collect())
}

/// Blocking.
fn models(catalog: &Catalog, snaps: Vec<Snapshot>) -> ApiResult<Vec<Instance>> {
    let nacls = nacl_ids(catalog, &snaps)?;
    Ok(snaps.into_iter().map(|s| s.into_model(&nacls)).collect())
}

/// Blocking.
fn model(catalog: &Catalog, snap: Snapshot) -> ApiResult<Instance> {
    let nacls = nacl_ids(catalog, std::slice::from_ref(&snap))?;
    Ok(snap.into_model(&nacls))
}

fn snapshot(fleet: &Fleet, id: &InstanceId) -> ApiResult<Snapshot> {
    Ok(fleet.with(id, |l| Snapshot::take(id, l))?)
}

/// List instances (by id unless sorted otherwise)
#[utoipa::path(get, path = "/v1/instances", tag = "instances", params(InstanceListParams),
    responses((status = 200, body = Vec<Instance>), (status = 400, body = ErrorBody)))]
async fn list_instances(
    state: State,
    ApiQuery(p): ApiQuery<InstanceListParams>,
) -> ApiResult<Json<Vec<Instance>>> {
    let status = p.status.as_deref().map(parse_status).transpose()?;
    let list = ListParams {
        q: p.q,
        sort: p.sort,
        limit: p.limit,
        offset: p.offset,
    };
    let panicked = p.panicked;
    let instances =
        blocking(move || select(&state.fleet, &state.catalog, status, panicked, &list)).await?;
    Ok(Json(instances))
}

/// The instances a list asks for: the fleet is searched and ordered in
/// place, and only the page is copied out. Blocking.
fn select(
    fleet: &Fleet,
    catalog: &Catalog,
    status: Option<Status>,
    panicked: Option<bool>,
    list: &ListParams,
) -> ApiResult<Vec<Instance>> {
    let (order, desc) = Order::of(list)?;
    list.check()?;
    let needle = list.q.as_deref().filter(|q| !q.is_empty()).map(Needle::new);
    let mut places = Vec::new();
    fleet.each(|id, l| {
        let wanted = status.is_none_or(|s| l.status == s)
            && panicked.is_none_or(|p| l.panicked == p)
            && needle.as_ref().is_none_or(|n| n.found(id, l));
        if wanted {
            places.push(order.place(id, l));
        }
    });
    // The id breaks ties: the fleet is a hash map, the list has an order.
    places.sort_unstable_by(|a, b| (&a.text, a.number, &a.id).cmp(&(&b.text, b.number, &b.id)));
    if desc {
        places.reverse();
    }
    // An instance deleted since it was placed is left out.
    let snaps = list
        .page(places)?
        .iter()
        .filter_map(|p| fleet.with(&p.id, |l| Snapshot::take(&p.id, l)).ok())
        .collect();
    models(catalog, snaps)
}

/// Count instances per status
#[utoipa::path(get, path = "/v1/instances/summary", tag = "instances",
    responses((status = 200, body = InstanceSummary)))]
async fn instance_summary(state: State) -> Json<InstanceSummary> {
    let mut summary = InstanceSummary::default();
    state
        .fleet
        .each(|_, live| summary.count(live.status, live.panicked));
    Json(summary)
}

/// Show an instance, with its last IDENT, UPLINK echo and STATS
#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = InstanceDetail), (status = 400, body = ErrorBody, description = "ambiguous prefix"),
        (status = 404, body = ErrorBody)))]
async fn get_instance(state: State, Path(id): Path<String>) -> ApiResult<Json<InstanceDetail>> {
    let detail = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        let (snap, ident, uplink, stats) = state.fleet.with(&id, |l| {
            (
                Snapshot::take(&id, l),
                l.ident.clone(),
                l.uplink.clone(),
                l.stats.as_ref().map(StatsReading::from),
            )
        })?;
        Ok::<_, ApiError>(InstanceDetail {
            instance: model(&state.catalog, snap)?,
            ident,
            uplink,
            latest_stats: stats,
        })
    })
    .await?;
    Ok(Json(detail))
}

/// Why an alias is refused, if it is.
fn check_alias(alias: &str) -> Result<(), String> {
    let len = alias.chars().count();
    if !(1..=64).contains(&len) {
        return Err(format!("alias {alias:?}: 1 to 64 characters"));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "alias {alias:?}: only letters, digits, '.', '_' and '-'"
        ));
    }
    // Instances are found by id, alias or id prefix: an alias that could
    // be an id (or a prefix of one) would hide or be hidden by it.
    if alias.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(format!(
            "alias {alias:?} reads as an instance id: it needs a letter other than a-f, a '.' or a '_'"
        ));
    }
    // GET /v1/instances/summary is the counts, never an instance.
    if alias == "summary" {
        return Err("alias \"summary\" is reserved".into());
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), String> {
    if description.chars().count() > 1024 {
        return Err("description: up to 1024 characters".into());
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("description: no control characters but newlines and tabs".into());
    }
    Ok(())
}

impl InstancePatch {
    fn check(&self) -> ApiResult<()> {
        if let Some(Some(alias)) = &self.alias {
            check_alias(alias).map_err(ApiError::bad_request)?;
        }
        if let Some(Some(description)) = &self.description {
            check_description(description).map_err(ApiError::bad_request)?;
        }
        Ok(())
    }

    /// The names after this patch, from the current ones.
    fn apply(
        self,
        alias: Option<String>,
        description: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let description = match self.description {
            None => description,
            // An empty description is no description.
            Some(d) => d.filter(|d| !d.is_empty()),
        };
        (self.alias.unwrap_or(alias), description)
    }
}

/// Set an instance's alias or description (`null` clears; left out keeps)
#[utoipa::path(patch, path = "/v1/instances/{id}", tag = "instances", request_body = InstancePatch,
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "another instance has this alias")))]
async fn patch_instance(
    state: State,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<InstancePatch>,
) -> ApiResult<Json<Instance>> {
    patch.check()?;
    let instance = blocking(move || {
        let fleet = &state.fleet;
        let id = fleet.resolve(&id)?;
        fleet.update_names(&id, |alias, description| patch.apply(alias, description))?;
        model(&state.catalog, snapshot(fleet, &id)?)
    })
    .await?;
    Ok(Json(instance))
}

/// Forgets `ids` (resolved already); returns what they were. Blocking.
fn forget(state: &AppState, ids: &[InstanceId]) -> ApiResult<Vec<Instance>> {
    let mut gone = Vec::with_capacity(ids.len());
    for id in ids {
        // Deleted meanwhile by someone else: gone all the same.
        let Ok(snap) = snapshot(&state.fleet, id) else {
            continue;
        };
        match state.fleet.forget(id) {
            Ok(()) => gone.push(snap),
            Err(FleetError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    models(&state.catalog, gone)
}

/// Forget an instance and what is stored of it (panics included); its session, if any, is closed
#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_instance(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let gone = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        forget(&state, std::slice::from_ref(&id))
    })
    .await?;
    match gone.into_iter().next() {
        Some(instance) => Ok(Json(instance).into_response()),
        None => Err(ApiError::not_found("the instance was deleted meanwhile")),
    }
}

/// Forget several instances (`?ids=a,b`); if any is unknown, none is deleted
#[utoipa::path(delete, path = "/v1/instances", tag = "instances", params(DeleteParams),
    responses((status = 200, body = Vec<Instance>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_instances(
    state: State,
    ApiQuery(p): ApiQuery<DeleteParams>,
) -> ApiResult<Json<Vec<Instance>>> {
    let refs: Vec<String> = p
        .ids
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if refs.is_empty() {
        return Err(ApiError::bad_request(
            "name the instances to delete: ?ids=ID,ALIAS,...",
        ));
    }
    let gone = blocking(move || {
        let mut ids: Vec<InstanceId> = Vec::with_capacity(refs.len());
        for r in &refs {
            let id = state.fleet.resolve(r)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        forget(&state, &ids)
    })
    .await?;
    Ok(Json(gone))
}

/// Where the last `n` lines of `bytes` start (a final newline ends the
/// last line rather than starting an empty one).
fn tail_start(bytes: &[u8], n: usize) -> usize {
    if n == 0 {
        return bytes.len();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

const LOG_OFFSET: HeaderName = HeaderName::from_static("x-log-offset");

/// The instance's recent LOG output as text (bytes as sent); `follow` streams new output
#[utoipa::path(get, path = "/v1/instances/{id}/logs", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"), LogParams),
    responses((status = 200, body = String, content_type = "text/plain",
            headers(("X-Log-Offset" = u64, description = "the offset after these bytes: ?since= it next time"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_logs(
    state: State,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<LogParams>,
) -> ApiResult<Response> {
    let fleet = state.fleet.clone();
    let id = fleet.resolve(&id)?;
    let (mut bytes, offset) = fleet.with(&id, |l| l.log_since(p.since.unwrap_or(0)))?;
    if let Some(n) = p.tail {
        bytes.drain(..tail_start(&bytes, n));
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        (LOG_OFFSET, HeaderValue::from(offset)),
    ];
    if !p.follow {
        return Ok((headers, bytes).into_response());
    }
    let first = futures_util::stream::iter(
        (!bytes.is_empty()).then(|| Ok::<_, std::io::Error>(Bytes::from(bytes))),
    );
    let more =
        futures_util::stream::unfold((fleet, id, offset), |(fleet, id, offset)| async move {
            loop {
                tokio::time::sleep(LOG_POLL).await;
                // A deleted instance ends the stream; a client that went away
                // drops it.
                let (bytes, next) = fleet.with(&id, |l| l.log_since(offset)).ok()?;
                if !bytes.is_empty() {
                    return Some((Ok(Bytes::from(bytes)), (fleet, id, next)));
                }
            }
        });
    use futures_util::StreamExt;
    Ok((headers, Body::from_stream(first.chain(more))).into_response())
}

/// The latest STATS and the ones before it
#[utoipa::path(get, path = "/v1/instances/{id}/stats", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = InstanceStats), (status = 404, body = ErrorBody)))]
async fn get_stats(state: State, Path(id): Path<String>) -> ApiResult<Json<InstanceStats>> {
    let id = state.fleet.resolve(&id)?;
    let stats = state.fleet.with(&id, |l| InstanceStats {
        latest: l.stats.as_ref().map(StatsReading::from),
        history: l.stats_history.iter().map(StatsReading::from).collect(),
    })?;
    Ok(Json(stats))
}

/// Ask a docked instance for STATS now: 200 with them when they come within
/// 5 s, else 202 (they will show in GET .../stats)
#[utoipa::path(post, path = "/v1/instances/{id}/stats", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = StatsReading), (status = 202, body = StatsRequested),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not docked, or its queue is full")))]
async fn request_stats(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let fleet = &state.fleet;
    let id = fleet.resolve(&id)?;
    let before = fleet.with(&id, |l| l.stats_seq)?;
    fleet.send(&id, encode(Code::Stats, b""))?;
    let deadline = Instant::now() + STATS_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(STATS_POLL).await;
        let fresh = fleet.with(&id, |l| {
            l.stats
                .as_ref()
                .filter(|_| l.stats_seq > before)
                .map(StatsReading::from)
        })?;
        if let Some(reading) = fresh {
            return Ok(Json(reading).into_response());
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(StatsRequested { requested: true }),
    )
        .into_response())
}

/// The instance's recent events (docked, disconnected, ident, panicked, deploy...), oldest first
#[utoipa::path(get, path = "/v1/instances/{id}/history", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Vec<InstanceEvent>), (status = 404, body = ErrorBody)))]
async fn get_history(state: State, Path(id): Path<String>) -> ApiResult<Json<Vec<InstanceEvent>>> {
    let id = state.fleet.resolve(&id)?;
    let events = state.fleet.with(&id, |l| {
        l.events
            .iter()
            .map(|e| InstanceEvent {
                at: rfc3339_ms(e.at_ms),
                event: e.event.to_string(),
                detail: e.detail.clone(),
            })
            .collect()
    })?;
    Ok(Json(events))
}

/// The panics the instance reported, newest first
#[utoipa::path(get, path = "/v1/instances/{id}/panics", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Vec<InstancePanic>), (status = 404, body = ErrorBody)))]
async fn list_panics(state: State, Path(id): Path<String>) -> ApiResult<Json<Vec<InstancePanic>>> {
    let rows = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        state.fleet.panics(&id)
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| InstancePanic {
                size: r.text.len(),
                id: r.id,
                created: time(r.created_at),
            })
            .collect(),
    ))
}

/// A panic's text: JSON, or the raw text with `Accept: text/plain`
#[utoipa::path(get, path = "/v1/instances/{id}/panics/{panicId}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"),
        ("panicId" = String, Path, description = "panic id, e.g. panic_2024-01-02T03:04:05.678Z.txt")),
    responses((status = 200, content((InstancePanicText = "application/json"), (String = "text/plain"))),
        (status = 404, body = ErrorBody), (status = 406, body = ErrorBody)))]
async fn get_panic(
    state: State,
    headers: HeaderMap,
    Path((id, panic_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let raw = wants_raw(&headers, &["text/plain"])?;
    if panic_id.is_empty() || panic_id.len() > 128 {
        return Err(ApiError::not_found(format!(
            "no panic {:?}",
            panic_id.chars().take(80).collect::<String>()
        )));
    }
    let row = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        state.fleet.panic(&id, &panic_id).map_err(|e| match e {
            FleetError::NotFound(_) => {
                ApiError::not_found(format!("instance {id} has no panic {panic_id:?}"))
            }
            e => e.into(),
        })
    })
    .await?;
    if raw {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            row.text,
        )
            .into_response());
    }
    Ok(Json(InstancePanicText {
        id: row.id,
        created: time(row.created_at),
        text: row.text,
    })
    .into_response())
}

impl DeployRequest {
    /// The query's options under the body's.
    fn over(self, query: DeployRequest) -> DeployRequest {
        DeployRequest {
            force: self.force.or(query.force),
            timeout: self.timeout.or(query.timeout),
        }
    }

    fn timeout(&self) -> ApiResult<Duration> {
        match self.timeout.unwrap_or(120) {
            t @ 1..=3600 => Ok(Duration::from_secs(t)),
            _ => Err(ApiError::bad_request("timeout: 1 to 3600 seconds")),
        }
    }
}

/// Reads a deploy's optional JSON body.
fn deploy_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<DeployRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeployRequest::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::unsupported_media(
            "expected Content-Type: application/json (or no body)",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// One deploy per instance at a time: a second one would race the first
/// for the instance's acknowledgement.
static DEPLOYS: Mutex<()> = Mutex::new(());

/// The unfinished deploy or upgrade job of `id`, if any. Blocking.
fn deploy_in_progress(state: &AppState, id: &InstanceId) -> ApiResult<Option<String>> {
    for kind in ["deploy", "upgrade"] {
        for wanted in ["queued", "running"] {
            let q = ListQuery {
                limit: Some(1),
                filters: vec![
                    ("kind", kind.to_string()),
                    ("target", id.to_string()),
                    ("state", wanted.to_string()),
                ],
                ..ListQuery::default()
            };
            if let Some(job) = state.jobs.list(&q)?.into_iter().next() {
                return Ok(Some(job.id));
            }
        }
    }
    Ok(None)
}

/// Live-update an instance with an image, as a job. Refused (409) when the
/// image's uplink URL differs from the instance's or is unknown, unless `force`
#[utoipa::path(post, path = "/v1/instances/{id}/deploy/{imageId}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"),
        ("imageId" = String, Path, description = "image id (SHA-1) or a prefix of it"), DeployRequest),
    request_body(content = Option<DeployRequest>, content_type = "application/json"),
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not docked, refused, or a deploy to it runs"),
        (status = 415, body = ErrorBody)))]
async fn deploy_image(
    state: State,
    Path((id, image)): Path<(String, String)>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<DeployRequest>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let options = deploy_body(&headers, &body)?.over(query);
    let timeout = options.timeout()?;
    let force = options.force.unwrap_or(false);
    let job = blocking(move || {
        let fleet = state.fleet.clone();
        let catalog = state.catalog.clone();
        let plan = deploy::plan(&fleet, &catalog, &id, &image, force, timeout)?;
        let _one_at_a_time = DEPLOYS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = deploy_in_progress(&state, &plan.instance)? {
            return Err(ApiError::conflict(format!(
                "instance {} is being deployed to already (job {job})",
                plan.instance
            )));
        }
        let target = Some(plan.instance.to_string());
        let job = state.jobs.submit("deploy", target, move |ctx| {
            deploy::run(&fleet, &catalog, &plan, ctx)
        })?;
        Ok::<_, ApiError>(job)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// An upgrade: which builder, and what may differ from the instance's own.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The builder to build with
    pub builder_id: String,
    /// NaCl [default: the one of the image the instance runs]
    pub nacl_id: Option<String>,
    /// Service [default: the one the instance reports]
    pub service: Option<String>,
    /// Deploy even if the deploy check warns
    pub force: Option<bool>,
    /// Seconds for the instance to come back with the new image [default: 120]
    pub timeout: Option<u64>,
}

/// Rebuild an instance's image with a builder (its own uplink and tag,
/// its NaCl unless another is given), then live-update it: one job.
#[utoipa::path(post, path = "/v1/instances/{id}/upgrade", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    request_body = UpgradeRequest,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not docked, no known uplink, or a deploy to it runs"),
        (status = 422, body = ErrorBody)))]
async fn upgrade_instance(
    state: State,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpgradeRequest>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let timeout = DeployRequest {
        force: None,
        timeout: req.timeout,
    }
    .timeout()?;
    let force = req.force.unwrap_or(false);
    let job = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        let (status, uplink, tag, service, image) = state.fleet.with(&id, |l| {
            let f = IdentFields::of(l);
            (
                l.status,
                l.uplink_id.clone(),
                f.tag.map(str::to_string),
                f.service.map(str::to_string),
                l.image_id.clone(),
            )
        })?;
        if status != Status::Connected {
            return Err(deploy::DeployError::NotDocked(id.to_string(), status.as_str()).into());
        }
        let uplink = uplink.ok_or_else(|| {
            ApiError::conflict(format!(
                "instance {id} did not dock with a stored uplink's token"
            ))
        })?;
        let nacl = match req.nacl_id {
            Some(n) => n,
            None => image
                .and_then(|i| state.catalog.image(&i).ok())
                .and_then(|i| i.nacl_id)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "the NaCl of instance {id}'s image is not known: give naclId"
                    ))
                })?,
        };
        let service = req.service.or(service).ok_or_else(|| {
            ApiError::bad_request(format!("instance {id} reports no service: give service"))
        })?;
        let plan = state.builders.plan(crate::build::BuildRequest {
            service,
            builder: req.builder_id,
            nacl: crate::build::NaclInput::Stored(nacl),
            uplink: Some(uplink),
            tag,
            name: None,
        })?;
        let _one_at_a_time = DEPLOYS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = deploy_in_progress(&state, &id)? {
            return Err(ApiError::conflict(format!(
                "instance {id} is being deployed to already (job {job})"
            )));
        }
        let (builders, fleet, catalog) = (
            state.builders.clone(),
            state.fleet.clone(),
            state.catalog.clone(),
        );
        let instance = id.to_string();
        let job = state.jobs.submit_limited(
            "upgrade",
            Some(instance.clone()),
            Some(state.builders.build_slots()),
            move |ctx| {
                let built = builders.build(&plan, ctx).map_err(|e| e.to_string())?;
                let image = built.image.id.clone();
                let deploy = deploy::plan(&fleet, &catalog, &instance, &image, force, timeout)
                    .map_err(|e| e.to_string())?;
                let deployed = deploy::run(&fleet, &catalog, &deploy, ctx)?;
                let mut result = super::builders::build_result(built)?;
                result["deploy"] = deployed;
                Ok(result)
            },
        )?;
        Ok::<_, ApiError>(job)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hangar::frame::Transport;

    /// A fleet on a scratch catalog, with instances docked by hand.
    struct TestFleet {
        _dir: tempfile::TempDir,
        catalog: Arc<Catalog>,
        fleet: Fleet,
        tx: tokio::sync::mpsc::Sender<crate::hangar::fleet::Outgoing>,
        _rx: tokio::sync::mpsc::Receiver<crate::hangar::fleet::Outgoing>,
    }

    impl TestFleet {
        fn new() -> TestFleet {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
            let fleet = Fleet::load(catalog.clone(), Default::default()).unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            TestFleet {
                _dir: dir,
                catalog,
                fleet,
                tx,
                _rx: rx,
            }
        }

        fn dock(&self, id: &str, ident: &str) -> (InstanceId, u64) {
            let id = InstanceId::new(id).unwrap();
            self.fleet.connecting(&id, "default");
            let generation =
                self.fleet
                    .docked(&id, "127.0.0.1:1".parse().unwrap(), self.tx.clone());
            self.send(&id, Code::Ident, ident);
            (id, generation)
        }

        fn send(&self, id: &InstanceId, code: Code, payload: &str) {
            let payload = payload.as_bytes().to_vec();
            self.fleet.received(id, Transport { code, payload });
        }

        fn ids(
            &self,
            status: Option<Status>,
            panicked: Option<bool>,
            list: ListParams,
        ) -> Vec<String> {
            select(&self.fleet, &self.catalog, status, panicked, &list)
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect()
        }
    }

    fn search(q: &str) -> ListParams {
        ListParams {
            q: Some(q.into()),
            ..Default::default()
        }
    }

    fn sorted(sort: &str) -> ListParams {
        ListParams {
            sort: Some(sort.into()),
            ..Default::default()
        }
    }

    #[test]
    fn lists_search_filter_and_order_the_fleet() {
        let t = TestFleet::new();
        let (a, _) = t.dock(
            "aaaa",
            r#"{"version":"v0.14","service":"Starbase","net":[{"addr":"10.0.0.42"}]}"#,
        );
        t.fleet
            .update_names(&a, |_, d| (Some("Edge-1".into()), d))
            .unwrap();
        let (b, gb) = t.dock(
            "bbbb",
            r#"{"version":"v0.13","devices":["Network VirtioNet (V 0x1af4 / P 0x1000)"]}"#,
        );
        let image = "ff00".repeat(10);
        let (c, _) = t.dock(
            "cccc",
            &format!(r#"{{"version":"v0.15","binary":"{image}","tag":"blue"}}"#),
        );
        t.send(&c, Code::Panic, "PANIC");
        t.fleet.undocked(&b, gb, "closed");
        let all = ListParams::default();
        assert_eq!(t.ids(None, None, all), ["aaaa", "bbbb", "cccc"]);
        assert_eq!(t.ids(None, None, search("edge")), ["aaaa"]);
        assert_eq!(t.ids(None, None, search("STARBASE")), ["aaaa"]);
        assert_eq!(t.ids(None, None, search("0.0.42")), ["aaaa"]);
        assert_eq!(t.ids(None, None, search("virtionet")), ["bbbb"]);
        assert_eq!(t.ids(None, None, search("FF00F")), ["cccc"]);
        assert_eq!(t.ids(None, None, search("Blu")), ["cccc"]);
        assert_eq!(t.ids(None, None, search("bb")), ["bbbb"]);
        assert_eq!(t.ids(None, None, search("v0.1")).len(), 3);
        assert!(t.ids(None, None, search("nothing")).is_empty());
        assert!(t.ids(None, None, search("édge")).is_empty());
        assert_eq!(
            t.ids(Some(Status::Disconnected), None, sorted("id")),
            ["bbbb"]
        );
        assert_eq!(t.ids(None, Some(true), ListParams::default()), ["cccc"]);
        assert_eq!(
            t.ids(Some(Status::Connected), Some(false), search("v0")),
            ["aaaa"]
        );
        assert_eq!(
            t.ids(None, None, sorted("-version")),
            ["cccc", "aaaa", "bbbb"]
        );
        assert_eq!(t.ids(None, None, sorted("alias")), ["bbbb", "cccc", "aaaa"]);
        let page = ListParams {
            sort: Some("version".into()),
            offset: Some(1),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(t.ids(None, None, page), ["aaaa"]);
        for bad in [
            sorted("uptime"),
            ListParams {
                limit: Some(0),
                ..Default::default()
            },
        ] {
            let e = select(&t.fleet, &t.catalog, None, None, &bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        let listed = select(&t.fleet, &t.catalog, None, None, &search("cccc")).unwrap();
        let c = &listed[0];
        assert_eq!(
            (
                c.tag.as_deref(),
                c.image_id.as_deref(),
                c.status,
                c.panicked
            ),
            (
                Some("blue"),
                Some(image.as_str()),
                InstanceStatus::Connected,
                true
            )
        );
    }

    #[test]
    fn needles_ignore_case_and_fall_back_for_unicode() {
        let n = Needle::new("VirtIO");
        assert!(n.found_in("Network virtionet"));
        assert!(!n.found_in("virt io"));
        assert!(!n.found_in(""));
        let u = Needle::new("ÉDGE");
        assert!(u.found_in("rack édge 4"));
        assert!(Needle::new("").found_in("anything"));
    }

    #[test]
    fn a_fleet_of_twenty_thousand_lists_quickly() {
        let t = TestFleet::new();
        for n in 0..20_000u32 {
            let ident = format!(
                r#"{{"uuid":"x","version":"v0.14.1","service":"Starbase","arch":"x86_64","tag":"t{}","devices":["Network VirtioNet (V 0x1af4 / P 0x1000)","Block VirtioBlk"],"net":[{{"name":"eth0","addr":"10.{}.{}.{}"}}]}}"#,
                n % 7,
                n >> 16,
                (n >> 8) & 255,
                n & 255
            );
            t.dock(&format!("{:032x}", u128::from(n) * 0x9e37_79b9), &ident);
        }
        let timed = |list: ListParams| {
            let started = Instant::now();
            let found = select(&t.fleet, &t.catalog, None, None, &list).unwrap();
            (found, started.elapsed())
        };
        let (all, whole) = timed(ListParams::default());
        let json = serde_json::to_vec(&all).unwrap();
        let (page, paged) = timed(ListParams {
            sort: Some("-lastSeen".into()),
            limit: Some(50),
            ..Default::default()
        });
        let (hits, searched) = timed(ListParams {
            q: Some("10.0.1.2".into()),
            sort: Some("tag".into()),
            ..Default::default()
        });
        eprintln!(
            "20,000 instances: whole list {whole:?} (+ {} bytes of JSON), a page of 50 {paged:?}, a search {searched:?}",
            json.len()
        );
        assert_eq!(all.len(), 20_000);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(page.len(), 50);
        assert_eq!(hits.len(), 67, "10.0.1.2, 10.0.1.20..29, 10.0.1.200..255");
        assert!(hits.windows(2).all(|w| w[0].tag <= w[1].tag));
    }

    #[test]
    fn statuses_parse_or_are_refused() {
        assert_eq!(parse_status("unknown").unwrap(), Status::Unknown);
        let e = parse_status("up").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("connected, disconnected"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_summary_counts_each_status_and_panics() {
        let mut s = InstanceSummary::default();
        s.count(Status::Connected, false);
        s.count(Status::Connected, true);
        s.count(Status::Unknown, true);
        s.count(Status::Connecting, false);
        assert_eq!(
            s,
            InstanceSummary {
                connected: 2,
                disconnected: 0,
                connecting: 1,
                unknown: 1,
                panicked: 2,
                total: 4,
            }
        );
    }

    #[test]
    fn aliases_are_names_that_cannot_be_ids() {
        for good in [
            "edge",
            "edge-1.eu_west",
            "Z",
            "a".repeat(64).replace('a', "g").as_str(),
        ] {
            assert!(check_alias(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "dead-beef",
            "0123",
            "summary",
            "has space",
            "../x",
            "é",
            &"g".repeat(65),
        ] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
        assert!(check_description(&"x".repeat(1024)).is_ok());
        assert!(check_description("two\nlines\tand a tab").is_ok());
        assert!(check_description(&"x".repeat(1025)).is_err());
        assert!(check_description("bell\u{7}").is_err());
    }

    #[test]
    fn patches_keep_absent_fields_and_clear_null_ones() {
        let parse = |text: &str| serde_json::from_str::<InstancePatch>(text);
        let keep = (Some("edge".to_string()), Some("rack 4".to_string()));
        let p = parse("{}").unwrap();
        assert_eq!(p.apply(keep.0.clone(), keep.1.clone()), keep);
        let p = parse(r#"{"alias": null}"#).unwrap();
        assert_eq!(
            p.apply(keep.0.clone(), keep.1.clone()),
            (None, keep.1.clone())
        );
        let p = parse(r#"{"alias": "core", "description": ""}"#).unwrap();
        assert!(p.check().is_ok());
        assert_eq!(
            p.apply(keep.0.clone(), keep.1.clone()),
            (Some("core".into()), None)
        );
        assert!(
            parse(r#"{"alias": "x", "name": "y"}"#).is_err(),
            "unknown fields"
        );
        assert!(parse(r#"{"alias": 3}"#).is_err());
        let bad = parse(r#"{"alias": "beef"}"#).unwrap();
        assert_eq!(bad.check().unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn tails_count_lines_from_the_end() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(&log[tail_start(log, 1)..], b"three\n");
        assert_eq!(&log[tail_start(log, 2)..], b"two\nthree\n");
        assert_eq!(&log[tail_start(log, 9)..], log);
        assert_eq!(&log[tail_start(log, 0)..], b"");
        let partial = b"one\ntwo\nthr";
        assert_eq!(&partial[tail_start(partial, 1)..], b"thr");
        assert_eq!(tail_start(b"", 3), 0);
        assert_eq!(tail_start(b"\n\n", 1), 1);
    }

    #[test]
    fn deploy_options_come_from_the_body_over_the_query() {
        let mut headers = HeaderMap::new();
        let query = DeployRequest {
            force: Some(true),
            timeout: Some(30),
        };
        let none = deploy_body(&headers, b"").unwrap().over(query);
        assert_eq!(
            (none.force, none.timeout().unwrap()),
            (Some(true), Duration::from_secs(30))
        );
        assert_eq!(
            deploy_body(&headers, b"{}").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = deploy_body(&headers, br#"{"timeout": 5}"#).unwrap();
        assert_eq!(body.timeout().unwrap(), Duration::from_secs(5));
        assert_eq!(
            DeployRequest::default().timeout().unwrap(),
            Duration::from_secs(120)
        );
        assert!(deploy_body(&headers, br#"{"forse": true}"#).is_err());
        let zero = DeployRequest {
            timeout: Some(0),
            ..Default::default()
        };
        assert!(zero.timeout().is_err());
        let long = DeployRequest {
            timeout: Some(3601),
            ..Default::default()
        };
        assert!(long.timeout().is_err());
    }
}
