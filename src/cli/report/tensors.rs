//! The tensor tables of `mreg diff`: for each changed `.safetensors` file, which
//! tensors were added, removed, retyped, reshaped or modified, and by how much.

use std::fmt::Write as _;

use super::super::output;
use super::diff::{change_word, counts, mark};
use super::{Block, Cell, Tone};
use crate::diff::FileTensors;
use crate::diff::tensors::{self, TensorDiff};

fn layout(l: Option<&tensors::Layout>) -> String {
    l.map(|l| {
        let dims: Vec<String> = l.shape.iter().map(u64::to_string).collect();
        format!("{} [{}]", l.dtype, dims.join(", "))
    })
    .unwrap_or_default()
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.1 {
        "<0.1%".to_owned()
    } else {
        format!("{p:.1}%")
    }
}

fn tensor_word(change: tensors::Change) -> &'static str {
    match change {
        tensors::Change::Added => "added",
        tensors::Change::Removed => "removed",
        tensors::Change::Retyped => "retyped",
        tensors::Change::Reshaped => "reshaped",
        tensors::Change::Modified => "modified",
        tensors::Change::Same => "same",
    }
}

pub(super) fn tensor_block(file: &FileTensors) -> Block {
    let title = format!("tensors of {}", file.path);
    let Some(diff) = &file.diff else {
        return Block {
            title,
            notes: vec![Cell::toned(
                format!("error: {}", file.error.as_deref().unwrap_or("not compared")),
                Tone::Bad,
            )],
            ..Block::default()
        };
    };
    tensor_table(&title, diff)
}

fn tensor_table(title: &str, diff: &TensorDiff) -> Block {
    let s = &diff.summary;
    let rows: Vec<Vec<Cell>> = diff
        .tensors
        .iter()
        .map(tensor_row)
        .chain(diff.metadata.iter().map(|m| {
            vec![
                mark(m.change),
                Cell::plain(format!("__metadata__.{}", m.key)),
                Cell::plain(m.old.clone().unwrap_or_default()),
                Cell::plain(m.new.clone().unwrap_or_default()),
                Cell::plain(change_word(m.change)),
            ]
        }))
        .collect();
    let changed = s.added + s.removed + s.retyped + s.reshaped + s.modified;
    let note = format!(
        "{changed} of {} tensors changed; {} of the {} compared differ ({})",
        changed + s.same,
        output::bytes(s.changed_bytes),
        output::bytes(s.compared_bytes),
        percent(s.share)
    );
    Block {
        title: format!(
            "{title}: {}",
            if changed == 0 {
                "unchanged".to_owned()
            } else {
                counts(
                    diff.tensors
                        .iter()
                        .filter(|t| t.change != tensors::Change::Same)
                        .map(|t| tensor_word(t.change)),
                )
            }
        ),
        header: vec![
            String::new(),
            "TENSOR".into(),
            "OLD".into(),
            "NEW".into(),
            "CHANGED".into(),
        ],
        right: Vec::new(),
        rows,
        notes: vec![Cell::toned(note, Tone::Dim)],
    }
}

/// Returns the row of one tensor: a mark, its name, both layouts, and what changed.
fn tensor_row(t: &tensors::TensorChange) -> Vec<Cell> {
    let mark = match t.change {
        tensors::Change::Added => Cell::toned("+", Tone::Added),
        tensors::Change::Removed => Cell::toned("-", Tone::Removed),
        tensors::Change::Same => Cell::plain(""),
        _ => Cell::toned("~", Tone::Changed),
    };
    let changed = match (t.change, t.changed_bytes, t.share) {
        (tensors::Change::Modified | tensors::Change::Same, Some(bytes), Some(share)) => {
            let mut text = format!(
                "{} of {} ({})",
                output::bytes(bytes),
                output::bytes(t.new.as_ref().map_or(0, |l| l.bytes)),
                percent(share)
            );
            if let (Some(n), Some(l)) = (t.changed_elements, &t.new) {
                let total: u64 = l.shape.iter().product();
                let _ = write!(text, ", {n} of {total} values");
            }
            text
        }
        (change, _, _) => tensor_word(change).to_owned(),
    };
    vec![
        mark,
        Cell::plain(&t.name),
        Cell::plain(layout(t.old.as_ref())),
        Cell::plain(layout(t.new.as_ref())),
        Cell::plain(changed),
    ]
}
