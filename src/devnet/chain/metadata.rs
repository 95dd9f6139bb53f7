//! Runtime metadata V12 equal to Crust mainnet spec 25's, docs left out: all 33 pallets with their indices, every
//! call with its argument names and type names, every event, storage entry (hashers, key and value types, default),
//! constant (type and value) and error, and the signed extensions. The items live in `spec25.tsv`, one per line,
//! written from Crust's real metadata by `describe` (the `devnet_metadata` test compares the two item by item and
//! rewrites the file when `SMANAGER_BLESS=1`). The devnet encodes every call, event and module error by the indices
//! this table gives, so a real client sees the real runtime's layout.

use std::collections::HashMap;
use std::sync::OnceLock;

use parity_scale_codec::{Decode, Encode};
use subxt::ext::frame_metadata::decode_different::DecodeDifferent;
use subxt::ext::frame_metadata::v12;
use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};

/// Spec version the devnet runtime reports.
pub const SPEC_VERSION: u32 = 25;
/// Transaction version the devnet runtime reports.
pub const TX_VERSION: u32 = 1;

/// Market's pallet index in spec 25 (27 after the simulated spec-26 upgrade).
const MARKET: u8 = 26;

#[derive(Encode, Clone)]
struct Arg {
    name: String,
    ty: String,
}

#[derive(Encode, Clone)]
struct Call {
    name: String,
    args: Vec<Arg>,
    docs: Vec<String>,
}

#[derive(Encode, Clone)]
struct Event {
    name: String,
    args: Vec<String>,
    docs: Vec<String>,
}

#[derive(Encode, Clone, Copy)]
enum Hasher {
    Blake2_128,
    Blake2_256,
    Blake2_128Concat,
    Twox128,
    Twox256,
    Twox64Concat,
    Identity,
}

const HASHERS: [(&str, Hasher); 7] = [
    ("Blake2_128", Hasher::Blake2_128),
    ("Blake2_256", Hasher::Blake2_256),
    ("Blake2_128Concat", Hasher::Blake2_128Concat),
    ("Twox128", Hasher::Twox128),
    ("Twox256", Hasher::Twox256),
    ("Twox64Concat", Hasher::Twox64Concat),
    ("Identity", Hasher::Identity),
];

#[derive(Encode, Clone)]
enum EntryType {
    Plain(String),
    Map {
        hasher: Hasher,
        key: String,
        value: String,
        unused: bool,
    },
    DoubleMap {
        hasher: Hasher,
        key1: String,
        key2: String,
        value: String,
        key2_hasher: Hasher,
    },
}

#[derive(Encode, Clone)]
enum Modifier {
    Optional,
    Default,
}

#[derive(Encode, Clone)]
struct Entry {
    name: String,
    modifier: Modifier,
    ty: EntryType,
    default: Vec<u8>,
    docs: Vec<String>,
}

#[derive(Encode, Clone)]
struct Storage {
    prefix: String,
    entries: Vec<Entry>,
}

#[derive(Encode, Clone)]
struct Constant {
    name: String,
    ty: String,
    value: Vec<u8>,
    docs: Vec<String>,
}

#[derive(Encode, Clone)]
struct Module {
    name: String,
    storage: Option<Storage>,
    calls: Option<Vec<Call>>,
    event: Option<Vec<Event>>,
    constants: Vec<Constant>,
    errors: Vec<(String, Vec<String>)>,
    index: u8,
}

#[derive(Encode, Clone)]
struct Extrinsic {
    version: u8,
    signed_extensions: Vec<String>,
}

/// The items of spec 25, as `describe` writes them from Crust's metadata.
const SPEC25: &str = include_str!("spec25.tsv");

fn hasher(name: &str) -> Result<Hasher, String> {
    HASHERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| *h)
        .ok_or_else(|| format!("unknown hasher `{name}`"))
}

/// Some real type names span lines (`update_replicas`' argument): a field keeps its line breaks as `\n`.
fn escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t")
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn bytes(field: &str) -> Result<Vec<u8>, String> {
    hex::decode(field.trim_start_matches("0x")).map_err(|e| format!("bad hex `{field}`: {e}"))
}

/// The pallet the items that follow belong to.
fn current(modules: &mut [Module], n: usize) -> Result<&mut Module, String> {
    modules
        .last_mut()
        .ok_or_else(|| format!("line {}: item before any pallet", n + 1))
}

/// The modules and extrinsic info a description lists (the inverse of `describe`).
fn parse(text: &str) -> Result<(Vec<Module>, Extrinsic), String> {
    let mut modules: Vec<Module> = Vec::new();
    let mut extrinsic = None;
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let owned: Vec<String> = line.split('\t').map(unescape).collect();
        let f: Vec<&str> = owned.iter().map(String::as_str).collect();
        let at = |i: usize| {
            f.get(i)
                .copied()
                .ok_or_else(|| format!("line {}: field {i} missing", n + 1))
        };
        let outside = |what: &str| format!("line {}: {what} outside its list", n + 1);
        match f[0] {
            "pallet" => modules.push(Module {
                index: at(1)?.parse().map_err(|e| format!("line {}: index: {e}", n + 1))?,
                name: at(2)?.to_string(),
                storage: None,
                calls: None,
                event: None,
                constants: vec![],
                errors: vec![],
            }),
            "storage" => {
                current(&mut modules, n)?.storage = Some(Storage {
                    prefix: at(1)?.to_string(),
                    entries: vec![],
                })
            }
            "calls" => current(&mut modules, n)?.calls = Some(vec![]),
            "events" => current(&mut modules, n)?.event = Some(vec![]),
            "entry" => {
                let modifier = match at(2)? {
                    "Optional" => Modifier::Optional,
                    "Default" => Modifier::Default,
                    o => return Err(format!("line {}: modifier `{o}`", n + 1)),
                };
                let (ty, default) = match at(3)? {
                    "plain" => (EntryType::Plain(at(4)?.to_string()), at(5)?),
                    "map" => (
                        EntryType::Map {
                            hasher: hasher(at(4)?)?,
                            key: at(5)?.to_string(),
                            value: at(6)?.to_string(),
                            unused: at(7)? == "true",
                        },
                        at(8)?,
                    ),
                    "double_map" => (
                        EntryType::DoubleMap {
                            hasher: hasher(at(4)?)?,
                            key1: at(5)?.to_string(),
                            key2: at(6)?.to_string(),
                            value: at(7)?.to_string(),
                            key2_hasher: hasher(at(8)?)?,
                        },
                        at(9)?,
                    ),
                    o => return Err(format!("line {}: storage kind `{o}`", n + 1)),
                };
                let entry = Entry {
                    name: at(1)?.to_string(),
                    modifier,
                    ty,
                    default: bytes(default)?,
                    docs: vec![],
                };
                let storage = current(&mut modules, n)?.storage.as_mut();
                storage.ok_or_else(|| outside("entry"))?.entries.push(entry);
            }
            "call" => {
                let args = f[2..]
                    .chunks(2)
                    .map(|c| match c {
                        [name, ty] => Ok(Arg {
                            name: name.to_string(),
                            ty: ty.to_string(),
                        }),
                        _ => Err(format!("line {}: argument without a type", n + 1)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let call = Call {
                    name: at(1)?.to_string(),
                    args,
                    docs: vec![],
                };
                let calls = current(&mut modules, n)?.calls.as_mut();
                calls.ok_or_else(|| outside("call"))?.push(call);
            }
            "event" => {
                let event = Event {
                    name: at(1)?.to_string(),
                    args: f[2..].iter().map(|a| a.to_string()).collect(),
                    docs: vec![],
                };
                let events = current(&mut modules, n)?.event.as_mut();
                events.ok_or_else(|| outside("event"))?.push(event);
            }
            "const" => {
                let c = Constant {
                    name: at(1)?.to_string(),
                    ty: at(2)?.to_string(),
                    value: bytes(at(3)?)?,
                    docs: vec![],
                };
                current(&mut modules, n)?.constants.push(c);
            }
            "error" => current(&mut modules, n)?.errors.push((at(1)?.to_string(), vec![])),
            "extrinsic" => {
                extrinsic = Some(Extrinsic {
                    version: at(1)?.parse().map_err(|e| format!("line {}: version: {e}", n + 1))?,
                    signed_extensions: f[2..].iter().map(|x| x.to_string()).collect(),
                })
            }
            o => return Err(format!("line {}: unknown item `{o}`", n + 1)),
        }
    }
    let extrinsic = extrinsic.ok_or("no extrinsic line")?;
    Ok((modules, extrinsic))
}

/// `pallet → item → (pallet index, item index)`, looked up without allocating.
type Items = HashMap<String, HashMap<String, (u8, u8)>>;

/// Spec 25 parsed once: its modules and extrinsic info, and where each call, event and error sits.
struct Table {
    modules: Vec<Module>,
    extrinsic: Extrinsic,
    calls: Items,
    events: Items,
    errors: Items,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let (modules, extrinsic) = parse(SPEC25).unwrap_or_else(|e| panic!("spec25.tsv: {e}"));
        let (mut calls, mut events, mut errors) = (Items::new(), Items::new(), Items::new());
        for m in &modules {
            let place = |items: &mut Items, names: Vec<&String>| {
                let of = items.entry(m.name.clone()).or_default();
                for (i, name) in names.into_iter().enumerate() {
                    of.insert(name.clone(), (m.index, i as u8));
                }
            };
            place(&mut calls, m.calls.iter().flatten().map(|c| &c.name).collect());
            place(&mut events, m.event.iter().flatten().map(|e| &e.name).collect());
            place(&mut errors, m.errors.iter().map(|(e, _)| e).collect());
        }
        Table {
            modules,
            extrinsic,
            calls,
            events,
            errors,
        }
    })
}

/// Spec 26 (the devnet's upgrade) moves Market and every pallet after it up by one.
fn shifted(spec: u32, (pallet, item): (u8, u8)) -> (u8, u8) {
    if spec > SPEC_VERSION && pallet >= MARKET {
        (pallet + 1, item)
    } else {
        (pallet, item)
    }
}

fn lookup(items: &Items, what: &str, pallet: &str, item: &str) -> (u8, u8) {
    // The devnet names only items of its own table; a miss is a typo in the devnet, caught by its tests.
    *items
        .get(pallet)
        .and_then(|of| of.get(item))
        .unwrap_or_else(|| panic!("spec 25 has no {what} {pallet}.{item}"))
}

/// The first two bytes of a call (pallet index, call index) at a devnet spec.
pub fn call_index(spec: u32, pallet: &str, call: &str) -> [u8; 2] {
    let (p, c) = shifted(spec, lookup(&table().calls, "call", pallet, call));
    [p, c]
}

/// `(pallet index, event index)` of an event at a devnet spec.
pub fn event_index(spec: u32, pallet: &str, event: &str) -> (u8, u8) {
    shifted(spec, lookup(&table().events, "event", pallet, event))
}

/// `(pallet index, error index)` of a module error at a devnet spec (`DispatchError::Module`).
pub fn error_index(spec: u32, pallet: &str, error: &str) -> (u8, u8) {
    shifted(spec, lookup(&table().errors, "error", pallet, error))
}

fn text<O: AsRef<str>>(d: &DecodeDifferent<&'static str, O>) -> String {
    match d {
        DecodeDifferent::Encode(s) => s.to_string(),
        DecodeDifferent::Decoded(s) => s.as_ref().to_string(),
    }
}

fn list<B, O>(d: &DecodeDifferent<B, Vec<O>>) -> &[O] {
    match d {
        DecodeDifferent::Decoded(v) => v,
        DecodeDifferent::Encode(_) => &[],
    }
}

fn hex_of<B>(d: &DecodeDifferent<B, Vec<u8>>) -> String {
    format!("0x{}", hex::encode(list(d)))
}

fn hasher_name(h: &v12::StorageHasher) -> &'static str {
    match h {
        v12::StorageHasher::Blake2_128 => "Blake2_128",
        v12::StorageHasher::Blake2_256 => "Blake2_256",
        v12::StorageHasher::Blake2_128Concat => "Blake2_128Concat",
        v12::StorageHasher::Twox128 => "Twox128",
        v12::StorageHasher::Twox256 => "Twox256",
        v12::StorageHasher::Twox64Concat => "Twox64Concat",
        v12::StorageHasher::Identity => "Identity",
    }
}

/// One line per item of a V12 metadata (docs left out), in the runtime's order: what `spec25.tsv` holds, and
/// what the metadata comparison lines up item by item.
pub fn describe(metadata: &[u8]) -> Result<String, String> {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &metadata[..]).map_err(|e| format!("metadata: {e}"))?;
    let RuntimeMetadata::V12(md) = prefixed.1 else {
        return Err("not metadata V12".into());
    };
    let mut out = String::new();
    let mut line = |fields: Vec<String>| {
        out.push_str(&fields.iter().map(|f| escape(f)).collect::<Vec<_>>().join("\t"));
        out.push('\n');
    };
    for m in list(&md.modules) {
        line(vec!["pallet".into(), m.index.to_string(), text(&m.name)]);
        if let Some(st) = &m.storage {
            let DecodeDifferent::Decoded(st) = st else {
                return Err("storage not decoded".into());
            };
            line(vec!["storage".into(), text(&st.prefix)]);
            for e in list(&st.entries) {
                let modifier = match e.modifier {
                    v12::StorageEntryModifier::Optional => "Optional",
                    v12::StorageEntryModifier::Default => "Default",
                };
                let mut f = vec!["entry".into(), text(&e.name), modifier.into()];
                match &e.ty {
                    v12::StorageEntryType::Plain(v) => f.extend(["plain".into(), text(v)]),
                    v12::StorageEntryType::Map {
                        hasher,
                        key,
                        value,
                        unused,
                    } => f.extend([
                        "map".into(),
                        hasher_name(hasher).into(),
                        text(key),
                        text(value),
                        unused.to_string(),
                    ]),
                    v12::StorageEntryType::DoubleMap {
                        hasher,
                        key1,
                        key2,
                        value,
                        key2_hasher,
                    } => f.extend([
                        "double_map".into(),
                        hasher_name(hasher).into(),
                        text(key1),
                        text(key2),
                        text(value),
                        hasher_name(key2_hasher).into(),
                    ]),
                }
                f.push(hex_of(&e.default));
                line(f);
            }
        }
        if let Some(calls) = &m.calls {
            line(vec!["calls".into()]);
            for c in list(calls) {
                let mut f = vec!["call".into(), text(&c.name)];
                for a in list(&c.arguments) {
                    f.extend([text(&a.name), text(&a.ty)]);
                }
                line(f);
            }
        }
        if let Some(events) = &m.event {
            line(vec!["events".into()]);
            for e in list(events) {
                let mut f = vec!["event".into(), text(&e.name)];
                f.extend(list::<_, String>(&e.arguments).iter().cloned());
                line(f);
            }
        }
        for c in list(&m.constants) {
            line(vec!["const".into(), text(&c.name), text(&c.ty), hex_of(&c.value)]);
        }
        for e in list(&m.errors) {
            line(vec!["error".into(), text(&e.name)]);
        }
    }
    let mut f = vec!["extrinsic".into(), md.extrinsic.version.to_string()];
    f.extend(md.extrinsic.signed_extensions.iter().map(text));
    line(f);
    Ok(out)
}

/// The SCALE bytes of `RuntimeMetadataPrefixed` (magic `meta`, version 12, modules, extrinsic info).
pub fn encode() -> Vec<u8> {
    encode_for(SPEC_VERSION)
}

/// Market's pallet index in a devnet runtime version: spec 26 is the devnet's "upgrade", which moves Market to 27
/// (as governance pallets inserted mid-list did on mainnet), so clients must take indices from each block's metadata.
pub fn market_index(spec: u32) -> u8 {
    if spec > SPEC_VERSION {
        MARKET + 1
    } else {
        MARKET
    }
}

/// The metadata of a devnet runtime version.
pub fn encode_for(spec: u32) -> Vec<u8> {
    let table = table();
    let mut modules = table.modules.clone();
    // As if a pallet had been inserted before Market: Market and everything after it move up by one.
    if spec > SPEC_VERSION {
        for m in modules.iter_mut().filter(|m| m.index >= MARKET) {
            m.index += 1;
        }
    }
    let mut out = 0x6174_656d_u32.encode();
    out.push(12);
    modules.encode_to(&mut out);
    table.extrinsic.encode_to(&mut out);
    out
}
