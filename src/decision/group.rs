//! Who in the network takes a CID: the group slot (shared with TypeScript members, so computed exactly as TypeScript
//! does) and the probability draw that spreads files over groups.

/// The number the TypeScript manager assigns a CID, as hex digits: `BigNumber('0x' + cidV1.toString('base16'))`,
/// where multibase base16 text starts with the prefix `f`, so the number is `0xf` followed by the CIDv1 bytes.
/// Members of one group may run either manager, so the slot must be computed exactly as TypeScript does.
pub fn cid_group_hex(cid: &str) -> Option<String> {
    let v1 = cid::Cid::try_from(cid).ok()?.into_v1().ok()?;
    Some(format!("f{}", hex::encode(v1.to_bytes())))
}

/// The group slot of a CID among `m` members: TypeScript's number ([`cid_group_hex`]) modulo `m`.
pub fn cid_mod(cid: &str, m: u64) -> Option<u64> {
    if m == 0 {
        return None;
    }
    let digits = cid_group_hex(cid)?;
    let m = u128::from(m);
    let mut r: u128 = 0;
    for d in digits.chars() {
        r = (r * 16 + u128::from(d.to_digit(16)?)) % m;
    }
    u64::try_from(r).ok()
}

/// The draw (0 ≤ x < 1) a CID gets from `seed`. Deterministic for one seed, so a file gets the same answer every
/// round and after restarts, but independent between seeds, so different groups take different files (a draw from
/// the CID alone would make every node accept and refuse the same ones).
pub fn probability_draw(seed: &str, cid: &str) -> f64 {
    let mut input = Vec::with_capacity(seed.len() + 1 + cid.len());
    input.extend_from_slice(seed.as_bytes());
    input.push(0);
    input.extend_from_slice(cid.as_bytes());
    let h = sp_crypto_hashing::blake2_128(&input);
    let x = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % 1_000_000;
    x as f64 / 1_000_000.0
}

/// Whether the CID falls in the accepted `share` (0–1) for `seed`.
pub fn probability_accepts(seed: &str, cid: &str, share: f64) -> bool {
    share >= 1.0 || probability_draw(seed, cid) < share
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";

    /// Hex digits to decimal, for comparing with TypeScript's BigNumber output.
    fn hex_to_decimal(hex: &str) -> String {
        let mut digits: Vec<u32> = vec![0]; // little-endian base 10
        for h in hex.chars() {
            let mut carry = h.to_digit(16).expect("hex digit");
            for d in digits.iter_mut() {
                let v = *d * 16 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            while carry > 0 {
                digits.push(carry % 10);
                carry /= 10;
            }
        }
        digits
            .iter()
            .rev()
            .map(|d| char::from_digit(*d, 10).unwrap_or('?'))
            .collect()
    }

    #[test]
    fn group_number_matches_typescript_vector() {
        // crust-smanager's own test vector (BigNumber('0x' + cidV1.toString('base16'))).
        let hex = cid_group_hex("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV").expect("cid");
        assert_eq!(
            hex_to_decimal(&hex),
            "7462641670019941206647870581808974408289101716104644620046486700662133202706398401268240"
        );
        // The `f` digit matters where 256 is not 1 modulo the group size: 7 members give slot 5, not 4.
        assert_eq!(cid_mod("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV", 7), Some(5));
        assert_eq!(cid_mod("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV", 5), Some(0));
    }

    #[test]
    fn cid_versions_share_a_slot() {
        let v0 = cid::Cid::try_from(CID).expect("cid");
        let v1 = v0.into_v1().expect("v1").to_string();
        assert_eq!(cid_mod(CID, 7), cid_mod(&v1, 7));
        assert_eq!(cid_mod("not-a-cid", 7), None);
        assert_eq!(cid_mod(CID, 0), None);
    }

    #[test]
    fn draws_are_stable_and_bounded() {
        let d = probability_draw("group", CID);
        assert!((0.0..1.0).contains(&d));
        assert_eq!(d, probability_draw("group", CID));
        assert!(probability_accepts("group", CID, 1.0));
        assert!(!probability_accepts("group", CID, 0.0));
    }
}
