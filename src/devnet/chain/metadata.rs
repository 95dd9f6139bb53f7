//! Runtime metadata V12 shaped like Crust mainnet spec 25: the 33 pallets in `construct_runtime!` order with their
//! indices, and the names and argument type names of the System, Timestamp, Balances, Staking, Utility, Swork and
//! Market calls, events and storage entries. Encoded by hand with SCALE, in frame-metadata 13's V12 layout.

use parity_scale_codec::Encode;

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

const PALLETS: [&str; 33] = [
    "System",
    "RandomnessCollectiveFlip",
    "Babe",
    "Timestamp",
    "Indices",
    "Balances",
    "TransactionPayment",
    "Authorship",
    "Staking",
    "Historical",
    "Session",
    "Grandpa",
    "ImOnline",
    "AuthorityDiscovery",
    "Offences",
    "Treasury",
    "Tips",
    "Council",
    "TechnicalCommittee",
    "TechnicalMembership",
    "Democracy",
    "Elections",
    "Scheduler",
    "Utility",
    "Identity",
    "Swork",
    "Market",
    "Claims",
    "Benefits",
    "Locks",
    "Multisig",
    "ChainBridge",
    "BridgeTransfer",
];

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

#[derive(Encode)]
enum Hasher {
    #[allow(dead_code)]
    Blake2_128,
    #[allow(dead_code)]
    Blake2_256,
    Blake2_128Concat,
    #[allow(dead_code)]
    Twox128,
    #[allow(dead_code)]
    Twox256,
    Twox64Concat,
    #[allow(dead_code)]
    Identity,
}

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

fn s(x: &str) -> String {
    x.to_string()
}

fn call(name: &str, args: &[(&str, &str)]) -> Call {
    Call {
        name: s(name),
        args: args.iter().map(|(n, t)| Arg { name: s(n), ty: s(t) }).collect(),
        docs: vec![],
    }
}

fn event(name: &str, args: &[&str]) -> Event {
    Event {
        name: s(name),
        args: args.iter().map(|a| s(a)).collect(),
        docs: vec![],
    }
}

fn plain(name: &str, ty: &str, modifier: Modifier, default: Vec<u8>) -> Entry {
    Entry {
        name: s(name),
        modifier,
        ty: EntryType::Plain(s(ty)),
        default,
        docs: vec![],
    }
}

fn map(name: &str, hasher: Hasher, key: &str, value: &str, modifier: Modifier, default: Vec<u8>) -> Entry {
    Entry {
        name: s(name),
        modifier,
        ty: EntryType::Map {
            hasher,
            key: s(key),
            value: s(value),
            unused: false,
        },
        default,
        docs: vec![],
    }
}

fn constant(name: &str, ty: &str, value: Vec<u8>) -> Constant {
    Constant {
        name: s(name),
        ty: s(ty),
        value,
        docs: vec![],
    }
}

fn module(index: u8) -> Module {
    let name = PALLETS[index as usize];
    let mut m = Module {
        name: s(name),
        storage: None,
        calls: None,
        event: None,
        constants: vec![],
        errors: vec![],
        index,
    };
    use Modifier::{Default as D, Optional as O};
    match name {
        "System" => {
            m.storage = Some(Storage {
                prefix: s("System"),
                entries: vec![
                    map(
                        "Account",
                        Hasher::Blake2_128Concat,
                        "T::AccountId",
                        "AccountInfo<T::Index, T::AccountData>",
                        D,
                        vec![0; 76],
                    ),
                    plain("Number", "T::BlockNumber", D, vec![0; 4]),
                    plain("ParentHash", "T::Hash", D, vec![0; 32]),
                    plain("Events", "Vec<EventRecord<T::Event, T::Hash>>", D, vec![0]),
                ],
            });
            m.calls = Some(vec![call("remark", &[("_remark", "Vec<u8>")])]);
            m.event = Some(vec![
                event("ExtrinsicSuccess", &["DispatchInfo"]),
                event("ExtrinsicFailed", &["DispatchError", "DispatchInfo"]),
                event("CodeUpdated", &[]),
                event("NewAccount", &["AccountId"]),
                event("KilledAccount", &["AccountId"]),
            ]);
            m.constants = vec![constant("BlockHashCount", "T::BlockNumber", 2400u32.encode())];
        }
        "Timestamp" => {
            m.storage = Some(Storage {
                prefix: s("Timestamp"),
                entries: vec![
                    plain("Now", "T::Moment", D, vec![0; 8]),
                    plain("DidUpdate", "bool", D, vec![0]),
                ],
            });
            m.calls = Some(vec![call("set", &[("now", "Compact<T::Moment>")])]);
            m.constants = vec![constant("MinimumPeriod", "T::Moment", 3000u64.encode())];
        }
        "Balances" => {
            m.storage = Some(Storage {
                prefix: s("Balances"),
                entries: vec![plain("TotalIssuance", "T::Balance", D, vec![0; 16])],
            });
            m.calls = Some(vec![
                call(
                    "transfer",
                    &[
                        ("dest", "<T::Lookup as StaticLookup>::Source"),
                        ("value", "Compact<T::Balance>"),
                    ],
                ),
                call(
                    "set_balance",
                    &[
                        ("who", "<T::Lookup as StaticLookup>::Source"),
                        ("new_free", "Compact<T::Balance>"),
                        ("new_reserved", "Compact<T::Balance>"),
                    ],
                ),
            ]);
            m.event = Some(vec![
                event("Endowed", &["AccountId", "Balance"]),
                event("DustLost", &["AccountId", "Balance"]),
                event("Transfer", &["AccountId", "AccountId", "Balance"]),
            ]);
            m.constants = vec![constant("ExistentialDeposit", "T::Balance", 1u128.encode())];
        }
        "Staking" => {
            m.storage = Some(Storage {
                prefix: s("Staking"),
                entries: vec![plain("CurrentEra", "Option<EraIndex>", O, vec![0])],
            });
            m.calls = Some(vec![
                call(
                    "bond",
                    &[
                        ("controller", "<T::Lookup as StaticLookup>::Source"),
                        ("value", "Compact<BalanceOf<T>>"),
                        ("payee", "RewardDestination<T::AccountId>"),
                    ],
                ),
                call("chill", &[]),
            ]);
            m.event = Some(vec![
                event("Bonded", &["AccountId", "Balance"]),
                event("Chilled", &["AccountId"]),
            ]);
        }
        "Utility" => {
            m.calls = Some(vec![
                call("batch", &[("calls", "Vec<<T as Config>::Call>")]),
                call(
                    "as_derivative",
                    &[("index", "u16"), ("call", "Box<<T as Config>::Call>")],
                ),
                call("batch_all", &[("calls", "Vec<<T as Config>::Call>")]),
            ]);
            m.event = Some(vec![
                event("BatchInterrupted", &["u32", "DispatchError"]),
                event("BatchCompleted", &[]),
            ]);
        }
        "Swork" => {
            m.storage = Some(Storage {
                prefix: s("Swork"),
                entries: vec![
                    map(
                        "Identities",
                        Hasher::Blake2_128Concat,
                        "T::AccountId",
                        "Identity<T::AccountId>",
                        O,
                        vec![0],
                    ),
                    map(
                        "Groups",
                        Hasher::Blake2_128Concat,
                        "T::AccountId",
                        "Group<T::AccountId>",
                        D,
                        vec![0, 0],
                    ),
                    map(
                        "WorkReports",
                        Hasher::Twox64Concat,
                        "SworkerAnchor",
                        "WorkReport",
                        O,
                        vec![0],
                    ),
                    plain("CurrentReportSlot", "ReportSlot", D, vec![0; 8]),
                    Entry {
                        name: s("ReportedInSlot"),
                        modifier: D,
                        ty: EntryType::DoubleMap {
                            hasher: Hasher::Twox64Concat,
                            key1: s("SworkerAnchor"),
                            key2: s("ReportSlot"),
                            value: s("bool"),
                            key2_hasher: Hasher::Twox64Concat,
                        },
                        default: vec![0],
                        docs: vec![],
                    },
                ],
            });
            m.calls = Some(vec![
                call("set_code", &[("new_code", "SworkerCode"), ("expire_block", "T::BlockNumber")]),
                call("clear_expired_code", &[("expired_code", "SworkerCode")]),
                call("register", &[("ias_sig", "IASSig"), ("ias_cert", "SworkerCert"), ("applier", "T::AccountId"), ("isv_body", "ISVBody"), ("sig", "SworkerSignature")]),
                call("register_new_tee_pubkey", &[("pubkey_vec", "Vec<u8>")]),
                call("register_with_deauth_chain", &[("applier", "T::AccountId"), ("code", "SworkerCode"), ("pubkeys", "Vec<Vec<u8>>"), ("signatures", "Vec<Vec<u8>>"), ("tee_pubkey", "Vec<u8>"), ("tee_signature", "Vec<u8>")]),
                call("report_works", &[("curr_pk", "SworkerPubKey"), ("ab_upgrade_pk", "SworkerPubKey"), ("slot", "u64"), ("slot_hash", "Vec<u8>"), ("reported_srd_size", "u64"), ("reported_files_size", "u64"), ("added_files", "Vec<(MerkleRoot, u64, u64)>"), ("deleted_files", "Vec<(MerkleRoot, u64, u64)>"), ("reported_srd_root", "MerkleRoot"), ("reported_files_root", "MerkleRoot"), ("sig", "SworkerSignature")]),
                call("set_spower_superior", &[("superior", "T::AccountId")]),
                call("update_spower", &[("changed_spowers", "Vec<(SworkerAnchor, i64)>"), ("changed_files", "Vec<(MerkleRoot, u64, Vec<(T::AccountId, T::AccountId, SworkerAnchor, Option<T::BlockNumber>)>)>")]),
                call("create_group", &[]),
                call("add_member_into_allowlist", &[("target", "<T::Lookup as StaticLookup>::Source")]),
                call("remove_member_from_allowlist", &[("target", "<T::Lookup as StaticLookup>::Source")]),
                call("join_group", &[("target", "<T::Lookup as StaticLookup>::Source")]),
                call("quit_group", &[]),
                call("kick_out", &[("target", "<T::Lookup as StaticLookup>::Source")]),
                call("set_punishment", &[("is_enabled", "bool")]),
            ]);
            m.event = Some(vec![
                event("RegisterSuccess", &["AccountId", "SworkerPubKey"]),
                event("WorksReportSuccess", &["AccountId", "SworkerPubKey"]),
                event("ABUpgradeSuccess", &["AccountId", "SworkerPubKey", "SworkerPubKey"]),
                event("SetCodeSuccess", &["SworkerCode", "BlockNumber"]),
                event("JoinGroupSuccess", &["AccountId", "AccountId"]),
                event("QuitGroupSuccess", &["AccountId", "AccountId"]),
                event("CreateGroupSuccess", &["AccountId"]),
                event("KickOutSuccess", &["AccountId"]),
                event("CancelPunishmentSuccess", &["AccountId"]),
                event("AddIntoAllowlistSuccess", &["AccountId", "AccountId"]),
                event("RemoveFromAllowlistSuccess", &["AccountId", "AccountId"]),
                event("SetPunishmentSuccess", &["bool"]),
                event("RemoveCodeSuccess", &["SworkerCode"]),
                event("QueueWorkReportSuccess", &["SworkerAnchor", "AccountId", "AccountId"]),
                event("SetSpowerSuperiorSuccess", &["AccountId"]),
                event("UpdateSpowerSuccess", &["AccountId", "BlockNumber", "u32", "u32"]),
            ]);
            m.constants = vec![
                constant("PunishmentSlots", "u32", 8u32.encode()),
                constant("MaxGroupSize", "u32", 1000u32.encode()),
            ];
        }
        "Market" => {
            m.storage = Some(Storage {
                prefix: s("Market"),
                entries: vec![
                    map(
                        "FilesV2",
                        Hasher::Twox64Concat,
                        "MerkleRoot",
                        "FileInfoV2<T::AccountId, BalanceOf<T>>",
                        O,
                        vec![0],
                    ),
                    plain("OrdersCount", "u32", D, vec![0; 4]),
                    plain("FileBaseFee", "BalanceOf<T>", D, vec![0; 16]),
                    plain("FileByteFee", "BalanceOf<T>", D, 10_000u128.encode()),
                    plain("FileKeysCount", "u32", D, vec![0; 4]),
                    plain("FileKeysCountFee", "BalanceOf<T>", D, 1_000_000u128.encode()),
                    plain("EnableMarket", "bool", D, vec![0]),
                    plain("SpowerSuperior", "Option<T::AccountId>", O, vec![0]),
                ],
            });
            m.calls = Some(vec![
                call("place_storage_order", &[("cid", "MerkleRoot"), ("reported_file_size", "u64"), ("tips", "Compact<BalanceOf<T>>"), ("_memo", "Vec<u8>")]),
                call("add_prepaid", &[("cid", "MerkleRoot"), ("amount", "Compact<BalanceOf<T>>")]),
                call("set_spower_superior", &[("superior", "T::AccountId")]),
                call("update_replicas", &[("file_infos_map", "Vec<(MerkleRoot, u64, Vec<(T::AccountId, T::AccountId, SworkerAnchor, ReportSlot, T::BlockNumber, T::BlockNumber, bool)>)>"), ("last_processed_block_wrs", "T::BlockNumber")]),
                call("calculate_spowers", &[("cids", "Vec<MerkleRoot>")]),
                call("set_spower_ready_period", &[("ready_period", "T::BlockNumber")]),
                call("calculate_reward", &[("cid", "MerkleRoot")]),
                call("reward_merchant", &[]),
                call("set_enable_market", &[("is_enabled", "bool")]),
            ]);
            m.event = Some(vec![
                event("FileSuccess", &["AccountId", "MerkleRoot"]),
                event("RenewFileSuccess", &["AccountId", "MerkleRoot"]),
                event("AddPrepaidSuccess", &["AccountId", "MerkleRoot", "Balance"]),
                event("CalculateSuccess", &["MerkleRoot"]),
                event("IllegalFileClosed", &["MerkleRoot"]),
                event("RewardMerchantSuccess", &["AccountId"]),
                event("SetEnableMarketSuccess", &["bool"]),
                event("SetBaseFeeSuccess", &["Balance"]),
                event("SetSpowerSuperiorSuccess", &["AccountId"]),
                event(
                    "UpdateReplicasSuccess",
                    &["AccountId", "BlockNumber", "u32", "BlockNumber"],
                ),
                event("FileClosed", &["MerkleRoot"]),
                event("CalculateSpowersSuccess", &["AccountId", "BlockNumber", "u32", "u32"]),
                event("SetSpowerReadyPeriodSuccess", &["BlockNumber"]),
            ]);
            m.constants = vec![
                constant("FileDuration", "T::BlockNumber", 2_592_000u32.encode()),
                constant("FileReplica", "u32", 4u32.encode()),
                constant("InitFileByteFee", "BalanceOf<T>", 10_000u128.encode()),
                constant("MaximumFileSize", "u64", 8_589_934_592u64.encode()),
            ];
        }
        _ => {}
    }
    m
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
    let mut modules: Vec<Module> = (0..PALLETS.len() as u8).map(module).collect();
    // As if a pallet had been inserted before Market: Market and everything after it move up by one.
    if spec > SPEC_VERSION {
        for m in modules.iter_mut().filter(|m| m.index >= index::MARKET) {
            m.index += 1;
        }
    }
    let extrinsic = Extrinsic {
        version: 4,
        signed_extensions: [
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
        ]
        .iter()
        .map(|x| s(x))
        .collect(),
    };
    let mut out = 0x6174_656d_u32.encode();
    out.push(12);
    modules.encode_to(&mut out);
    extrinsic.encode_to(&mut out);
    out
}
