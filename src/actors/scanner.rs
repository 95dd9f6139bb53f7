//! The FilesV2 scanner, run by the [`Indexer`](super::Indexer) actor: a full scan of `Market.FilesV2` in pages of
//! keys (`state_getKeysPaged`), values fetched in batches (`state_queryStorageAt`) with bounded parallelism,
//! consecutive pages gathered into writes of `chain.scanWriteRows` rows sorted by CID, each upserted in one
//! multi-row statement together with the cursor, so a restart resumes after the last stored key.
//! The CID is decoded from the key with its real compact length. Between full scans it rests `chain.scanCooldownSecs`.
//! A runtime without FilesV2 (before spec 17) is scanned through the V1 `Market.Files` map.

use std::time::Duration;

use futures_util::StreamExt;

use super::indexer::FilesIndexed;
use super::{Deps, SharedPeers};
use crate::chain::{decode_file_info_as, keys, ChainError, ChainSource, FileInfoLayout, ScannedFile};
use crate::config::ChainSettings;
use crate::db::{files, state, DbError};

/// Writes running at once (each in its own transaction) while the next pages are fetched.
pub const SCAN_WRITERS: usize = 2;

/// Storage keys with their values (`None`: removed meanwhile).
pub type KeyValues = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One page's worth of decoded rows and invalid entries.
fn decode_page(keys_and_values: KeyValues, layout: FileInfoLayout) -> (Vec<ScannedFile>, Vec<(String, String)>) {
    let mut rows = Vec::with_capacity(keys_and_values.len());
    let mut invalid = Vec::new();
    for (key, value) in keys_and_values {
        let cid = match keys::cid_from_files_key(&key) {
            Ok(c) => c,
            Err(e) => {
                invalid.push((format!("0x{}", hex::encode(&key)), format!("undecodable key: {e}")));
                continue;
            }
        };
        if let Err(e) = crate::chain::client::parse_cid(cid.as_bytes()) {
            invalid.push((cid, e));
            continue;
        }
        // A key without a value was removed between paging and reading: skip it this round.
        let Some(value) = value else { continue };
        match decode_file_info_as(&value, layout) {
            Ok((size, expired_at, amount, replicas)) => rows.push(ScannedFile {
                cid,
                size,
                expired_at,
                amount,
                replicas,
            }),
            Err(e) => invalid.push((cid, format!("FileInfo does not decode: {e}"))),
        }
    }
    (rows, invalid)
}

/// Decoded pages not yet written: their rows and invalid entries, and how many pages they came from (a page whose
/// entries all vanished meanwhile holds no row, yet the cursor must still pass it).
#[derive(Default)]
struct Held {
    rows: Vec<ScannedFile>,
    invalid: Vec<(String, String)>,
    pages: usize,
}

/// One page of keys under `prefix` after `start`, in key order with their values (fetched in batches, in parallel),
/// with the page size, batch size and parallelism of `cfg`. `None` when there are no more keys. `smanager bench`
/// pages the map through this too, to measure what the node serves the scanner.
pub async fn fetch_page(
    chain: &dyn ChainSource,
    cfg: &ChainSettings,
    prefix: &[u8],
    start: Option<Vec<u8>>,
) -> Result<Option<KeyValues>, ChainError> {
    let page = chain.keys_paged(prefix.to_vec(), cfg.scan_page_size, start).await?;
    if page.is_empty() {
        return Ok(None);
    }
    let fetched: Vec<Result<KeyValues, ChainError>> =
        futures_util::stream::iter(page.chunks(cfg.scan_batch_size as usize))
            .map(|batch| async move {
                let values = chain.values(batch.to_vec()).await?;
                Ok(batch.iter().cloned().zip(values).collect())
            })
            .buffered(cfg.scan_parallelism as usize)
            .collect()
            .await;
    let mut all = Vec::with_capacity(page.len());
    for f in fetched {
        all.extend(f?);
    }
    Ok(Some(all))
}

/// Rests between rounds, but ends at once when an undecodable block is waiting for its orders to be recovered.
async fn rest(deps: &Deps, how_long: Duration) -> Result<(), DbError> {
    let until = std::time::Instant::now() + how_long;
    while std::time::Instant::now() < until {
        actix_rt::time::sleep(Duration::from_secs(1).min(until - std::time::Instant::now())).await;
        let waiting = deps.db.run(|c| state::unrecovered_undecodable(c)).await?;
        if !waiting.is_empty() {
            log::warn!(target: "smanager::scanner", "starting a FilesV2 scan now to recover the orders of {} undecodable block(s)", waiting.len());
            break;
        }
    }
    Ok(())
}

/// Waits for a page's write and tells the picker about its files.
async fn wrote(
    w: tokio::task::JoinHandle<Result<files::ScannedWrite, DbError>>,
    peers: &SharedPeers,
) -> Result<files::ScannedWrite, DbError> {
    let written = w.await.map_err(|e| DbError::Join(e.to_string()))??;
    if let Some(p) = peers.get() {
        p.picker.do_send(FilesIndexed { count: written.rows });
    }
    Ok(written)
}

/// Scans forever; returns only on a database error (the actor then restarts and resumes from the cursor).
pub async fn run(deps: Deps, peers: SharedPeers) -> Result<(), DbError> {
    let cfg = deps.settings.chain.clone();
    let min_backoff = Duration::from_secs(cfg.reconnect_min_secs);
    let max_backoff = Duration::from_secs(cfg.reconnect_max_secs);
    let mut backoff = min_backoff;
    loop {
        let cursor = deps.db.run(|c| state::cursor(c, state::SCANNER_CURSOR)).await?;
        let round = cursor.as_ref().map_or(0, |c| c.scan_round);
        let mut start: Option<Vec<u8>> = cursor
            .and_then(|c| c.scan_key)
            .and_then(|k| hex::decode(k.trim_start_matches("0x")).ok());
        // FilesV2 since spec 17; the V1 map before it.
        let prefix = {
            let v2 = keys::files_v2_prefix();
            match deps.chain.keys_paged(v2.clone(), 1, None).await {
                Ok(k) if k.is_empty() => match deps.chain.keys_paged(keys::files_v1_prefix(), 1, None).await {
                    Ok(k1) if !k1.is_empty() => keys::files_v1_prefix(),
                    _ => v2,
                },
                Ok(_) => v2,
                Err(e) => {
                    log::warn!(target: "smanager::scanner", "chain unavailable: {e}; retrying in {backoff:?}");
                    actix_rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                    continue;
                }
            }
        };
        // The V1 map's value layout changed at spec 2: read it as the runtime at the head stores it.
        let layout = if prefix == keys::files_v1_prefix() {
            match deps.chain.spec_version().await {
                Ok(spec) => FileInfoLayout::of(true, spec),
                Err(e) => {
                    log::warn!(target: "smanager::scanner", "chain unavailable: {e}; retrying in {backoff:?}");
                    actix_rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                    continue;
                }
            }
        } else {
            FileInfoLayout::V2
        };
        if start.is_none() && round > 0 {
            // A restart between rounds rests out what is left of the cooldown.
            let done: Option<chrono::DateTime<chrono::Utc>> =
                deps.db.run(|c| state::kv_get(c, state::KV_LAST_FULL_SCAN_DONE)).await?;
            let since = done.map_or(Duration::MAX, |d| (chrono::Utc::now() - d).to_std().unwrap_or_default());
            let cooldown = Duration::from_secs(cfg.scan_cooldown_secs);
            if since < cooldown {
                log::info!(target: "smanager::scanner", "last FilesV2 scan ended {} s ago; next round in {} s", since.as_secs(), (cooldown - since).as_secs());
                rest(&deps, cooldown - since).await?;
            }
        }
        if start.is_none() {
            let now = chrono::Utc::now();
            deps.db
                .run(move |c| state::kv_set(c, state::KV_SCAN_ROUND_STARTED, &now))
                .await?;
            log::info!(target: "smanager::scanner", "FilesV2 scan round {} starting", round + 1);
        } else {
            log::info!(target: "smanager::scanner", "FilesV2 scan round {} resuming from its cursor", round + 1);
        }
        let started = std::time::Instant::now();
        let mut scanned = 0usize;
        // Pages are gathered into writes of `scanWriteRows` rows, and up to SCAN_WRITERS writes run at once
        // while the next pages are fetched. Each write moves the cursor only to the last page known stored together
        // with every page before it, so after a crash the scan resumes at most SCAN_WRITERS writes early (upserts
        // are idempotent) and never skips one.
        let mut writing: std::collections::VecDeque<(
            tokio::task::JoinHandle<Result<files::ScannedWrite, DbError>>,
            String,
        )> = std::collections::VecDeque::new();
        // A write copies its files without looking them up first when the last one finished knew none of them (a
        // first scan into a young database); a known file makes it fall back, once.
        let mut expect_new = false;
        let mut stored: Option<String> = None;
        // Pages fetched and decoded, waiting to fill a write: lost on a crash or a fetch error, and fetched again
        // then, since the cursor only moves past what was written.
        let mut held = Held::default();
        let finished = loop {
            let fetched = fetch_page(deps.chain.as_ref(), &cfg, &prefix, start.clone()).await;
            let all = match fetched {
                Ok(Some(p)) => p,
                // The end of the map: what is held is written below.
                Ok(None) => Vec::new(),
                Err(e) => break Err(e),
            };
            let full = all.len() as u32 == cfg.scan_page_size;
            if let Some((last, _)) = all.last() {
                start = Some(last.clone());
                held.pages += 1;
            }
            let (rows, invalid) = decode_page(all, layout);
            for (raw, why) in &invalid {
                log::warn!(target: "smanager::scanner", "invalid FilesV2 entry {raw}: {why}");
            }
            held.rows.extend(rows);
            held.invalid.extend(invalid);
            if held.pages > 0 && (held.rows.len() + held.invalid.len() >= cfg.scan_write_rows as usize || !full) {
                while writing.len() >= SCAN_WRITERS {
                    if let Some((w, key)) = writing.pop_front() {
                        let written = wrote(w, &peers).await?;
                        scanned += written.rows;
                        expect_new = written.all_new;
                        stored = Some(key);
                    }
                }
                let Held { mut rows, invalid, .. } = std::mem::take(&mut held);
                // The write covers every key up to the last page fetched.
                let last_key = format!("0x{}", hex::encode(start.as_deref().unwrap_or_default()));
                rows.sort_unstable_by(|a, b| a.cid.cmp(&b.cid));
                let db = deps.db.clone();
                let cursor = stored.clone();
                let w = actix_rt::spawn(async move {
                    db.run(move |c| {
                        files::write_scanned_batch(c, &rows, &invalid, cursor.as_deref(), round, expect_new)
                    })
                    .await
                });
                writing.push_back((w, last_key));
            }
            if !full {
                break Ok(());
            }
        };
        while let Some((w, key)) = writing.pop_front() {
            scanned += wrote(w, &peers).await?.rows;
            stored = Some(key);
        }
        if finished.is_err() {
            if let Some(key) = stored {
                deps.db
                    .run(move |c| state::advance_scan_cursor(c, state::SCANNER_CURSOR, &key, round))
                    .await?;
            }
        }
        match finished {
            Ok(()) => {
                let secs = started.elapsed().as_secs_f64();
                log::info!(
                    target: "smanager::scanner",
                    "FilesV2 scan round {} done: {scanned} files in {secs:.1} s ({:.0}/s)",
                    round + 1,
                    scanned as f64 / secs.max(1e-3)
                );
                deps.db
                    .run(move |c| {
                        let began: Option<chrono::DateTime<chrono::Utc>> =
                            state::kv_get(c, state::KV_SCAN_ROUND_STARTED)?;
                        if let Some(began) = began {
                            state::kv_set(c, state::KV_LAST_FULL_SCAN_STARTED, &began)?;
                        }
                        state::kv_set(c, state::KV_LAST_FULL_SCAN_DONE, &chrono::Utc::now())?;
                        state::set_scan_cursor(c, state::SCANNER_CURSOR, None, round + 1)
                    })
                    .await?;
                backoff = min_backoff;
                rest(&deps, Duration::from_secs(cfg.scan_cooldown_secs)).await?;
            }
            Err(e) => {
                log::warn!(target: "smanager::scanner", "scan interrupted: {e}; resuming from the cursor in {backoff:?}");
                actix_rt::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}
