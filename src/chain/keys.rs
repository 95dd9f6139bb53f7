//! Storage keys with the real hashers, built from the `decl_storage` prefixes (stable across pallet re-indexing).

use sp_crypto_hashing::{twox_128, twox_64};

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

/// `Timestamp.Now`.
pub fn timestamp_now() -> Vec<u8> {
    prefix("Timestamp", "Now")
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
        assert_eq!(
            hex::encode(timestamp_now()),
            "f0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"
        );
    }
}
