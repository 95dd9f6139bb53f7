//! A plain subxt 0.51 client — the legacy backend, the Crust type file from the repository, no smanager code in
//! between — follows 20 finalized blocks of the devnet chain, decodes every extrinsic and every event, and reads
//! Market.FilesV2 entries by key and by iteration.

use std::sync::Arc;

use subxt::backend::LegacyBackend;
use subxt::dynamic::Value;
use subxt::rpcs::RpcClient;
use subxt::{OnlineClient, SubstrateConfig};

use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;

#[actix_rt::test]
async fn plain_subxt_follows_decodes_and_reads_files_v2() {
    let chain = DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 5,
                order_rate: 2.0,
                close_after_blocks: 5,
                ..Default::default()
            },
            ..ChainConfig::quiet(50, vec![account("m0")])
        },
        Arc::new(ContentStore::new()),
    )
    .await
    .expect("chain");

    let yaml = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src/chain/crust_types.yaml")).expect("yaml");
    let mut types = subxt::ext::frame_decode::legacy_types::polkadot::relay_chain();
    types.extend(subxt::ext::frame_decode::legacy_types::from_bytes(&yaml).expect("crust types parse"));
    let config = SubstrateConfig::builder().set_legacy_types(types).build();
    let rpc = RpcClient::from_insecure_url(chain.ws_url()).await.expect("rpc");
    let backend = LegacyBackend::<SubstrateConfig>::builder().build(rpc);
    let api = OnlineClient::from_backend_with_config(config, Arc::new(backend))
        .await
        .expect("client");

    let mut blocks = api.stream_blocks().await.expect("finalized blocks");
    let mut seen = Vec::new();
    let (mut extrinsics, mut events, mut file_success, mut batches) = (0, 0, 0, 0);
    while seen.len() < 20 {
        let block = blocks.next().await.expect("stream open").expect("block");
        seen.push(block.number());
        let at = block.at().await.expect("at block");
        for ext in at.extrinsics().fetch().await.expect("extrinsics").iter() {
            let ext = ext.expect("extrinsic decodes");
            let _call: Value = ext
                .decode_call_data_fields_unchecked_as::<Value>()
                .expect("call fields decode");
            if ext.pallet_name() == "Utility" {
                batches += 1;
            }
            extrinsics += 1;
        }
        for ev in at.events().fetch().await.expect("events").iter() {
            let ev = ev.expect("event decodes");
            let _fields: Value = ev.decode_fields_unchecked_as::<Value>().expect("event fields decode");
            if (ev.pallet_name(), ev.event_name()) == ("Market", "FileSuccess") {
                file_success += 1;
            }
            events += 1;
        }
    }
    for w in seen.windows(2) {
        assert_eq!(w[1], w[0] + 1, "finalized blocks in order, none skipped: {seen:?}");
    }
    assert!(
        extrinsics > 20 && events > extrinsics,
        "{extrinsics} extrinsics, {events} events"
    );
    assert!(file_success >= 20, "{file_success} FileSuccess events");
    assert!(batches > 0, "orders inside utility.batch decode");

    // FilesV2: iterate, then fetch one by key.
    let at = api.at_current_block().await.expect("head");
    let files = at
        .storage()
        .entry(subxt::dynamic::storage::<Vec<Value>, Value>("Market", "FilesV2"))
        .expect("FilesV2 entry in metadata");
    let mut it = files.iter(Vec::<Value>::new()).await.expect("iterate");
    let mut n = 0;
    let mut some_key = None;
    while let Some(entry) = it.next().await {
        let entry = entry.expect("entry");
        let v = entry.value().decode_as::<Value>().expect("FileInfoV2 decodes");
        let text = v.to_string();
        assert!(text.contains("file_size") && text.contains("replicas"), "{text}");
        if some_key.is_none() {
            some_key = Some(
                entry
                    .key()
                    .expect("key")
                    .part(0)
                    .expect("part")
                    .decode_as::<Vec<u8>>()
                    .expect("cid bytes"),
            );
        }
        n += 1;
    }
    assert!(n >= 10, "{n} files");
    let cid = some_key.flatten().expect("a key");
    let one = files.fetch(vec![Value::from_bytes(cid)]).await.expect("fetch by key");
    assert!(one.decode_as::<Value>().is_ok());
    chain.stop().await;
}
