//! Inputs for the parsers' property tests: arbitrary bytes and text, and valid inputs
//! mutated, which get past the first checks that noise never passes.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Returns the property-test settings of the parsers: few enough cases to run in a
/// moment, and no files of failures written beside the sources (a failure found is
/// kept as a named regression test instead).
pub fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces that mean something to one parser or another, for mutations to insert:
/// quotes, brackets, escapes, separators, numbers too large for their fields, bytes
/// that are not UTF-8, the words of the grammars.
const PIECES: &[&[u8]] = &[
    b"\"",
    b"'",
    b"`",
    b"[",
    b"]",
    b"[[",
    b"{",
    b"}",
    b"(",
    b")",
    b"\n",
    b"\t",
    b" ",
    b"=",
    b":",
    b",",
    b".",
    b"-",
    b"@",
    b"\\",
    b"\\x",
    b"\\u",
    b"\\x41",
    b"0",
    b"-1",
    b"1e999",
    b"nan",
    b"inf",
    b"true",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1152921504606846976",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"\xff",
    b"\x00",
    b"\xc3\xa9",
    b"and ",
    b"or ",
    b"not ",
    b">=",
    b"==",
    b"format = 99\n",
];

/// One change to a byte string; the indexes scale to its length when applied.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets one byte.
    Set(Index, u8),
    /// Inserts one of [`PIECES`].
    Insert(Index, Index),
    /// Deletes up to this many bytes.
    Delete(Index, usize),
    /// Repeats up to this many bytes, this many times, in place.
    Repeat(Index, usize, usize),
    /// Cuts the rest off.
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, piece)| Edit::Insert(at, piece)),
        (any::<Index>(), 1..32usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<Index>(), 1..64usize, 1..8usize).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    // Positions `0..=len`: an edit may land at the end.
    let at = |index: &Index| index.index(bytes.len() + 1);
    match edit {
        Edit::Set(index, byte) => {
            if !bytes.is_empty() {
                let i = index.index(bytes.len());
                bytes[i] = *byte;
            }
        }
        Edit::Insert(index, piece) => {
            let i = at(index);
            let piece = PIECES[piece.index(PIECES.len())];
            bytes.splice(i..i, piece.iter().copied());
        }
        Edit::Delete(index, n) => {
            let i = at(index);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Edit::Repeat(index, n, times) => {
            let i = at(index);
            let end = (i + n).min(bytes.len());
            let part = bytes[i..end].to_vec();
            for _ in 0..*times {
                bytes.splice(end..end, part.iter().copied());
            }
        }
        Edit::Truncate(index) => {
            let i = at(index);
            bytes.truncate(i);
        }
    }
}

/// Returns `valid` with one to eight edits.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edit(), 1..8).prop_map(move |edits| {
        let mut bytes = valid.clone();
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        bytes
    })
}

/// Returns `valid` with one to eight edits, as text (bytes that are not UTF-8 replaced).
pub fn mutated_text(valid: &str) -> impl Strategy<Value = String> + use<> {
    mutated(valid.as_bytes().to_vec())
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Returns one of `valid`, mutated, as text.
pub fn mutated_one_of(valid: &[&str]) -> impl Strategy<Value = String> + use<> {
    let owned: Vec<String> = valid.iter().map(|v| (*v).to_owned()).collect();
    (0..owned.len()).prop_flat_map(move |i| mutated_text(&owned[i]))
}

/// Returns arbitrary bytes, up to `max` of them.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Checks what a manifest parser makes of `text`: an error, or a record that writes out
/// and parses back to the same TOML. Panics are the test's failure.
pub fn check_manifest<T>(
    text: &str,
    parse: impl Fn(&str) -> anyhow::Result<T>,
    write: impl Fn(&T) -> anyhow::Result<String>,
) -> Result<(), TestCaseError> {
    let Ok(record) = parse(text) else {
        return Ok(());
    };
    let written = write(&record).map_err(|err| TestCaseError::fail(format!("{err:#}")))?;
    let back = parse(&written).map_err(|err| {
        TestCaseError::fail(format!("{err:#} parsing what was written:\n{written}"))
    })?;
    let again = write(&back).map_err(|err| TestCaseError::fail(format!("{err:#}")))?;
    prop_assert_eq!(again, written);
    Ok(())
}
