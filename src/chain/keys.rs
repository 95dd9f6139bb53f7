//! Storage keys with the real hashers, built from the `decl_storage` prefixes (stable across pallet re-indexing).

use sp_crypto_hashing::{blake2_128, twox_128, twox_64};

fn prefix(pallet: &str, item: &str) -> Vec<u8> {
    let mut k = twox_128(pallet.as_bytes()).to_vec();
    k.extend_from_slice(&twox_128(item.as_bytes()));
    k
}

/// SCALE `Compact<u32>` length prefix.
pub fn compact_len(n: usize) -> Vec<u8> {
    parity_scale_codec::Encode::encode(&parity_scale_codec::Compact(n as u32))
}

/// `Market.FilesV2(cid)`: Twox64Concat over the SCALE-encoded `Vec<u8>` of the CID's ASCII bytes.
pub fn files_v2(cid: &[u8]) -> Vec<u8> {
    let mut enc = compact_len(cid.len());
    enc.extend_from_slice(cid);
    let mut k = prefix("Market", "FilesV2");
    k.extend_from_slice(&twox_64(&enc));
    k.extend_from_slice(&enc);
    k
}

/// `Market.Files(cid)` (V1 map, runtimes before spec 18): the same hasher and key encoding as FilesV2.
pub fn files_v1(cid: &[u8]) -> Vec<u8> {
    let mut enc = compact_len(cid.len());
    enc.extend_from_slice(cid);
    let mut k = prefix("Market", "Files");
    k.extend_from_slice(&twox_64(&enc));
    k.extend_from_slice(&enc);
    k
}

/// `Market.FilesV2` prefix: every key of the map starts with it.
pub fn files_v2_prefix() -> Vec<u8> {
    prefix("Market", "FilesV2")
}

/// `Market.Files` prefix (V1 layout, runtimes before spec 18).
pub fn files_v1_prefix() -> Vec<u8> {
    prefix("Market", "Files")
}

/// The CID of a `Market.FilesV2`/`Market.Files` key: after the prefix (32 bytes) and the twox64 hash (8 bytes) comes
/// the SCALE `Vec<u8>` with its real compact length, then the ASCII bytes.
pub fn cid_from_files_key(key: &[u8]) -> Result<String, String> {
    let rest = key.get(40..).ok_or("key shorter than prefix + hash")?;
    let mut input = rest;
    let len = <parity_scale_codec::Compact<u32> as parity_scale_codec::Decode>::decode(&mut input)
        .map_err(|e| format!("bad compact length: {e}"))?
        .0 as usize;
    if input.len() != len {
        return Err(format!("length prefix says {len} bytes, key holds {}", input.len()));
    }
    String::from_utf8(input.to_vec()).map_err(|_| "CID is not UTF-8".to_string())
}

fn blake2_128_concat(prefix: Vec<u8>, data: &[u8]) -> Vec<u8> {
    let mut k = prefix;
    k.extend_from_slice(&blake2_128(data));
    k.extend_from_slice(data);
    k
}

/// `Swork.Identities(account)`.
pub fn identities(account: &[u8; 32]) -> Vec<u8> {
    blake2_128_concat(prefix("Swork", "Identities"), account)
}

/// `Swork.Groups(owner)`.
pub fn groups(owner: &[u8; 32]) -> Vec<u8> {
    blake2_128_concat(prefix("Swork", "Groups"), owner)
}

/// `Swork.WorkReports` prefix.
pub fn work_reports_prefix() -> Vec<u8> {
    prefix("Swork", "WorkReports")
}

/// `Swork.WorkReports(anchor)`: Twox64Concat over the SCALE `Vec<u8>` of the anchor.
pub fn work_reports(anchor: &[u8]) -> Vec<u8> {
    let mut enc = compact_len(anchor.len());
    enc.extend_from_slice(anchor);
    let mut k = work_reports_prefix();
    k.extend_from_slice(&twox_64(&enc));
    k.extend_from_slice(&enc);
    k
}

/// `System.Account(account)`.
pub fn system_account(account: &[u8; 32]) -> Vec<u8> {
    blake2_128_concat(prefix("System", "Account"), account)
}

/// `Swork.CurrentReportSlot`.
pub fn current_report_slot() -> Vec<u8> {
    prefix("Swork", "CurrentReportSlot")
}

/// `Timestamp.Now`.
pub fn timestamp_now() -> Vec<u8> {
    prefix("Timestamp", "Now")
}

/// `System.Events`: what `smanager bench` fetches raw to know how fast a node can serve blocks.
pub fn system_events() -> Vec<u8> {
    prefix("System", "Events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_v2_vector() {
        let k = files_v2(b"QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn");
        assert_eq!(
            hex::encode(k),
            "5ebf094108ead4fefa73f7a3b13cb4a76ed21091d079415ef4a35264c626448d0000d896c60e29b7b8516d596761724b736d55335a6f695a757552614d73653732774e6e554b72477337367566573847683564796a4e6e"
        );
        let long = "b".repeat(71);
        let k = files_v2(long.as_bytes());
        assert_eq!(&k[40..42], &[0x1d, 0x01], "two-byte compact for 71 bytes");
        assert_eq!(cid_from_files_key(&k).as_deref(), Ok(long.as_str()));
        assert_eq!(
            cid_from_files_key(&files_v2(b"QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn")).as_deref(),
            Ok("QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn")
        );
        let alice = hex::decode("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d").unwrap_or_default();
        let alice: [u8; 32] = alice.try_into().unwrap_or([0; 32]);
        assert_eq!(
            hex::encode(identities(&alice)),
            "2e3b7ab5757e6bbf28d3df3b5e01d6b918373f80b4a94950c1f99840fd083e68de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hex::encode(groups(&alice)),
            "2e3b7ab5757e6bbf28d3df3b5e01d6b92f583424865f2346c0f5c066f24dd499de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        let anchor = hex::decode("5c7351b8a5098235505c66b4ba42269cb58a1fbf410906235204406a6080d9640d406a8a26d25efd3988250f80cf3dd5b6c22a70d964d08f03a8e618e51b4812").unwrap_or_default();
        assert_eq!(
            hex::encode(work_reports(&anchor)),
            "2e3b7ab5757e6bbf28d3df3b5e01d6b9b7e949778e4650a54fcc65ad1f1ba39fe84a0b8127b5d6b901015c7351b8a5098235505c66b4ba42269cb58a1fbf410906235204406a6080d9640d406a8a26d25efd3988250f80cf3dd5b6c22a70d964d08f03a8e618e51b4812"
        );
        assert_eq!(
            hex::encode(system_account(&alice)),
            "26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hex::encode(current_report_slot()),
            "2e3b7ab5757e6bbf28d3df3b5e01d6b9fb9157173600aa9986e951b7da0bb478"
        );
        assert_eq!(
            hex::encode(files_v1_prefix()),
            "5ebf094108ead4fefa73f7a3b13cb4a7b3b78f30e9b952d60249b22fcdaaa76d"
        );
        assert_eq!(
            hex::encode(timestamp_now()),
            "f0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"
        );
    }
}
