//! A storage node for end-to-end tests: its own sWorker and IPFS simulators, its own database, and the smanager
//! pipeline, against a shared devnet chain.
#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use smanager::actors::Peers;
use smanager::chain::ss58;
use smanager::devnet::content::ContentStore;
use smanager::devnet::ipfs::{IpfsConfig, IpfsSim};
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};

use crate::common::TestDb;

/// (seen_by_event, seen_by_scan, first_seen_block, status, reason) of one file on one node.
pub type Provenance = (bool, bool, Option<i64>, smanager::db::FileStatus, Option<String>);

pub struct Node {
    pub db: TestDb,
    pub sworker: SworkerSim,
    pub ipfs: IpfsSim,
    pub peers: Peers,
}

pub fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Node {
    /// Starts a node for `account` against the chain at `ws`.
    pub fn start(
        ws: &str,
        account: &[u8; 32],
        content: &ContentStore,
        tweak: impl FnOnce(&mut smanager::config::Settings),
    ) -> Node {
        let db = TestDb::migrated();
        let sworker = SworkerSim::start(any(), SworkerConfig::default()).expect("sworker");
        let ipfs = IpfsSim::start(any(), IpfsConfig::default(), content.clone(), &sworker.url()).expect("ipfs");
        sworker.set_ipfs_url(&ipfs.url());
        let mut s = db.app_settings();
        s.chain.account = ss58::encode(ss58::CRUST_PREFIX, account);
        s.chain.end_point = ws.to_string();
        s.chain.group_refresh_secs = 2;
        s.chain.scan_cooldown_secs = 3600;
        s.sworker.end_point = sworker.url();
        s.ipfs.end_point = ipfs.url();
        s.puller.stall_timeout_secs = 3;
        s.puller.base_timeout_secs = 30;
        tweak(&mut s);
        let settings = Rc::new(s);
        let peers = smanager::app::start_pipeline(
            settings.clone(),
            db.db(),
            smanager::chain::client::connect(&settings.chain),
        );
        Node {
            db,
            sworker,
            ipfs,
            peers,
        }
    }

    pub fn status(&self, cid: &str) -> Option<smanager::db::FileStatus> {
        use diesel::prelude::*;
        use smanager::db::schema::files;
        files::table
            .find(cid)
            .select(files::status)
            .first(&mut self.db.conn())
            .ok()
    }

    /// The file's status and its last error.
    pub fn status_and_error(&self, cid: &str) -> Option<(smanager::db::FileStatus, Option<String>)> {
        use diesel::prelude::*;
        use smanager::db::schema::files;
        let q = files::table.find(cid).select((files::status, files::last_error));
        q.first(&mut self.db.conn()).ok()
    }

    /// The file's status and the reason recorded with it.
    pub fn status_and_reason(&self, cid: &str) -> Option<(smanager::db::FileStatus, Option<String>)> {
        use diesel::prelude::*;
        use smanager::db::schema::files;
        let q = files::table.find(cid).select((files::status, files::status_reason));
        q.first(&mut self.db.conn()).ok()
    }

    /// How the file reached this node: (seen_by_event, seen_by_scan, first_seen_block, status, reason).
    pub fn provenance(&self, cid: &str) -> Option<Provenance> {
        use diesel::prelude::*;
        use smanager::db::schema::files;
        let q = files::table.find(cid).select((
            files::seen_by_event,
            files::seen_by_scan,
            files::first_seen_block,
            files::status,
            files::status_reason,
        ));
        q.first(&mut self.db.conn()).ok()
    }

    /// The indexer's cursor (last block applied).
    pub fn indexed_block(&self) -> Option<i64> {
        smanager::db::state::cursor(&mut self.db.conn(), smanager::db::state::INDEXER_CURSOR)
            .ok()
            .flatten()
            .and_then(|c| c.block_number)
    }

    pub async fn stop(self) {
        smanager::app::shutdown(&self.peers).await;
        self.ipfs.stop().await;
        self.sworker.stop().await;
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}
