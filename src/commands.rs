//! The CLI's commands that work on the database (`migrate`, `status`, `files`, `retry`) and `run`.

use anyhow::{bail, Context as _};

use crate::cli::{FilesCommand, RetryArgs};
use crate::config::Settings;
use crate::db::{self, files, stats, Db, FileStatus};

pub use crate::app::run;

fn open(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database).context("connecting to PostgreSQL")?;
    db.migrate().context("applying migrations")?;
    Ok(db)
}

/// `smanager migrate`: applies (or reverts) the embedded migrations without starting the pipeline.
pub fn migrate(settings: &Settings, revert_all: bool) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database).context("connecting to PostgreSQL")?;
    let mut conn = db.conn()?;
    if revert_all {
        let v = db::revert_all_migrations(&mut conn)?;
        println!("reverted {} migration(s)", v.len());
    } else {
        let v = db::run_migrations(&mut conn)?;
        println!(
            "applied {} migration(s){}",
            v.len(),
            if v.is_empty() { "; schema is current" } else { "" }
        );
    }
    Ok(())
}

/// `smanager status`: counts by status, cursors and lag, from PostgreSQL alone (works while the service runs).
pub fn status(settings: &Settings, as_json: bool) -> anyhow::Result<()> {
    let db = open(settings)?;
    let mut c = db.conn()?;
    let st = stats::snapshot(&mut c)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!("files by status:");
    for (s, n) in &st.files {
        println!("  {s:<20} {n}");
    }
    println!(
        "in flight: small {} large {}, reserved {} bytes",
        st.lanes.small, st.lanes.large, st.lanes.reserved_bytes
    );
    let show = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
    println!(
        "indexer: block {} (finalized {}, lag {})",
        show(st.indexed_block),
        show(st.finalized_block),
        show(st.lag_blocks)
    );
    for c in &st.cursors {
        println!(
            "cursor {:<10} block {:<10} scan key {} (round {}), updated {}",
            c.name,
            show(c.block_number),
            c.scan_key.as_deref().unwrap_or("-"),
            c.scan_round,
            c.updated_at
        );
    }
    match &st.group {
        Some(g) => println!(
            "group: owner {} members {} our index {}",
            g.owner.as_deref().unwrap_or("-"),
            g.members.len(),
            g.node_index.map_or("-".into(), |i| i.to_string())
        ),
        None => println!("group: not known yet"),
    }
    for (s, n) in &st.cleanups {
        println!("cleanups {s:<10} {n}");
    }
    if st.picking_paused {
        println!("picking is PAUSED");
    }
    Ok(())
}

fn parse_status(s: &str) -> anyhow::Result<FileStatus> {
    s.parse::<FileStatus>().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `smanager files list|show`.
pub fn files(settings: &Settings, cmd: FilesCommand) -> anyhow::Result<()> {
    let db = open(settings)?;
    let mut c = db.conn()?;
    match cmd {
        FilesCommand::List {
            status,
            reason,
            limit,
            offset,
            json: as_json,
        } => {
            let status = status.as_deref().map(parse_status).transpose()?;
            if !(1..=10_000).contains(&limit) {
                bail!("--limit must be from 1 to 10000");
            }
            let rows = files::list(&mut c, status, reason.as_deref(), limit, offset.max(0))?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<62} {:<18} {:>14} {:>8} {:>4}  reason",
                    "cid", "status", "size", "replicas", "try"
                );
                for f in rows {
                    println!(
                        "{:<62} {:<18} {:>14} {:>8} {:>4}  {}",
                        f.cid,
                        f.status.as_str(),
                        f.size_bytes,
                        f.replicas,
                        f.attempts,
                        f.last_error.or(f.status_reason).unwrap_or_default()
                    );
                }
            }
        }
        FilesCommand::Show { cid, json: as_json } => {
            let Some(d) = files::detail(&mut c, &cid)? else {
                bail!("no file {cid}");
            };
            if as_json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                let f = &d.file;
                println!("cid        {}", f.cid);
                println!("status     {} {}", f.status, f.status_reason.as_deref().unwrap_or(""));
                println!(
                    "size       {} bytes, tips {}, amount {}",
                    f.size_bytes, f.tips, f.amount
                );
                println!("chain      expires at block {}, {} replicas", f.expired_at, f.replicas);
                println!("seen by    events: {}, scan: {}", f.seen_by_event, f.seen_by_scan);
                println!(
                    "attempts   {} last error {}",
                    f.attempts,
                    f.last_error.as_deref().unwrap_or("-")
                );
                for o in &d.owners {
                    println!(
                        "owner      {} ({} order(s), blocks {}–{})",
                        o.owner, o.orders, o.first_block, o.last_block
                    );
                }
                for p in &d.pins {
                    println!(
                        "pin #{:<6} {:<8} lane {:<5} attempt {} progress {} sealed {} B {}",
                        p.id,
                        p.status.as_str(),
                        p.lane.as_str(),
                        p.attempt,
                        p.progress,
                        p.sealed_bytes,
                        p.error.as_deref().unwrap_or("")
                    );
                }
                for cl in &d.cleanups {
                    println!(
                        "cleanup #{} {} ({}) attempts {}",
                        cl.id, cl.status, cl.reason, cl.attempts
                    );
                }
            }
        }
    }
    Ok(())
}

/// `smanager retry`: makes failed or waiting files due now; the running Picker takes them on its next round.
pub fn retry(settings: &Settings, args: RetryArgs) -> anyhow::Result<()> {
    let db = open(settings)?;
    let mut c = db.conn()?;
    let status = args.status.as_deref().map(parse_status).transpose()?;
    if let Some(s) = status {
        if !files::RETRYABLE.contains(&s) {
            bail!(
                "files in status `{s}` cannot be retried (retryable: {})",
                files::RETRYABLE.map(|s| s.as_str()).join(", ")
            );
        }
    }
    let n = files::retry(&mut c, args.cid.as_deref(), status)?;
    if n == 0 {
        if let Some(cid) = &args.cid {
            bail!("{cid} is unknown or not in a retryable status");
        }
    }
    println!("{n} file(s) back in the queue");
    Ok(())
}

fn sworker_client(settings: &Settings) -> crate::sworker::SworkerClient {
    crate::sworker::SworkerClient::new(
        &settings.sworker.end_point,
        std::time::Duration::from_secs(settings.sworker.timeout_secs.min(10)),
    )
}

/// `smanager explain CID`: reads the live database and asks the sWorker; works while the service runs.
pub fn explain(settings: &Settings, cid: &str, as_json: bool) -> anyhow::Result<()> {
    let db = open(settings)?;
    let sworker = sworker_client(settings);
    let e = actix_rt::System::new().block_on(crate::explain::explain(&db, settings, &sworker, cid))?;
    let Some(e) = e else {
        bail!("no file {cid} in the database (not ordered, or not indexed yet)");
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", crate::explain::render_explanation(&e));
    }
    Ok(())
}

/// `smanager plan`: the next round under the configuration with `--set` overrides, without side effects.
pub fn plan(settings: &Settings, args: crate::cli::PlanArgs) -> anyhow::Result<()> {
    let proposed = crate::config::with_overrides(settings, &args.set)?;
    if !(1..=10_000).contains(&args.limit) {
        bail!("--limit must be from 1 to 10000");
    }
    let db = open(settings)?;
    let sworker = sworker_client(&proposed);
    let seed = args.seed.unwrap_or_else(rand::random);
    let p = actix_rt::System::new().block_on(crate::explain::plan(&db, &proposed, &sworker, args.limit, seed))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", crate::explain::render_plan(&p));
    }
    Ok(())
}

/// `GET /livez` (or `/readyz`) on the admin server; a non-2xx answer or no answer is an error (exit 1).
pub fn healthcheck(settings: &Settings, ready: bool) -> anyhow::Result<()> {
    let path = if ready { "readyz" } else { "livez" };
    let url = format!("http://{}/{path}", settings.admin.bind.replace("0.0.0.0", "127.0.0.1"));
    actix_rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .finish();
        let mut resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        let body = resp.body().await.unwrap_or_default();
        if resp.status().is_success() {
            println!("{}", String::from_utf8_lossy(&body).trim());
            Ok(())
        } else {
            bail!(
                "{url} answered {}: {}",
                resp.status(),
                String::from_utf8_lossy(&body).trim()
            )
        }
    })
}
