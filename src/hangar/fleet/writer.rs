//! The fleet's store writer: one thread that applies what must survive a
//! restart (docks, IDENT, UPLINK echoes, panics, images, deletes) in
//! batched transactions, so that no session ever waits for the store and a
//! docking storm of thousands of instances is a few dozen commits. Readers
//! that need the store to be current wait for a barrier first.

use std::sync::{mpsc, Arc, Mutex};

use super::spread::DockClocks;
use super::FleetError;
use crate::catalog::Catalog;
use crate::hangar::token::InstanceId;
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
    pub(super) fn spawn(
        catalog: Arc<Catalog>,
        docks: Arc<DockClocks>,
    ) -> Result<Writer, FleetError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("hangar-store".into())
            .spawn(move || run(catalog, docks, rx))
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

fn run(catalog: Arc<Catalog>, docks: Arc<DockClocks>, rx: mpsc::Receiver<WriterMsg>) {
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
            match catalog.with_store(|s| s.apply_instance_writes(&writes)) {
                Ok(clock) => committed(&docks, &writes, clock),
                Err(e) => {
                    // One bad write (a panic of an instance deleted meanwhile)
                    // must not lose the others: apply them one by one.
                    tracing::debug!("hangar batch failed ({e}); writing one by one");
                    for w in &writes {
                        let one = std::slice::from_ref(w);
                        match catalog.with_store(|s| s.apply_instance_writes(one)) {
                            Ok(clock) => committed(&docks, one, clock),
                            Err(e) => tracing::warn!("hangar: dropped a store write: {e}"),
                        }
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

/// Notes the clock number of each dock this host's writes committed.
fn committed(docks: &DockClocks, writes: &[InstanceWrite], clock: i64) {
    for w in writes {
        if let InstanceWrite::Docked {
            id, host: Some(_), ..
        } = w
        {
            if let Ok(id) = InstanceId::new(id) {
                docks.committed(id, clock);
            }
        }
    }
}
