//! KVP (key/value pair exchange) messages.
//!
//! Body: `@0 operation u8, @1 pool u8, @2 pad u16, @4 operation body`. Keys and values travel
//! as UTF-16LE with a terminating NUL, their sizes in bytes including it: keys up to 512 bytes,
//! values up to 2048.

use alloc::string::String;
use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::{open_enum, IcError};

/// Largest key, in bytes including the NUL.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes including the NUL.
pub const MAX_VALUE_BYTES: usize = 2048;

open_enum! {
    /// KVP operations.
    pub struct KvpOp(u8) {
        /// Read a key.
        GET = 0,
        /// Write a key.
        SET = 1,
        /// Delete a key.
        DELETE = 2,
        /// Read the record at an index.
        ENUMERATE = 3,
        /// Read an adapter's IP configuration.
        GET_IP_INFO = 4,
        /// Set an adapter's IP configuration.
        SET_IP_INFO = 5,
    }
}

open_enum! {
    /// KVP pools.
    pub struct KvpPool(u8) {
        /// Data the host writes for the guest.
        EXTERNAL = 0,
        /// Data the guest writes for the host.
        GUEST = 1,
        /// The guest's intrinsic data (hostname, OS, addresses).
        AUTO = 2,
        /// Host-provided intrinsic data.
        AUTO_EXTERNAL = 3,
        /// Internal; never on the wire.
        AUTO_INTERNAL = 4,
    }
}

open_enum! {
    /// Registry-style value types.
    pub struct ValueType(u32) {
        /// UTF-16 string.
        REG_SZ = 1,
        /// UTF-16 string with environment references.
        REG_EXPAND_SZ = 2,
        /// 32-bit value.
        REG_DWORD = 4,
        /// 64-bit value as Linux numbers it.
        REG_U64_LINUX = 8,
        /// 64-bit value as Windows numbers it (`REG_QWORD`).
        REG_QWORD = 11,
    }
}

/// The 4-byte KVP header.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct KvpHeader {
    /// [`KvpOp`].
    pub operation: u8,
    /// [`KvpPool`].
    pub pool: u8,
    /// Zero.
    pub pad: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<KvpHeader>() == 4);

/// A value record (2572 bytes).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ValueRecord {
    /// [`ValueType`].
    pub value_type: U32,
    /// Key bytes including the NUL.
    pub key_size: U32,
    /// Value bytes including the NUL (or the integer's size).
    pub value_size: U32,
    /// UTF-16LE key.
    pub key: [u8; MAX_KEY_BYTES],
    /// UTF-16LE value (or a little-endian integer).
    pub value: [u8; MAX_VALUE_BYTES],
}
const _: () = assert!(core::mem::size_of::<ValueRecord>() == 2572);

impl core::fmt::Debug for ValueRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ValueRecord")
            .field("value_type", &ValueType(self.value_type.get()))
            .field("key_size", &self.key_size.get())
            .field("value_size", &self.value_size.get())
            .finish_non_exhaustive()
    }
}

/// The DELETE body after the header.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct DeleteBody {
    /// Key bytes including the NUL.
    pub key_size: U32,
    /// UTF-16LE key.
    pub key: [u8; MAX_KEY_BYTES],
}
const _: () = assert!(core::mem::size_of::<DeleteBody>() == 516);

impl core::fmt::Debug for DeleteBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeleteBody")
            .field("key_size", &self.key_size.get())
            .finish_non_exhaustive()
    }
}

/// The GET_IP_INFO / SET_IP_INFO body (7428 bytes including op and pool).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct IpInfo {
    /// [`KvpOp`].
    pub operation: u8,
    /// [`KvpPool`].
    pub pool: u8,
    /// Adapter id, UTF-16LE.
    pub adapter_id: [u8; 256],
    /// 0 none, 1 IPv4, 2 IPv6, 3 both.
    pub addr_family: u8,
    /// DHCP enabled.
    pub dhcp_enabled: u8,
    /// Addresses, `;`-separated UTF-16LE.
    pub ip_addr: [u8; 2048],
    /// Subnets.
    pub sub_net: [u8; 2048],
    /// Gateways.
    pub gate_way: [u8; 1024],
    /// DNS servers.
    pub dns_addr: [u8; 2048],
}
const _: () = assert!(core::mem::size_of::<IpInfo>() == 7428);

impl PartialEq for IpInfo {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IpInfo {}

impl core::fmt::Debug for IpInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IpInfo")
            .field("operation", &KvpOp(self.operation))
            .field("pool", &KvpPool(self.pool))
            .field("addr_family", &self.addr_family)
            .field("dhcp_enabled", &self.dhcp_enabled)
            .finish_non_exhaustive()
    }
}

/// A decoded key/value record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Value type.
    pub value_type: ValueType,
    /// The key.
    pub key: String,
    /// The value (integers rendered in decimal).
    pub value: String,
}

/// A decoded KVP message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvpMessage {
    /// GET (request: key; response: the record).
    Get {
        /// Pool.
        pool: KvpPool,
        /// The record (value empty in a request).
        record: Record,
    },
    /// SET.
    Set {
        /// Pool.
        pool: KvpPool,
        /// The record.
        record: Record,
    },
    /// DELETE.
    Delete {
        /// Pool.
        pool: KvpPool,
        /// The key.
        key: String,
    },
    /// ENUMERATE (request: index; response: the record at it).
    Enumerate {
        /// Pool.
        pool: KvpPool,
        /// Index.
        index: u32,
        /// The record (empty in a request).
        record: Record,
    },
    /// GET_IP_INFO / SET_IP_INFO (kept as the raw structure).
    IpInfo(alloc::boxed::Box<IpInfo>),
}

/// Encodes `s` as UTF-16LE with a NUL into `out`, returning the byte count including the NUL.
fn put_utf16(what: &'static str, s: &str, out: &mut [u8]) -> Result<u32, IcError> {
    let units: Vec<u16> = s.encode_utf16().chain(core::iter::once(0)).collect();
    let len = units.len() * 2;
    if len > out.len() {
        return Err(IcError::KvpString {
            what,
            len,
            limit: out.len(),
        });
    }
    for (i, u) in units.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
    }
    Ok(len as u32)
}

/// Decodes `size` bytes of UTF-16LE (with or without a trailing NUL) from `bytes`.
fn get_utf16(what: &'static str, bytes: &[u8], size: u32) -> Result<String, IcError> {
    let size = size as usize;
    let limit = bytes.len();
    let bad = || IcError::KvpString {
        what,
        len: size,
        limit,
    };
    if size > limit || !size.is_multiple_of(2) {
        return Err(bad());
    }
    let units = bytes[..size]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    core::char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| bad())
}

impl Record {
    /// A string record.
    pub fn string(key: &str, value: &str) -> Self {
        Self {
            value_type: ValueType::REG_SZ,
            key: key.into(),
            value: value.into(),
        }
    }

    fn to_raw(&self) -> Result<ValueRecord, IcError> {
        let mut raw = ValueRecord::new_zeroed();
        raw.value_type = U32::new(self.value_type.0);
        raw.key_size = U32::new(put_utf16("key", &self.key, &mut raw.key)?);
        let value_size = match self.value_type {
            ValueType::REG_DWORD => {
                let v: u32 = self.value.parse().map_err(|_| IcError::InvalidField {
                    field: "REG_DWORD value",
                    value: 0,
                })?;
                raw.value[..4].copy_from_slice(&v.to_le_bytes());
                4
            }
            ValueType::REG_QWORD | ValueType::REG_U64_LINUX => {
                let v: u64 = self.value.parse().map_err(|_| IcError::InvalidField {
                    field: "64-bit value",
                    value: 0,
                })?;
                raw.value[..8].copy_from_slice(&v.to_le_bytes());
                8
            }
            _ => put_utf16("value", &self.value, &mut raw.value)?,
        };
        raw.value_size = U32::new(value_size);
        Ok(raw)
    }

    fn from_raw(raw: &ValueRecord) -> Result<Self, IcError> {
        let value_type = ValueType(raw.value_type.get());
        let key = get_utf16("key", &raw.key, raw.key_size.get())?;
        let value = match value_type {
            ValueType::REG_DWORD => {
                let b = &raw.value;
                alloc::format!("{}", u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            ValueType::REG_QWORD | ValueType::REG_U64_LINUX => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw.value[..8]);
                alloc::format!("{}", u64::from_le_bytes(b))
            }
            _ => get_utf16("value", &raw.value, raw.value_size.get())?,
        };
        Ok(Self {
            value_type,
            key,
            value,
        })
    }
}

impl KvpMessage {
    /// Parses a KVP body.
    pub fn parse(body: &[u8]) -> Result<Self, IcError> {
        let (hdr, rest) = KvpHeader::read_from_prefix(body).map_err(|_| IcError::Truncated {
            needed: 4,
            len: body.len(),
        })?;
        let pool = KvpPool(hdr.pool);
        let short = |needed: usize| IcError::Truncated {
            needed,
            len: body.len(),
        };
        match KvpOp(hdr.operation) {
            op @ (KvpOp::GET | KvpOp::SET) => {
                let (raw, _) = ValueRecord::read_from_prefix(rest).map_err(|_| short(4 + 2572))?;
                let record = Record::from_raw(&raw)?;
                Ok(if op == KvpOp::GET {
                    Self::Get { pool, record }
                } else {
                    Self::Set { pool, record }
                })
            }
            KvpOp::DELETE => {
                let (raw, _) = DeleteBody::read_from_prefix(rest).map_err(|_| short(4 + 516))?;
                Ok(Self::Delete {
                    pool,
                    key: get_utf16("key", &raw.key, raw.key_size.get())?,
                })
            }
            KvpOp::ENUMERATE => {
                let (index, rest) = U32::read_from_prefix(rest).map_err(|_| short(8 + 2572))?;
                let (raw, _) = ValueRecord::read_from_prefix(rest).map_err(|_| short(8 + 2572))?;
                // A request carries an empty record; only decode one that has a key.
                let record = if raw.key_size.get() == 0 {
                    Record {
                        value_type: ValueType(raw.value_type.get()),
                        key: String::new(),
                        value: String::new(),
                    }
                } else {
                    Record::from_raw(&raw)?
                };
                Ok(Self::Enumerate {
                    pool,
                    index: index.get(),
                    record,
                })
            }
            KvpOp::GET_IP_INFO | KvpOp::SET_IP_INFO => {
                let (info, _) = IpInfo::read_from_prefix(body).map_err(|_| short(7428))?;
                Ok(Self::IpInfo(alloc::boxed::Box::new(info)))
            }
            other => Err(IcError::InvalidField {
                field: "KVP operation",
                value: u64::from(other.0),
            }),
        }
    }

    /// The body bytes.
    pub fn emit(&self) -> Result<Vec<u8>, IcError> {
        let header = |op: KvpOp, pool: KvpPool| KvpHeader {
            operation: op.0,
            pool: pool.0,
            pad: [0; 2],
        };
        let mut out = Vec::new();
        match self {
            Self::Get { pool, record } | Self::Set { pool, record } => {
                let op = if matches!(self, Self::Get { .. }) {
                    KvpOp::GET
                } else {
                    KvpOp::SET
                };
                out.extend_from_slice(header(op, *pool).as_bytes());
                out.extend_from_slice(record.to_raw()?.as_bytes());
            }
            Self::Delete { pool, key } => {
                out.extend_from_slice(header(KvpOp::DELETE, *pool).as_bytes());
                let mut raw = DeleteBody::new_zeroed();
                raw.key_size = U32::new(put_utf16("key", key, &mut raw.key)?);
                out.extend_from_slice(raw.as_bytes());
            }
            Self::Enumerate {
                pool,
                index,
                record,
            } => {
                out.extend_from_slice(header(KvpOp::ENUMERATE, *pool).as_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                let raw = if record.key.is_empty() {
                    ValueRecord::new_zeroed()
                } else {
                    record.to_raw()?
                };
                out.extend_from_slice(raw.as_bytes());
            }
            Self::IpInfo(info) => out.extend_from_slice(info.as_bytes()),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_set_and_round_trips() {
        let m = KvpMessage::Set {
            pool: KvpPool::EXTERNAL,
            record: Record::string("a", "bc"),
        };
        let b = m.emit().unwrap();
        assert_eq!(b.len(), 4 + 2572);
        assert_eq!(&b[..16], &[1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&b[16..20], &[b'a', 0, 0, 0]);
        assert_eq!(&b[16 + 512..16 + 518], &[b'b', 0, b'c', 0, 0, 0]);
        assert_eq!(KvpMessage::parse(&b).unwrap(), m);
        for m in [
            KvpMessage::Delete {
                pool: KvpPool::GUEST,
                key: "k€y".into(),
            },
            KvpMessage::Enumerate {
                pool: KvpPool::AUTO,
                index: 3,
                record: Record::string("OSName", "viridian"),
            },
            KvpMessage::Get {
                pool: KvpPool::EXTERNAL,
                record: Record {
                    value_type: ValueType::REG_DWORD,
                    key: "n".into(),
                    value: "42".into(),
                },
            },
        ] {
            assert_eq!(KvpMessage::parse(&m.emit().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn enforces_limits() {
        let long_key = "k".repeat(256);
        let m = KvpMessage::Set {
            pool: KvpPool::EXTERNAL,
            record: Record::string(&long_key, "v"),
        };
        assert!(matches!(
            m.emit(),
            Err(IcError::KvpString { what: "key", .. })
        ));
        let mut b = KvpMessage::Set {
            pool: KvpPool::EXTERNAL,
            record: Record::string("k", "v"),
        }
        .emit()
        .unwrap();
        b[8..12].copy_from_slice(&5000u32.to_le_bytes()); // key_size beyond the field
        assert!(matches!(
            KvpMessage::parse(&b),
            Err(IcError::KvpString { .. })
        ));
        assert!(matches!(
            KvpMessage::parse(&b[..100]),
            Err(IcError::Truncated { .. })
        ));
        assert!(matches!(
            KvpMessage::parse(&[9, 0, 0, 0]),
            Err(IcError::InvalidField { .. })
        ));
    }

    #[test]
    fn strings_up_to_their_fields_and_cut_bodies_name_what_they_need() {
        // 255 units and the NUL fill the 512-byte key field exactly; one more does not fit.
        let fits = Record::string(&"k".repeat(255), "v");
        let m = KvpMessage::Set {
            pool: KvpPool::EXTERNAL,
            record: fits,
        };
        let b = m.emit().unwrap();
        assert_eq!(&b[8..12], &512u32.to_le_bytes());
        assert_eq!(KvpMessage::parse(&b).unwrap(), m);
        assert_eq!(
            KvpMessage::Delete {
                pool: KvpPool::EXTERNAL,
                key: "k".repeat(256)
            }
            .emit(),
            Err(IcError::KvpString {
                what: "key",
                len: 514,
                limit: 512
            })
        );
        // A value of 1,023 units and the NUL fills its 2,048 bytes.
        let long_value = Record::string("k", &"v".repeat(1023));
        let m = KvpMessage::Get {
            pool: KvpPool::AUTO,
            record: long_value,
        };
        assert_eq!(KvpMessage::parse(&m.emit().unwrap()).unwrap(), m);
        // A key size one unit past the field.
        let mut b = b;
        b[8..12].copy_from_slice(&514u32.to_le_bytes());
        assert_eq!(
            KvpMessage::parse(&b),
            Err(IcError::KvpString {
                what: "key",
                len: 514,
                limit: 512
            })
        );

        let set = KvpMessage::Set {
            pool: KvpPool::AUTO,
            record: Record::string("a", "b"),
        };
        let delete = KvpMessage::Delete {
            pool: KvpPool::AUTO,
            key: "a".into(),
        };
        let enumerate = KvpMessage::Enumerate {
            pool: KvpPool::AUTO,
            index: 1,
            record: Record::string("a", "b"),
        };
        for (m, needed) in [(set, 4 + 2572), (delete, 4 + 516), (enumerate, 8 + 2572)] {
            let b = m.emit().unwrap();
            assert_eq!(b.len(), needed);
            for cut in [needed - 1, 6] {
                assert_eq!(
                    KvpMessage::parse(&b[..cut]),
                    Err(IcError::Truncated { needed, len: cut }),
                    "{m:?} cut to {cut}"
                );
            }
        }
    }

    #[test]
    fn sixty_four_bit_values_travel_as_integers() {
        for value_type in [ValueType::REG_QWORD, ValueType::REG_U64_LINUX] {
            let m = KvpMessage::Set {
                pool: KvpPool::GUEST,
                record: Record {
                    value_type,
                    key: "big".into(),
                    value: u64::MAX.to_string(),
                },
            };
            let b = m.emit().unwrap();
            // value_size 8, then the little-endian integer at the value field.
            assert_eq!(&b[12..16], &8u32.to_le_bytes());
            assert_eq!(&b[16 + 512..16 + 520], &u64::MAX.to_le_bytes());
            assert_eq!(KvpMessage::parse(&b).unwrap(), m);
        }
    }

    #[test]
    fn the_big_bodies_debug_without_their_buffers_and_ip_info_compares_bytes() {
        let mut info = IpInfo::new_zeroed();
        info.operation = KvpOp::GET_IP_INFO.0;
        info.addr_family = 2;
        let mut other = info;
        assert_eq!(info, other);
        other.dns_addr[2047] = 1;
        assert_ne!(info, other);
        assert_eq!(
            alloc::format!("{info:?}"),
            alloc::format!(
                "IpInfo {{ operation: {:?}, pool: {:?}, addr_family: 2, dhcp_enabled: 0, .. }}",
                KvpOp::GET_IP_INFO,
                KvpPool(0)
            )
        );
        let mut delete = DeleteBody::new_zeroed();
        delete.key_size.set(6);
        assert_eq!(
            alloc::format!("{delete:?}"),
            "DeleteBody { key_size: 6, .. }"
        );
    }
}
