//! Unit tests of the tensor diff: each kind of change, byte and element counts across
//! chunks, metadata, layouts that differ between the sides, and failures.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::diff::Change as KeyChange;
use crate::safetensors::tests::{build, f32s, file};

/// Returns the diff of two files' bytes, checking that progress adds up to A's length.
fn diff_bytes(a: &[u8], b: &[u8]) -> Result<TensorDiff, SideError> {
    let ((fa, a_len), (fb, b_len)) = (file(a), file(b));
    let done = AtomicU64::new(0);
    let result = diff(&fa, a_len, &fb, b_len, &|n| {
        done.fetch_add(n, Ordering::Relaxed);
    });
    if result.is_ok() {
        assert_eq!(done.load(Ordering::Relaxed), a_len, "progress total");
    }
    result
}

fn ok(a: &[u8], b: &[u8]) -> TensorDiff {
    diff_bytes(a, b).expect("diff")
}

fn tensor<'d>(d: &'d TensorDiff, name: &str) -> &'d TensorChange {
    d.tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 1.0).collect()
}

#[test]
fn unchanged_file_is_all_same() {
    let bytes = build(
        &[("format", "pt")],
        &[
            ("embed", "F32", &[4, 3], &f32s(&values(12))),
            ("head", "BF16", &[2], &[1, 2, 3, 4]),
            ("empty", "F32", &[0], &[]),
        ],
    );
    let d = ok(&bytes, &bytes);
    let names: Vec<&str> = d.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["embed", "empty", "head"]);
    for t in &d.tensors {
        assert_eq!(t.change, Change::Same, "{}", t.name);
        assert_eq!(t.changed_bytes, Some(0));
        assert_eq!(t.changed_elements, Some(0));
        assert_eq!(t.share, Some(0.0));
    }
    let s = &d.summary;
    assert_eq!((s.tensors_old, s.tensors_new, s.same), (3, 3, 3));
    assert_eq!((s.bytes_old, s.bytes_new, s.compared_bytes), (52, 52, 52));
    assert_eq!((s.changed_bytes, s.share), (0, 0.0));
    assert_eq!(d.metadata.len(), 1);
    assert_eq!(d.metadata[0].change, KeyChange::Same);
}

#[test]
fn counts_exactly_the_changed_bytes_and_elements() {
    let old = f32s(&values(8));
    let mut new = old.clone();
    // Three bytes in two elements: 0 and 5.
    new[0] ^= 1;
    new[1] ^= 0x80;
    new[23] ^= 0xff;
    let other = f32s(&values(4));
    let d = ok(
        &build(
            &[],
            &[("w", "F32", &[2, 4], &old), ("b", "F32", &[4], &other)],
        ),
        &build(
            &[],
            &[("w", "F32", &[2, 4], &new), ("b", "F32", &[4], &other)],
        ),
    );
    let w = tensor(&d, "w");
    assert_eq!(w.change, Change::Modified);
    assert_eq!(w.changed_bytes, Some(3));
    assert_eq!(w.changed_elements, Some(2));
    assert_eq!(w.share, Some(3.0 / 32.0));
    assert_eq!(tensor(&d, "b").change, Change::Same);
    let s = &d.summary;
    assert_eq!(
        (s.modified, s.same, s.compared_bytes, s.changed_bytes),
        (1, 1, 48, 3)
    );
    assert_eq!(s.share, 3.0 / 48.0);
}

#[test]
fn counts_changes_across_chunk_boundaries() {
    let n = CHUNK / 4 + 3;
    let old = f32s(&values(n));
    let mut new = old.clone();
    for at in [0, CHUNK - 1, CHUNK, CHUNK + 1, new.len() - 1] {
        new[at] ^= 0x55;
    }
    let shape = [n as u64];
    let a = build(&[], &[("big", "F32", &shape, &old)]);
    let b = build(&[], &[("big", "F32", &shape, &new)]);
    let big = tensor(&ok(&a, &b), "big").clone();
    assert_eq!(big.changed_bytes, Some(5));
    // Elements 0, CHUNK/4 - 1 (its last byte), CHUNK/4 (its first two), n - 1.
    assert_eq!(big.changed_elements, Some(4));
}

#[test]
fn added_and_removed() {
    let a = build(
        &[],
        &[
            ("gone", "F32", &[1], &f32s(&[1.0])),
            ("kept", "U8", &[1], &[7]),
        ],
    );
    let b = build(
        &[],
        &[("kept", "U8", &[1], &[7]), ("new", "I64", &[1], &[0; 8])],
    );
    let d = ok(&a, &b);
    let gone = tensor(&d, "gone");
    assert_eq!(gone.change, Change::Removed);
    assert!(gone.new.is_none() && gone.changed_bytes.is_none() && gone.share.is_none());
    assert_eq!(gone.old.as_ref().map(|l| l.bytes), Some(4));
    let new = tensor(&d, "new");
    assert_eq!(new.change, Change::Added);
    assert!(new.old.is_none() && new.changed_bytes.is_none());
    let s = &d.summary;
    assert_eq!((s.added, s.removed, s.same), (1, 1, 1));
    assert_eq!((s.bytes_old, s.bytes_new, s.compared_bytes), (5, 9, 1));
}

#[test]
fn retyped_and_reshaped_are_not_compared() {
    let six = f32s(&values(6));
    let old = build(
        &[],
        &[("r", "F32", &[2, 3], &six), ("t", "F32", &[2, 3], &six)],
    );
    let new = build(
        &[],
        &[("r", "F32", &[3, 2], &six), ("t", "F16", &[2, 3], &[0; 12])],
    );
    let d = ok(&old, &new);
    let reshaped = tensor(&d, "r");
    assert_eq!(reshaped.change, Change::Reshaped);
    assert_eq!(
        reshaped.new.as_ref().map(|l| l.shape.clone()),
        Some(vec![3, 2])
    );
    assert!(reshaped.changed_bytes.is_none() && reshaped.changed_elements.is_none());
    assert!(reshaped.share.is_none());
    let retyped = tensor(&d, "t");
    assert_eq!(retyped.change, Change::Retyped);
    assert_eq!(retyped.new.as_ref().map(|l| l.dtype.as_str()), Some("F16"));
    let s = &d.summary;
    assert_eq!(
        (s.retyped, s.reshaped, s.compared_bytes, s.share),
        (1, 1, 0, 0.0)
    );
}

#[test]
fn different_header_lengths_still_align_tensor_data() {
    let w = f32s(&values(6));
    let mut w2 = w.clone();
    w2[5] ^= 1;
    let a = build(
        &[],
        &[("w", "F32", &[6], &w), ("x", "U8", &[3], &[1, 2, 3])],
    );
    let long = "x".repeat(300);
    let b = build(
        &[("format", "pt"), ("notes", &long)],
        &[("w", "F32", &[6], &w2), ("x", "U8", &[3], &[1, 2, 3])],
    );
    let d = ok(&a, &b);
    assert_eq!(tensor(&d, "w").changed_bytes, Some(1));
    assert_eq!(tensor(&d, "x").change, Change::Same);
    // And the other way round.
    let d = ok(&b, &a);
    assert_eq!(tensor(&d, "w").changed_bytes, Some(1));
    assert_eq!(tensor(&d, "x").change, Change::Same);
}

#[test]
fn metadata_added_removed_changed_and_same() {
    let t: &[(&str, &str, &[u64], &[u8])] = &[("x", "U8", &[1], &[1])];
    let a = build(&[("format", "pt"), ("lr", "0.1"), ("old", "y")], t);
    let b = build(&[("format", "pt"), ("lr", "0.05"), ("step", "9")], t);
    let d = ok(&a, &b);
    let got: Vec<(&str, KeyChange, Option<&str>, Option<&str>)> = d
        .metadata
        .iter()
        .map(|m| (m.key.as_str(), m.change, m.old.as_deref(), m.new.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("format", KeyChange::Same, Some("pt"), Some("pt")),
            ("lr", KeyChange::Changed, Some("0.1"), Some("0.05")),
            ("old", KeyChange::Removed, Some("y"), None),
            ("step", KeyChange::Added, None, Some("9")),
        ]
    );
    assert_eq!(d.summary.same, 1);
}

#[test]
fn tensors_stored_in_different_orders() {
    let (first, second, third) = (f32s(&values(3)), f32s(&[9.0, 8.0]), [5u8; 5]);
    let mut second_changed = second.clone();
    second_changed[7] = 0;
    let old = build(
        &[],
        &[
            ("p", "F32", &[3], &first),
            ("q", "F32", &[2], &second),
            ("r", "I8", &[5], &third),
        ],
    );
    let new = build(
        &[],
        &[
            ("r", "I8", &[5], &third),
            ("q", "F32", &[2], &second_changed),
            ("p", "F32", &[3], &first),
        ],
    );
    let d = ok(&old, &new);
    let changes: Vec<(&str, Change)> = d
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("p", Change::Same),
            ("q", Change::Modified),
            ("r", Change::Same)
        ]
    );
    assert_eq!(tensor(&d, "q").changed_elements, Some(1));
}

#[test]
fn unknown_dtypes_compare_bytes_without_elements() {
    let a = build(&[], &[("q", "F4", &[4], &[0x12, 0x34])]);
    let b = build(&[], &[("q", "F4", &[4], &[0x12, 0x35, 0x00])]);
    let q = tensor(&ok(&a, &b), "q").clone();
    assert_eq!(q.change, Change::Modified);
    // One differing byte, and one only the new side has.
    assert_eq!(q.changed_bytes, Some(2));
    assert_eq!(q.changed_elements, None);
    assert_eq!(q.share, Some(2.0 / 3.0));
}

#[test]
fn json_shape_omits_what_does_not_apply() {
    let a = build(&[("k", "1")], &[("w", "F32", &[1], &f32s(&[1.0]))]);
    let b = build(&[], &[("w", "F16", &[1], &[0, 0])]);
    let json = serde_json::to_value(ok(&a, &b)).expect("serializes");
    assert_eq!(
        json["tensors"][0],
        serde_json::json!({
            "name": "w",
            "change": "retyped",
            "old": {"dtype": "F32", "shape": [1], "bytes": 4},
            "new": {"dtype": "F16", "shape": [1], "bytes": 2},
        })
    );
    assert_eq!(
        json["metadata"][0],
        serde_json::json!({"key": "k", "change": "removed", "old": "1", "new": null})
    );
    let keys: Vec<&String> = json["summary"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "tensors_old",
            "tensors_new",
            "added",
            "removed",
            "retyped",
            "reshaped",
            "modified",
            "same",
            "bytes_old",
            "bytes_new",
            "compared_bytes",
            "changed_bytes",
            "share"
        ]
    );
}

#[test]
fn a_bad_header_names_its_side() {
    let good = build(&[], &[("w", "U8", &[1], &[1])]);
    let bad = [3u8, 0, 0];
    match diff_bytes(&good, &bad) {
        Err(SideError::Header { side, error }) => {
            assert_eq!(side, Side::New);
            assert_eq!(
                error.message(),
                "it is 3 bytes long, too short for a safetensors file, which starts with an \
                 8-byte header length"
            );
        }
        other => panic!("not a header error: {other:?}"),
    }
    let err = diff_bytes(&bad, &good).expect_err("bad old side");
    assert!(matches!(
        err,
        SideError::Header {
            side: Side::Old,
            ..
        }
    ));
    assert!(err.to_string().starts_with("old side: it is 3 bytes long"));
}

#[test]
fn a_file_truncated_after_its_header_was_read_is_an_error() {
    let a = build(&[], &[("w", "F32", &[4], &f32s(&values(4)))]);
    let (fa, len) = file(&a);
    let (fb, _) = file(&a);
    fb.set_len(len - 3).expect("truncate");
    let err = diff(&fa, len, &fb, len, &|_| {}).expect_err("short file");
    assert!(matches!(err, SideError::Io(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("the new file ends before byte"),
        "{message}"
    );
    assert!(message.contains(r#"tensor "w""#), "{message}");
}

#[test]
fn word_counts_match_counting_byte_by_byte() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in [0usize, 1, 7, 8, 9, 64, 1000, 4096] {
        let a: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut b = a.clone();
        for byte in &mut b {
            if next() % 3 == 0 {
                *byte ^= 1 << (next() % 8);
            }
        }
        for size in [1u64, 2, 4, 8] {
            if len % size as usize != 0 {
                continue;
            }
            let naive_bytes = a.iter().zip(&b).filter(|(x, y)| x != y).count() as u64;
            let naive_elements = a
                .chunks(size as usize)
                .zip(b.chunks(size as usize))
                .filter(|(x, y)| x != y)
                .count() as u64;
            assert_eq!(
                count_differences(&a, &b, Some(size)),
                (naive_bytes, naive_elements),
                "len {len}, element size {size}"
            );
        }
    }
}
