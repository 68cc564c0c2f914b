//! Trees: the canonical listing of one folder, and the rules an entry must follow.
//!
//! A tree is an object whose bytes are:
//!
//! ```text
//! mreg tree 1
//! <kind> <hash> <size> <name>
//! ```
//!
//! one line per entry, sorted by the bytes of the name, with kind `file`, `exec`,
//! `link` (the hash names the object holding the link's target) or `dir` (the hash
//! names the sub-tree, and the size is the bytes of all files below it). Bytes below
//! 0x20, 0x7f and `\` in names are written `\xHH`. The same folder gives the same
//! bytes, and so the same tree hash, on any machine.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::id::{ObjectId, TreeId};

const HEADER: &str = "mreg tree 1\n";

/// Returns what a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A regular file with an executable bit.
    Exec,
    /// A symbolic link; its object holds the target path.
    Link,
    /// A folder; its object is a tree.
    Dir,
}

impl Kind {
    /// Returns the word the tree format uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Exec => "exec",
            Kind::Link => "link",
            Kind::Dir => "dir",
        }
    }

    fn parse(word: &str) -> Option<Kind> {
        Some(match word {
            "file" => Kind::File,
            "exec" => Kind::Exec,
            "link" => Kind::Link,
            "dir" => Kind::Dir,
            _ => return None,
        })
    }
}

/// One line of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name inside the folder: one path component.
    pub name: String,
    /// What the entry is.
    pub kind: Kind,
    /// The object holding its content (file bytes, link target or sub-tree).
    pub id: ObjectId,
    /// File bytes; link target length; for a folder, the bytes of all files below it.
    pub size: u64,
}

/// The entries of one folder, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries, sorted by the bytes of their names, names unique.
    pub entries: Vec<Entry>,
}

impl Tree {
    /// Returns a tree of the given entries, sorted.
    pub fn new(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Tree { entries }
    }

    /// Returns the canonical bytes of the tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(HEADER.len() + self.entries.len() * 96);
        out.push_str(HEADER);
        for e in &self.entries {
            let _ = writeln!(
                out,
                "{} {} {} {}",
                e.kind.as_str(),
                e.id,
                e.size,
                escape(&e.name)
            );
        }
        out.into_bytes()
    }

    /// Returns the tree's identity.
    pub fn id(&self) -> TreeId {
        TreeId(ObjectId::of(&self.to_bytes()))
    }

    /// Returns the bytes of all files in the tree (saturating: sizes are untrusted).
    pub fn total_size(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind != Kind::Link)
            .fold(0u64, |sum, e| sum.saturating_add(e.size))
    }

    /// Parses tree bytes, which are untrusted input.
    ///
    /// Refuses anything but the canonical form: a bad header, a malformed line, a name
    /// that is not one safe path component, names out of order or repeated.
    pub fn parse(bytes: &[u8]) -> Result<Tree> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            bail!("tree is not UTF-8")
        };
        let Some(body) = text.strip_prefix(HEADER) else {
            bail!("not a tree: it does not start with {:?}", HEADER.trim_end())
        };
        let mut entries: Vec<Entry> = Vec::new();
        for (i, line) in body.split_terminator('\n').enumerate() {
            let lineno = i + 2;
            let mut parts = line.splitn(4, ' ');
            let (Some(kind), Some(hash), Some(size), Some(name)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                bail!("tree line {lineno} is malformed: {line:?}");
            };
            let Some(kind) = Kind::parse(kind) else {
                bail!("tree line {lineno} has unknown kind {kind:?}")
            };
            let id: ObjectId = hash
                .parse()
                .map_err(|e| anyhow::anyhow!("tree line {lineno}: {e}"))?;
            let size: u64 = match size.parse::<u64>() {
                Ok(n) if size == n.to_string() => n,
                _ => bail!("tree line {lineno} has a bad size {size:?}"),
            };
            // Canonical bytes escape these, so a raw one means the bytes are not the
            // canonical ones that the tree's hash stands for.
            if name.contains(|c: char| c < ' ' || c == '\x7f') {
                bail!("tree line {lineno} has a name with an unescaped control character");
            }
            let name = unescape(name)
                .ok_or_else(|| anyhow::anyhow!("tree line {lineno} has a badly escaped name"))?;
            if let Err(why) = check_name(&name) {
                bail!("tree line {lineno}: {why}");
            }
            if let Some(prev) = entries.last()
                && prev.name.as_bytes() >= name.as_bytes()
            {
                if prev.name == name {
                    bail!("tree line {lineno} repeats the name {name:?}");
                }
                bail!(
                    "tree line {lineno} is out of order ({name:?} after {:?})",
                    prev.name
                );
            }
            entries.push(Entry {
                name,
                kind,
                id,
                size,
            });
        }
        if !text.is_empty() && !text.ends_with('\n') {
            bail!("tree does not end with a newline");
        }
        Ok(Tree { entries })
    }
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c < ' ' || c == '\x7f' || c == '\\' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(name: &str) -> Option<String> {
    if !name.contains('\\') {
        return Some(name.to_owned());
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        if chars.next()? != 'x' {
            return None;
        }
        let hex: String = chars.by_ref().take(2).collect();
        let byte = u8::from_str_radix(&hex, 16).ok()?;
        let decoded = char::from(byte);
        if !(decoded < ' ' || decoded == '\x7f' || decoded == '\\')
            || hex.len() != 2
            || hex != format!("{byte:02x}")
        {
            return None;
        }
        out.push(decoded);
    }
    Some(out)
}

/// The longest name of one entry, in bytes: what Linux filesystems hold.
pub const NAME_MAX: usize = 255;

/// Checks that `name` is one safe path component.
///
/// Returns a sentence saying why not: empty, `.` or `..`, holding `/` or NUL, or
/// longer than [`NAME_MAX`].
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an entry has an empty name".into());
    }
    if name == "." || name == ".." {
        return Err(format!("an entry is named {name:?}"));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(format!("the name {name:?} holds a '/' or NUL byte"));
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "a name is {} bytes long, longer than the {NAME_MAX} a filesystem holds",
            name.len()
        ));
    }
    Ok(())
}

/// Checks that a symlink at `depth` folders below the root, pointing at `target`,
/// stays inside the root.
///
/// A target must be relative, may climb with leading `..` no higher than the root,
/// and may not climb after descending (`a/../b`): through a symlink, `..` is not
/// lexical, so such a path could lead anywhere. Every link passing this check
/// resolves inside the root, even through other links that pass it.
pub fn check_link_target(depth: usize, target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("it has an empty target".into());
    }
    if target.starts_with('/') {
        return Err(format!("its target {target:?} is an absolute path"));
    }
    if target.contains('\0') {
        return Err("its target holds a NUL byte".into());
    }
    let mut ups = 0usize;
    let mut descended = false;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if descended => {
                return Err(format!(
                    "its target {target:?} climbs with '..' after a folder name"
                ));
            }
            ".." => ups += 1,
            _ => descended = true,
        }
    }
    if ups > depth {
        return Err(format!("its target {target:?} leads outside the folder"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::fuzz;

    fn entry(name: &str, kind: Kind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            id: ObjectId::of(name.as_bytes()),
            size: 3,
        }
    }

    #[test]
    fn round_trips_and_sorts_by_bytes() {
        let tree = Tree::new(vec![
            entry("b", Kind::File),
            entry("B", Kind::Exec),
            entry("a\nb\\", Kind::Dir),
        ]);
        assert_eq!(tree.entries[0].name, "B");
        let bytes = tree.to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("a\\x0ab\\x5c"));
        assert_eq!(Tree::parse(&bytes).unwrap(), tree);
    }

    #[test]
    fn refuses_dangerous_or_non_canonical_trees() {
        let good = Tree::new(vec![entry("x", Kind::File)]).to_bytes();
        let text = String::from_utf8(good).unwrap();
        for bad in [
            text.replace(" x\n", " ..\n"),
            text.replace(" x\n", " a/b\n"),
            text.replace(" x\n", " \n"),
            text.replace("file", "fifo"),
            text.replace(" 3 ", " 03 "),
            format!("{text}{}", text.lines().nth(1).unwrap()),
            format!("{text}{}\n", text.lines().nth(1).unwrap()),
            text.replace("mreg tree 1", "mreg tree 2"),
            text.replace(" x\n", " \\x41\n"),
        ] {
            assert!(Tree::parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn a_name_with_a_raw_control_byte_was_accepted_though_not_canonical() {
        // `s\x01rve.sh` written raw: the same entry as the canonical `s\\x01rve.sh`,
        // under other bytes and so another hash.
        let canonical = Tree::new(vec![entry("s\x01rve.sh", Kind::Exec)]).to_bytes();
        let text = String::from_utf8(canonical.clone()).unwrap();
        assert!(Tree::parse(&canonical).is_ok());
        for raw in ["\x01", "\x7f", "\r", "\t"] {
            let bad = text.replace("\\x01", raw);
            let err = Tree::parse(bad.as_bytes()).expect_err("a raw control character");
            assert!(
                err.to_string().contains("unescaped control character"),
                "{err}"
            );
        }
    }

    #[test]
    fn link_targets_must_stay_inside() {
        assert!(check_link_target(0, "model.bin").is_ok());
        assert!(check_link_target(1, "../model.bin").is_ok());
        assert!(check_link_target(2, "../../a/./b").is_ok());
        assert!(check_link_target(0, "../x").is_err());
        assert!(check_link_target(3, "/etc/passwd").is_err());
        assert!(check_link_target(3, "a/../../x").is_err());
        assert!(check_link_target(3, "").is_err());
    }

    /// Returns the bytes of a tree with every kind of entry and an escaped name.
    fn sample_bytes() -> Vec<u8> {
        Tree::new(vec![
            entry("a\nb\\", Kind::Dir),
            entry("model.safetensors", Kind::File),
            entry("serve.sh", Kind::Exec),
            entry("weights", Kind::Link),
        ])
        .to_bytes()
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_bytes_never_panics(bytes in fuzz::bytes(512)) {
            let _ = Tree::parse(&bytes);
        }

        #[test]
        fn a_mutated_tree_parses_only_in_canonical_form(bytes in fuzz::mutated(sample_bytes())) {
            if let Ok(tree) = Tree::parse(&bytes) {
                prop_assert_eq!(tree.to_bytes(), bytes);
            }
        }
    }
}
