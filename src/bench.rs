//! `smanager bench`: indexing throughput against a devnet chain in a separate process (so its memory does not count):
//! a full FilesV2 scan into PostgreSQL (orders/s), a catch-up of a day of blocks (blocks/s), and this process's peak
//! RSS; then the pick latency of the whole pipeline on an in-process devnet. Prints one JSON line.

use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::AsyncBufReadExt;

use crate::actors::Peers;
use crate::config::Settings;
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
}

/// This process's peak resident set (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
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

/// Runs the benchmark and prints `{"orders_per_sec", "catchup_blocks_per_sec", "peak_rss_bytes", …}`.
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
    let result = actix_rt::System::new().block_on(async move {
        let mut lines = tokio::io::BufReader::new(tokio::process::ChildStdout::from_std(stdout)?).lines();
        let url = loop {
            match lines.next_line().await? {
                Some(l) if l.starts_with("ready ") => break l.trim_start_matches("ready ").to_string(),
                Some(_) => continue,
                None => bail!("the devnet chain process ended before it was ready"),
            }
        };
        eprintln!("chain ready at {url}");

        // 1. Full FilesV2 scan into PostgreSQL (events disabled: the cursor starts at the head).
        let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
        let db = Db::connect(&bench_settings(&url, &pg.url).database)?;
        db.migrate()?;
        let head = {
            let s = bench_settings(&url, &pg.url);
            let c = crate::chain::client::connect(&s.chain);
            c.finalized_head().await?
        };
        {
            let mut c = db.conn()?;
            state::set_block_cursor(&mut c, state::INDEXER_CURSOR, head as i64, "0x0")?;
        }
        let started = Instant::now();
        let peers = start_actors(bench_settings(&url, &pg.url), db.clone());
        let scanned = loop {
            actix_rt::time::sleep(Duration::from_millis(200)).await;
            let mut c = db.conn()?;
            if state::cursor(&mut c, state::SCANNER_CURSOR)?.is_some_and(|c| c.scan_round >= 1) {
                break crate::db::stats::snapshot(&mut c)?.scanned_files;
            }
        };
        let scan_secs = started.elapsed().as_secs_f64();
        crate::app::shutdown(&peers).await;

        // 2. Catch-up of `blocks` blocks from the first one, into a fresh database.
        drop(pg);
        let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref())?;
        let db = Db::connect(&bench_settings(&url, &pg.url).database)?;
        db.migrate()?;
        {
            let mut c = db.conn()?;
            state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0")?;
            // Park the scanner so only the catch-up runs.
            state::set_scan_cursor(&mut c, state::SCANNER_CURSOR, Some("0xffff"), 0)?;
        }
        let started = Instant::now();
        let peers = start_actors(bench_settings(&url, &pg.url), db.clone());
        loop {
            actix_rt::time::sleep(Duration::from_millis(200)).await;
            let mut c = db.conn()?;
            let at = state::cursor(&mut c, state::INDEXER_CURSOR)?
                .and_then(|c| c.block_number)
                .unwrap_or(0);
            if at >= head as i64 {
                break;
            }
        }
        let catchup_secs = started.elapsed().as_secs_f64();
        crate::app::shutdown(&peers).await;
        let orders: i64 = {
            use diesel::prelude::*;
            let mut c = db.conn()?;
            crate::db::schema::file_owners::table
                .select(diesel::dsl::sum(crate::db::schema::file_owners::orders))
                .first::<Option<i64>>(&mut c)?
                .unwrap_or(0)
        };
        drop(pg);
        let peak_rss = peak_rss_bytes();

        // 3. Pick latency: from a block with a new order being finalized to that order's pin/add reaching IPFS.
        let latencies = pick_latency(20).await?;
        let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0);
        let max = latencies.last().copied().unwrap_or(0);
        Ok(serde_json::json!({
            "orders_per_sec": (scanned as f64 / scan_secs).round(),
            "catchup_blocks_per_sec": (f64::from(args.blocks) / catchup_secs).round(),
            "peak_rss_bytes": peak_rss,
            "pick_latency_ms_p50": p50,
            "pick_latency_ms_max": max,
            "scanned_files": scanned,
            "scan_secs": (scan_secs * 10.0).round() / 10.0,
            "catchup_blocks": head,
            "catchup_orders": orders,
            "catchup_secs": (catchup_secs * 10.0).round() / 10.0,
        }))
    });
    let _ = chain.kill();
    let _ = chain.wait();
    let report = result?;
    println!("{report}");
    Ok(())
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
        println!("ready {}", chain.ws_url());
        crate::app::shutdown_signal().await;
        chain.stop().await;
        Ok(())
    })
}
