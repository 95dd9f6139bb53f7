//! Our legacy type registry (`src/chain/crust_types.yaml` over Substrate's base types) against Crust's real metadata:
//! every call argument, event argument, storage key and value, and constant type of every pallet must resolve, all
//! the way down, to something decodable. A type left unresolved is what made real spec-25 blocks undecodable
//! (`ImOnline.SomeOffline`, `Grandpa.NewAuthorities`, multisig and bridge events), losing the orders beside them.
//! The metadata is Crust's own (`../shared/crust/metadata-spec25.hex`, see tests/common `crust_artefacts`).

#[path = "common/chopsticks.rs"]
mod chopsticks;
mod common;

use std::collections::{BTreeSet, HashSet, VecDeque};

use parity_scale_codec::Decode;
use scale_info_legacy::{LookupName, TypeRegistrySet};
use subxt::ext::frame_metadata::decode_different::DecodeDifferent;
use subxt::ext::frame_metadata::v12::{RuntimeMetadataV12, StorageEntryType};
use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
use subxt::ext::scale_type_resolver::{
    BitsOrderFormat, BitsStoreFormat, FieldIter, PathIter, Primitive, ResolvedTypeVisitor, UnhandledKind, VariantIter,
};

/// The type ids a resolved type refers to, or `None` when the type is unknown.
struct Children;

impl<'r> ResolvedTypeVisitor<'r> for Children {
    type TypeId = LookupName;
    type Value = Option<Vec<LookupName>>;

    fn visit_unhandled(self, kind: UnhandledKind) -> Self::Value {
        match kind {
            UnhandledKind::NotFound => None,
            _ => Some(vec![]),
        }
    }
    fn visit_composite<Path: PathIter<'r>, Fields: FieldIter<'r, LookupName>>(self, _: Path, f: Fields) -> Self::Value {
        Some(f.map(|f| f.id).collect())
    }
    fn visit_variant<Path, Fields, Var>(self, _: Path, variants: Var) -> Self::Value
    where
        Path: PathIter<'r>,
        Fields: FieldIter<'r, LookupName>,
        Var: VariantIter<'r, Fields>,
    {
        Some(
            variants
                .flat_map(|v| v.fields.map(|f| f.id).collect::<Vec<_>>())
                .collect(),
        )
    }
    fn visit_sequence<Path: PathIter<'r>>(self, _: Path, id: LookupName) -> Self::Value {
        Some(vec![id])
    }
    fn visit_array(self, id: LookupName, _: usize) -> Self::Value {
        Some(vec![id])
    }
    fn visit_tuple<Ids: ExactSizeIterator<Item = LookupName>>(self, ids: Ids) -> Self::Value {
        Some(ids.collect())
    }
    fn visit_primitive(self, _: Primitive) -> Self::Value {
        Some(vec![])
    }
    fn visit_compact(self, id: LookupName) -> Self::Value {
        Some(vec![id])
    }
    fn visit_bit_sequence(self, _: BitsStoreFormat, _: BitsOrderFormat) -> Self::Value {
        Some(vec![])
    }
}

fn text<O: AsRef<str>>(d: &DecodeDifferent<&'static str, O>) -> String {
    match d {
        DecodeDifferent::Encode(s) => s.to_string(),
        DecodeDifferent::Decoded(s) => s.as_ref().to_string(),
    }
}

fn items<B, O: Clone>(d: &DecodeDifferent<B, Vec<O>>) -> Vec<O> {
    match d {
        DecodeDifferent::Decoded(v) => v.clone(),
        DecodeDifferent::Encode(_) => Vec::new(),
    }
}

/// Every (pallet, item, type name) the metadata uses.
fn used_types(md: &RuntimeMetadataV12) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for m in items(&md.modules) {
        let pallet = text(&m.name);
        for c in m.calls.as_ref().map(items).unwrap_or_default() {
            for a in items(&c.arguments) {
                out.push((
                    pallet.clone(),
                    format!("call {}.{}", text(&c.name), text(&a.name)),
                    text(&a.ty),
                ));
            }
        }
        for e in m.event.as_ref().map(items).unwrap_or_default() {
            for (i, a) in items(&e.arguments).iter().enumerate() {
                out.push((pallet.clone(), format!("event {} arg {i}", text(&e.name)), a.clone()));
            }
        }
        if let Some(DecodeDifferent::Decoded(st)) = &m.storage {
            for s in items(&st.entries) {
                let name = text(&s.name);
                match &s.ty {
                    StorageEntryType::Plain(v) => out.push((pallet.clone(), format!("storage {name} value"), text(v))),
                    StorageEntryType::Map { key, value, .. } => {
                        out.push((pallet.clone(), format!("storage {name} key"), text(key)));
                        out.push((pallet.clone(), format!("storage {name} value"), text(value)));
                    }
                    StorageEntryType::DoubleMap { key1, key2, value, .. } => {
                        out.push((pallet.clone(), format!("storage {name} key1"), text(key1)));
                        out.push((pallet.clone(), format!("storage {name} key2"), text(key2)));
                        out.push((pallet.clone(), format!("storage {name} value"), text(value)));
                    }
                }
            }
        }
        for c in items(&m.constants) {
            out.push((pallet.clone(), format!("constant {}", text(&c.name)), text(&c.ty)));
        }
    }
    out
}

/// The first unresolvable type reachable from `ty` (looked up in `pallet`'s scope), with the path to it.
fn unresolved(types: &TypeRegistrySet, pallet: &str, ty: &str) -> Option<String> {
    let root = match LookupName::parse(ty) {
        Ok(n) => n.in_pallet(pallet),
        Err(e) => return Some(format!("`{ty}` does not parse: {e}")),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue = VecDeque::from([(root, ty.to_string())]);
    while let Some((name, path)) = queue.pop_front() {
        if !seen.insert(format!("{name:?}")) {
            continue;
        }
        match types.resolve_type(name.clone(), Children) {
            Ok(Some(children)) => {
                for c in children {
                    let p = format!("{path} → {c}");
                    queue.push_back((c, p));
                }
            }
            Ok(None) => return Some(format!("unknown type `{name}` (reached as {path})")),
            Err(e) => return Some(format!("`{name}` does not resolve: {e} (reached as {path})")),
        }
    }
    None
}

/// Every failure, one line each: pallet, item, type and what is missing.
fn check(md: &RuntimeMetadataV12, spec: u64) -> Vec<String> {
    let registry = smanager::chain::legacy_types().expect("crust_types.yaml loads");
    let mut types = registry.for_spec_version(spec).to_owned();
    let from_md = subxt::ext::frame_decode::helpers::type_registry_from_metadata(md).expect("metadata types");
    types.prepend(from_md);
    let mut failures = BTreeSet::new();
    for (pallet, item, ty) in used_types(md) {
        if let Some(why) = unresolved(&types, &pallet, &ty) {
            failures.insert(format!("{pallet} {item}: `{ty}`: {why}"));
        }
    }
    failures.into_iter().collect()
}

fn v12(bytes: &[u8]) -> RuntimeMetadataV12 {
    match RuntimeMetadataPrefixed::decode(&mut &bytes[..])
        .expect("metadata decodes")
        .1
    {
        RuntimeMetadata::V12(md) => md,
        _ => panic!("Crust's runtimes use metadata V12"),
    }
}

#[test]
fn every_type_of_real_spec25_metadata_resolves() {
    let Some(dir) = common::crust_artefacts() else { return };
    let hex_text = std::fs::read_to_string(dir.join("metadata-spec25.hex")).expect("read metadata-spec25.hex");
    let bytes = hex::decode(hex_text.trim().trim_start_matches("0x")).expect("hex");
    let md = v12(&bytes);
    let pallets = items(&md.modules).len();
    assert_eq!(pallets, 33, "spec 25 has 33 pallets");
    let failures = check(&md, 25);
    assert!(
        failures.is_empty(),
        "{} type(s) of the real spec-25 metadata do not resolve:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Starts chopsticks on Crust's genesis (spec 1) and asks it for that runtime's metadata.
async fn genesis_metadata(artefacts: &std::path::Path) -> Option<Vec<u8>> {
    let peer = chopsticks::crust(artefacts, "mainnet-genesis.json")?;
    let port = peer.port;
    let answer = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .finish()
        .post(format!("http://127.0.0.1:{port}"))
        .send_json(&serde_json::json!({"id": 1, "jsonrpc": "2.0", "method": "state_getMetadata", "params": []}))
        .await;
    let body: Result<serde_json::Value, String> = match answer {
        Ok(mut r) => r.json().limit(16 << 20).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    drop(peer);
    let body = body.expect("state_getMetadata answered");
    let hex_text = body["result"].as_str().expect("metadata hex").to_string();
    Some(hex::decode(hex_text.trim_start_matches("0x")).expect("metadata hex decodes"))
}

#[actix_rt::test]
async fn every_type_of_real_genesis_metadata_resolves() {
    let Some(dir) = common::crust_artefacts() else { return };
    let Some(bytes) = genesis_metadata(&dir).await else {
        return;
    };
    let md = v12(&bytes);
    let failures = check(&md, 1);
    assert!(
        failures.is_empty(),
        "{} type(s) of the real genesis (spec 1) metadata do not resolve:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
