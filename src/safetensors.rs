//! Reading and validating the header of a `.safetensors` file, which is untrusted input.
//!
//! A safetensors file is an 8-byte little-endian length N, then N bytes of UTF-8 JSON
//! (the header), then the data region. Each header key but `__metadata__` names a
//! tensor: `{"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}`, with the
//! offsets relative to the start of the data region. `__metadata__` is an optional
//! object of strings.
//!
//! [`Header::read`] reads only the length and the header, never the data, and checks
//! everything a reader of the data relies on: the ranges lie inside the data region,
//! do not overlap, and (for dtypes of known size) match their shapes. Gaps between
//! tensors are tolerated. Unknown fields of an entry are ignored; a duplicate key in an
//! entry or in `__metadata__` keeps its last value, as in any JSON reader.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::de::{self, DeserializeSeed as _, MapAccess, Visitor};
use serde_json::Value;

/// Headers longer than this (100 MiB) are refused before anything is read or allocated.
pub const MAX_HEADER: u64 = 100 << 20;

/// Returns the size in bytes of one element of `dtype`, for the dtypes that have one.
///
/// Sub-byte types (`F4`, `F6_E2M3`, `F6_E3M2`) and unknown dtypes give `None`.
pub fn element_size(dtype: &str) -> Option<u64> {
    match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => Some(1),
        "I16" | "U16" | "F16" | "BF16" => Some(2),
        "I32" | "U32" | "F32" => Some(4),
        "I64" | "U64" | "F64" | "C64" => Some(8),
        _ => None,
    }
}

/// Returns the validated header of a safetensors file: its tensors and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Every tensor, sorted by name (names are unique).
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` object, empty when the header has none.
    pub metadata: BTreeMap<String, String>,
    /// Where the data region starts in the file: 8 + the header length.
    pub data_start: u64,
    /// The length of the file the header was read from.
    pub file_len: u64,
}

/// Returns one tensor's entry in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, the header key.
    pub name: String,
    /// The dtype as written, e.g. `F32`; not necessarily one [`element_size`] knows.
    pub dtype: String,
    /// The dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// The first byte, relative to [`Header::data_start`].
    pub begin: u64,
    /// One past the last byte, relative to [`Header::data_start`]; `begin <= end`.
    pub end: u64,
}

impl TensorInfo {
    /// Returns the number of bytes the tensor takes in the data region.
    pub fn bytes(&self) -> u64 {
        self.end.saturating_sub(self.begin)
    }

    /// Returns the size of one element in bytes, for the dtypes that have a known one.
    pub fn element_size(&self) -> Option<u64> {
        element_size(&self.dtype)
    }
}

/// Returns why a header was refused: one sentence without a final period, about the
/// file ("its header says it is 9223372036854775807 bytes long, but …").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(String);

impl HeaderError {
    /// Returns the sentence.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderError {}

/// Returns `Err(HeaderError)` from the enclosing function, formatted like `format!`.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(HeaderError(format!($($arg)*)))
    };
}

impl Header {
    /// Returns the validated header of `file`, whose length is `file_len`.
    ///
    /// Reads the 8-byte length, checks it against the file and [`MAX_HEADER`], then
    /// reads and validates the header. An I/O failure while reading the header is
    /// reported as a [`HeaderError`] too ("could not read its header: …"): the length
    /// check has passed by then, so the file is not what its length says.
    pub fn read(file: &File, file_len: u64) -> Result<Header, HeaderError> {
        if file_len < 8 {
            refuse!(
                "it is {file_len} bytes long, too short for a safetensors file, \
                 which starts with an 8-byte header length"
            );
        }
        let mut prefix = [0u8; 8];
        if let Err(err) = file.read_exact_at(&mut prefix, 0) {
            refuse!("could not read its header length: {err}");
        }
        let len = u64::from_le_bytes(prefix);
        if len == 0 {
            refuse!("its header length is 0, so it has no header");
        }
        let mut first = [0u8; 1];
        let json_follows =
            file_len > 8 && file.read_exact_at(&mut first, 8).is_ok() && first[0] == b'{';
        if !json_follows && (len > file_len - 8 || len > MAX_HEADER) {
            refuse!(
                "it is not a safetensors file: no JSON header follows the 8-byte header \
                 length, which reads as {len}"
            );
        }
        if len > file_len - 8 {
            refuse!(
                "its header says it is {len} bytes long, but the file holds {file_len} bytes \
                 ({} after the 8-byte header length)",
                file_len - 8
            );
        }
        if len > MAX_HEADER {
            refuse!(
                "its header says it is {len} bytes long, more than the limit of {MAX_HEADER} \
                 bytes (100 MiB)"
            );
        }
        let mut text = vec![0u8; usize::try_from(len).expect("at most MAX_HEADER")];
        if let Err(err) = file.read_exact_at(&mut text, 8) {
            refuse!("could not read its {len}-byte header: {err}");
        }
        Header::parse(&text, file_len)
    }

    /// Returns the validated header given the header bytes (after the 8-byte length)
    /// of a file of `file_len` bytes.
    fn parse(text: &[u8], file_len: u64) -> Result<Header, HeaderError> {
        let data_start = 8 + text.len() as u64;
        let data_len = file_len.saturating_sub(data_start);
        let text = match std::str::from_utf8(text) {
            Ok(text) => text,
            Err(err) => refuse!(
                "its header is not UTF-8 text (byte {} of the header is invalid)",
                err.valid_up_to()
            ),
        };
        let entries = parse_json(text, data_len)?;

        let mut seen = BTreeMap::new();
        for (i, (key, _)) in entries.iter().enumerate() {
            if seen.insert(key.as_str(), i).is_some() {
                if key == "__metadata__" {
                    refuse!("its header lists __metadata__ twice");
                }
                refuse!("its header lists tensor {key:?} twice");
            }
        }

        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(entries.len());
        for (_, entry) in entries {
            match entry {
                Entry::Metadata(value) => metadata = parse_metadata(value)?,
                Entry::Tensor(tensor) => tensors.push(tensor?),
            }
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        check_overlaps(&tensors)?;
        Ok(Header {
            tensors,
            metadata,
            data_start,
            file_len,
        })
    }

    /// Returns the length of the data region: the bytes after the header.
    pub fn data_len(&self) -> u64 {
        self.file_len.saturating_sub(self.data_start)
    }
}

/// One top-level entry of a header: the metadata as parsed JSON, or a tensor already
/// checked (or why it was refused, reported once duplicates have been looked for).
enum Entry {
    Metadata(Value),
    Tensor(Result<TensorInfo, HeaderError>),
}

/// Reads the top-level object of a header into entries in file order, duplicates kept.
/// Each tensor entry is turned into a [`TensorInfo`] as soon as it is read, so a header
/// of many tensors never exists as a whole tree of JSON values.
struct Entries {
    data_len: u64,
}

impl<'de> de::DeserializeSeed<'de> for Entries {
    type Value = Vec<(String, Entry)>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        struct EntriesVisitor(u64);
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Vec<(String, Entry)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Value>()?;
                    let entry = if key == "__metadata__" {
                        Entry::Metadata(value)
                    } else {
                        Entry::Tensor(parse_tensor(key.clone(), &value, self.0))
                    };
                    out.push((key, entry));
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(EntriesVisitor(self.data_len))
    }
}

/// Returns the header's entries, duplicates kept; trailing whitespace (the padding
/// writers add) is allowed.
fn parse_json(text: &str, data_len: u64) -> Result<Vec<(String, Entry)>, HeaderError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Entries { data_len }
        .deserialize(&mut de)
        .and_then(|entries| de.end().map(|()| entries));
    match parsed {
        Ok(entries) => Ok(entries),
        Err(err) if err.classify() == serde_json::error::Category::Data => {
            // Keys are strings and values any JSON, so only the top level can have the
            // wrong type.
            let what = match text.trim_start().as_bytes().first() {
                Some(b'[') => "a JSON list",
                Some(b'"') => "a JSON string",
                Some(b't' | b'f') => "a JSON boolean",
                Some(b'n') => "JSON null",
                Some(b'-' | b'0'..=b'9') => "a JSON number",
                _ => refuse!("its header is not a valid JSON object: {err}"),
            };
            refuse!("its header is {what}, not a JSON object")
        }
        Err(err) => refuse!("its header is not valid JSON: {err}"),
    }
}

/// Returns "a string", "a list"…: what a JSON value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Returns the `__metadata__` object as a map of strings.
fn parse_metadata(value: Value) -> Result<BTreeMap<String, String>, HeaderError> {
    let Value::Object(map) = value else {
        refuse!(
            "its __metadata__ is {}, not an object of strings",
            kind(&value)
        );
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        match value {
            Value::String(text) => {
                out.insert(key, text);
            }
            other => refuse!(
                "its __metadata__ entry {key:?} is {}, not a string",
                kind(&other)
            ),
        }
    }
    Ok(out)
}

/// Returns the tensor an entry describes, checked against a data region of `data_len`
/// bytes.
fn parse_tensor(name: String, value: &Value, data_len: u64) -> Result<TensorInfo, HeaderError> {
    let Value::Object(entry) = value else {
        refuse!(
            "its header lists tensor {name:?} as {}, not an object with dtype, shape and \
             data_offsets",
            kind(value)
        );
    };
    let field = |key: &str| match entry.get(key) {
        Some(value) => Ok(value),
        None => Err(HeaderError(format!("tensor {name:?} has no {key}"))),
    };
    let dtype = match field("dtype")? {
        Value::String(dtype) => dtype.clone(),
        other => refuse!(
            "tensor {name:?} has a dtype that is {}, not a string",
            kind(other)
        ),
    };
    let shape = field("shape")?;
    let Some(shape) = u64_list(shape) else {
        refuse!("tensor {name:?} has a shape that is not a list of non-negative integers");
    };
    let Some(&[begin, end]) = u64_list(field("data_offsets")?).as_deref() else {
        refuse!("tensor {name:?} has data_offsets that are not two non-negative integers");
    };
    if begin > end {
        refuse!("tensor {name:?} ends (at byte {end}) before it begins (at byte {begin})");
    }
    if end > data_len {
        refuse!(
            "tensor {name:?} ends at byte {end} of the data region, but the data region holds \
             {data_len} bytes"
        );
    }
    if let Some(size) = element_size(&dtype) {
        let expected = shape
            .iter()
            .try_fold(size, |acc, &dim| acc.checked_mul(dim));
        let Some(expected) = expected else {
            refuse!("tensor {name:?} has shape {shape:?}, too large to count its bytes");
        };
        if expected != end - begin {
            refuse!(
                "tensor {name:?} is {dtype} of shape {shape:?}, which takes {expected} bytes, \
                 but its data_offsets span {} bytes",
                end - begin
            );
        }
    }
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        begin,
        end,
    })
}

/// Returns the value as a list of u64, if it is one.
fn u64_list(value: &Value) -> Option<Vec<u64>> {
    value.as_array()?.iter().map(Value::as_u64).collect()
}

/// Checks that no two non-empty tensors share a byte.
fn check_overlaps(tensors: &[TensorInfo]) -> Result<(), HeaderError> {
    let mut by_begin: Vec<&TensorInfo> = tensors.iter().filter(|t| t.begin < t.end).collect();
    by_begin.sort_by_key(|t| (t.begin, t.end));
    // Up to the first overlap the ranges are disjoint, so each one's predecessor is
    // the one that reaches furthest.
    for pair in by_begin.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        if next.begin < prev.end {
            refuse!(
                "tensors {:?} (bytes {}..{}) and {:?} (bytes {}..{}) overlap in the data region",
                prev.name,
                prev.begin,
                prev.end,
                next.name,
                next.begin,
                next.end
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "safetensors_tests.rs"]
pub(crate) mod tests;
