//! Test support: a fresh PostgreSQL database per test, dropped afterwards.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::prelude::*;
use diesel::{Connection, PgConnection};

use smanager::config::{DatabaseSettings, Settings};
use smanager::db::Db;

/// Admin connection URL: `SMANAGER_TEST_ADMIN_URL`, set by `scripts/test.sh`, else the machine's local server.
pub fn admin_url() -> String {
    std::env::var("SMANAGER_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates an empty database (no migrations).
    pub fn empty() -> TestDb {
        let admin = admin_url();
        let name = format!(
            "smanager_t_{}_{}_{:06x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>() & 0xffffff
        );
        let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at {admin} (run the tests through scripts/test.sh): {e}")
        });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create test database");
        let (base, _) = admin.rsplit_once('/').expect("admin URL has a database");
        TestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Creates a database with every migration applied.
    pub fn migrated() -> TestDb {
        let t = TestDb::empty();
        t.db().migrate().expect("migrations apply");
        t
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.url.clone(),
            pool_size: 4,
            connect_timeout_secs: 10,
        }
    }

    pub fn db(&self) -> Db {
        Db::connect(&self.settings()).expect("connect to test database")
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to test database")
    }

    /// Waits (up to a minute, then fails naming `what`) until a session of this database waits on a lock: a write
    /// blocked by another transaction's uncommitted row.
    #[allow(dead_code)]
    pub fn wait_for_a_lock_waiter(&self, what: &str) {
        let started = std::time::Instant::now();
        loop {
            let waiting: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .get_result(&mut self.conn())
            .unwrap_or(0);
            if waiting > 0 {
                return;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Full settings pointing at this database, with fast intervals for tests.
    pub fn app_settings(&self) -> Settings {
        app_settings(self.settings())
    }
}

/// Full settings pointing at `database`, with fast intervals for tests.
pub fn app_settings(database: DatabaseSettings) -> Settings {
    let mut s = Settings {
        database,
        ..Default::default()
    };
    s.chain.account = "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa".into();
    s.chain.poll_interval_ms = 50;
    s.chain.reconnect_min_secs = 1;
    s.chain.reconnect_max_secs = 2;
    s.scheduler.tick_secs = 1;
    s.scheduler.min_srd_ratio = 0;
    s.scheduler.min_sys_free_gib = 0;
    s.puller.lease_secs = 6;
    s.puller.base_timeout_secs = 60;
    s.sealer.check_interval_secs = 1;
    s.cleanup.interval_secs = 1;
    s.retry.base_delay_secs = 1;
    s.retry.max_delay_secs = 4;
    s
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds (generous: tests run on busy machines).
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Kills the child process when dropped, so a failing test leaves no smanager behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Crust's real runtimes and metadata (`../shared/crust`): `$CRUST_ARTEFACTS`, else the folder beside the checkout,
/// else the machine's shared copy. `None` (after a loud skip message) outside CI when none exists; panics under
/// `CI=true`, where the real-runtime tests must run.
pub fn crust_artefacts() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("CRUST_ARTEFACTS").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crust")),
        Some(std::path::PathBuf::from("/work/shared/crust")),
    ];
    if let Some(dir) = candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("metadata-spec25.hex").is_file())
    {
        return Some(dir);
    }
    let msg =
        "Crust's real runtime artefacts were not found (set CRUST_ARTEFACTS to the folder holding metadata-spec25.hex)";
    if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
        panic!("{msg}");
    }
    eprintln!("!! SKIPPED: {msg}");
    None
}

/// An npm peer installed by `scripts/test.sh` into `.cache/<name>` (or the folder named by `var`), checked by a file
/// it must contain. `None` after a loud skip message outside CI; panics under `CI=true`, where the peers must run.
pub fn npm_peer(var: &str, name: &str, needs: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os(var).map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache")
            .join(name)
    });
    if dir.join(needs).exists() {
        return Some(dir);
    }
    let msg = format!(
        "{name} is not installed in {} (scripts/test.sh installs it)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
        panic!("{msg}");
    }
    eprintln!("!! SKIPPED: {msg}");
    None
}

/// The pipeline following `settings.chain` with IPFS and the sWorker down (nothing listens on port 9): what the
/// indexing tests need, and a check that missing peers never disturb indexing.
pub fn start_indexing(t: &TestDb, settings: Settings, holder: &str) -> smanager::actors::Peers {
    start_indexing_on(t.db(), settings, holder)
}

/// `start_indexing` on any database.
pub fn start_indexing_on(db: Db, settings: Settings, holder: &str) -> smanager::actors::Peers {
    start_with_sworker(db, settings, holder, "http://127.0.0.1:9")
}

/// The pipeline with IPFS down and the sWorker at `sworker` (nothing listens on port 9).
pub fn start_with_sworker(db: Db, settings: Settings, holder: &str, sworker: &str) -> smanager::actors::Peers {
    use std::rc::Rc;
    use std::time::Duration;
    let settings = Rc::new(settings);
    smanager::actors::start(smanager::actors::Deps {
        db,
        chain: smanager::chain::client::connect(&settings.chain),
        settings,
        ipfs: Rc::new(smanager::ipfs::KuboClient::new(
            "http://127.0.0.1:9",
            Duration::from_secs(1),
        )),
        sworker: Rc::new(smanager::sworker::SworkerClient::new(sworker, Duration::from_secs(5))),
        holder: holder.into(),
    })
}

/// Fails naming every block the indexer recorded as undecodable: a real or devnet block that does not decode is
/// where orders were lost.
pub fn assert_every_block_decoded(conn: &mut PgConnection, what: &str) {
    let undecodable: Option<serde_json::Value> =
        smanager::db::state::kv_get(conn, smanager::db::state::KV_UNDECODABLE_BLOCKS).expect("kv_state");
    assert!(
        undecodable
            .as_ref()
            .and_then(|v| v.as_array())
            .is_none_or(|a| a.is_empty()),
        "{what}: undecodable blocks {undecodable:?}"
    );
}

/// A devnet chain (no prefill, one group member) that has already produced `blocks` blocks of `scenario`.
pub async fn devnet_history(
    scenario: smanager::devnet::chain::ScenarioConfig,
    blocks: u32,
) -> smanager::devnet::chain::DevChain {
    use smanager::devnet::chain::{account, ChainConfig, DevChain};
    let chain = DevChain::start(
        ChainConfig {
            scenario,
            ..ChainConfig::quiet(0, vec![account("m0")])
        },
        std::sync::Arc::new(smanager::devnet::content::ContentStore::new()),
    )
    .await
    .expect("devnet chain");
    for _ in 0..blocks {
        chain.produce_block();
    }
    chain
}

/// Runs a polkadot.js script of `test-peers/polkadotjs` with `args` and returns the JSON line it prints last.
pub async fn polkadot_js(dir: &std::path::Path, script: &str, args: &[&str]) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-peers/polkadotjs")
        .join(script);
    let out = tokio::process::Command::new("node")
        .arg(path)
        .args(args)
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).expect("a JSON line")
}

/// Block `n` read by the layout reader and by subxt alone, which must agree (and succeed).
pub async fn read_by_both(client: &smanager::chain::client::SubxtChain, n: u64) -> smanager::chain::IndexedBlock {
    use smanager::chain::client::Reader;
    let by_layout = client
        .read_block(n, Reader::Layout)
        .await
        .unwrap_or_else(|e| panic!("block {n} by layout: {e}"));
    let by_subxt = client
        .read_block(n, Reader::Subxt)
        .await
        .unwrap_or_else(|e| panic!("block {n} by subxt: {e}"));
    assert_eq!(by_layout, by_subxt, "block {n}: the layout reader and subxt disagree");
    by_layout
}

/// The hash of block `n`, which the node must have.
pub async fn block_hash(client: &smanager::chain::client::SubxtChain, n: u64) -> subxt::utils::H256 {
    client
        .rpc()
        .chain_get_block_hash(Some(n.into()))
        .await
        .expect("block hash")
        .unwrap_or_else(|| panic!("block {n} exists"))
}

/// `Timestamp.Now` as the runtime stored it at `hash`: what a block's decoded time must equal.
pub async fn stored_timestamp(client: &smanager::chain::client::SubxtChain, hash: subxt::utils::H256) -> Option<u64> {
    let bytes = client
        .rpc()
        .state_get_storage(&smanager::chain::keys::timestamp_now(), Some(hash))
        .await
        .expect("Timestamp.Now")?;
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}
