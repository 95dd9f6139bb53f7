//! What a runtime's types look like on the wire, compiled once per runtime version from its own metadata, so that a
//! block can be read without visiting every byte of it.
//!
//! subxt walks a value through scale-decode's visitor, which resolves the type of each element of a `Vec<u8>` or a
//! `[u8; 32]` separately: most of what the indexer spent per block. Here a type of fixed size (an account id, a
//! signature, a hash, a balance, a struct or array of them) is skipped in one step, and a byte string is read as a
//! slice. Nothing is hard-coded: the sizes, fields, variants and names all come from the metadata of the block's
//! runtime, as subxt's come. What this module cannot read it reports as an error, and the caller reads that block
//! with subxt instead.

use std::collections::HashMap;

use parity_scale_codec::{Compact, Decode};
use scale_info::form::PortableForm;
use scale_info::{PortableRegistry, TypeDef, TypeDefPrimitive};
use subxt::metadata::Metadata;

/// Why a block could not be read by layout (subxt then reads it).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// A value is cut short.
    #[error("the data ends early")]
    Eof,
    /// A compact integer (or length) does not decode.
    #[error("a compact integer does not decode")]
    Compact,
    /// The data names a type the runtime does not have.
    #[error("type {0} is not in the registry")]
    UnknownType(u32),
    /// An enum's index byte names no variant of it.
    #[error("type {ty} has no variant {index}")]
    UnknownVariant { ty: u32, index: u8 },
    /// Values nested beyond what any Crust call holds.
    #[error("values nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Anything else the layouts do not read: an extrinsic version, a call or event the runtime lacks, left-over
    /// bytes, a Market event of another shape.
    #[error("{0}")]
    Unexpected(String),
}

/// Deeper values are refused (recursive types, such as a call that holds calls, could otherwise nest without end).
const MAX_DEPTH: u32 = 64;

/// How to step over a value of one type.
#[derive(Debug, Clone)]
enum Shape {
    /// Always this many bytes.
    Fixed(usize),
    /// A SCALE compact integer.
    Compact,
    /// A compact length, then that many elements (of `elem_size` bytes each when their size is fixed).
    Seq { elem: u32, elem_size: Option<usize> },
    /// `len` elements of a type whose size varies.
    Array { len: usize, elem: u32 },
    /// Fields one after the other.
    Fields(Vec<u32>),
    /// An index byte, then the fields of that variant.
    Variant(Vec<(u8, Vec<u32>)>),
    /// A compact number of bits, stored in words of `store_bytes`.
    BitSeq { store_bytes: usize },
}

/// How a value can be read as bytes or as an unsigned integer (what the indexer takes out of calls and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Not a byte string nor an unsigned integer.
    Other,
    /// A compact length, then the bytes (`Vec<u8>`, `str`).
    PrefixedBytes,
    /// Exactly this many bytes (`[u8; N]`, `AccountId32`).
    FixedBytes(usize),
    /// A little-endian unsigned integer of this many bytes.
    Uint(usize),
    /// A compact unsigned integer.
    CompactUint,
}

/// A call of the runtime: names and arguments in order.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The pallet's name, as subxt names it.
    pub pallet: String,
    /// The call's name.
    pub name: String,
    /// Each argument's name and type, in order.
    pub args: Vec<(String, u32)>,
}

/// An event of the runtime: names and field types in order.
#[derive(Debug, Clone)]
pub struct EventInfo {
    /// The pallet's name, as subxt names it.
    pub pallet: String,
    /// The event's name.
    pub name: String,
    /// Each field's type, in order.
    pub fields: Vec<u32>,
}

/// One runtime's layouts.
pub struct Layouts {
    shapes: Vec<Shape>,
    readings: Vec<Reading>,
    calls: HashMap<(u8, u8), CallInfo>,
    events: HashMap<(u8, u8), EventInfo>,
    /// Types of a signed extrinsic's address, signature and (version 0) extensions, in order.
    address_ty: u32,
    signature_ty: u32,
    extension_tys: Vec<u32>,
}

impl Layouts {
    /// Compiles the layouts of every type, call and event of `metadata`.
    pub fn compile(metadata: &Metadata) -> Result<Self, LayoutError> {
        use subxt::ext::frame_decode::extrinsics::ExtrinsicTypeInfo;
        let (shapes, readings) = shapes_of(metadata.types())?;
        let mut calls = HashMap::new();
        let mut events = HashMap::new();
        for pallet in metadata.pallets() {
            for v in pallet.call_variants().unwrap_or_default() {
                let args = v
                    .fields
                    .iter()
                    .map(|f| (f.name.clone().unwrap_or_default(), f.ty.id))
                    .collect();
                calls.insert(
                    (pallet.call_index(), v.index),
                    CallInfo {
                        pallet: pallet.name().to_string(),
                        name: v.name.clone(),
                        args,
                    },
                );
            }
            for v in pallet.event_variants().unwrap_or_default() {
                events.insert(
                    (pallet.event_index(), v.index),
                    EventInfo {
                        pallet: pallet.name().to_string(),
                        name: v.name.clone(),
                        fields: v.fields.iter().map(|f| f.ty.id).collect(),
                    },
                );
            }
        }
        let signature = metadata
            .extrinsic_signature_info()
            .map_err(|e| LayoutError::Unexpected(e.to_string()))?;
        let extensions = metadata
            .extrinsic_extension_info(None)
            .map_err(|e| LayoutError::Unexpected(e.to_string()))?;
        Ok(Layouts {
            shapes,
            readings,
            calls,
            events,
            address_ty: signature.address_id,
            signature_ty: signature.signature_id,
            extension_tys: extensions.extension_ids.iter().map(|e| e.id).collect(),
        })
    }

    /// Steps over one value of type `ty`.
    pub fn skip(&self, ty: u32, data: &mut &[u8]) -> Result<(), LayoutError> {
        self.skip_at(ty, data, 0)
    }

    fn skip_at(&self, ty: u32, data: &mut &[u8], depth: u32) -> Result<(), LayoutError> {
        if depth > MAX_DEPTH {
            return Err(LayoutError::TooDeep);
        }
        match self.shapes.get(ty as usize).ok_or(LayoutError::UnknownType(ty))? {
            Shape::Fixed(n) => advance(data, *n),
            Shape::Compact => skip_compact(data),
            Shape::Seq { elem, elem_size } => {
                let len = compact_len(data)?;
                match elem_size {
                    Some(size) => advance(data, len.checked_mul(*size).ok_or(LayoutError::Eof)?),
                    None => {
                        for _ in 0..len {
                            self.skip_at(*elem, data, depth + 1)?;
                        }
                        Ok(())
                    }
                }
            }
            Shape::Array { len, elem } => {
                for _ in 0..*len {
                    self.skip_at(*elem, data, depth + 1)?;
                }
                Ok(())
            }
            Shape::Fields(fields) => {
                for f in fields {
                    self.skip_at(*f, data, depth + 1)?;
                }
                Ok(())
            }
            Shape::Variant(variants) => {
                let index = *data.first().ok_or(LayoutError::Eof)?;
                *data = &data[1..];
                let (_, fields) = variants
                    .iter()
                    .find(|(i, _)| *i == index)
                    .ok_or(LayoutError::UnknownVariant { ty, index })?;
                for f in fields {
                    self.skip_at(*f, data, depth + 1)?;
                }
                Ok(())
            }
            Shape::BitSeq { store_bytes } => {
                let bits = compact_len(data)?;
                let store_bits = store_bytes * 8;
                advance(data, bits.div_ceil(store_bits) * store_bytes)
            }
        }
    }

    /// Reads a value of type `ty` as bytes, as a `Vec<u8>` is decoded from it (a byte string, a byte array, or a
    /// struct wrapping one); `None` when the type is none of those. The data is consumed either way.
    pub fn read_bytes(&self, ty: u32, data: &mut &[u8]) -> Result<Option<Vec<u8>>, LayoutError> {
        let n = match self.readings.get(ty as usize) {
            Some(Reading::PrefixedBytes) => compact_len(data)?,
            Some(Reading::FixedBytes(n)) => *n,
            _ => return self.skip(ty, data).map(|()| None),
        };
        let bytes = data.get(..n).ok_or(LayoutError::Eof)?.to_vec();
        *data = &data[n..];
        Ok(Some(bytes))
    }

    /// Reads a value of type `ty` as an unsigned integer (fixed or compact, or a struct wrapping one); `None` when the
    /// type is not one. The data is consumed either way.
    pub fn read_uint(&self, ty: u32, data: &mut &[u8]) -> Result<Option<u128>, LayoutError> {
        match self.readings.get(ty as usize) {
            Some(Reading::Uint(n)) => {
                let bytes = data.get(..*n).ok_or(LayoutError::Eof)?;
                let mut le = [0u8; 16];
                le[..*n].copy_from_slice(bytes);
                *data = &data[*n..];
                Ok(Some(u128::from_le_bytes(le)))
            }
            Some(Reading::CompactUint) => Compact::<u128>::decode(data)
                .map(|c| Some(c.0))
                .map_err(|_| LayoutError::Compact),
            _ => self.skip(ty, data).map(|()| None),
        }
    }

    /// The call at (pallet index, call index).
    pub fn call(&self, pallet: u8, call: u8) -> Option<&CallInfo> {
        self.calls.get(&(pallet, call))
    }

    /// The event at (pallet index, event index).
    pub fn event(&self, pallet: u8, event: u8) -> Option<&EventInfo> {
        self.events.get(&(pallet, event))
    }

    /// A block's event records (`System.Events`), read as subxt reads them: a compact count (none when the data
    /// holds no count), then each record's phase, event and topics.
    pub fn events<'a>(&'a self, bytes: &'a [u8]) -> Result<Vec<EventRecord<'a>>, LayoutError> {
        let mut cursor = bytes;
        let count = Compact::<u32>::decode(&mut cursor).map_or(0, |c| c.0);
        let mut out = Vec::with_capacity(count.min(4096) as usize);
        while !cursor.is_empty() && out.len() < count as usize {
            let (&phase, rest) = cursor.split_first().ok_or(LayoutError::Eof)?;
            cursor = rest;
            let extrinsic = match phase {
                0 => Some(u32::decode(&mut cursor).map_err(|_| LayoutError::Eof)?),
                1 | 2 => None,
                other => return Err(LayoutError::Unexpected(format!("event phase {other}"))),
            };
            let (&pallet, rest) = cursor.split_first().ok_or(LayoutError::Eof)?;
            let (&index, rest) = rest.split_first().ok_or(LayoutError::Eof)?;
            let info = self
                .event(pallet, index)
                .ok_or_else(|| LayoutError::Unexpected(format!("no event ({pallet}, {index}) in this runtime")))?;
            cursor = rest;
            let fields = cursor;
            for ty in &info.fields {
                self.skip(*ty, &mut cursor)?;
            }
            let fields = &fields[..fields.len() - cursor.len()];
            // Topics: a vector of 32-byte hashes.
            let topics = compact_len(&mut cursor)?;
            advance(&mut cursor, topics.checked_mul(32).ok_or(LayoutError::Eof)?)?;
            out.push(EventRecord {
                extrinsic,
                info,
                fields,
            });
        }
        Ok(out)
    }

    /// A v4 extrinsic (with its compact length prefix) split into what the indexer reads.
    pub fn extrinsic<'a>(&'a self, bytes: &'a [u8]) -> Result<Extrinsic<'a>, LayoutError> {
        let mut cursor = bytes;
        let len = compact_len(&mut cursor)?;
        if cursor.len() != len || cursor.is_empty() {
            return Err(LayoutError::Unexpected(format!(
                "extrinsic of {} bytes says it has {len}",
                cursor.len()
            )));
        }
        let version = cursor[0];
        cursor = &cursor[1..];
        let address = match (version & 0b0011_1111, version >> 6) {
            (4, 0b00) => None,
            (4, 0b10) => {
                let start = cursor;
                self.skip(self.address_ty, &mut cursor)?;
                let address = &start[..start.len() - cursor.len()];
                self.skip(self.signature_ty, &mut cursor)?;
                for ty in &self.extension_tys {
                    self.skip(*ty, &mut cursor)?;
                }
                Some(address)
            }
            _ => {
                return Err(LayoutError::Unexpected(format!(
                    "extrinsic version byte {version:#04x}"
                )))
            }
        };
        let call_bytes = cursor;
        let (&pallet, rest) = cursor.split_first().ok_or(LayoutError::Eof)?;
        let (&index, rest) = rest.split_first().ok_or(LayoutError::Eof)?;
        let call = self
            .call(pallet, index)
            .ok_or_else(|| LayoutError::Unexpected(format!("no call ({pallet}, {index}) in this runtime")))?;
        let args = rest;
        cursor = rest;
        for (_, ty) in &call.args {
            self.skip(*ty, &mut cursor)?;
        }
        if !cursor.is_empty() {
            return Err(LayoutError::Unexpected(format!(
                "{} bytes left after {}.{}",
                cursor.len(),
                call.pallet,
                call.name
            )));
        }
        Ok(Extrinsic {
            address,
            call,
            call_bytes,
            args,
        })
    }
}

/// One event record as the indexer reads it.
pub struct EventRecord<'a> {
    /// The extrinsic it was emitted by (`None` at initialization or finalization).
    pub extrinsic: Option<u32>,
    /// What the event is, by the runtime's metadata.
    pub info: &'a EventInfo,
    /// The event's fields.
    pub fields: &'a [u8],
}

/// An extrinsic as the indexer reads it.
pub struct Extrinsic<'a> {
    /// The signer's address as encoded (`None` for an unsigned extrinsic).
    pub address: Option<&'a [u8]>,
    /// What the call is, by the runtime's metadata.
    pub call: &'a CallInfo,
    /// The call, from its pallet index on.
    pub call_bytes: &'a [u8],
    /// The call's arguments.
    pub args: &'a [u8],
}

/// How to step over, and how to read, each type of a registry (indexed by type id).
fn shapes_of(types: &PortableRegistry) -> Result<(Vec<Shape>, Vec<Reading>), LayoutError> {
    let mut fixed = FixedSizes::new(types);
    let mut shapes = Vec::with_capacity(types.types.len());
    let mut readings = Vec::with_capacity(types.types.len());
    for (i, t) in types.types.iter().enumerate() {
        if t.id as usize != i {
            return Err(LayoutError::Unexpected(format!("type ids are not dense at {i}")));
        }
        let shape = match fixed.size(t.id) {
            Some(n) => Shape::Fixed(n),
            None => variable_shape(types, &mut fixed, &t.ty.type_def)?,
        };
        shapes.push(shape);
        readings.push(reading(types, t.id, 0));
    }
    Ok((shapes, readings))
}

fn advance(data: &mut &[u8], n: usize) -> Result<(), LayoutError> {
    *data = data.get(n..).ok_or(LayoutError::Eof)?;
    Ok(())
}

fn skip_compact(data: &mut &[u8]) -> Result<(), LayoutError> {
    let first = *data.first().ok_or(LayoutError::Eof)?;
    let n = match first & 0b11 {
        0b00 => 1,
        0b01 => 2,
        0b10 => 4,
        _ => 1 + usize::from(first >> 2) + 4,
    };
    advance(data, n)
}

/// A compact length (of a sequence, string or bit sequence).
fn compact_len(data: &mut &[u8]) -> Result<usize, LayoutError> {
    let n = Compact::<u32>::decode(data).map_err(|_| LayoutError::Compact)?.0;
    usize::try_from(n).map_err(|_| LayoutError::Compact)
}

/// The size of each type whose values always have one, worked out once.
struct FixedSizes<'a> {
    types: &'a PortableRegistry,
    known: Vec<Option<Option<usize>>>,
    visiting: Vec<bool>,
}

impl<'a> FixedSizes<'a> {
    fn new(types: &'a PortableRegistry) -> Self {
        let n = types.types.len();
        FixedSizes {
            types,
            known: vec![None; n],
            visiting: vec![false; n],
        }
    }

    fn size(&mut self, id: u32) -> Option<usize> {
        let i = id as usize;
        if let Some(known) = self.known.get(i).copied().flatten() {
            return known;
        }
        // A type that contains itself has no fixed size.
        if *self.visiting.get(i)? {
            return None;
        }
        self.visiting[i] = true;
        let def = &self.types.resolve(id)?.type_def;
        let size = match def {
            TypeDef::Primitive(p) => primitive_size(p),
            TypeDef::Composite(c) => self.sum(c.fields.iter().map(|f| f.ty.id)),
            TypeDef::Tuple(t) => self.sum(t.fields.iter().map(|f| f.id)),
            TypeDef::Array(a) => self.size(a.type_param.id).and_then(|s| s.checked_mul(a.len as usize)),
            TypeDef::Variant(v) => {
                // Fixed only when every variant has the same size (an enum without fields is one byte).
                let mut sizes = v
                    .variants
                    .iter()
                    .map(|var| self.sum(var.fields.iter().map(|f| f.ty.id)));
                match sizes.next() {
                    Some(Some(first)) if sizes.all(|s| s == Some(first)) => Some(1 + first),
                    _ => None,
                }
            }
            TypeDef::Sequence(_) | TypeDef::Compact(_) | TypeDef::BitSequence(_) => None,
        };
        self.visiting[i] = false;
        self.known[i] = Some(size);
        size
    }

    fn sum(&mut self, ids: impl Iterator<Item = u32>) -> Option<usize> {
        let mut total = 0usize;
        for id in ids.collect::<Vec<_>>() {
            total = total.checked_add(self.size(id)?)?;
        }
        Some(total)
    }
}

fn primitive_size(p: &TypeDefPrimitive) -> Option<usize> {
    Some(match p {
        TypeDefPrimitive::Bool | TypeDefPrimitive::U8 | TypeDefPrimitive::I8 => 1,
        TypeDefPrimitive::U16 | TypeDefPrimitive::I16 => 2,
        TypeDefPrimitive::Char | TypeDefPrimitive::U32 | TypeDefPrimitive::I32 => 4,
        TypeDefPrimitive::U64 | TypeDefPrimitive::I64 => 8,
        TypeDefPrimitive::U128 | TypeDefPrimitive::I128 => 16,
        TypeDefPrimitive::U256 | TypeDefPrimitive::I256 => 32,
        TypeDefPrimitive::Str => return None,
    })
}

fn variable_shape(
    types: &PortableRegistry,
    fixed: &mut FixedSizes<'_>,
    def: &TypeDef<PortableForm>,
) -> Result<Shape, LayoutError> {
    Ok(match def {
        TypeDef::Primitive(TypeDefPrimitive::Str) => Shape::Seq {
            elem: u32::MAX,
            elem_size: Some(1),
        },
        TypeDef::Primitive(p) => {
            return Err(LayoutError::Unexpected(format!("primitive {p:?} without a size")));
        }
        TypeDef::Compact(_) => Shape::Compact,
        TypeDef::Sequence(s) => Shape::Seq {
            elem: s.type_param.id,
            elem_size: fixed.size(s.type_param.id),
        },
        TypeDef::Array(a) => Shape::Array {
            len: a.len as usize,
            elem: a.type_param.id,
        },
        TypeDef::Composite(c) => Shape::Fields(c.fields.iter().map(|f| f.ty.id).collect()),
        TypeDef::Tuple(t) => Shape::Fields(t.fields.iter().map(|f| f.id).collect()),
        TypeDef::Variant(v) => Shape::Variant(
            v.variants
                .iter()
                .map(|var| (var.index, var.fields.iter().map(|f| f.ty.id).collect()))
                .collect(),
        ),
        TypeDef::BitSequence(b) => {
            let store = types
                .resolve(b.bit_store_type.id)
                .ok_or(LayoutError::UnknownType(b.bit_store_type.id))?;
            match &store.type_def {
                TypeDef::Primitive(
                    p @ (TypeDefPrimitive::U8 | TypeDefPrimitive::U16 | TypeDefPrimitive::U32 | TypeDefPrimitive::U64),
                ) => Shape::BitSeq {
                    store_bytes: primitive_size(p).unwrap_or(1),
                },
                other => return Err(LayoutError::Unexpected(format!("bit store {other:?}"))),
            }
        }
    })
}

/// How `id` reads as bytes or as an integer; wrappers of one field are looked through.
fn reading(types: &PortableRegistry, id: u32, depth: u32) -> Reading {
    let Some(t) = types.resolve(id) else {
        return Reading::Other;
    };
    let is_u8 = |id: u32| {
        matches!(
            types.resolve(id).map(|t| &t.type_def),
            Some(TypeDef::Primitive(TypeDefPrimitive::U8))
        )
    };
    match &t.type_def {
        TypeDef::Primitive(
            p @ (TypeDefPrimitive::U8
            | TypeDefPrimitive::U16
            | TypeDefPrimitive::U32
            | TypeDefPrimitive::U64
            | TypeDefPrimitive::U128),
        ) => primitive_size(p).map_or(Reading::Other, Reading::Uint),
        TypeDef::Compact(c) => match reading(types, c.type_param.id, depth + 1) {
            Reading::Uint(_) | Reading::CompactUint => Reading::CompactUint,
            _ => Reading::Other,
        },
        TypeDef::Sequence(s) if is_u8(s.type_param.id) => Reading::PrefixedBytes,
        TypeDef::Array(a) if is_u8(a.type_param.id) => Reading::FixedBytes(a.len as usize),
        TypeDef::Composite(c) if c.fields.len() == 1 && depth < MAX_DEPTH => {
            reading(types, c.fields[0].ty.id, depth + 1)
        }
        TypeDef::Tuple(t) if t.fields.len() == 1 && depth < MAX_DEPTH => reading(types, t.fields[0].id, depth + 1),
        _ => Reading::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parity_scale_codec::Encode;
    use scale_info::{meta_type, Registry, TypeInfo};

    /// Layouts of the given types only (no calls, events or extrinsic format), with the id of each.
    fn layouts_of(metas: Vec<scale_info::MetaType>) -> (Layouts, Vec<u32>) {
        let mut registry = Registry::new();
        let ids: Vec<u32> = metas.into_iter().map(|m| registry.register_type(&m).id).collect();
        let types = PortableRegistry::from(registry);
        let (shapes, readings) = shapes_of(&types).expect("shapes");
        let layouts = Layouts {
            shapes,
            readings,
            calls: HashMap::new(),
            events: HashMap::new(),
            address_ty: 0,
            signature_ty: 0,
            extension_tys: Vec::new(),
        };
        (layouts, ids)
    }

    /// Skipping a value consumes exactly its encoding, and a value cut short is an error, never a panic.
    fn steps_over<T: Encode + TypeInfo + 'static>(value: T) {
        let (l, ids) = layouts_of(vec![meta_type::<T>()]);
        let mut bytes = value.encode();
        bytes.extend_from_slice(&[0xAA, 0xBB]);
        let mut data = &bytes[..];
        l.skip(ids[0], &mut data).expect("skips");
        assert_eq!(
            data,
            &[0xAA, 0xBB],
            "{}: stepped over a wrong length",
            std::any::type_name::<T>()
        );
        let encoded = value.encode();
        for cut in 0..encoded.len() {
            let mut short = &encoded[..cut];
            assert!(
                l.skip(ids[0], &mut short).is_err(),
                "{} cut to {cut} of {} bytes",
                std::any::type_name::<T>(),
                encoded.len()
            );
        }
    }

    #[test]
    fn every_shape_is_stepped_over_exactly() {
        steps_over(7u8);
        steps_over(u128::MAX);
        steps_over(true);
        steps_over([9u8; 32]);
        steps_over(([1u8; 32], 5u64, [[2u16; 3]; 4]));
        steps_over(b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".to_vec());
        steps_over(String::from("a memo"));
        steps_over(vec![vec![1u8, 2, 3], vec![], vec![4u8; 300]]);
        steps_over(vec![String::from("x"), String::from("yz")]);
        steps_over([vec![1u8], vec![2u8, 3]]);
        steps_over(Some(3u32));
        steps_over(None::<u32>);
        steps_over(Some(vec![5u8; 70]));
        steps_over(Ok::<u64, Vec<u8>>(9));
        steps_over(Err::<u64, Vec<u8>>(vec![1, 2]));
        steps_over(vec![(1u8, Some(2u16)), (3, None)]);
        steps_over(Box::new(17u32));
        for n in [
            0u128,
            63,
            64,
            16_383,
            16_384,
            (1 << 30) - 1,
            1 << 30,
            u64::MAX as u128,
            u128::MAX,
        ] {
            steps_over(Compact(n));
        }
        steps_over(Compact(u32::MAX));
        steps_over(vec![Compact(1u64), Compact(1 << 40)]);
    }

    #[test]
    fn fixed_sizes_are_folded_and_variable_ones_are_not() {
        let (l, ids) = layouts_of(vec![
            meta_type::<[u8; 32]>(),
            meta_type::<([u8; 32], u64)>(),
            meta_type::<Option<u32>>(),
            meta_type::<Result<u32, u32>>(),
            meta_type::<Vec<u8>>(),
        ]);
        let fixed = |id: u32| match l.shapes[id as usize] {
            Shape::Fixed(n) => Some(n),
            _ => None,
        };
        assert_eq!(fixed(ids[0]), Some(32));
        assert_eq!(fixed(ids[1]), Some(40));
        // Variants of different sizes (None, Some(u32)) have no one size; variants of one size do.
        assert_eq!(fixed(ids[2]), None);
        assert_eq!(fixed(ids[3]), Some(5));
        assert_eq!(fixed(ids[4]), None);
    }

    #[test]
    fn bytes_and_integers_are_read_as_scale_decode_reads_them() {
        use subxt::ext::scale_decode::DecodeAsType;
        let metas = vec![
            meta_type::<Vec<u8>>(),
            meta_type::<[u8; 32]>(),
            meta_type::<(u64,)>(),
            meta_type::<Compact<u128>>(),
            meta_type::<String>(),
            meta_type::<Vec<u16>>(),
            meta_type::<u32>(),
            meta_type::<([u8; 32],)>(),
        ];
        let mut registry = Registry::new();
        let ids: Vec<u32> = metas.iter().map(|m| registry.register_type(m).id).collect();
        let types = PortableRegistry::from(registry);
        let (l, _) = layouts_of(metas);
        let cases: Vec<(u32, Vec<u8>)> = vec![
            (ids[0], b"Qm".to_vec().encode()),
            (ids[1], [7u8; 32].encode()),
            (ids[2], (42u64,).encode()),
            (ids[3], Compact(u128::MAX).encode()),
            (ids[4], String::from("Qm").encode()),
            (ids[5], vec![1u16, 300].encode()),
            (ids[6], 70_000u32.encode()),
            (ids[7], ([3u8; 32],).encode()),
        ];
        for (id, bytes) in cases {
            let theirs = Vec::<u8>::decode_as_type(&mut &bytes[..], id, &types).ok();
            assert_eq!(
                l.read_bytes(id, &mut &bytes[..]).ok().flatten(),
                theirs,
                "bytes of type {id}"
            );
            let theirs = u128::decode_as_type(&mut &bytes[..], id, &types).ok();
            assert_eq!(
                l.read_uint(id, &mut &bytes[..]).ok().flatten(),
                theirs,
                "integer of type {id}"
            );
        }
        // Cut short: an error, not a panic.
        assert_eq!(l.read_bytes(ids[0], &mut &[8u8, 1][..]), Err(LayoutError::Eof));
        assert_eq!(l.read_uint(ids[2], &mut &[1u8, 2][..]), Err(LayoutError::Eof));
    }

    #[test]
    fn an_unknown_type_or_variant_is_an_error() {
        let (l, ids) = layouts_of(vec![meta_type::<Option<u8>>()]);
        assert_eq!(l.skip(9_999, &mut &[0u8][..]), Err(LayoutError::UnknownType(9_999)));
        assert_eq!(
            l.skip(ids[0], &mut &[7u8, 1][..]),
            Err(LayoutError::UnknownVariant { ty: ids[0], index: 7 })
        );
    }
}
