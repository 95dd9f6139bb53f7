//! Operations: `/readyz` follows its dependencies (a stalled chain, a stopped PostgreSQL) and recovers with them;
//! the status page, rendered by headless Chromium, shows the numbers the JSON API gives.

mod common;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, TestDb};
use smanager::chain::{ChainEvent, CloseReason, FileOrder, IndexedBlock};
use smanager::config::Settings;
use smanager::db::{files, Db, FileStatus};
use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;
use smanager::devnet::ipfs::{IpfsConfig, IpfsSim};
use smanager::devnet::postgres::DevPostgres;
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn readyz(url: &str) -> Option<(u16, serde_json::Value)> {
    let mut r = awc::Client::builder()
        .timeout(Duration::from_secs(15))
        .finish()
        .get(format!("{url}/readyz"))
        .send()
        .await
        .ok()?;
    let b = r.body().await.ok()?;
    Some((r.status().as_u16(), serde_json::from_slice(&b).ok()?))
}

#[actix_rt::test]
async fn readyz_follows_the_chain_and_postgres() {
    let pg = DevPostgres::start(None).expect("throwaway PostgreSQL");
    let content = ContentStore::new();
    let me = account("m0");
    let chain = DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 2,
                order_rate: 0.5,
                ..Default::default()
            },
            ..ChainConfig::quiet(200, vec![me])
        },
        Arc::new(content.clone()),
    )
    .await
    .expect("chain");
    let sworker = SworkerSim::start(any(), SworkerConfig::default()).expect("sworker");
    let ipfs = IpfsSim::start(any(), IpfsConfig::default(), content, &sworker.url()).expect("ipfs");
    let mut s = Settings::default();
    s.chain.account = smanager::chain::ss58::encode(66, &me);
    s.chain.end_point = chain.ws_url();
    s.chain.poll_interval_ms = 100;
    s.sworker.end_point = sworker.url();
    s.ipfs.end_point = ipfs.url();
    s.database.url = pg.url.clone();
    s.database.connect_timeout_secs = 2;
    s.admin.bind = "127.0.0.1:0".into();
    s.admin.chain_stale_secs = 3;
    let db = Db::connect(&s.database).expect("db");
    db.migrate().expect("migrate");
    let settings = Rc::new(s);
    let peers = smanager::app::start_pipeline(
        settings.clone(),
        db.clone(),
        smanager::chain::client::connect(&settings.chain),
    );
    let admin = smanager::http::start(&settings, db, Some(peers.clone())).expect("admin");
    let url = format!("http://{}", admin.addr);
    let ready = |want: bool, failing: &'static str| {
        let url = url.clone();
        async move {
            let (s, v) = readyz(&url).await?;
            let ok = if want {
                s == 200 && v["ready"] == true
            } else {
                s == 503 && v["checks"][failing]["ok"] == false
            };
            ok.then_some(v)
        }
    };
    eventually(60, "ready", || ready(true, "")).await;

    chain.pause();
    let v = eventually(60, "not ready while the chain stalls", || ready(false, "chain")).await;
    assert!(
        v["checks"]["chain"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no new finalized block")),
        "{v}"
    );
    chain.resume();
    eventually(60, "ready once blocks flow again", || ready(true, "")).await;

    pg.stop_server().expect("stop PostgreSQL");
    eventually(60, "not ready without PostgreSQL", || ready(false, "postgres")).await;
    pg.start_server().expect("start PostgreSQL");
    eventually(90, "ready once PostgreSQL is back", || ready(true, "")).await;

    smanager::app::shutdown(&peers).await;
    admin.handle.stop(true).await;
    chain.stop().await;
}

/// Finds `id="<id>"…>N<` in rendered HTML.
fn number_in(html: &str, id: &str) -> Option<i64> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    rest[start..end].trim().parse().ok()
}

#[actix_rt::test]
async fn status_page_in_headless_chromium_matches_the_json_api() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        let msg = "Chromium is not installed (Debian package `chromium`; scripts/test.sh installs it under CI)";
        if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
            panic!("{msg}");
        }
        eprintln!("!! SKIPPED: {msg}");
        return;
    };
    let t = TestDb::migrated();
    {
        let mut c = t.conn();
        let order = |i: u64| {
            ChainEvent::Ordered(FileOrder {
                cid: format!("Qm{i:044}"),
                size: 1000 + i,
                tips: 1,
                owner: "alice".into(),
            })
        };
        files::apply_block(
            &mut c,
            &IndexedBlock {
                number: 12,
                hash: "0xc".into(),
                timestamp_ms: None,
                events: (0..7)
                    .map(order)
                    .chain([ChainEvent::Closed {
                        cid: format!("Qm{:044}", 3),
                        reason: CloseReason::Closed,
                    }])
                    .collect(),
            },
        )
        .expect("apply");
        for i in 0..2 {
            let cid = format!("Qm{i:044}");
            files::transition(&mut c, &cid, &[FileStatus::New], FileStatus::Failed, None, None).expect("fail");
        }
    }
    let mut settings = t.app_settings();
    settings.admin.bind = "127.0.0.1:0".into();
    let admin = smanager::http::start(&settings, t.db(), None).expect("admin");
    let base = format!("http://{}", admin.addr);
    let mut r = awc::Client::default()
        .get(format!("{base}/api/v1/stats"))
        .send()
        .await
        .expect("stats");
    let stats: serde_json::Value = r.json().limit(1 << 22).await.expect("json");

    let profile = tempfile::tempdir().expect("profile dir");
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&base)
        .output()
        .await
        .expect("run chromium");
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("data-loaded=\"1\""),
        "the page loaded its data:\n{html}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for status in ["new", "failed", "closed", "sealed", "cleaned"] {
        assert_eq!(
            number_in(&html, &format!("count-{status}")),
            stats["stats"]["files"][status].as_i64(),
            "count-{status}"
        );
    }
    assert_eq!(number_in(&html, "indexed"), Some(12));
    assert_eq!(
        number_in(&html, "cleanups-pending"),
        stats["stats"]["cleanups"]["pending"].as_i64()
    );
    assert_eq!(number_in(&html, "count-new"), Some(4));
    admin.handle.stop(true).await;
}
