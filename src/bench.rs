//! `smanager bench`: indexing throughput against a devnet chain in a separate process (so its memory does not count):
//! a full FilesV2 scan into PostgreSQL (orders/s) and a catch-up of a day of blocks (blocks/s), each next to the raw
//! limit measured in the same run (the chain serving the same pages or blocks with nothing decoded, PostgreSQL
//! copying the same rows) and the ratio to it; steady state with every scanned file indexed (RSS, CPU per idle
//! minute, admin API p95); then the pick latency of the whole pipeline on an in-process devnet. Prints one JSON line.

use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::StreamExt;
use tokio::io::AsyncBufReadExt;

use crate::actors::Peers;
use crate::config::{ChainSettings, Settings};
use crate::db::floor::{copy_floor, FloorOrder, FloorTables};
use crate::db::{state, Db};
use crate::devnet::postgres::DevPostgres;

/// Options of `smanager bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// FilesV2 entries at genesis.
    #[arg(long, default_value_t = 1_000_000)]
    pub files: u64,
    /// Blocks to catch up.
    #[arg(long, default_value_t = 14_400)]
    pub blocks: u32,
    /// Orders per block in those blocks.
    #[arg(long, default_value_t = 20)]
    pub orders_per_block: u32,
    /// Seconds of steady state measured for CPU; 0 skips the steady-state phase.
    #[arg(long, default_value_t = 60)]
    pub steady_secs: u64,
    /// Seconds the steady-state pipeline runs before it is measured (its first rounds judge a backlog).
    #[arg(long, default_value_t = 45)]
    pub settle_secs: u64,
    /// Only the catch-up phase (for profiling it); the report's other fields are null.
    #[arg(long)]
    pub catchup_only: bool,
}

/// A kB field of `/proc/self/status` (`VmHWM:`, `VmRSS:`), in bytes; 0 where there is none.
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// This process's peak resident set (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

fn bench_settings(url: &str, db_url: &str) -> Settings {
    let mut s = Settings::default();
    s.chain.account = crate::chain::ss58::encode(66, &crate::devnet::chain::account("m0"));
    s.chain.end_point = url.to_string();
    s.chain.poll_interval_ms = 50;
    s.chain.scan_cooldown_secs = 24 * 3600;
    s.chain.group_refresh_secs = 24 * 3600;
    s.sworker.end_point = "http://127.0.0.1:9".into();
    s.ipfs.end_point = "http://127.0.0.1:9".into();
    s.database.url = db_url.to_string();
    s.database.pool_size = 8;
    s.scheduler.tick_secs = 3600;
    s.sealer.check_interval_secs = 3600;
    s.cleanup.interval_secs = 3600;
    s
}

fn start_actors(settings: Settings, db: Db) -> Peers {
    let settings = Rc::new(settings);
    let chain = crate::chain::client::connect(&settings.chain);
    crate::app::start_pipeline(settings, db, chain)
}

/// Runs the benchmark and prints one JSON line: our rates, the raw limits measured in the same run against the same
/// chain process and PostgreSQL, their ratios, steady state at the scanned size, and the pick latency.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the smanager binary")?;
    let mut chain = Command::new(exe)
        .args(["devnet-chain", "--prefill", &args.files.to_string()])
        .args([
            "--blocks",
            &args.blocks.to_string(),
            "--orders-per-block",
            &args.orders_per_block.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the devnet chain process")?;
    let stdout = chain.stdout.take().context("chain stdout")?;
    let chain_pid = chain.id();
    let result = actix_rt::System::new().block_on(async move {
        let mut lines = tokio::io::BufReader::new(tokio::process::ChildStdout::from_std(stdout)?).lines();
        let (url, orders_on_chain) = loop {
            match lines.next_line().await? {
                Some(l) if l.starts_with("ready ") => {
                    let mut parts = l.trim_start_matches("ready ").split(' ');
                    let url = parts.next().unwrap_or_default().to_string();
                    let orders: Option<u64> = parts.next().and_then(|n| n.parse().ok());
                    break (url, orders);
                }
                Some(_) => continue,
                None => bail!("the devnet chain process ended before it was ready"),
            }
        };
        eprintln!("chain ready at {url}");
        use crate::chain::ChainSource as _;
        let raw = crate::chain::client::SubxtChain::connect(&url).await?;
        let head = raw.finalized_head().await?;

        let scan = if args.catchup_only {
            None
        } else {
            Some(scan_phase(&url, &raw, head, chain_pid, (args.settle_secs, args.steady_secs)).await?)
        };

        // 3. Catch-up of `blocks` blocks from the first one, into a fresh database.
        let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
        let db = Db::connect(&bench_settings(&url, &pg.url).database)?;
        db.migrate()?;
        {
            let mut c = db.conn()?;
            state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0")?;
            // Park the scanner so only the catch-up runs.
            state::set_scan_cursor(&mut c, state::SCANNER_CURSOR, Some("0xffff"), 0)?;
        }
        let writes = &crate::metrics::METRICS.indexer_write_blocks;
        let writes_before = (writes.get_sample_count(), writes.get_sample_sum());
        let write_time = &crate::metrics::METRICS.indexer_write_seconds;
        let write_secs_before = write_time.get_sample_sum();
        let started = Instant::now();
        let cpu_before = CpuSnapshot::take(chain_pid);
        let peers = start_actors(bench_settings(&url, &pg.url), db.clone());
        loop {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            let mut c = db.conn()?;
            let at = state::cursor(&mut c, state::INDEXER_CURSOR)?
                .and_then(|c| c.block_number)
                .unwrap_or(0);
            if at >= head as i64 {
                break;
            }
        }
        let catchup_secs = started.elapsed().as_secs_f64();
        // Blocks per transaction: the writer's runs (each has a fixed cost).
        let catchup_writes = writes.get_sample_count().saturating_sub(writes_before.0);
        let blocks_per_write = (catchup_writes > 0)
            .then(|| ((writes.get_sample_sum() - writes_before.1) / catchup_writes as f64 * 10.0).round() / 10.0);
        // The writer's own time: a catch-up cannot be faster than head ÷ this, however fast fetching and decoding are.
        let write_secs = write_time.get_sample_sum() - write_secs_before;
        // Taken while the pipeline's connections are open, so their server processes are all counted.
        let catchup_cpu = CpuSnapshot::take(chain_pid).per_unit_since(&cpu_before, head as f64);
        crate::app::shutdown(&peers).await;
        let catchup_rate = head as f64 / catchup_secs;
        let orders: i64 = {
            let mut c = db.conn()?;
            crate::db::files::total_orders(&mut c)?
        };
        eprintln!("catch-up: {head} blocks in {catchup_secs:.1} s");

        // Its limits: the same blocks fetched raw (same prefetch depth), the same rows copied raw.
        let (raw_started, raw_cpu_before) = (Instant::now(), CpuSnapshot::take(chain_pid));
        let raw_bytes = raw_blocks(&raw, head).await?;
        let block_chain_rate = head as f64 / raw_started.elapsed().as_secs_f64();
        let raw_cpu = CpuSnapshot::take(chain_pid).per_unit_since(&raw_cpu_before, head as f64);
        // The rows copied three ways, in chunks as the scanner writes: the raw limit in arrival order and in key
        // order, then what durability costs whoever writes (logged copies with the key; every server process is
        // counted, since the WAL writer flushes what the backend logged).
        let (floor, key_order_floor, durable) = {
            let chunk = bench_settings(&url, &pg.url).chain.scan_write_rows as usize;
            let mut c = db.conn()?;
            (
                copy_floor(&mut c, true, FloorOrder::Arrival, FloorTables::Unlogged, chunk, &proc_cpu)?,
                copy_floor(&mut c, true, FloorOrder::KeyOrder, FloorTables::Unlogged, chunk, &proc_cpu)?,
                copy_floor(&mut c, true, FloorOrder::Arrival, FloorTables::Durable, chunk, &|_| {
                    postgres_cpu()
                })?,
            )
        };
        // The least CPU per block each party needs: the client reading blocks raw, the chain serving them, the
        // server copying their rows.
        let floor_cpu = CpuPerUnit {
            postgres: floor.server_cpu.map(|d| ms_per_unit(d, head as f64)),
            ..raw_cpu
        };
        let durable_cpu = CpuPerUnit {
            postgres: durable.server_cpu.map(|d| ms_per_unit(d, head as f64)),
            ..raw_cpu
        };
        let block_pg_rate = head as f64 / floor.elapsed.as_secs_f64().max(1e-6);
        let block_durable_rate = head as f64 / durable.elapsed.as_secs_f64().max(1e-6);
        let block_pg_key_order_rate = head as f64 / key_order_floor.elapsed.as_secs_f64().max(1e-6);
        eprintln!("catch-up limits: chain {block_chain_rate:.0} blocks/s ({raw_bytes} bytes), PostgreSQL {block_pg_rate:.0} blocks/s ({block_pg_key_order_rate:.0} with every row in key order, {block_durable_rate:.0} logged with the key)");
        // The pool first: its connections would outlive the database and log their failures.
        drop(db);
        drop(pg);
        let writer_alone = writer_alone(&raw, head, orders, &url).await?;
        let writer_alone_rate = head as f64 / writer_alone.as_secs_f64().max(1e-6);
        eprintln!("catch-up writer alone: {writer_alone_rate:.0} blocks/s");
        let peak_rss = peak_rss_bytes();

        // 4. Pick latency: from a block with a new order being finalized to that order's pin/add reaching IPFS.
        let latencies = if args.catchup_only { Vec::new() } else { pick_latency(20).await? };
        let p50 = latencies.get(latencies.len() / 2).copied();
        let max = latencies.last().copied();
        let ratio = |x: f64| (x * 1000.0).round() / 1000.0;
        let steady = scan.as_ref().and_then(|s| s.steady.as_ref());
        // The least a durable writer costs, beside the limit (one macro call would be too deep for the compiler).
        let durable = serde_json::json!({
            "catchup_pg_durable_floor_blocks_per_sec": block_durable_rate.round(),
            "catchup_durable_floor_cpu_ms_per_block": durable_cpu.json("client"),
            "catchup_durable_cpu_ceiling_blocks_per_sec": durable_cpu.ceiling_per_sec().map(f64::round),
            "catchup_durable_ceiling_limit_ratio": durable_cpu
                .ceiling_per_sec()
                .map(|c| ratio(c / block_chain_rate.min(block_pg_rate))),
        });
        let mut report = serde_json::json!({
            "orders_per_sec": scan.as_ref().map(|s| s.rate.round()),
            "scan_chain_limit_per_sec": scan.as_ref().map(|s| s.chain_rate.round()),
            "scan_pg_limit_per_sec": scan.as_ref().map(|s| s.pg_rate.round()),
            "scan_pg_key_order_per_sec": scan.as_ref().map(|s| s.pg_key_order_rate.round()),
            "scan_limit_ratio": scan.as_ref().map(|s| ratio(s.rate / s.chain_rate.min(s.pg_rate))),
            "scan_cpu_ms_per_1k_files": scan.as_ref().map(|s| s.cpu.json("smanager")),
            "scan_floor_cpu_ms_per_1k_files": scan.as_ref().map(|s| s.floor_cpu.json("client")),
            "scan_cpu_ceiling_per_sec": scan.as_ref().and_then(|s| s.floor_cpu.ceiling_per_sec()).map(|c| (c * 1000.0).round()),
            "scan_cpu_ceiling_ratio": scan
                .as_ref()
                .and_then(|s| s.floor_cpu.ceiling_per_sec().map(|c| ratio(s.rate / (c * 1000.0)))),
            "catchup_blocks_per_sec": catchup_rate.round(),
            "catchup_chain_limit_blocks_per_sec": block_chain_rate.round(),
            "catchup_pg_limit_blocks_per_sec": block_pg_rate.round(),
            "catchup_pg_key_order_blocks_per_sec": block_pg_key_order_rate.round(),
            "catchup_limit_ratio": ratio(catchup_rate / block_chain_rate.min(block_pg_rate)),
            "catchup_blocks_per_write": blocks_per_write,
            "catchup_write_secs": (write_secs * 1000.0).round() / 1000.0,
            "catchup_write_bound_blocks_per_sec": (write_secs > 0.0).then(|| (head as f64 / write_secs).round()),
            "catchup_writer_alone_blocks_per_sec": writer_alone_rate.round(),
            "catchup_writer_alone_limit_ratio": ratio(writer_alone_rate / block_chain_rate.min(block_pg_rate)),
            "catchup_write_pg_floor_ratio": (write_secs > 0.0).then(|| ratio(floor.elapsed.as_secs_f64() / write_secs)),
            "catchup_cpu_ms_per_block": catchup_cpu.json("smanager"),
            "catchup_floor_cpu_ms_per_block": floor_cpu.json("client"),
            "catchup_cpu_ceiling_blocks_per_sec": floor_cpu.ceiling_per_sec().map(f64::round),
            "catchup_cpu_ceiling_ratio": floor_cpu.ceiling_per_sec().map(|c| ratio(catchup_rate / c)),
            "pick_latency_ms_p50": p50,
            "pick_latency_ms_max": max,
            "steady_files": steady.map(|s| s.files),
            "steady_rss_bytes": steady.map(|s| s.rss_bytes),
            "steady_cpu_ms_per_idle_min": steady.map(|s| s.cpu_ms_per_min),
            "api_files_p95_ms": steady.map(|s| s.files_p95_ms),
            "api_stats_p95_ms": steady.map(|s| s.stats_p95_ms),
            "peak_rss_bytes": peak_rss,
            "scanned_files": scan.as_ref().map(|s| s.scanned),
            "scan_secs": scan.as_ref().map(|s| (s.secs * 10.0).round() / 10.0),
            "catchup_blocks": head,
            "catchup_orders": orders,
            "catchup_orders_on_chain": orders_on_chain,
            "catchup_secs": (catchup_secs * 10.0).round() / 10.0,
            "machine": machine(),
        });
        if let (Some(all), serde_json::Value::Object(more)) = (report.as_object_mut(), durable) {
            all.extend(more);
        }
        Ok(report)
    });
    let _ = chain.kill();
    let _ = chain.wait();
    let report = result?;
    println!("{report}");
    Ok(())
}

/// The scan phase's figures.
struct ScanReport {
    scanned: i64,
    secs: f64,
    rate: f64,
    chain_rate: f64,
    /// `COPY` of the rows in the order they were written (the limit).
    pg_rate: f64,
    /// `COPY` of every row in key order, for comparison.
    pg_key_order_rate: f64,
    /// CPU per thousand files of the scan, by party.
    cpu: CpuPerUnit,
    /// The least CPU per thousand files each party needs (raw pages, `COPY`).
    floor_cpu: CpuPerUnit,
    steady: Option<Steady>,
}

/// A full FilesV2 scan into a fresh database (events disabled: the cursor starts at the head), its limits (the same
/// pages served raw, the same rows copied into PostgreSQL raw), then steady state over what it indexed.
async fn scan_phase(
    url: &str,
    raw: &crate::chain::client::SubxtChain,
    head: u64,
    chain_pid: u32,
    (settle_secs, steady_secs): (u64, u64),
) -> anyhow::Result<ScanReport> {
    let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
    let settings = bench_settings(url, &pg.url);
    let db = Db::connect(&settings.database)?;
    db.migrate()?;
    {
        let mut c = db.conn()?;
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, head as i64, "0x0")?;
    }
    let started = Instant::now();
    let cpu_before = CpuSnapshot::take(chain_pid);
    let peers = start_actors(settings.clone(), db.clone());
    let scanned = loop {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        let mut c = db.conn()?;
        if state::cursor(&mut c, state::SCANNER_CURSOR)?.is_some_and(|c| c.scan_round >= 1) {
            break crate::db::stats::snapshot(&mut c)?.scanned_files;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let thousands = scanned as f64 / 1000.0;
    let cpu = CpuSnapshot::take(chain_pid).per_unit_since(&cpu_before, thousands);
    crate::app::shutdown(&peers).await;
    eprintln!("scan: {scanned} files in {secs:.1} s");

    let raw_cpu_before = CpuSnapshot::take(chain_pid);
    let (raw_keys, raw_secs) = raw_scan(raw, &settings.chain).await?;
    let raw_cpu = CpuSnapshot::take(chain_pid).per_unit_since(&raw_cpu_before, raw_keys as f64 / 1000.0);
    let chain_rate = raw_keys as f64 / raw_secs;
    let (floor, key_order_floor) = {
        let chunk = settings.chain.scan_write_rows as usize;
        let mut c = db.conn()?;
        (
            copy_floor(
                &mut c,
                false,
                FloorOrder::Arrival,
                FloorTables::Unlogged,
                chunk,
                &proc_cpu,
            )?,
            copy_floor(
                &mut c,
                false,
                FloorOrder::KeyOrder,
                FloorTables::Unlogged,
                chunk,
                &proc_cpu,
            )?,
        )
    };
    let floor_cpu = CpuPerUnit {
        postgres: floor
            .server_cpu
            .map(|d| ms_per_unit(d, floor.file_rows as f64 / 1000.0)),
        ..raw_cpu
    };
    let pg_rate = floor.file_rows as f64 / floor.elapsed.as_secs_f64().max(1e-6);
    let pg_key_order_rate = key_order_floor.file_rows as f64 / key_order_floor.elapsed.as_secs_f64().max(1e-6);
    eprintln!(
        "scan limits: chain {chain_rate:.0} keys/s, PostgreSQL {pg_rate:.0} rows/s ({pg_key_order_rate:.0} with every row in key order)"
    );

    let steady = if steady_secs > 0 {
        Some(steady_state(url, &pg.url, db.clone(), settle_secs, steady_secs).await?)
    } else {
        None
    };
    Ok(ScanReport {
        scanned,
        secs,
        rate: scanned as f64 / secs,
        chain_rate,
        pg_rate,
        pg_key_order_rate,
        cpu,
        floor_cpu,
        steady,
    })
}

/// Pages the FilesV2 map exactly as the scanner does (its own page fetch, same page size, batch size and
/// parallelism) without decoding or writing anything. Returns the keys read and the seconds it took.
async fn raw_scan(chain: &crate::chain::client::SubxtChain, cfg: &ChainSettings) -> anyhow::Result<(u64, f64)> {
    let prefix = crate::chain::keys::files_v2_prefix();
    let started = Instant::now();
    let mut start = None;
    let mut total = 0u64;
    while let Some(page) = crate::actors::scanner::fetch_page(chain, cfg, &prefix, start).await? {
        total += page.len() as u64;
        let full = page.len() == cfg.scan_page_size as usize;
        start = page.last().map(|(k, _)| k.clone());
        if !full {
            break;
        }
    }
    Ok((total, started.elapsed().as_secs_f64()))
}

/// Fetches blocks 1..=head raw (hash, body, events), as many in flight as the indexer prefetches. Returns the bytes.
async fn raw_blocks(chain: &crate::chain::client::SubxtChain, head: u64) -> anyhow::Result<u64> {
    let mut total = 0u64;
    let mut s = futures_util::stream::iter(1..=head)
        .map(|n| chain.fetch_block_raw(n))
        .buffered(crate::actors::indexer::PREFETCH_BLOCKS);
    while let Some(r) = s.next().await {
        total += r? as u64;
    }
    Ok(total)
}

/// The indexer's writes of the catch-up alone, with the machine to themselves: the same blocks, decoded beforehand
/// (untimed, a bounded slice at a time), written in catch-up runs into a fresh database. The catch-up shares the cores
/// with fetching and decoding, so its ratio can approach this one's but not pass it: the part of the gap that is the
/// durable write itself (WAL, foreign keys, upserts, closes) rather than the rest of the pipeline.
async fn writer_alone(
    chain: &crate::chain::client::SubxtChain,
    head: u64,
    orders: i64,
    url: &str,
) -> anyhow::Result<Duration> {
    use crate::actors::indexer::{CATCH_UP_RUN, PREFETCH_BLOCKS};
    use crate::chain::ChainSource as _;
    const SLICE: u64 = 8 * CATCH_UP_RUN as u64;
    let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
    let db = Db::connect(&bench_settings(url, &pg.url).database)?;
    db.migrate()?;
    let mut c = db.conn()?;
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0")?;
    let mut spent = Duration::ZERO;
    let mut next = 1;
    while next <= head {
        let last = (next + SLICE - 1).min(head);
        let blocks: Vec<crate::chain::IndexedBlock> = futures_util::stream::iter(next..=last)
            .map(|n| chain.block(n))
            .buffered(PREFETCH_BLOCKS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for run in blocks.chunks(CATCH_UP_RUN) {
            let started = Instant::now();
            crate::db::files::apply_blocks(&mut c, run)?;
            spent += started.elapsed();
        }
        next = last + 1;
    }
    // The same writes as the catch-up's, or the figure means nothing.
    let written = crate::db::files::total_orders(&mut c)?;
    if written != orders {
        bail!("the writer alone stored {written} orders where the catch-up stored {orders}");
    }
    drop(c);
    drop(db);
    drop(pg);
    Ok(spent)
}

/// What the bench reports of the steady state.
struct Steady {
    files: i64,
    rss_bytes: u64,
    cpu_ms_per_min: u64,
    files_p95_ms: f64,
    stats_p95_ms: f64,
}

/// This process's CPU time (user + system) so far.
fn cpu_time() -> Duration {
    proc_stat("self").map(|(_, cpu)| cpu).unwrap_or_default()
}

/// A local process's CPU time (user + system) so far, from `/proc/<pid>/stat`, with its command name; `None` when
/// there is no such process.
fn proc_stat(pid: &str) -> Option<(String, Duration)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The command name and CPU time (utime + stime) of one `/proc/<pid>/stat` line.
fn parse_stat(s: &str) -> Option<(String, Duration)> {
    // The command name is in parentheses and may contain spaces: the other fields start after the last ") ".
    let (head, rest) = s.rsplit_once(") ")?;
    let comm = head.split_once(" (").map(|(_, c)| c.to_string())?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux we run on.
    Some((comm, Duration::from_millis((utime + stime) * 10)))
}

/// A local process's CPU time so far, by pid; `None` when there is no such process.
fn proc_cpu(pid: u32) -> Option<Duration> {
    proc_stat(&pid.to_string()).map(|(_, cpu)| cpu)
}

/// CPU time so far of the local PostgreSQL server, every process of it; `None` when none runs on this machine.
fn postgres_cpu() -> Option<Duration> {
    let all = postgres_processes();
    (!all.is_empty()).then(|| all.values().sum())
}

/// Each local PostgreSQL process's CPU time so far, by pid.
fn postgres_processes() -> std::collections::HashMap<u32, Duration> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| match proc_stat(&pid.to_string()) {
            Some((comm, cpu)) if comm == "postgres" => Some((pid, cpu)),
            _ => None,
        })
        .collect()
}

/// CPU time so far of the three parties of an indexing run: this process (the pipeline, or the raw client of a
/// limit measurement), the devnet chain process, and each local PostgreSQL process by pid (a backend that starts
/// later counts from zero; one that exits before the second snapshot is not counted, so the bench takes its
/// snapshots while the pipeline's connections are open).
struct CpuSnapshot {
    ours: Duration,
    chain: Duration,
    postgres: std::collections::HashMap<u32, Duration>,
}

impl CpuSnapshot {
    fn take(chain_pid: u32) -> Self {
        CpuSnapshot {
            ours: cpu_time(),
            chain: proc_cpu(chain_pid).unwrap_or_default(),
            postgres: postgres_processes(),
        }
    }

    /// Milliseconds of CPU each party spent since `before`, per `units` (blocks, or thousands of files).
    /// PostgreSQL's is `None` when none of its processes runs on this machine.
    fn per_unit_since(&self, before: &CpuSnapshot, units: f64) -> CpuPerUnit {
        let ms = |d: Duration| ms_per_unit(d, units);
        let postgres: Duration = self
            .postgres
            .iter()
            .map(|(pid, cpu)| cpu.saturating_sub(before.postgres.get(pid).copied().unwrap_or_default()))
            .sum();
        CpuPerUnit {
            ours: ms(self.ours.saturating_sub(before.ours)),
            chain: ms(self.chain.saturating_sub(before.chain)),
            postgres: (!self.postgres.is_empty()).then(|| ms(postgres)),
        }
    }
}

/// Milliseconds of `cpu` per unit of work; 0 when no work was done.
fn ms_per_unit(cpu: Duration, units: f64) -> f64 {
    if units > 0.0 {
        cpu.as_secs_f64() * 1000.0 / units
    } else {
        0.0
    }
}

/// CPU milliseconds per unit of work, by party.
#[derive(Debug, Clone, Copy)]
struct CpuPerUnit {
    ours: f64,
    chain: f64,
    postgres: Option<f64>,
}

impl CpuPerUnit {
    fn json(&self, ours: &str) -> serde_json::Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        serde_json::json!({ ours: r(self.ours), "chain": r(self.chain), "postgres": self.postgres.map(r) })
    }

    /// Units per second the machine's cores could do at best if every party spent exactly this much CPU per unit
    /// and the cores were shared without loss; `None` without PostgreSQL's share.
    fn ceiling_per_sec(&self) -> Option<f64> {
        let total = self.ours + self.chain + self.postgres?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        (total > 0.0).then(|| cores * 1000.0 / total)
    }
}

/// This process's resident set now (VmRSS), in bytes.
fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// The whole pipeline and the admin API over the scanned database, with default intervals, following the (idle)
/// chain, next to a full sWorker (a full node is what most nodes are): settles, then one minute of CPU and the RSS,
/// then the p95 of the admin API's list and stats routes.
async fn steady_state(url: &str, db_url: &str, db: Db, settle: u64, secs: u64) -> anyhow::Result<Steady> {
    use crate::devnet::content::ContentStore;
    use crate::devnet::ipfs::{IpfsConfig, IpfsSim};
    use crate::devnet::sworker::{SworkerConfig, SworkerSim};
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let sworker = SworkerSim::start(
        local,
        SworkerConfig {
            capacity_bytes: 0,
            srd_gib: 0,
            ..Default::default()
        },
    )?;
    let ipfs = IpfsSim::start(local, IpfsConfig::default(), ContentStore::new(), &sworker.url())?;
    let mut s = Settings::default();
    s.chain.account = crate::chain::ss58::encode(66, &crate::devnet::chain::account("m0"));
    s.chain.end_point = url.to_string();
    s.sworker.end_point = sworker.url();
    s.ipfs.end_point = ipfs.url();
    s.database.url = db_url.to_string();
    s.admin.bind = "127.0.0.1:0".into();
    let peers = start_actors(s.clone(), db.clone());
    let admin = crate::http::start(&s, db.clone(), Some(peers.clone()))?;
    // Settle: the first picker rounds judge a backlog; steady state is what follows.
    actix_rt::time::sleep(Duration::from_secs(settle)).await;
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    actix_rt::time::sleep(Duration::from_secs(secs)).await;
    let cpu = cpu_time().saturating_sub(cpu0).as_secs_f64() * 60.0 / t0.elapsed().as_secs_f64();
    let rss = rss_bytes();
    let base = format!("http://{}", admin.addr);
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let mut p95 = Vec::new();
    for path in ["/api/v1/files?limit=50", "/api/v1/stats"] {
        let mut times = Vec::with_capacity(100);
        for i in 0..100 {
            let t = Instant::now();
            let mut r = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let body = r.body().limit(16 << 20).await?;
            if !r.status().is_success() {
                bail!("{path}: {} {}", r.status(), String::from_utf8_lossy(&body));
            }
            // The first answers warm caches on both sides; they are not what an operator waits for.
            if i >= 5 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        p95.push(times[times.len() * 95 / 100]);
    }
    let files = {
        let mut c = db.conn()?;
        crate::db::files::count_by_status(&mut c)?.values().sum()
    };
    admin.handle.stop(true).await;
    crate::app::shutdown(&peers).await;
    ipfs.stop().await;
    sworker.stop().await;
    Ok(Steady {
        files,
        rss_bytes: rss,
        cpu_ms_per_min: (cpu * 1000.0).round() as u64,
        files_p95_ms: (p95[0] * 10.0).round() / 10.0,
        stats_p95_ms: (p95[1] * 10.0).round() / 10.0,
    })
}

/// Cores and CPU model, so a report says what it ran on.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    serde_json::json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
    })
}

/// Orders `n` files one block at a time on an in-process devnet (default settings: 1 s head polling) and returns,
/// sorted, the milliseconds from each block's finalization to the order's `pin/add` arriving at IPFS.
async fn pick_latency(n: usize) -> anyhow::Result<Vec<u64>> {
    use crate::devnet::chain::{account, ChainConfig, DevChain};
    use crate::devnet::content::ContentStore;
    use crate::devnet::ipfs::{IpfsConfig, IpfsSim};
    use crate::devnet::sworker::{SworkerConfig, SworkerSim};
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let content = ContentStore::new();
    let me = account("m0");
    let chain = DevChain::start(ChainConfig::quiet(0, vec![me]), std::sync::Arc::new(content.clone())).await?;
    let sworker = SworkerSim::start(local, SworkerConfig::default())?;
    let ipfs = IpfsSim::start(local, IpfsConfig::default(), content.clone(), &sworker.url())?;
    let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
    let mut s = Settings::default();
    s.chain.account = crate::chain::ss58::encode(crate::chain::ss58::CRUST_PREFIX, &me);
    s.chain.end_point = chain.ws_url();
    s.sworker.end_point = sworker.url();
    s.ipfs.end_point = ipfs.url();
    s.database.url = pg.url.clone();
    let db = Db::connect(&s.database)?;
    db.migrate()?;
    let peers = start_actors(s, db.clone());
    // Let the node see its group first: until then the Picker is not ready and the latency would measure that.
    let waited = Instant::now();
    loop {
        let mut c = db.conn()?;
        let group: Option<state::GroupInfo> = state::kv_get(&mut c, state::KV_GROUP)?;
        if group.is_some_and(|g| g.node_index.is_some()) {
            break;
        }
        if waited.elapsed() > Duration::from_secs(60) {
            bail!("the pipeline did not learn its group from the devnet chain within 60 s");
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let cid = content.build(900 + i as u64, 50_000, false, true).cid;
        let before = ipfs.stats().pin_requests;
        chain.order_now(&cid, 50_000, 1);
        chain.produce_block();
        let t0 = Instant::now();
        while ipfs.stats().pin_requests == before {
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("order {i} never reached pin/add");
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        out.push(t0.elapsed().as_millis() as u64);
    }
    crate::app::shutdown(&peers).await;
    ipfs.stop().await;
    sworker.stop().await;
    chain.stop().await;
    out.sort_unstable();
    Ok(out)
}

/// Options of the hidden `smanager devnet-chain` (the benchmark's chain process).
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetChainArgs {
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    #[arg(long, default_value_t = 0)]
    pub blocks: u32,
    #[arg(long, default_value_t = 0)]
    pub orders_per_block: u32,
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Builds the chain (pre-fill, then `blocks` blocks of orders), prints `ready <ws url>`, and serves until killed.
pub fn devnet_chain(args: DevnetChainArgs) -> anyhow::Result<()> {
    use crate::devnet::chain::{account, ChainConfig, DevChain, GroupSpec, ScenarioConfig};
    actix_rt::System::new().block_on(async move {
        let chain = DevChain::start(
            ChainConfig {
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
                block_ms: 0,
                scenario: ScenarioConfig {
                    seed: 1,
                    order_rate: f64::from(args.orders_per_block),
                    close_share: 0.05,
                    ..Default::default()
                },
                group: GroupSpec {
                    owner: account("owner"),
                    members: vec![account("m0")],
                },
                prefill: args.prefill,
            },
            std::sync::Arc::new(crate::devnet::content::SyntheticContent),
        )
        .await?;
        for _ in 0..args.blocks {
            chain.produce_block();
        }
        // The orders its history holds (repeats, batches and multisig orders included): what a catch-up must store.
        println!("ready {} {}", chain.ws_url(), chain.ground_truth().orders.len());
        crate::app::shutdown_signal().await;
        chain.stop().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (post) gres x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 99 1000 10 0";
        let (comm, cpu) = parse_stat(line).expect("parsed");
        assert_eq!(comm, "post) gres x");
        assert_eq!(cpu, Duration::from_millis(2810));
        assert_eq!(parse_stat("4242 (cut"), None);
        assert_eq!(parse_stat("4242 (x) S 1 2 3"), None);
        // This process is readable, and its CPU time only grows.
        let (_, a) = proc_stat("self").expect("own stat");
        let (_, b) = proc_stat("self").expect("own stat");
        assert!(b >= a);
    }

    #[test]
    fn cpu_per_unit_counts_backends_that_started_later_and_the_ceiling_shares_the_cores() {
        let ms = Duration::from_millis;
        let before = CpuSnapshot {
            ours: ms(1_000),
            chain: ms(500),
            postgres: [(10, ms(200)), (11, ms(300))].into(),
        };
        // Backend 11 exited (not counted), 12 started (counted from zero).
        let after = CpuSnapshot {
            ours: ms(3_000),
            chain: ms(900),
            postgres: [(10, ms(1_200)), (12, ms(1_000))].into(),
        };
        let per = after.per_unit_since(&before, 100.0);
        assert_eq!(per.ours, 20.0);
        assert_eq!(per.chain, 4.0);
        assert_eq!(per.postgres, Some(20.0));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let ceiling = per.ceiling_per_sec().expect("all parties known");
        assert!((ceiling - cores * 1000.0 / 44.0).abs() < 1e-9);
        // Without PostgreSQL's processes on this machine there is no ceiling to state.
        let remote = CpuSnapshot {
            postgres: Default::default(),
            ..after
        };
        let per = remote.per_unit_since(&before, 100.0);
        assert_eq!(per.postgres, None);
        assert_eq!(per.ceiling_per_sec(), None);
    }
}
