//! Operations: `/readyz` follows its dependencies (a stalled chain, a stopped PostgreSQL) and recovers with them;
//! the status page, rendered by headless Chromium, shows the numbers the JSON API gives.

mod common;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, TestDb};
use diesel::RunQueryDsl;
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

/// A node that is still syncing is waited for, however long (here: three times `chain.finalizedTimeoutSecs`),
/// without the watchdog exiting the process (which would end this test binary), and readiness says why.
#[actix_rt::test]
async fn a_syncing_node_is_waited_for_and_readiness_says_so() {
    let content = ContentStore::new();
    let me = account("m0");
    let chain = DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain");
    chain.set_syncing(true);
    let t = TestDb::migrated();
    let mut s = t.app_settings();
    s.chain.account = smanager::chain::ss58::encode(66, &me);
    s.chain.end_point = chain.ws_url();
    s.chain.finalized_timeout_secs = 2;
    s.admin.bind = "127.0.0.1:0".into();
    let settings = Rc::new(s);
    let peers = smanager::app::start_pipeline(
        settings.clone(),
        t.db(),
        smanager::chain::client::connect(&settings.chain),
    );
    let admin = smanager::http::start(&settings, t.db(), Some(peers.clone())).expect("admin");
    let url = format!("http://{}", admin.addr);
    let v = eventually(30, "readiness reports the sync", || {
        let url = url.clone();
        async move {
            let (code, v) = readyz(&url).await?;
            (code == 503
                && v["checks"]["chain"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("syncing")))
            .then_some(v)
        }
    })
    .await;
    assert!(v["checks"]["chain"]["syncing_since"].is_string(), "{v}");
    // Three watchdog periods of syncing: the process is still here and has indexed nothing.
    actix_rt::time::sleep(Duration::from_secs(6)).await;
    let indexed: Option<i64> = {
        let mut c = t.conn();
        smanager::db::stats::snapshot(&mut c).expect("stats").indexed_block
    };
    assert_eq!(indexed, None, "nothing is indexed while the node syncs");
    chain.set_syncing(false);
    eventually(60, "indexing once synced", || {
        let mut c = t.conn();
        let st = smanager::db::stats::snapshot(&mut c).expect("stats");
        async move { (st.indexed_block.is_some() && st.node_syncing_since.is_none()).then_some(()) }
    })
    .await;
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

/// Headless Chromium renders `url` after its scripts ran; returns the DOM (and saves a screenshot when asked).
async fn chromium_dom(chromium: &str, url: &str, screenshot: Option<&std::path::Path>) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match screenshot {
        Some(path) => {
            cmd.arg("--window-size=1280,2200")
                .arg(format!("--screenshot={}", path.display()));
        }
        None => {
            cmd.arg("--dump-dom");
        }
    }
    let out = cmd.arg(url).output().await.expect("run chromium");
    let html = String::from_utf8_lossy(&out.stdout).into_owned();
    if screenshot.is_none() {
        assert!(
            html.contains("data-loaded=\"1\""),
            "the page loaded its data:\n{html}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    html
}

/// The value of `attr="…"` on the element with `id="<id>"`.
fn attr_of(html: &str, id: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let key = format!("{attr}=\"");
    let v = tag.find(&key)? + key.len();
    let end = tag[v..].find('"')? + v;
    Some(tag[v..end].replace("&amp;", "&"))
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
                events: (0..12)
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
        // Skipped by two rules (numbers differ per file, the reason groups do not).
        for (i, reason) in [
            (4, "group slot 1 belongs to another member"),
            (5, "group slot 2 belongs to another member"),
            (6, "expires in 30 days (< minLifetimeDays 120)"),
        ] {
            let cid = format!("Qm{i:044}");
            files::transition(
                &mut c,
                &cid,
                &[FileStatus::New],
                FileStatus::Skipped,
                Some(reason),
                None,
            )
            .expect("skip");
        }
        // Three seals in the last 24 hours: two an hour ago, one just now.
        for (i, ago_min) in [(7, 61), (8, 65), (9, 0)] {
            diesel::sql_query(format!(
                "INSERT INTO pins (cid, status, lane, size_bytes, finished_at) VALUES ('Qm{i:044}', 'pinned', 'small', {}, now() - interval '{ago_min} minutes')",
                1 << 20
            ))
            .execute(&mut c)
            .expect("pin");
            files::transition(
                &mut c,
                &format!("Qm{i:044}"),
                &[FileStatus::New],
                FileStatus::Sealed,
                None,
                None,
            )
            .expect("sealed");
        }
    }
    let sworker = SworkerSim::start(
        any(),
        SworkerConfig {
            capacity_bytes: 3 << 40,
            srd_gib: 1024,
            sys_free_gib: 80,
            ..Default::default()
        },
    )
    .expect("sworker");
    let mut settings = t.app_settings();
    settings.admin.bind = "127.0.0.1:0".into();
    settings.sworker.end_point = sworker.url();
    let admin = smanager::http::start(&settings, t.db(), None).expect("admin");
    let base = format!("http://{}", admin.addr);
    let get = |path: String| async move {
        let mut r = awc::Client::default().get(path).send().await.expect("api");
        r.json::<serde_json::Value>().limit(1 << 22).await.expect("json")
    };
    let api = get(format!("{base}/api/v1/stats")).await;
    let stats = &api["stats"];

    let html = chromium_dom(chromium, &base, None).await;
    for status in ["new", "failed", "closed", "sealed", "cleaned", "skipped"] {
        assert_eq!(
            number_in(&html, &format!("count-{status}")),
            stats["files"][status].as_i64(),
            "count-{status}"
        );
    }
    assert_eq!(number_in(&html, "indexed"), Some(12));
    assert_eq!(
        number_in(&html, "cleanups-pending"),
        stats["cleanups"]["pending"].as_i64()
    );
    // Reasons with counts, the same groups as the API, with links to their files.
    let reasons = stats["reasons"].as_array().expect("reasons");
    let slot = reasons
        .iter()
        .find(|r| r["reason"] == "group slot N belongs to another member")
        .expect("group slot reason");
    assert_eq!(slot["files"], 2);
    for r in reasons {
        let needle = format!(
            "data-status=\"{}\" data-reason=\"{}\" data-files=\"{}\"",
            r["status"].as_str().unwrap_or_default(),
            r["reason"].as_str().unwrap_or_default().replace('<', "&lt;"),
            r["files"]
        );
        assert!(html.contains(&needle), "reason row {needle} in\n{html}");
    }
    // Capacity as the sWorker reports it, with its thresholds.
    let cap = &api["capacity"];
    assert_eq!(
        attr_of(&html, "cap-free", "data-value"),
        Some(cap["sworker"]["free_bytes"].to_string())
    );
    assert_eq!(
        attr_of(&html, "cap-sys", "data-value"),
        Some(cap["sworker"]["sys_free_bytes"].to_string())
    );
    assert!(html.contains("80.0 GiB"), "system disk in GiB");
    // 24 hours of seals from the database: three files, 3 MiB.
    let day_files: i64 = stats["sealed_24h"]
        .as_array()
        .expect("24h")
        .iter()
        .filter_map(|h| h["files"].as_i64())
        .sum();
    assert_eq!(day_files, 3);
    assert_eq!(stats["sealed_24h"].as_array().map(Vec::len), Some(24));
    assert_eq!(attr_of(&html, "history-summary", "data-files"), Some("3".into()));
    assert_eq!(
        attr_of(&html, "history-summary", "data-bytes"),
        Some((3 << 20).to_string())
    );

    // A reason's files, and a file's own page with the same content as `explain`.
    let listed = chromium_dom(
        chromium,
        &format!("{base}/#files?status=skipped&reason=group%20slot%20N%20belongs%20to%20another%20member"),
        None,
    )
    .await;
    assert!(listed.contains(&format!("Qm{:044}", 4)) && listed.contains(&format!("Qm{:044}", 5)));
    assert!(!listed.contains(&format!("Qm{:044}\"", 6)), "only that reason's files");
    let cid = format!("Qm{:044}", 10);
    let explained = get(format!("{base}/api/v1/files/{cid}/explain")).await;
    let page = chromium_dom(chromium, &format!("{base}/#file={cid}"), None).await;
    assert_eq!(
        attr_of(&page, "file-verdict", "data-verdict").as_deref(),
        explained["decision"]["verdict"].as_str()
    );
    for check in explained["decision"]["checks"].as_array().expect("checks") {
        let needle = format!(
            "data-rule=\"{}\" data-outcome=\"{}\"",
            check["rule"].as_str().unwrap_or_default(),
            check["outcome"].as_str().unwrap_or_default()
        );
        assert!(page.contains(&needle), "{needle} on the file page");
    }
    assert!(page.contains("id=\"file-history\""));

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    chromium_dom(chromium, &base, Some(&shots.join("status-page.png"))).await;
    chromium_dom(
        chromium,
        &format!("{base}/#file={cid}"),
        Some(&shots.join("status-file.png")),
    )
    .await;
    assert!(
        shots.join("status-page.png").metadata().is_ok_and(|m| m.len() > 10_000),
        "screenshot saved"
    );
    admin.handle.stop(true).await;
    sworker.stop().await;
}
