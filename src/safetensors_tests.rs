//! Unit tests of safetensors header reading: valid layouts, each refusal and its
//! sentence, and garbage that must be refused without a panic. Also the helpers that
//! build safetensors files for other modules' tests.

use std::fs::File;
use std::io::Write;

use serde_json::{Map, Value, json};

use proptest::prelude::*;

use super::*;
use crate::testing::fuzz;

/// Returns the bytes of a safetensors file with the given header JSON text (padded
/// with spaces to a multiple of 8, as writers do) and data region.
pub(crate) fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut text = header.as_bytes().to_vec();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// Returns the bytes of a safetensors file holding `tensors` (name, dtype, shape,
/// data), laid out in the given order with the header listing them in that order, and
/// `metadata` when it is not empty.
pub(crate) fn build(metadata: &[(&str, &str)], tensors: &[(&str, &str, &[u64], &[u8])]) -> Vec<u8> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        let meta: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        header.insert("__metadata__".into(), Value::Object(meta));
    }
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            (*name).to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    raw(&Value::Object(header).to_string(), &data)
}

/// Returns the little-endian bytes of `values`.
pub(crate) fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Returns an unnamed temp file holding `bytes`, and its length.
pub(crate) fn file(bytes: &[u8]) -> (File, u64) {
    let mut file = tempfile::tempfile().expect("temp file");
    file.write_all(bytes).expect("writing temp file");
    (file, bytes.len() as u64)
}

fn read(bytes: &[u8]) -> Result<Header, HeaderError> {
    let (file, len) = file(bytes);
    Header::read(&file, len)
}

/// Returns the refusal of a file with this header JSON and data region.
fn refusal(header: &str, data: &[u8]) -> String {
    match read(&raw(header, data)) {
        Ok(parsed) => panic!("accepted {header}: {parsed:?}"),
        Err(err) => err.to_string(),
    }
}

fn assert_contains(message: &str, part: &str) {
    assert!(message.contains(part), "{message:?} lacks {part:?}");
}

#[test]
fn reads_tensors_sorted_by_name_and_metadata() {
    let bytes = build(
        &[("format", "pt")],
        &[
            ("z.bias", "F16", &[2], &[1, 2, 3, 4]),
            ("a.weight", "F32", &[2, 3], &f32s(&[1.0; 6])),
        ],
    );
    let header = read(&bytes).expect("valid");
    let names: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a.weight", "z.bias"]);
    let a = &header.tensors[0];
    assert_eq!((a.begin, a.end, a.bytes()), (4, 28, 24));
    assert_eq!(a.shape, [2, 3]);
    assert_eq!(a.element_size(), Some(4));
    assert_eq!(header.tensors[1].element_size(), Some(2));
    assert_eq!(
        header.metadata.get("format").map(String::as_str),
        Some("pt")
    );
    assert_eq!(header.data_start % 8, 0);
    assert_eq!(header.file_len, bytes.len() as u64);
    assert_eq!(header.data_len(), 28);
}

#[test]
fn element_sizes_of_every_known_dtype() {
    for (dtype, size) in [
        ("BOOL", 1),
        ("U8", 1),
        ("I8", 1),
        ("F8_E5M2", 1),
        ("F8_E4M3", 1),
        ("F8_E8M0", 1),
        ("I16", 2),
        ("U16", 2),
        ("F16", 2),
        ("BF16", 2),
        ("I32", 4),
        ("U32", 4),
        ("F32", 4),
        ("I64", 8),
        ("U64", 8),
        ("F64", 8),
        ("C64", 8),
    ] {
        assert_eq!(element_size(dtype), Some(size), "{dtype}");
    }
    for dtype in ["F4", "F6_E2M3", "F6_E3M2", "f32", "Q4_K", ""] {
        assert_eq!(element_size(dtype), None, "{dtype}");
    }
}

#[test]
fn accepts_empty_tensors_gaps_unknown_dtypes_and_extra_fields() {
    let header = r#"{"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},
        "packed":{"dtype":"F4","shape":[3],"data_offsets":[4,6],"quant":{"x":1}},
        "scalar":{"dtype":"I32","shape":[],"data_offsets":[8,12]},
        "__extra":{"dtype":"U8","shape":[1],"data_offsets":[12,13]}}"#;
    let parsed = read(&raw(header, &[0; 16])).expect("valid");
    assert_eq!(parsed.tensors.len(), 4);
    assert!(parsed.metadata.is_empty());
    let packed = &parsed.tensors[2];
    assert_eq!(
        (packed.name.as_str(), packed.element_size()),
        ("packed", None)
    );
    // Whitespace after the JSON of any kind is padding.
    let padded = format!("{{}}\n\t \r{}", " ".repeat(11));
    assert!(read(&raw(&padded, &[])).expect("valid").tensors.is_empty());
}

#[test]
fn refuses_a_file_shorter_than_8_bytes() {
    let err = read(&[1, 0, 0, 0, 0]).expect_err("too short");
    assert_eq!(
        err.message(),
        "it is 5 bytes long, too short for a safetensors file, which starts with an 8-byte \
         header length"
    );
    assert!(read(&[]).is_err());
}

#[test]
fn refuses_a_header_length_beyond_the_file() {
    let mut bytes = raw("{}", &[0; 4]);
    bytes[..8].copy_from_slice(&(i64::MAX as u64).to_le_bytes());
    let err = read(&bytes).expect_err("too long");
    assert_eq!(
        err.to_string(),
        "its header says it is 9223372036854775807 bytes long, but the file holds 20 bytes \
         (12 after the 8-byte header length)"
    );
    bytes[..8].copy_from_slice(&13u64.to_le_bytes());
    assert_contains(
        &read(&bytes).expect_err("one too long").to_string(),
        "13 bytes long",
    );
}

#[test]
fn a_file_without_a_json_header_is_not_a_safetensors_file() {
    let mut bytes = b"PK\x03\x04 a zip archive, say".to_vec();
    bytes.extend([0u8; 16]);
    assert_eq!(
        read(&bytes).expect_err("not safetensors").to_string(),
        format!(
            "it is not a safetensors file: no JSON header follows the 8-byte header length, \
             which reads as {}",
            u64::from_le_bytes(bytes[..8].try_into().unwrap())
        )
    );
}

#[test]
fn refuses_a_header_longer_than_max_header() {
    // A sparse file: long enough for the claimed header, though nothing is written.
    let (file, _) = file(&(MAX_HEADER + 1).to_le_bytes());
    file.set_len(MAX_HEADER + 100).expect("sparse file");
    std::os::unix::fs::FileExt::write_all_at(&file, b"{", 8).expect("writes");
    let err = Header::read(&file, MAX_HEADER + 100).expect_err("too long");
    assert_eq!(
        err.to_string(),
        "its header says it is 104857601 bytes long, more than the limit of 104857600 bytes \
         (100 MiB)"
    );
}

#[test]
fn refuses_a_zero_header_length() {
    let err = read(&[0; 16]).expect_err("empty header");
    assert_eq!(err.message(), "its header length is 0, so it has no header");
}

#[test]
fn refuses_a_header_that_is_not_utf8() {
    let mut bytes = raw("{\"a\":1}", &[]);
    bytes[10] = 0xff;
    assert_contains(
        &read(&bytes).expect_err("not UTF-8").to_string(),
        "its header is not UTF-8 text (byte 2 of the header is invalid)",
    );
}

#[test]
fn refuses_invalid_json() {
    let err = refusal(r#"{"a": {"dtype": "F32",}"#, &[]);
    assert_contains(&err, "its header is not valid JSON: ");
    assert_contains(&err, "line 1 column");
    let err = refusal(r"{} x", &[]);
    assert_contains(&err, "its header is not valid JSON: trailing characters");
    // NUL padding is not whitespace.
    let err = refusal("{}\0\0\0\0\0\0", &[]);
    assert_contains(&err, "not valid JSON");
}

#[test]
fn refuses_a_header_that_is_not_an_object() {
    assert_eq!(
        refusal(r#"[{"dtype":"F32"}]"#, &[]),
        "its header is a JSON list, not a JSON object"
    );
    assert_eq!(
        refusal(" \"x\"", &[]),
        "its header is a JSON string, not a JSON object"
    );
    assert_eq!(
        refusal("12", &[]),
        "its header is a JSON number, not a JSON object"
    );
    assert_eq!(
        refusal("null", &[]),
        "its header is JSON null, not a JSON object"
    );
}

#[test]
fn refuses_a_duplicate_tensor_name() {
    let entry = r#"{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#;
    let header = format!(r#"{{"a":{entry},"b":{entry},"a":{entry}}}"#);
    assert_eq!(
        refusal(&header, &[0; 1]),
        r#"its header lists tensor "a" twice"#
    );
    let header = r#"{"__metadata__":{},"__metadata__":{}}"#;
    assert_eq!(refusal(header, &[]), "its header lists __metadata__ twice");
}

#[test]
fn refuses_missing_or_mistyped_fields() {
    let cases = [
        (
            r#"{"w":{"dtype":"F32","shape":[1]}}"#,
            r#"tensor "w" has no data_offsets"#,
        ),
        (
            r#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#,
            r#"tensor "w" has no dtype"#,
        ),
        (
            r#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#,
            r#"tensor "w" has no shape"#,
        ),
        (
            r#"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#,
            r#"tensor "w" has a dtype that is a number, not a string"#,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            r#"tensor "w" has a shape that is not a list of non-negative integers"#,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
            r#"tensor "w" has a shape that is not a list of non-negative integers"#,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#,
            r#"tensor "w" has data_offsets that are not two non-negative integers"#,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":"0-4"}}"#,
            r#"tensor "w" has data_offsets that are not two non-negative integers"#,
        ),
        (
            r#"{"w":[0,4]}"#,
            r#"its header lists tensor "w" as a list, not an object with dtype, shape and data_offsets"#,
        ),
        (
            r#"{"__metadata__":"pt"}"#,
            "its __metadata__ is a string, not an object of strings",
        ),
        (
            r#"{"__metadata__":{"format":"pt","epochs":3}}"#,
            r#"its __metadata__ entry "epochs" is a number, not a string"#,
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(refusal(header, &[0; 8]), expected, "{header}");
    }
}

#[test]
fn refuses_a_tensor_ending_beyond_the_data_region() {
    let err = refusal(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        &[0; 8],
    );
    assert_eq!(
        err,
        r#"tensor "w" ends at byte 12 of the data region, but the data region holds 8 bytes"#
    );
}

#[test]
fn refuses_a_tensor_ending_before_it_begins() {
    let err = refusal(
        r#"{"w":{"dtype":"UNKNOWN","shape":[2],"data_offsets":[8,4]}}"#,
        &[0; 8],
    );
    assert_eq!(
        err,
        r#"tensor "w" ends (at byte 4) before it begins (at byte 8)"#
    );
}

#[test]
fn refuses_a_size_that_does_not_match_the_shape() {
    let err = refusal(
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
        &[0; 24],
    );
    assert_eq!(
        err,
        r#"tensor "w" is F32 of shape [2, 3], which takes 24 bytes, but its data_offsets span 20 bytes"#
    );
}

#[test]
fn refuses_a_shape_whose_size_overflows() {
    let header = format!(
        r#"{{"w":{{"dtype":"F32","shape":[{},2],"data_offsets":[0,8]}}}}"#,
        u64::MAX
    );
    assert_eq!(
        refusal(&header, &[0; 8]),
        r#"tensor "w" has shape [18446744073709551615, 2], too large to count its bytes"#
    );
    // A zero dimension after a huge one: the product is 0, not an overflow.
    let header = format!(
        r#"{{"w":{{"dtype":"U8","shape":[{},0],"data_offsets":[0,0]}}}}"#,
        u64::MAX / 2
    );
    assert!(read(&raw(&header, &[])).is_ok());
}

#[test]
fn refuses_overlapping_tensors() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
        "b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},
        "c":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},
        "e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
    assert_eq!(
        refusal(header, &[0; 24]),
        r#"tensors "b" (bytes 12..20) and "c" (bytes 16..24) overlap in the data region"#
    );
    // One tensor inside another.
    let header = r#"{"outer":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},
        "inner":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    assert_contains(&refusal(header, &[0; 16]), "overlap");
    // The same range twice.
    let header = r#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},
        "y":{"dtype":"I8","shape":[2],"data_offsets":[4,6]}}"#;
    assert_contains(&refusal(header, &[0; 16]), "overlap");
}

/// Returns a valid file of three tensors (one of a sub-byte dtype) and metadata.
fn valid_file() -> Vec<u8> {
    build(
        &[("format", "pt")],
        &[
            ("a", "F32", &[2, 2], &f32s(&[1.0, 2.0, 3.0, 4.0])),
            ("b", "BF16", &[3], &[0; 6]),
            ("c", "F4", &[4], &[0; 2]),
        ],
    )
}

/// Reads `bytes` as a file of its own length, and as one claimed longer and shorter:
/// an error or a header, never a panic.
fn read_every_way(file: &File, bytes: &[u8], claimed: u64) {
    file.set_len(0).expect("truncate");
    file.write_all_at(bytes, 0).expect("write");
    let len = bytes.len() as u64;
    let _ = Header::read(file, len);
    let _ = Header::read(file, len + 7);
    let _ = Header::read(file, claimed);
    if let Ok(header) = Header::read(file, len) {
        // What is accepted holds together: every tensor inside the data region.
        assert!(
            header
                .tensors
                .iter()
                .all(|t| t.begin <= t.end && t.end <= header.data_len())
        );
    }
}

#[test]
fn the_seed_of_the_mutations_is_valid() {
    assert!(read(&valid_file()).is_ok());
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn reading_any_bytes_never_panics(bytes in fuzz::bytes(256), claimed in any::<u64>()) {
        let file = tempfile::tempfile().expect("temp file");
        read_every_way(&file, &bytes, claimed);
        // With a length prefix that fits, the JSON parser sees the rest.
        let mut framed = (bytes.len() as u64).to_le_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        read_every_way(&file, &framed, claimed);
    }

    #[test]
    fn reading_a_mutated_file_never_panics(bytes in fuzz::mutated(valid_file()), claimed in any::<u64>()) {
        let file = tempfile::tempfile().expect("temp file");
        read_every_way(&file, &bytes, claimed);
    }

    #[test]
    fn a_header_length_that_lies_is_refused_before_allocating(
        len in prop_oneof![any::<u64>(), Just(1u64 << 60), Just(u64::MAX), MAX_HEADER..=MAX_HEADER + 8],
        claimed in prop_oneof![any::<u64>(), Just(u64::MAX)],
    ) {
        // The file is 9 bytes; whatever length it and its caller claim, nothing of that
        // size is allocated (a 2^60-byte buffer would abort the test).
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.push(b'{');
        let (file, _) = file(&bytes);
        prop_assert!(Header::read(&file, claimed).is_err());
    }
}
