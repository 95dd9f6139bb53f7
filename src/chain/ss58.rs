//! SS58 addresses: how operators write accounts (`cT…` on Crust, prefix 66) and how the chain stores them (32 bytes).

use sp_crypto_hashing::blake2_512;

/// Why a string is not an SS58 address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ss58Error {
    /// Not valid base58 text.
    #[error("not base58")]
    Base58,
    /// Decoded to a length no 32-byte account has.
    #[error("wrong length ({0} bytes decoded, expected 35 or 36)")]
    Length(usize),
    /// Uses a prefix range SS58 reserves.
    #[error("reserved address prefix")]
    Prefix,
    /// The checksum does not match: a typo in the address.
    #[error("bad checksum")]
    Checksum,
}

const PRE: &[u8] = b"SS58PRE";

/// Decodes an address into its network prefix and 32-byte account id.
pub fn decode(addr: &str) -> Result<(u16, [u8; 32]), Ss58Error> {
    let raw = bs58::decode(addr).into_vec().map_err(|_| Ss58Error::Base58)?;
    let first = *raw.first().ok_or(Ss58Error::Length(0))?;
    let (prefix, plen) = match first {
        0..=63 => (u16::from(first), 1usize),
        64..=127 => {
            let second = *raw.get(1).ok_or(Ss58Error::Length(raw.len()))?;
            let lower = ((first & 0b0011_1111) << 2) | (second >> 6);
            let upper = second & 0b0011_1111;
            (u16::from(lower) | (u16::from(upper) << 8), 2usize)
        }
        _ => return Err(Ss58Error::Prefix),
    };
    if raw.len() != plen + 32 + 2 {
        return Err(Ss58Error::Length(raw.len()));
    }
    let body = &raw[..plen + 32];
    let hash = blake2_512(&[PRE, body].concat());
    if raw[plen + 32..] != hash[..2] {
        return Err(Ss58Error::Checksum);
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&raw[plen..plen + 32]);
    Ok((prefix, id))
}

/// Encodes a 32-byte account id for the given network prefix (66 on Crust).
pub fn encode(prefix: u16, id: &[u8; 32]) -> String {
    let mut body = Vec::with_capacity(36);
    if prefix < 64 {
        body.push(prefix as u8);
    } else {
        body.push((((prefix & 0b1111_1100) as u8) >> 2) | 0b0100_0000);
        body.push(((prefix >> 8) as u8) | (((prefix & 0b11) as u8) << 6));
    }
    body.extend_from_slice(id);
    let hash = blake2_512(&[PRE, &body].concat());
    body.extend_from_slice(&hash[..2]);
    bs58::encode(body).into_string()
}

/// Crust mainnet's address prefix.
pub const CRUST_PREFIX: u16 = 66;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crust_vectors() {
        assert_eq!(
            encode(66, &[0u8; 32]),
            "cTGLdr4shCimXefxtJtGUhde5tVxn3q7LJbamicTntUogmWBp"
        );
        let alice = hex::decode("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d").unwrap_or_default();
        let mut id = [0u8; 32];
        id.copy_from_slice(&alice);
        let addr = encode(66, &id);
        assert_eq!(addr, "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa");
        assert_eq!(decode(&addr), Ok((66, id)));
        let mut broken = addr.clone();
        broken.replace_range(10..11, if &addr[10..11] == "a" { "b" } else { "a" });
        assert!(decode(&broken).is_err());
    }
}
