//! The devnet chain's metadata against Crust's real spec-25 metadata (`../shared/crust/metadata-spec25.hex`), item by
//! item: all 33 pallets with their indices; calls with argument names and type names; events; storage entries with
//! hashers, key and value types and defaults; constants with their values; errors; signed extensions. Docs are the
//! only thing left out. `SMANAGER_BLESS=1` rewrites `src/devnet/chain/spec25.tsv` from the real metadata instead.

mod common;

use smanager::devnet::chain::metadata;

fn real_spec25() -> Option<Vec<u8>> {
    let dir = common::crust_artefacts()?;
    let text = std::fs::read_to_string(dir.join("metadata-spec25.hex")).expect("read metadata-spec25.hex");
    Some(hex::decode(text.trim().trim_start_matches("0x")).expect("metadata hex"))
}

/// Items of `ours` and `real` that differ, each keyed by its pallet, kind and position within that kind (the
/// position is the call, event or error index), so one changed item is reported once, not as a shift of the rest.
fn differences(ours: &str, real: &str) -> Vec<String> {
    type Items = std::collections::BTreeMap<(String, String, usize), String>;
    let keyed = |text: &str| -> Items {
        let mut pallet = String::new();
        let mut counts: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        let mut out = Items::new();
        for l in text.lines() {
            let kind = l.split('\t').next().unwrap_or("").to_string();
            if kind == "pallet" {
                pallet = l.split('\t').nth(2).unwrap_or("").to_string();
            }
            let n = counts.entry((pallet.clone(), kind.clone())).or_insert(0);
            out.insert((pallet.clone(), kind, *n), l.replace('\t', " | "));
            *n += 1;
        }
        out
    };
    let (a, b) = (keyed(ours), keyed(real));
    let mut keys: Vec<&(String, String, usize)> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{} {} #{}:\n  devnet: {}\n  real:   {}",
                k.0,
                k.1,
                k.2,
                a.get(k).map_or("(none)", String::as_str),
                b.get(k).map_or("(none)", String::as_str)
            )
        })
        .collect()
}

#[test]
fn devnet_metadata_equals_real_spec25_item_by_item() {
    let Some(real) = real_spec25() else { return };
    let real = metadata::describe(&real).expect("real metadata describes");
    if std::env::var("SMANAGER_BLESS").is_ok_and(|v| v == "1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/devnet/chain/spec25.tsv");
        std::fs::write(&path, &real).expect("write spec25.tsv");
        eprintln!("wrote {}", path.display());
        return;
    }
    let ours = metadata::describe(&metadata::encode()).expect("devnet metadata describes");
    assert_eq!(real.lines().filter(|l| l.starts_with("pallet\t")).count(), 33);
    let diff = differences(&ours, &real);
    assert!(
        diff.is_empty(),
        "{} item(s) of the devnet's metadata differ from spec 25:\n{}",
        diff.len(),
        diff.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn a_changed_item_is_named_by_pallet() {
    // The comparison itself: one type changed in one call must be reported, with its pallet.
    let ours = metadata::describe(&metadata::encode()).expect("devnet metadata describes");
    let changed = ours.replacen("\tu64\t", "\tu32\t", 1);
    let diff = differences(&changed, &ours);
    assert_eq!(diff.len(), 1, "{diff:?}");
    let dropped: String = ours.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert!(!differences(&dropped, &ours).is_empty());
}

#[test]
fn the_spec26_upgrade_moves_market_and_what_follows_by_one() {
    let at25 = metadata::describe(&metadata::encode_for(25)).expect("spec 25");
    let at26 = metadata::describe(&metadata::encode_for(26)).expect("spec 26");
    let pallets = |t: &str| -> Vec<(u8, String)> {
        t.lines()
            .filter_map(|l| l.strip_prefix("pallet\t"))
            .filter_map(|l| l.split_once('\t'))
            .map(|(i, n)| (i.parse().expect("index"), n.to_string()))
            .collect()
    };
    for ((i25, n25), (i26, n26)) in pallets(&at25).into_iter().zip(pallets(&at26)) {
        assert_eq!(n25, n26);
        let want = if i25 >= metadata::market_index(25) {
            i25 + 1
        } else {
            i25
        };
        assert_eq!(i26, want, "{n25}");
    }
    assert_eq!(
        metadata::call_index(26, "Market", "place_storage_order")[0],
        metadata::market_index(26)
    );
    assert_eq!(
        metadata::event_index(25, "Market", "FileSuccess").0,
        metadata::market_index(25)
    );
}
