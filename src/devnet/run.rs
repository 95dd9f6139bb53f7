//! `smanager devnet`: the whole stack on loopback — chain, sWorker, Crust IPFS, PostgreSQL and smanager — with a
//! one-line progress report every few seconds and a JSON summary at the end.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::prelude::*;
use serde_json::json;

use super::chain::{account, ChainConfig, DevChain, GroupSpec, ScenarioConfig};
use super::content::ContentStore;
use super::ipfs::{IpfsConfig, IpfsSim};
use super::postgres::DevPostgres;
use super::sworker::{SworkerConfig, SworkerSim};
use crate::chain::ss58;
use crate::config::{LogFormat, Settings};
use crate::db::schema::{file_owners, files, pins};
use crate::db::{Db, FileStatus, PinStatus};

/// Options of `smanager devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Scenario seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = 6000)]
    pub block_ms: u64,
    /// Orders per block on average.
    #[arg(long, default_value_t = 2.0)]
    pub order_rate: f64,
    /// Chain JSON-RPC port (WebSocket and HTTP); 0 = any free port. Default: any, or crust-node's 19944 with
    /// `--peers-only`.
    #[arg(long)]
    pub chain_port: Option<u16>,
    /// sWorker API port; default: any, or crust-node's 12222 with `--peers-only`.
    #[arg(long)]
    pub sworker_port: Option<u16>,
    /// IPFS RPC port; default: any, or crust-node's 5001 with `--peers-only`.
    #[arg(long)]
    pub ipfs_port: Option<u16>,
    /// smanager's admin port (not with `--peers-only`); default: any.
    #[arg(long, default_value_t = 0)]
    pub admin_port: u16,
    /// Only the chain, sWorker and IPFS simulators, on crust-node's ports: a separately started smanager (a
    /// container, the TypeScript manager, polkadot.js) is pointed at them as at a real crust-node.
    #[arg(long)]
    pub peers_only: bool,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5)]
    pub report_secs: u64,
    /// Members of the devnet's storage group, this node being one of them: it takes the CIDs of its group slot
    /// (TypeScript's rule), about 1/N of them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub group_members: u32,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What the devnet did, printed as `summary: {json}`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub orders: usize,
    pub indexed: i64,
    pub pinned: i64,
    pub sealed: i64,
    pub cleaned: i64,
    pub failed: i64,
    /// Failed files whose content the scenario made unavailable (should equal `failed`).
    pub failed_unavailable: i64,
    pub queued: i64,
    pub pulling: i64,
    pub blocks: u32,
    /// Size of the devnet group, and how many of the ordered CIDs fall in this node's slot.
    pub group_members: usize,
    pub cids_in_my_slot: usize,
}

fn summarize(db: &Db, chain: &DevChain, sworker: &SworkerSim, group: &GroupSpec) -> anyhow::Result<Summary> {
    let truth = chain.ground_truth();
    // The chain keeps members in a BTreeSet: a member's index is its rank among the sorted account ids.
    let mut sorted = group.members.clone();
    sorted.sort();
    let my_index = sorted.iter().position(|m| *m == account("member-0")).unwrap_or(0) as u64;
    let cids: std::collections::BTreeSet<&str> = truth.orders.iter().map(|o| o.cid.as_str()).collect();
    let cids_in_my_slot = cids
        .iter()
        .filter(|c| crate::decision::cid_mod(c, sorted.len() as u64) == Some(my_index))
        .count();
    let mut c = db.conn()?;
    let indexed: Option<i64> = file_owners::table
        .select(diesel::dsl::sum(file_owners::orders))
        .first::<Option<i64>>(&mut c)?;
    let count = |c: &mut PgConnection, s: &[FileStatus]| -> anyhow::Result<i64> {
        Ok(files::table
            .filter(files::status.eq_any(s.to_vec()))
            .count()
            .get_result(c)?)
    };
    let failed_cids: Vec<String> = files::table
        .filter(files::status.eq_any(vec![FileStatus::Failed, FileStatus::PinError]))
        .select(files::cid)
        .load(&mut c)?;
    let unavailable: std::collections::HashSet<&str> = truth
        .orders
        .iter()
        .filter(|o| !o.available)
        .map(|o| o.cid.as_str())
        .collect();
    let st = sworker.stats();
    Ok(Summary {
        orders: truth.orders.len(),
        indexed: indexed.unwrap_or(0),
        pinned: pins::table
            .filter(pins::status.eq(PinStatus::Pinned))
            .count()
            .get_result(&mut c)?,
        sealed: (st.valid as u64 + st.deleted_ok) as i64,
        cleaned: count(&mut c, &[FileStatus::Cleaned])?,
        failed: failed_cids.len() as i64,
        failed_unavailable: failed_cids.iter().filter(|c| unavailable.contains(c.as_str())).count() as i64,
        queued: count(&mut c, &[FileStatus::New, FileStatus::Queued])?,
        pulling: count(&mut c, &[FileStatus::Pinning])?,
        blocks: chain.finalized_number(),
        group_members: group.members.len(),
        cids_in_my_slot,
    })
}

/// crust-node's ports: chain WebSocket, sWorker API, IPFS RPC.
pub const CRUST_NODE_PORTS: (u16, u16, u16) = (19944, 12222, 5001);

/// The simulated crust-node: chain, sWorker and IPFS, and the group this node (`me`) belongs to.
struct Peers {
    me: [u8; 32],
    group: GroupSpec,
    chain: DevChain,
    sworker: SworkerSim,
    ipfs: IpfsSim,
}

impl Peers {
    /// Starts the three simulators; a port flag left out takes `default` (0 = any free port).
    async fn start(args: &DevnetArgs, default: (u16, u16, u16)) -> anyhow::Result<Peers> {
        let content = ContentStore::new();
        let me = account("member-0");
        let group = GroupSpec {
            owner: account("owner"),
            members: std::iter::once(me)
                .chain((1..args.group_members).map(|i| account(&format!("member-{i}"))))
                .collect(),
        };
        let chain_port = args.chain_port.unwrap_or(default.0);
        let chain = DevChain::start(
            ChainConfig {
                bind: local(chain_port),
                block_ms: args.block_ms.max(1),
                scenario: ScenarioConfig {
                    seed: args.seed,
                    order_rate: args.order_rate,
                    ..Default::default()
                },
                group: group.clone(),
                prefill: 0,
            },
            Arc::new(content.clone()),
        )
        .await
        .with_context(|| format!("starting the devnet chain on port {chain_port}"))?;
        let sworker_port = args.sworker_port.unwrap_or(default.1);
        let sworker = SworkerSim::start(
            local(sworker_port),
            SworkerConfig {
                capacity_bytes: 1 << 40,
                srd_gib: 4096,
                ..Default::default()
            },
        )
        .with_context(|| format!("starting the sWorker simulator on port {sworker_port}"))?;
        let ipfs_port = args.ipfs_port.unwrap_or(default.2);
        let ipfs = IpfsSim::start(local(ipfs_port), IpfsConfig::default(), content.clone(), &sworker.url())
            .with_context(|| format!("starting the IPFS simulator on port {ipfs_port}"))?;
        sworker.set_ipfs_url(&ipfs.url());
        Ok(Peers {
            me,
            group,
            chain,
            sworker,
            ipfs,
        })
    }

    fn account(&self) -> String {
        ss58::encode(ss58::CRUST_PREFIX, &self.me)
    }

    /// The `endpoints:` line's common part; callers add their own keys.
    fn endpoints(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("chain".into(), self.chain.ws_url().into());
        m.insert("chain_http".into(), self.chain.http_url().into());
        m.insert("sworker".into(), self.sworker.url().into());
        m.insert("ipfs".into(), self.ipfs.url().into());
        m.insert("account".into(), self.account().into());
        m
    }

    async fn stop(self) {
        self.ipfs.stop().await;
        self.sworker.stop().await;
        self.chain.stop().await;
    }
}

/// Runs until `--duration` elapses or Ctrl-C/SIGTERM, printing `progress: {report()}` every `--report-secs`.
async fn until_stopped(args: &DevnetArgs, mut report: impl FnMut(Duration) -> String) {
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + Duration::from_secs(d));
    let stop = crate::app::shutdown_signal();
    tokio::pin!(stop);
    let mut tick = actix_rt::time::interval(Duration::from_secs(args.report_secs.max(1)));
    loop {
        let until_end = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        tokio::select! {
            _ = &mut stop => break,
            _ = actix_rt::time::sleep(until_end) => {
                if deadline.is_some_and(|d| Instant::now() >= d) { break; }
            }
            _ = tick.tick() => println!("progress: {}", report(started.elapsed())),
        }
    }
}

/// Runs the devnet until `--duration` elapses or Ctrl-C/SIGTERM.
pub fn run(args: DevnetArgs, log_format: LogFormat) -> anyhow::Result<()> {
    crate::logging::init(log_format);
    if args.peers_only {
        return run_peers(args);
    }
    let pg = DevPostgres::start(std::env::var("DATABASE_URL").ok().as_deref()).context("starting PostgreSQL")?;
    let pg_url = pg.url.clone();
    let system = actix_rt::System::new();
    let summary = system.block_on(async move {
        let peers = Peers::start(&args, (0, 0, 0)).await?;
        let mut s = Settings::default();
        s.chain.account = peers.account();
        s.chain.end_point = peers.chain.ws_url();
        s.chain.poll_interval_ms = 200;
        s.chain.group_refresh_secs = 5;
        s.sworker.end_point = peers.sworker.url();
        s.ipfs.end_point = peers.ipfs.url();
        s.ipfs.gc_interval_secs = 60;
        s.database.url = pg_url.clone();
        s.admin.bind = local(args.admin_port).to_string();
        s.scheduler.tick_secs = 2;
        s.puller.base_timeout_secs = 20;
        s.puller.lease_secs = 15;
        s.sealer.check_interval_secs = 5;
        s.cleanup.interval_secs = 2;
        s.retry.base_delay_secs = 10;
        s.retry.max_delay_secs = 60;
        s.retry.max_attempts = 3;
        s.log.format = log_format;
        let db = Db::connect(&s.database).context("connecting to the devnet database")?;
        db.migrate().context("migrating the devnet database")?;
        let settings = Rc::new(s);
        let chain_source = crate::chain::client::connect(&settings.chain);
        let actors = crate::app::start_pipeline(settings.clone(), db.clone(), chain_source);
        let admin = crate::http::start(&settings, db.clone(), Some(actors.clone())).context("starting admin HTTP")?;
        let mut endpoints = peers.endpoints();
        endpoints.insert("admin".into(), format!("http://{}", admin.addr).into());
        endpoints.insert("database".into(), crate::config::redact_url(&pg_url).into());
        println!("endpoints: {}", serde_json::Value::Object(endpoints));
        until_stopped(&args, |elapsed| {
            match summarize(&db, &peers.chain, &peers.sworker, &peers.group) {
                Ok(s) => format!(
                    "t={}s block={} orders={} indexed={} queued={} pulling={} sealed={} cleaned={} failed={}",
                    elapsed.as_secs(),
                    s.blocks,
                    s.orders,
                    s.indexed,
                    s.queued,
                    s.pulling,
                    s.sealed,
                    s.cleaned,
                    s.failed
                ),
                Err(e) => format!("unavailable ({e})"),
            }
        })
        .await;
        crate::app::shutdown(&actors).await;
        let summary = summarize(&db, &peers.chain, &peers.sworker, &peers.group);
        admin.handle.stop(true).await;
        peers.stop().await;
        summary
    })?;
    println!("summary: {}", serde_json::to_string(&summary)?);
    drop(pg);
    Ok(())
}

/// `smanager devnet --peers-only`: the simulators alone, until `--duration` or Ctrl-C/SIGTERM; prints the same
/// `endpoints:` line, progress lines from the peers' own counters, and a summary of what they saw.
fn run_peers(args: DevnetArgs) -> anyhow::Result<()> {
    let system = actix_rt::System::new();
    let summary = system.block_on(async move {
        let peers = Peers::start(&args, CRUST_NODE_PORTS).await?;
        println!("endpoints: {}", serde_json::Value::Object(peers.endpoints()));
        let counters = |peers: &Peers| {
            let st = peers.sworker.stats();
            let ip = peers.ipfs.stats();
            json!({
                "blocks": peers.chain.finalized_number(), "orders": peers.chain.ground_truth().orders.len(),
                "pin_requests": ip.pin_requests, "pins_ok": ip.pins_ok,
                "max_concurrent_same_cid": ip.max_concurrent_same_cid,
                "sealed": st.valid, "pending": st.pending, "deletes": st.deletes,
            })
        };
        until_stopped(&args, |_| counters(&peers).to_string()).await;
        let summary = counters(&peers);
        peers.stop().await;
        Ok::<_, anyhow::Error>(summary)
    })?;
    println!("summary: {summary}");
    Ok(())
}
