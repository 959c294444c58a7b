//! What the MDS counts of its requests, for the server's `/metrics`:
//! answers by endpoint and status, refusals by reason. The counts stay in
//! the MDS process and leave it only over the control socket (`figures`),
//! so no metrics port is opened on the pod network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::control::{Answered, Figures, Refused};

/// Why a request was refused before any endpoint was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source is not a pod's address.
    Address,
    /// No token, or not that pod's.
    Token,
}

impl Refusal {
    const ALL: [Refusal; 2] = [Refusal::Address, Refusal::Token];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Address => "address",
            Refusal::Token => "token",
        }
    }
}

/// The endpoint label of a metadata path (after `acMetadata/v1/`): a
/// fixed set, so that a caller's path never becomes a label.
pub fn endpoint_label(parts: &[&str]) -> &'static str {
    match parts {
        ["pod", "uuid"] => "uuid",
        ["pod", "manifest"] => "manifest",
        ["pod", "annotations"] => "annotations",
        ["pod", "hmac", "sign"] => "sign",
        ["pod", "hmac", "verify"] => "verify",
        ["apps", ..] => "apps",
        _ => "other",
    }
}

#[derive(Default)]
pub struct Counts {
    /// Endpoint labels and statuses are few: a map under a lock taken once
    /// per request is cheap next to the request.
    answered: Mutex<BTreeMap<(&'static str, u16), u64>>,
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl Counts {
    pub fn answered(&self, endpoint: &'static str, status: u16) {
        if let Ok(mut m) = self.answered.lock() {
            *m.entry((endpoint, status)).or_default() += 1;
        }
    }

    pub fn refused(&self, why: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[i].fetch_add(1, Relaxed);
    }

    pub fn read(&self) -> Figures {
        let answered = self
            .answered
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((endpoint, code), count)| Answered {
                        endpoint: endpoint.to_string(),
                        code: *code,
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let refused = Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(why, n)| Refused {
                reason: why.as_str().to_string(),
                count: n.load(Relaxed),
            })
            .collect();
        Figures { answered, refused }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_by_endpoint_status_and_reason() {
        let c = Counts::default();
        c.answered("sign", 200);
        c.answered("sign", 200);
        c.answered("verify", 403);
        c.refused(Refusal::Token);
        let f = c.read();
        assert_eq!(
            f.answered
                .iter()
                .map(|a| (a.endpoint.as_str(), a.code, a.count))
                .collect::<Vec<_>>(),
            vec![("sign", 200, 2), ("verify", 403, 1)]
        );
        assert_eq!(
            f.refused
                .iter()
                .map(|r| (r.reason.as_str(), r.count))
                .collect::<Vec<_>>(),
            vec![("address", 0), ("token", 1)]
        );
    }

    #[test]
    fn caller_paths_never_become_labels() {
        assert_eq!(endpoint_label(&["pod", "uuid"]), "uuid");
        assert_eq!(endpoint_label(&["apps", "x\"y", "image", "id"]), "apps");
        assert_eq!(endpoint_label(&["evil\n# TYPE"]), "other");
    }
}
