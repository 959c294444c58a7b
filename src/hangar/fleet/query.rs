//! Lists of the fleet: search (`q`), filters (status, panicked), order and
//! page, as a plain query the API fills from its query string. A list walks
//! the fleet once (20,000 instances and more), searching and ordering in
//! place, and copies out only the page it answers, as `InstanceView`s: a
//! copy of what is shown of an instance, taken under its lock.

use std::collections::{HashMap, HashSet};

use super::{Fleet, FleetError, IdentFields, Live, Status};
use crate::hangar::token::InstanceId;
use crate::model::instances::InstanceSummary;
use crate::store::catalog::{ImageRow, ListQuery};

/// Above this many distinct images on one page, one list of every image
/// is cheaper than a lookup per image.
const FEW_IMAGES: usize = 32;

/// Which instances a list wants, in which order, which page of them.
/// Bounds (the length of `q`, `limit`) are the caller's to check.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// A case-insensitive substring of the id, alias, description, tag,
    /// version, service, image id, addresses or devices; empty is none.
    pub q: Option<String>,
    pub status: Option<Status>,
    pub panicked: Option<bool>,
    /// Only those whose dock this host holds (or last held).
    pub host: Option<String>,
    pub sort: Sort,
    /// At most this many; all if none.
    pub limit: Option<u32>,
    pub offset: u32,
}

/// What a list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
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

/// An order and its direction (by id, ascending, unless asked otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub order: Order,
    pub desc: bool,
}

impl Sort {
    /// The field names a list can be ordered by (the API's words).
    pub const NAMES: [&'static str; 9] = {
        let mut names = [""; 9];
        let mut i = 0;
        while i < ORDERS.len() {
            names[i] = ORDERS[i].0;
            i += 1;
        }
        names
    };

    /// The order named `field`, if there is one.
    pub fn parse(field: &str, desc: bool) -> Option<Sort> {
        ORDERS
            .iter()
            .find(|(name, _)| *name == field)
            .map(|&(_, order)| Sort { order, desc })
    }
}

/// An instance's place in a list: only what it is ordered by, so that
/// only the page asked for is copied out in full.
struct Place {
    text: Option<String>,
    number: i64,
    id: InstanceId,
}

impl Order {
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

/// A `q` term, matched case-insensitively without an allocation per
/// field (a search looks at every instance of the fleet).
pub(crate) struct Needle {
    lower: String,
    ascii: bool,
}

impl Needle {
    pub(crate) fn new(q: &str) -> Needle {
        let lower = q.to_lowercase();
        Needle {
            ascii: lower.is_ascii(),
            lower,
        }
    }

    pub(crate) fn found_in(&self, text: &str) -> bool {
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

/// What is shown of an instance, copied out of the fleet under its lock
/// (times still numbers, for sorting), with the NaCl of its image when the
/// catalog knows it. A copy of live state, not a ZFS snapshot.
#[derive(Debug, Clone)]
pub struct InstanceView {
    pub id: String,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub status: Status,
    pub panicked: bool,
    pub tag: Option<String>,
    pub version: Option<String>,
    pub service: Option<String>,
    pub arch: Option<String>,
    pub image_id: Option<String>,
    /// The NaCl its image was built with; filled by the fleet's readers.
    pub nacl_id: Option<String>,
    pub uplink_id: Option<String>,
    pub uplink_url: Option<String>,
    pub addresses: Vec<String>,
    pub devices: Vec<String>,
    /// Unix seconds.
    pub first_seen: i64,
    pub last_seen: i64,
    pub remote: Option<String>,
    /// The host whose hangar holds (or last held) its dock.
    pub host: Option<String>,
}

impl InstanceView {
    /// The copy of `l` (no NaCl yet: that needs the catalog, outside the lock).
    pub fn of(id: &InstanceId, l: &Live) -> InstanceView {
        let f = IdentFields::of(l);
        let owned = |t: Option<&str>| t.map(str::to_string);
        InstanceView {
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
            nacl_id: None,
            uplink_id: l.uplink_id.clone(),
            uplink_url: l.uplink_url().map(str::to_string),
            addresses: f.addresses().map(str::to_string).collect(),
            devices: f.devices().map(str::to_string).collect(),
            first_seen: l.first_seen,
            last_seen: l.last_seen,
            remote: l.remote.map(|r| r.to_string()),
            host: l.host.as_deref().map(str::to_string),
        }
    }
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
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

impl Fleet {
    /// The instances `q` asks for: the fleet is searched and ordered in
    /// place, and only the page is copied out. Blocking (reads the
    /// catalog for NaCls).
    pub fn query(&self, q: &InstanceQuery) -> Result<Vec<InstanceView>, FleetError> {
        Ok(self.query_counted(q)?.0)
    }

    /// `query`, and how many instances matched before the page was cut.
    pub fn query_counted(
        &self,
        q: &InstanceQuery,
    ) -> Result<(Vec<InstanceView>, usize), FleetError> {
        let needle = q.q.as_deref().filter(|q| !q.is_empty()).map(Needle::new);
        let order = q.sort.order;
        let mut places = Vec::new();
        self.each(|id, l| {
            let wanted = q.status.is_none_or(|s| l.status == s)
                && q.panicked.is_none_or(|p| l.panicked == p)
                && q.host
                    .as_deref()
                    .is_none_or(|h| l.host.as_deref() == Some(h))
                && needle.as_ref().is_none_or(|n| n.found(id, l));
            if wanted {
                places.push(order.place(id, l));
            }
        });
        // The id breaks ties: the fleet is a hash map, the list has an order.
        places.sort_unstable_by(|a, b| (&a.text, a.number, &a.id).cmp(&(&b.text, b.number, &b.id)));
        if q.sort.desc {
            places.reverse();
        }
        let limit = q.limit.map_or(usize::MAX, |l| l as usize);
        // An instance deleted since it was placed is left out.
        let mut views: Vec<InstanceView> = places
            .iter()
            .skip(q.offset as usize)
            .take(limit)
            .filter_map(|p| self.with(&p.id, |l| InstanceView::of(&p.id, l)).ok())
            .collect();
        self.add_nacls(&mut views)?;
        Ok((views, places.len()))
    }

    /// The instances per status.
    pub fn summary(&self) -> InstanceSummary {
        let mut summary = InstanceSummary::default();
        self.each(|_, live| summary.count(live.status, live.panicked));
        summary
    }

    /// One instance's view. Blocking.
    pub fn view(&self, id: &InstanceId) -> Result<InstanceView, FleetError> {
        let mut view = self.with(id, |l| InstanceView::of(id, l))?;
        self.add_nacls(std::slice::from_mut(&mut view))?;
        Ok(view)
    }

    /// Fills in the NaCl of each catalog image that `views` run. Blocking.
    pub fn add_nacls(&self, views: &mut [InstanceView]) -> Result<(), FleetError> {
        let wanted: HashSet<&str> = views
            .iter()
            .filter_map(|s| s.image_id.as_deref())
            .filter(|id| is_sha1(id))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let rows: Vec<ImageRow> = self.catalog.with_store(|s| {
            if wanted.len() <= FEW_IMAGES {
                let mut rows = Vec::new();
                for id in &wanted {
                    rows.extend(s.find_images(id)?);
                }
                Ok(rows)
            } else {
                s.images(&ListQuery::default())
            }
        })?;
        let nacls: HashMap<String, String> = rows
            .into_iter()
            .filter(|r| wanted.contains(r.id.as_str()))
            .filter_map(|r| Some((r.id.into(), r.nacl_id?.into())))
            .collect();
        for view in views {
            view.nacl_id = view.image_id.as_ref().and_then(|i| nacls.get(i)).cloned();
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::catalog::Catalog;
    use crate::hangar::fleet::Outgoing;
    use crate::hangar::frame::{Code, Transport};

    /// A fleet on a scratch catalog, with instances docked by hand.
    pub(crate) struct TestFleet {
        _dir: tempfile::TempDir,
        pub(crate) fleet: Fleet,
        tx: tokio::sync::mpsc::Sender<Outgoing>,
        _rx: tokio::sync::mpsc::Receiver<Outgoing>,
    }

    impl TestFleet {
        pub(crate) fn new() -> TestFleet {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
            let fleet = Fleet::load(catalog, Default::default()).unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            TestFleet {
                _dir: dir,
                fleet,
                tx,
                _rx: rx,
            }
        }

        pub(crate) fn dock(&self, id: &str, ident: &str) -> (InstanceId, u64) {
            let id = InstanceId::new(id).unwrap();
            self.fleet.connecting(&id, "default");
            let generation =
                self.fleet
                    .docked(&id, "127.0.0.1:1".parse().unwrap(), self.tx.clone());
            self.send(&id, Code::Ident, ident);
            (id, generation)
        }

        pub(crate) fn send(&self, id: &InstanceId, code: Code, payload: &str) {
            let payload = payload.as_bytes().to_vec();
            self.fleet.received(id, Transport { code, payload });
        }

        fn ids(
            &self,
            status: Option<Status>,
            panicked: Option<bool>,
            q: InstanceQuery,
        ) -> Vec<String> {
            let q = InstanceQuery {
                status,
                panicked,
                ..q
            };
            self.fleet
                .query(&q)
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect()
        }
    }

    fn search(q: &str) -> InstanceQuery {
        InstanceQuery {
            q: Some(q.into()),
            ..Default::default()
        }
    }

    fn sorted(sort: &str) -> InstanceQuery {
        let (field, desc) = match sort.strip_prefix('-') {
            Some(field) => (field, true),
            None => (sort, false),
        };
        InstanceQuery {
            sort: Sort::parse(field, desc).unwrap(),
            ..Default::default()
        }
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
        let all = InstanceQuery::default();
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
        assert_eq!(t.ids(None, Some(true), InstanceQuery::default()), ["cccc"]);
        assert_eq!(
            t.ids(Some(Status::Connected), Some(false), search("v0")),
            ["aaaa"]
        );
        assert_eq!(
            t.ids(None, None, sorted("-version")),
            ["cccc", "aaaa", "bbbb"]
        );
        assert_eq!(t.ids(None, None, sorted("alias")), ["bbbb", "cccc", "aaaa"]);
        let page = InstanceQuery {
            offset: 1,
            limit: Some(1),
            ..sorted("version")
        };
        assert_eq!(t.ids(None, None, page), ["aaaa"]);
        assert_eq!(Sort::parse("uptime", false), None);
        let listed = t.fleet.query(&search("cccc")).unwrap();
        let c = &listed[0];
        assert_eq!(
            (
                c.tag.as_deref(),
                c.image_id.as_deref(),
                c.status,
                c.panicked
            ),
            (Some("blue"), Some(image.as_str()), Status::Connected, true)
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
        let timed = |q: InstanceQuery| {
            let started = Instant::now();
            let found = t.fleet.query(&q).unwrap();
            (found, started.elapsed())
        };
        let (all, whole) = timed(InstanceQuery::default());
        let (page, paged) = timed(InstanceQuery {
            limit: Some(50),
            ..sorted("-lastSeen")
        });
        let (hits, searched) = timed(InstanceQuery {
            q: Some("10.0.1.2".into()),
            ..sorted("tag")
        });
        eprintln!(
            "20,000 instances: whole list {whole:?}, a page of 50 {paged:?}, a search {searched:?}"
        );
        assert_eq!(all.len(), 20_000);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(page.len(), 50);
        assert_eq!(hits.len(), 67, "10.0.1.2, 10.0.1.20..29, 10.0.1.200..255");
        assert!(hits.windows(2).all(|w| w[0].tag <= w[1].tag));
    }
}
