//! Indexer: follows finalized blocks from its persisted cursor and turns them into file rows.
//!
//! The cursor is the last block whose rows are committed, moved in the same transaction as those rows, so a crash
//! or a restart resumes exactly after it: no block is skipped, none is applied twice. With no cursor yet it starts at
//! the current finalized head (the FilesV2 scanner covers the past).

use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;

use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::db::{files, state, DbError};

/// Blocks fetched ahead of the one being applied during a catch-up.
pub const PREFETCH_BLOCKS: usize = 16;

/// Fetched blocks waiting to be written, at most.
const FETCH_AHEAD: usize = 1024;

/// Most blocks written in one transaction: what had arrived while the previous write ran, during a catch-up. Large
/// writes cost PostgreSQL less per order (fewer statements, index inserts of one CID-sorted set), measured about 8 %
/// of its CPU from 256 to 1,024; memory stays bounded by it (about 20,000 orders at Crust's busiest).
pub const APPLY_BLOCKS: usize = 1024;

/// Blocks a catch-up waits to gather before a write (unless its pass ends sooner), at most [`CATCH_UP_LINGER`].
pub const CATCH_UP_RUN: usize = 256;

/// Longest wait for [`CATCH_UP_RUN`] blocks: a slow node still sees its blocks written promptly.
const CATCH_UP_LINGER: Duration = Duration::from_millis(100);

/// Attempts before an undecodable block is recorded and passed.
const DECODE_ATTEMPTS: u32 = 3;

/// Wakes the picker: new orders are in the database.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FilesIndexed {
    pub count: usize,
}

/// Asks where the indexer stands.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "IndexerProgress")]
pub struct GetProgress;

/// The indexer's position, as loaded from and written to PostgreSQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexerProgress {
    /// Next block to index (`None` until the cursor is loaded or the first head is known).
    pub next_block: Option<u64>,
    /// Times the actor (re)started.
    pub starts: u32,
}

/// Follows finalized blocks from the persisted cursor and applies each block's events in one transaction.
pub struct Indexer {
    deps: Deps,
    peers: SharedPeers,
    progress: std::rc::Rc<std::cell::Cell<IndexerProgress>>,
    follow: Option<SpawnHandle>,
    scan: Option<SpawnHandle>,
}

impl Indexer {
    /// Builds the actor; the cursor is read from PostgreSQL when it starts.
    pub fn new(deps: Deps, peers: SharedPeers) -> Self {
        Indexer {
            deps,
            peers,
            progress: Default::default(),
            follow: None,
            scan: None,
        }
    }
}

impl Actor for Indexer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let mut p = self.progress.get();
        p.starts += 1;
        p.next_block = None;
        self.progress.set(p);
        self.refresh_group(ctx);
        let every = Duration::from_secs(self.deps.settings.chain.group_refresh_secs);
        ctx.run_interval(every, |act, ctx| act.refresh_group(ctx));
        let db = self.deps.db.clone();
        let load = async move { db.run(|c| state::cursor(c, state::INDEXER_CURSOR)).await };
        ctx.spawn(load.into_actor(self).map(|res, act, ctx| match res {
            Ok(cursor) => {
                let next = cursor
                    .and_then(|c| c.block_number)
                    .and_then(|n| u64::try_from(n).ok())
                    .map(|n| n + 1);
                let mut p = act.progress.get();
                p.next_block = next;
                act.progress.set(p);
                log::info!(target: "smanager::indexer", "started; next block {}", next.map_or("= finalized head".into(), |n| n.to_string()));
                let fut = follow(act.deps.clone(), act.peers.clone(), act.progress.clone());
                act.follow = Some(ctx.spawn(fut.into_actor(act).map(|res, _act, ctx| {
                    if let Err(e) = res {
                        log::error!(target: "smanager::indexer", "stopping for a restart: {e}");
                        ctx.stop();
                    }
                })));
                let scan = super::scanner::run(act.deps.clone(), act.peers.clone());
                act.scan = Some(ctx.spawn(scan.into_actor(act).map(|res, _act, ctx| {
                    if let Err(e) = res {
                        log::error!(target: "smanager::scanner", "stopping the indexer for a restart: {e}");
                        ctx.stop();
                    }
                })));
            }
            Err(e) => {
                log::error!(target: "smanager::indexer", "cannot load cursor: {e}; restarting in 2 s");
                ctx.run_later(Duration::from_secs(2), |_, ctx| ctx.stop());
            }
        }));
    }
}

impl Indexer {
    /// Reads this node's group from the chain and stores it for the picker.
    fn refresh_group(&mut self, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        let fut = async move {
            let account = &deps.settings.chain.account;
            let Ok((_, me)) = crate::chain::ss58::decode(account) else {
                return Ok(());
            };
            let view = match deps.chain.group(me).await {
                Ok(v) => v,
                Err(e) => {
                    log::debug!(target: "smanager::indexer", "group refresh: {e}");
                    return Ok(());
                }
            };
            if view.account_is_owner {
                log::error!(target: "smanager::indexer", "configuration error: chain.account {account} is a group owner; owners cannot store files — configure the member account");
            }
            let to_ss58 = |id: &[u8; 32]| crate::chain::ss58::encode(crate::chain::ss58::CRUST_PREFIX, id);
            // Live nodes: work reports of the last half slot or newer (the TypeScript manager's rule).
            match live_nodes(&deps).await {
                Ok(n) => {
                    deps.db.run(move |c| state::kv_set(c, state::KV_NODE_COUNT, &n)).await?;
                }
                Err(e) => log::debug!(target: "smanager::indexer", "node count: {e}"),
            }
            let info = state::GroupInfo {
                owner: view.owner.as_ref().map(to_ss58),
                node_index: view
                    .members
                    .iter()
                    .position(|m| *m == me)
                    .and_then(|i| u32::try_from(i).ok()),
                members: view.members.iter().map(to_ss58).collect(),
                refreshed_at: Some(chrono::Utc::now()),
            };
            deps.db.run(move |c| state::kv_set(c, state::KV_GROUP, &info)).await
        };
        ctx.spawn(fut.into_actor(self).map(|res: Result<(), DbError>, _, ctx| {
            if let Err(e) = res {
                log::error!(target: "smanager::indexer", "cannot store group info: {e}; restarting");
                ctx.stop();
            }
        }));
    }
}

/// Counts `Swork.WorkReports` with `report_slot >= CurrentReportSlot - 300`.
async fn live_nodes(deps: &Deps) -> Result<u64, crate::chain::ChainError> {
    use crate::chain::keys;
    let current = deps
        .chain
        .values(vec![keys::current_report_slot()])
        .await?
        .into_iter()
        .next()
        .flatten()
        .and_then(|v| crate::chain::decode_report_slot(&v).ok())
        .unwrap_or(0);
    let floor = current.saturating_sub(300);
    let mut start = None;
    let mut live = 0u64;
    loop {
        let page = deps
            .chain
            .keys_paged(keys::work_reports_prefix(), 1000, start.clone())
            .await?;
        if page.is_empty() {
            break;
        }
        for chunk in page.chunks(200) {
            for v in deps.chain.values(chunk.to_vec()).await?.into_iter().flatten() {
                if crate::chain::decode_report_slot(&v).is_ok_and(|slot| slot >= floor) {
                    live += 1;
                }
            }
        }
        let full = page.len() == 1000;
        start = page.last().cloned();
        if !full {
            break;
        }
    }
    Ok(live)
}

impl Supervised for Indexer {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        log::warn!(target: "smanager::indexer", "restarting from the persisted cursor");
        self.follow = None;
        self.scan = None;
    }
}

/// No new finalized block for `chain.finalizedTimeoutSecs`: the restart policy brings the process back with a fresh
/// connection (the TypeScript manager's rule).
fn exit_stalled(watchdog: Duration) -> ! {
    log::error!(target: "smanager::indexer", "no new finalized block for {} s: exiting so the service restarts", watchdog.as_secs());
    std::process::exit(3);
}

/// Catches up every finalized block after the cursor, then keeps following. Chain errors are retried with backoff
/// (the block is not skipped); a database error ends the loop so the actor restarts from the cursor.
async fn follow(
    deps: Deps,
    peers: SharedPeers,
    progress: std::rc::Rc<std::cell::Cell<IndexerProgress>>,
) -> Result<(), DbError> {
    let cfg = &deps.settings.chain;
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    let min_backoff = Duration::from_secs(cfg.reconnect_min_secs);
    let max_backoff = Duration::from_secs(cfg.reconnect_max_secs);
    let mut backoff = min_backoff;
    let mut last_head = None;
    let mut last_new_head = std::time::Instant::now();
    let watchdog = Duration::from_secs(cfg.finalized_timeout_secs);
    let sync_limit = Duration::from_secs(cfg.sync_wait_secs);
    let mut synced = false;
    let mut syncing_since: Option<std::time::Instant> = None;
    let mut decode_failures = 0u32;
    let mut heads = None;
    let mut resubscribe_at = std::time::Instant::now();
    loop {
        if !synced {
            match deps.chain.is_syncing().await {
                Ok(false) => {
                    synced = true;
                    if syncing_since.take().is_some() {
                        log::info!(target: "smanager::indexer", "the node finished syncing; indexing");
                        deps.db
                            .run(|c| state::kv_set(c, state::KV_NODE_SYNCING, &None::<chrono::DateTime<chrono::Utc>>))
                            .await?;
                    }
                }
                Ok(true) => {
                    // Waiting for a syncing node is not a stalled chain: the watchdog clock restarts after each wait.
                    let since = match syncing_since {
                        Some(s) => s,
                        None => {
                            let now = chrono::Utc::now();
                            deps.db
                                .run(move |c| state::kv_set(c, state::KV_NODE_SYNCING, &Some(now)))
                                .await?;
                            *syncing_since.insert(std::time::Instant::now())
                        }
                    };
                    if since.elapsed() > sync_limit {
                        log::error!(target: "smanager::indexer", "the node has been syncing for {} s (chain.syncWaitSecs): exiting so the service restarts", sync_limit.as_secs());
                        std::process::exit(3);
                    }
                    log::info!(target: "smanager::indexer", "the node is still syncing; waiting before indexing");
                    actix_rt::time::sleep(Duration::from_secs(cfg.reconnect_max_secs.min(30))).await;
                    last_new_head = std::time::Instant::now();
                    continue;
                }
                Err(e) => {
                    if last_new_head.elapsed() > watchdog {
                        exit_stalled(watchdog);
                    }
                    log::warn!(target: "smanager::indexer", "system_health unavailable: {e}; retrying in {backoff:?}");
                    actix_rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                    continue;
                }
            }
        }
        // Time spent waiting for a syncing node or catching up does not count (both reset the clock).
        if last_new_head.elapsed() > watchdog {
            exit_stalled(watchdog);
        }
        let head = match deps.chain.finalized_head().await {
            Ok(h) => h,
            Err(e) => {
                synced = false;
                log::warn!(target: "smanager::indexer", "finalized head unavailable: {e}; retrying in {backoff:?}");
                actix_rt::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
                continue;
            }
        };
        if last_head != Some(head) {
            let f = state::Finalized {
                number: i64::try_from(head).unwrap_or(i64::MAX),
                seen_at: chrono::Utc::now(),
            };
            deps.db.run(move |c| state::kv_set(c, state::KV_FINALIZED, &f)).await?;
            last_head = Some(head);
            last_new_head = std::time::Instant::now();
        }
        let mut next = progress.get().next_block.unwrap_or(head);
        if head > next + 1 {
            // A catch-up: with every upgrade in the range pinned to its block (a few questions), the blocks are
            // decoded without asking the node for each one's runtime version.
            if let Err(e) = deps.chain.learn_runtime_versions(next, head).await {
                log::debug!(target: "smanager::indexer", "runtime versions of blocks {next}..={head} unknown ({e}); asking per block");
            }
        }
        // Blocks are fetched ahead (in parallel, by a task that keeps fetching while a write runs) and applied
        // strictly in order; what has arrived while the previous run was being written is applied together, in one
        // transaction.
        let (tx, mut rx) = tokio::sync::mpsc::channel(FETCH_AHEAD);
        let chain = deps.chain.clone();
        let fetcher = AbortOnDrop(actix_rt::spawn(async move {
            let mut blocks = futures_util::stream::iter(next..=head)
                .map(move |n| {
                    let chain = chain.clone();
                    async move { chain.block(n).await }
                })
                .buffered(PREFETCH_BLOCKS);
            while let Some(b) = blocks.next().await {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
        }));
        let mut chunk = Vec::with_capacity(APPLY_BLOCKS);
        'fetching: while rx.recv_many(&mut chunk, APPLY_BLOCKS).await > 0 {
            // Mid catch-up, a short wait for a fuller run: each transaction has a fixed cost (statements, triggers,
            // commit) that small runs pay over and over while the fetcher, which keeps going meanwhile, is the
            // bottleneck. A live block (the last of its pass) is written at once.
            let lingering_until = std::time::Instant::now() + CATCH_UP_LINGER;
            while chunk.len() < CATCH_UP_RUN && (head + 1).saturating_sub(next) > chunk.len() as u64 {
                let want = APPLY_BLOCKS - chunk.len();
                match tokio::time::timeout_at(lingering_until.into(), rx.recv_many(&mut chunk, want)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            let mut ready = Vec::with_capacity(chunk.len());
            // The end of the chunk (`None`) writes what is ready, like an error does for the blocks before it.
            for fetched in chunk.drain(..).map(Some).chain(std::iter::once(None)) {
                let failed = match fetched {
                    Some(Ok(b)) => {
                        decode_failures = 0;
                        ready.push(b);
                        continue;
                    }
                    Some(Err(e)) => Some(e),
                    None => None,
                };
                if let Some(n) = apply_run(&deps, &peers, std::mem::take(&mut ready)).await? {
                    next = n;
                    backoff = min_backoff;
                    // Catching up is progress: time spent on it never counts as "no new finalized block".
                    last_new_head = std::time::Instant::now();
                    set_next(&progress, next);
                }
                match failed {
                    None => {}
                    Some(crate::chain::ChainError::Decode { number, reason })
                        if decode_failures + 1 >= DECODE_ATTEMPTS =>
                    {
                        // Recorded and passed, never silently skipped: operators see it in the log, the metrics and
                        // `kv_state.undecodable_blocks`.
                        log::error!(target: "smanager::indexer", "block {number} cannot be decoded after {DECODE_ATTEMPTS} attempts, recording it and moving on: {reason}");
                        crate::metrics::METRICS.undecodable_blocks_total.inc();
                        deps.db
                            .run(move |c| files::record_undecodable_block(c, number, "", &reason))
                            .await?;
                        decode_failures = 0;
                        next = number + 1;
                        set_next(&progress, next);
                    }
                    Some(e) => {
                        if matches!(e, crate::chain::ChainError::Decode { .. }) {
                            decode_failures += 1;
                        }
                        log::warn!(target: "smanager::indexer", "block {next}: {e}; retrying in {backoff:?}");
                        actix_rt::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(max_backoff);
                        break 'fetching;
                    }
                }
            }
        }
        // After an error the blocks fetched ahead are dropped; the next pass starts again at `next`.
        drop(fetcher);
        if progress.get().next_block.is_none() {
            set_next(&progress, next);
        }
        wait_for_head(&deps, &mut heads, &mut resubscribe_at, poll).await;
    }
}

/// The fetch task of one pass: stopped with the pass, also when the actor stops or restarts mid-catch-up.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn set_next(progress: &std::cell::Cell<IndexerProgress>, next: u64) {
    let mut p = progress.get();
    p.next_block = Some(next);
    progress.set(p);
}

/// Writes consecutive fetched blocks in one transaction and tells the picker and cleanup what changed. Returns the
/// block to follow next, or `None` when there was nothing to write.
async fn apply_run(
    deps: &Deps,
    peers: &SharedPeers,
    blocks: Vec<crate::chain::IndexedBlock>,
) -> Result<Option<u64>, DbError> {
    let Some(last) = blocks.last().map(|b| b.number) else {
        return Ok(None);
    };
    let numbers: Vec<u64> = blocks.iter().map(|b| b.number).collect();
    let started = std::time::Instant::now();
    let outcomes = deps.db.run(move |c| files::apply_blocks(c, &blocks)).await?;
    crate::metrics::METRICS
        .indexer_write_blocks
        .observe(numbers.len() as f64);
    crate::metrics::METRICS
        .indexer_write_seconds
        .observe(started.elapsed().as_secs_f64());
    log::debug!(target: "smanager::indexer", "{} block(s) up to {last} written in {:?}", numbers.len(), started.elapsed());
    let (mut ordered, mut closed) = (0, 0);
    for (number, outcome) in numbers.iter().zip(&outcomes) {
        ordered += outcome.ordered;
        closed += outcome.closed;
        if outcome.invalid > 0 {
            log::warn!(target: "smanager::indexer", "block {number}: {} invalid file record(s) stored as `invalid`", outcome.invalid);
        }
    }
    crate::metrics::METRICS.indexed_orders_total.inc_by(ordered as u64);
    if let Some(peers) = peers.get() {
        if ordered > 0 {
            peers.picker.do_send(FilesIndexed { count: ordered });
        }
        if closed > 0 {
            peers.cleanup.do_send(super::cleanup::FilesClosed { count: closed });
        }
    }
    Ok(Some(last + 1))
}

/// Waits for the next finalized head: woken at once by the subscription when there is one, else (and at the latest)
/// after the poll interval. A dropped or refused subscription falls back to polling and is tried again every 30 s.
async fn wait_for_head(
    deps: &Deps,
    heads: &mut Option<futures_util::stream::LocalBoxStream<'static, u64>>,
    resubscribe_at: &mut std::time::Instant,
    poll: Duration,
) {
    if heads.is_none() && std::time::Instant::now() >= *resubscribe_at {
        match deps.chain.subscribe_finalized().await {
            Ok(s) => {
                log::debug!(target: "smanager::indexer", "following finalized heads by subscription");
                *heads = Some(s);
            }
            Err(e) => {
                log::debug!(target: "smanager::indexer", "polling finalized heads every {poll:?}: {e}");
                *resubscribe_at = std::time::Instant::now() + Duration::from_secs(30);
            }
        }
    }
    match heads.as_mut() {
        Some(s) => match actix_rt::time::timeout(poll, s.next()).await {
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => {
                log::info!(target: "smanager::indexer", "finalized-head subscription ended; polling until it is back");
                *heads = None;
                *resubscribe_at = std::time::Instant::now() + Duration::from_secs(30);
            }
        },
        None => actix_rt::time::sleep(poll).await,
    }
}

impl Handler<GetProgress> for Indexer {
    type Result = MessageResult<GetProgress>;
    fn handle(&mut self, _: GetProgress, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.progress.get())
    }
}

impl Handler<RestartActor> for Indexer {
    type Result = ();
    fn handle(&mut self, _: RestartActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Shutdown> for Indexer {
    type Result = ();
    /// Stops following; a block being written either commits or not, atomically, in its own transaction.
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        for h in [self.follow.take(), self.scan.take()].into_iter().flatten() {
            ctx.cancel_future(h);
        }
    }
}
