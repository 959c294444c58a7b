//! The fleet's store writer: one thread that applies what must survive a
//! restart (docks, IDENT, UPLINK echoes, panics, images, deletes) in
//! batched transactions, so that no session ever waits for the store and a
//! docking storm of thousands of instances is a few dozen commits. Readers
//! that need the store to be current wait for a barrier first.

use std::sync::{mpsc, Arc, Mutex};

use super::FleetError;
use crate::catalog::Catalog;
use crate::store::instances::InstanceWrite;

/// A message to the store writer thread (not a job: jobs are long operations).
enum WriterMsg {
    Write(InstanceWrite),
    /// Answered once every write queued before it is committed.
    Barrier(mpsc::Sender<()>),
}

/// Most writes per transaction.
const BATCH: usize = 1024;

/// The sending end of the writer thread.
pub(super) struct Writer {
    tx: Mutex<mpsc::Sender<WriterMsg>>,
}

impl Writer {
    /// Starts the writer thread; it ends when the fleet (its sender) goes.
    pub(super) fn spawn(catalog: Arc<Catalog>) -> Result<Writer, FleetError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("hangar-store".into())
            .spawn(move || run(catalog, rx))
            .map_err(|e| FleetError::Spawn(e.to_string()))?;
        Ok(Writer { tx: Mutex::new(tx) })
    }

    /// Queues a write; never blocks.
    pub(super) fn write(&self, w: InstanceWrite) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(WriterMsg::Write(w)).is_err() {
            tracing::error!("hangar: the store writer has stopped; a write is lost");
        }
    }

    /// Waits until every write queued so far is committed. Blocking.
    pub(super) fn sync(&self) -> Result<(), FleetError> {
        let (done, wait) = mpsc::channel();
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(WriterMsg::Barrier(done))
            .map_err(|_| FleetError::WriterGone)?;
        wait.recv().map_err(|_| FleetError::WriterGone)
    }
}

fn run(catalog: Arc<Catalog>, rx: mpsc::Receiver<WriterMsg>) {
    let mut writes = Vec::with_capacity(BATCH);
    let mut barriers = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Write(w) => writes.push(w),
                WriterMsg::Barrier(done) => barriers.push(done),
            }
            if writes.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            crate::metrics::figures().hangar.batch(writes.len());
            let batch = catalog.with_store(|s| s.apply_instance_writes(&writes));
            if let Err(e) = batch {
                // One bad write (a panic of an instance deleted meanwhile)
                // must not lose the others: apply them one by one.
                tracing::debug!("hangar batch failed ({e}); writing one by one");
                for w in &writes {
                    if let Err(e) =
                        catalog.with_store(|s| s.apply_instance_writes(std::slice::from_ref(w)))
                    {
                        tracing::warn!("hangar: dropped a store write: {e}");
                    }
                }
            }
            writes.clear();
        }
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
}
