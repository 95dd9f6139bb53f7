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

/// Pallet indices of spec 25.
pub mod index {
    /// Pallet index of System in spec 25.
    pub const SYSTEM: u8 = 0;
    /// Pallet index of Timestamp in spec 25.
    pub const TIMESTAMP: u8 = 3;
    /// Pallet index of Balances in spec 25.
    pub const BALANCES: u8 = 5;
    /// Pallet index of Staking in spec 25.
    pub const STAKING: u8 = 8;
    /// Pallet index of Utility in spec 25.
    pub const UTILITY: u8 = 23;
    /// Pallet index of Swork in spec 25.
    pub const SWORK: u8 = 25;
    /// Pallet index of Market in spec 25 (27 after the simulated spec-26 upgrade).
    pub const MARKET: u8 = 26;
}

#[derive(Encode)]
struct Arg {
    name: String,
    ty: String,
}

#[derive(Encode)]
struct Call {
    name: String,
    args: Vec<Arg>,
    docs: Vec<String>,
}

#[derive(Encode)]
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

#[derive(Encode)]
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

#[derive(Encode)]
enum Modifier {
    Optional,
    Default,
}

#[derive(Encode)]
struct Entry {
    name: String,
    modifier: Modifier,
    ty: EntryType,
    default: Vec<u8>,
    docs: Vec<String>,
}

#[derive(Encode)]
struct Storage {
    prefix: String,
    entries: Vec<Entry>,
}

#[derive(Encode)]
struct Constant {
    name: String,
    ty: String,
    value: Vec<u8>,
    docs: Vec<String>,
}

#[derive(Encode)]
struct Module {
    name: String,
    storage: Option<Storage>,
    calls: Option<Vec<Call>>,
    event: Option<Vec<Event>>,
    constants: Vec<Constant>,
    errors: Vec<(String, Vec<String>)>,
    index: u8,
}

#[derive(Encode)]
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
        let last = |modules: &mut Vec<Module>| -> Result<(), String> {
            if modules.is_empty() {
                Err(format!("line {}: item before any pallet", n + 1))
            } else {
                Ok(())
            }
        };
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
                last(&mut modules)?;
                let prefix = at(1)?.to_string();
                if let Some(m) = modules.last_mut() {
                    m.storage = Some(Storage {
                        prefix,
                        entries: vec![],
                    });
                }
            }
            "entry" => {
                last(&mut modules)?;
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
                match modules.last_mut().and_then(|m| m.storage.as_mut()) {
                    Some(st) => st.entries.push(entry),
                    None => return Err(format!("line {}: entry outside storage", n + 1)),
                }
            }
            "calls" => {
                last(&mut modules)?;
                if let Some(m) = modules.last_mut() {
                    m.calls = Some(vec![]);
                }
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
                match modules.last_mut().and_then(|m| m.calls.as_mut()) {
                    Some(c) => c.push(call),
                    None => return Err(format!("line {}: call outside calls", n + 1)),
                }
            }
            "events" => {
                last(&mut modules)?;
                if let Some(m) = modules.last_mut() {
                    m.event = Some(vec![]);
                }
            }
            "event" => {
                let event = Event {
                    name: at(1)?.to_string(),
                    args: f[2..].iter().map(|a| a.to_string()).collect(),
                    docs: vec![],
                };
                match modules.last_mut().and_then(|m| m.event.as_mut()) {
                    Some(e) => e.push(event),
                    None => return Err(format!("line {}: event outside events", n + 1)),
                }
            }
            "const" => {
                let c = Constant {
                    name: at(1)?.to_string(),
                    ty: at(2)?.to_string(),
                    value: bytes(at(3)?)?,
                    docs: vec![],
                };
                match modules.last_mut() {
                    Some(m) => m.constants.push(c),
                    None => return Err(format!("line {}: constant before any pallet", n + 1)),
                }
            }
            "error" => {
                let e = (at(1)?.to_string(), vec![]);
                match modules.last_mut() {
                    Some(m) => m.errors.push(e),
                    None => return Err(format!("line {}: error before any pallet", n + 1)),
                }
            }
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

/// Where each call, event and error of spec 25 sits: `(pallet, item) → (pallet index, item index)`.
struct Indices {
    calls: HashMap<(String, String), (u8, u8)>,
    events: HashMap<(String, String), (u8, u8)>,
    errors: HashMap<(String, String), (u8, u8)>,
}

fn indices() -> &'static Indices {
    static INDICES: OnceLock<Indices> = OnceLock::new();
    INDICES.get_or_init(|| {
        let modules = parse(SPEC25).unwrap_or_else(|e| panic!("spec25.tsv: {e}")).0;
        let mut ix = Indices {
            calls: HashMap::new(),
            events: HashMap::new(),
            errors: HashMap::new(),
        };
        for m in &modules {
            for (i, c) in m.calls.iter().flatten().enumerate() {
                ix.calls.insert((m.name.clone(), c.name.clone()), (m.index, i as u8));
            }
            for (i, e) in m.event.iter().flatten().enumerate() {
                ix.events.insert((m.name.clone(), e.name.clone()), (m.index, i as u8));
            }
            for (i, (e, _)) in m.errors.iter().enumerate() {
                ix.errors.insert((m.name.clone(), e.clone()), (m.index, i as u8));
            }
        }
        ix
    })
}

/// Spec 26 (the devnet's upgrade) moves Market and every pallet after it up by one.
fn shifted(spec: u32, (pallet, item): (u8, u8)) -> (u8, u8) {
    if spec > SPEC_VERSION && pallet >= index::MARKET {
        (pallet + 1, item)
    } else {
        (pallet, item)
    }
}

fn lookup(map: &HashMap<(String, String), (u8, u8)>, what: &str, pallet: &str, item: &str) -> (u8, u8) {
    // The devnet names only items of its own table; a miss is a typo in the devnet, caught by its tests.
    *map.get(&(pallet.to_string(), item.to_string()))
        .unwrap_or_else(|| panic!("spec 25 has no {what} {pallet}.{item}"))
}

/// The first two bytes of a call (pallet index, call index) at a devnet spec.
pub fn call_index(spec: u32, pallet: &str, call: &str) -> [u8; 2] {
    let (p, c) = shifted(spec, lookup(&indices().calls, "call", pallet, call));
    [p, c]
}

/// `(pallet index, event index)` of an event at a devnet spec.
pub fn event_index(spec: u32, pallet: &str, event: &str) -> (u8, u8) {
    shifted(spec, lookup(&indices().events, "event", pallet, event))
}

/// `(pallet index, error index)` of a module error at a devnet spec (`DispatchError::Module`).
pub fn error_index(spec: u32, pallet: &str, error: &str) -> (u8, u8) {
    shifted(spec, lookup(&indices().errors, "error", pallet, error))
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
        index::MARKET + 1
    } else {
        index::MARKET
    }
}

/// The metadata of a devnet runtime version.
pub fn encode_for(spec: u32) -> Vec<u8> {
    let mut modules = parse(SPEC25).unwrap_or_else(|e| panic!("spec25.tsv: {e}")).0;
    // As if a pallet had been inserted before Market: Market and everything after it move up by one.
    if spec > SPEC_VERSION {
        for m in modules.iter_mut().filter(|m| m.index >= index::MARKET) {
            m.index += 1;
        }
    }
    let extrinsic = parse(SPEC25).unwrap_or_else(|e| panic!("spec25.tsv: {e}")).1;
    let mut out = 0x6174_656d_u32.encode();
    out.push(12);
    modules.encode_to(&mut out);
    extrinsic.encode_to(&mut out);
    out
}
