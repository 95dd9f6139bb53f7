//! Cleanup: deletes files whose orders closed, through sWorker `storage/delete` (which also unpins in IPFS).
//!
//! Work comes from the `cleanups` table, written by the Indexer in the same transaction that closed the file, so a
//! wake-up lost in a crash loses nothing: the next interval finds the row. 404 counts as done; other failures are
//! retried with backoff; a file that was ordered again is never deleted.

use std::time::Duration;

use actix::prelude::*;

use super::puller::Abort;
use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::db::pins::RetryPolicy;
use crate::db::schema::pins as pins_t;
use crate::db::{cleanups, DbError, Pin, PinStatus};
use crate::sworker::DeleteOutcome;

/// Wakes cleanup: the indexer closed files.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FilesClosed {
    pub count: usize,
}

/// Run a pass now; answers what it did.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<PassReport, String>")]
pub struct RunNow;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub deleted: usize,
    pub not_found: usize,
    pub cancelled: usize,
    pub failed: usize,
    pub deferred: usize,
}

/// Turns closed files into freed disk: coordinator unMarkSeal, then sWorker `storage/delete`, with retries.
pub struct Cleanup {
    deps: Deps,
    peers: SharedPeers,
    running: bool,
    stopped: bool,
}

impl Cleanup {
    /// Builds the actor; its state is loaded from PostgreSQL when it starts.
    pub fn new(deps: Deps, peers: SharedPeers) -> Self {
        Cleanup {
            deps,
            peers,
            running: false,
            stopped: false,
        }
    }

    fn pass(&mut self, ctx: &mut Context<Self>) {
        if self.running || self.stopped {
            return;
        }
        self.running = true;
        let fut = pass(self.deps.clone(), self.peers.clone());
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.running = false;
            if let Err(e) = res {
                log::error!(target: "smanager::cleanup", "pass failed: {e}; restarting");
                ctx.stop();
            }
        }));
    }
}

impl Actor for Cleanup {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.running = false;
        let every = Duration::from_secs(self.deps.settings.cleanup.interval_secs);
        ctx.run_interval(every, |act, ctx| act.pass(ctx));
        // IPFS garbage collection frees what deleted files left behind (off when the interval is 0).
        let gc = self.deps.settings.ipfs.gc_interval_secs;
        if gc > 0 {
            ctx.run_interval(Duration::from_secs(gc), |act, ctx| {
                if act.stopped {
                    return;
                }
                let ipfs = act.deps.ipfs.clone();
                let fut = async move {
                    let started = std::time::Instant::now();
                    match ipfs.repo_gc(Duration::from_secs(6 * 3600)).await {
                        Ok(n) => log::info!(target: "smanager::cleanup", "IPFS repo/gc removed {n} block(s) in {:?}", started.elapsed()),
                        Err(e) => log::warn!(target: "smanager::cleanup", "IPFS repo/gc failed: {e}"),
                    }
                };
                ctx.spawn(fut.into_actor(act));
            });
        }
        self.pass(ctx);
    }
}

impl Supervised for Cleanup {
    fn restarting(&mut self, _: &mut Self::Context) {
        log::warn!(target: "smanager::cleanup", "restarting");
    }
}

async fn pass(deps: Deps, peers: SharedPeers) -> Result<PassReport, DbError> {
    let mut report = PassReport::default();
    // Housekeeping that keeps the status counts cheap to read (see `files::compact_counts`).
    let folded = deps.db.run(|c| crate::db::files::compact_counts(c)).await?;
    log::debug!(target: "smanager::cleanup", "folded {folded} file count row(s)");
    let limit = i64::from(deps.settings.cleanup.batch_size);
    let due = deps.db.run(move |c| cleanups::due(c, limit)).await?;
    let r = &deps.settings.retry;
    let policy = RetryPolicy {
        base_delay_secs: r.base_delay_secs,
        max_delay_secs: r.max_delay_secs,
        max_attempts: r.max_attempts,
    };
    for job in due {
        let cid = job.cid.clone();
        let (live, pin) = deps
            .db
            .run(move |c| {
                use diesel::prelude::*;
                let live = cleanups::file_is_live(c, &cid)?;
                let pin: Option<Pin> = pins_t::table
                    .filter(pins_t::cid.eq(&cid))
                    .filter(pins_t::status.eq_any(PinStatus::LIVE.to_vec()))
                    .select(Pin::as_select())
                    .first(c)
                    .optional()?;
                Ok((live, pin))
            })
            .await?;
        if live {
            deps.db
                .run(move |c| cleanups::cancel(c, job.id, "cancelled: file has a live order"))
                .await?;
            report.cancelled += 1;
            crate::metrics::METRICS
                .cleanups_total
                .with_label_values(&["cancelled"])
                .inc();
            continue;
        }
        if let Some(pin) = pin {
            // Stop pulling a file whose order closed before deleting it.
            if let Some(p) = peers.get() {
                let _ = p
                    .puller
                    .send(Abort {
                        pin_id: pin.id,
                        reason: "order closed".into(),
                    })
                    .await;
            }
            let id = job.id;
            deps.db
                .run(move |c| cleanups::finish_err(c, id, "waiting for a live pin to stop", &policy))
                .await?;
            report.deferred += 1;
            continue;
        }
        // The chain is the truth: before deleting, re-read the file at the head. Still stored and unexpired means
        // the close was missed or misread; deleting would drop a live file.
        match alive_on_chain(&deps, &job.cid).await {
            Ok(false) => {}
            Ok(true) => {
                let (id, cid) = (job.id, job.cid.clone());
                deps.db.run(move |c| cleanups::reopen_alive(c, id, &cid)).await?;
                log::warn!(target: "smanager::cleanup", cid = job.cid.as_str(); "not deleted: the chain still stores it unexpired; re-opened");
                report.cancelled += 1;
                crate::metrics::METRICS
                    .cleanups_total
                    .with_label_values(&["cancelled"])
                    .inc();
                continue;
            }
            Err(e) => {
                log::warn!(target: "smanager::cleanup", cid = job.cid.as_str(); "deferred: cannot check the file on chain: {e}");
                report.deferred += 1;
                continue;
            }
        }
        // Telling the coordinator is a courtesy: a coordinator that fails must not keep closed files on disk.
        if let Some(sc) = &deps.settings.seal_coordinator {
            if let Err(e) = crate::coordinator::SealCoordinator::new(sc).unmark_seal(&job.cid).await {
                crate::coordinator::record_failure("unmark_seal", &e);
            }
        }
        match deps.sworker.delete(&job.cid).await {
            Ok(outcome) => {
                let note = (outcome == DeleteOutcome::NotFound).then_some("sWorker did not hold it (404)");
                let id = job.id;
                deps.db.run(move |c| cleanups::finish_ok(c, id, note)).await?;
                log::info!(target: "smanager::cleanup", cid = job.cid.as_str(); "deleted ({outcome:?})");
                let result = match outcome {
                    DeleteOutcome::Deleted => {
                        report.deleted += 1;
                        "deleted"
                    }
                    DeleteOutcome::NotFound => {
                        report.not_found += 1;
                        "not_found"
                    }
                };
                crate::metrics::METRICS
                    .cleanups_total
                    .with_label_values(&[result])
                    .inc();
            }
            Err(e) => {
                let id = job.id;
                let msg = e.to_string();
                let status = deps.db.run(move |c| cleanups::finish_err(c, id, &msg, &policy)).await?;
                log::warn!(target: "smanager::cleanup", cid = job.cid.as_str(); "delete failed: {e} → {status}");
                report.failed += 1;
                crate::metrics::METRICS
                    .cleanups_total
                    .with_label_values(&["failed"])
                    .inc();
            }
        }
    }
    Ok(report)
}

/// Whether the chain stores `cid` unexpired at the finalized head (FilesV2, or the V1 map on old runtimes).
async fn alive_on_chain(deps: &Deps, cid: &str) -> Result<bool, crate::chain::ChainError> {
    use crate::chain::{decode_file_info_as, keys, FileInfoLayout};
    let head = deps.chain.finalized_head().await?;
    let values = deps
        .chain
        .values(vec![keys::files_v2(cid.as_bytes()), keys::files_v1(cid.as_bytes())])
        .await?;
    let mut found = None;
    if let Some(Some(v2)) = values.first() {
        found = Some(decode_file_info_as(v2, FileInfoLayout::V2));
    } else if let Some(Some(v1)) = values.get(1) {
        let spec = deps.chain.spec_version().await?;
        found = Some(decode_file_info_as(v1, FileInfoLayout::of(true, spec)));
    }
    Ok(match found {
        None => false,
        Some(Ok((_, expired_at, _, _))) => expired_at == 0 || u64::from(expired_at) > head,
        // An entry we cannot read still means the chain keeps the file: do not delete it.
        Some(Err(e)) => {
            log::warn!(target: "smanager::cleanup", cid = cid; "FileInfo on chain does not decode ({e}); treating it as alive");
            true
        }
    })
}

impl Handler<FilesClosed> for Cleanup {
    type Result = ();
    fn handle(&mut self, _: FilesClosed, ctx: &mut Self::Context) {
        self.pass(ctx);
    }
}

impl Handler<RunNow> for Cleanup {
    type Result = ResponseActFuture<Self, Result<PassReport, String>>;
    fn handle(&mut self, _: RunNow, _: &mut Self::Context) -> Self::Result {
        let fut = pass(self.deps.clone(), self.peers.clone());
        Box::pin(fut.into_actor(self).map(|res, _, _| res.map_err(|e| e.to_string())))
    }
}

impl Handler<RestartActor> for Cleanup {
    type Result = ();
    fn handle(&mut self, _: RestartActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Shutdown> for Cleanup {
    type Result = ();
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) {
        self.stopped = true;
    }
}
