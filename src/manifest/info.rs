//! A model's own fields, the ones a person writes rather than a run records: its
//! description, intended use, limitations, license, owner and tags
//! (`models/NAME/info/NAME.toml`).
//!
//! Each `mreg model set` or `unset` writes one immutable change naming only the fields
//! it sets or clears; a model's fields are its changes folded in the order of their
//! file names, which sort by the time they were written. Two people editing different
//! fields at once both keep their edit, a sync copies the changes each side lacks and
//! never meets a conflict, and `mreg model log` shows every earlier value.
//!
//! The values end up in a terminal, in Markdown and in YAML, from a registry anyone may
//! have written: each is bounded, and holds no control character but a line break or a
//! tab in the long texts.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::run::check_format;
use crate::names::ModelName;

/// The change format this build reads and writes.
pub const FORMAT: u32 = 1;

/// The most bytes of a change file: the three long texts at their longest, each of
/// their bytes written as an escape of two, and room.
pub const CHANGE_LIMIT: u64 = 256 << 10;

/// The most bytes of a long text (description, intended use, limitations).
pub const TEXT_LIMIT: usize = 32 << 10;

/// The most characters of a license id, an owner, a tag or a message.
const SHORT_LIMIT: usize = 200;

/// The most tags a model keeps.
pub const TAGS_LIMIT: usize = 32;

/// One of a model's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// What the model is.
    Description,
    /// What it is for, and for whom.
    IntendedUse,
    /// Where it fails or must not be used.
    Limitations,
    /// Its license, as a Hugging Face license id.
    License,
    /// The person or team answerable for it.
    Owner,
    /// Tags, for the card's front matter.
    Tags,
}

impl Field {
    /// Every field, in the order they are shown.
    pub const ALL: [Field; 6] = [
        Field::Description,
        Field::IntendedUse,
        Field::Limitations,
        Field::License,
        Field::Owner,
        Field::Tags,
    ];

    /// Returns the field's name, as records and `mreg model unset` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::IntendedUse => "intended_use",
            Field::Limitations => "limitations",
            Field::License => "license",
            Field::Owner => "owner",
            Field::Tags => "tags",
        }
    }

    /// Returns the field a name spells (`intended-use` too), or `None`.
    pub fn parse(name: &str) -> Option<Field> {
        let name = name.replace('-', "_");
        Field::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// The values of a model's own fields: what a change sets, or what they are after a
/// fold of every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// What the model is (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What it is for, and for whom (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    /// Where it fails or must not be used (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    /// Its license: a Hugging Face license id such as `apache-2.0`, `mit` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The person or team answerable for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl Fields {
    /// Returns whether no field holds a value.
    pub fn is_empty(&self) -> bool {
        self.present().is_empty()
    }

    /// Returns the fields that hold a value, in [`Field::ALL`]'s order.
    pub fn present(&self) -> Vec<Field> {
        Field::ALL.into_iter().filter(|f| self.is_set(*f)).collect()
    }

    /// Returns whether a field holds a value.
    pub fn is_set(&self, field: Field) -> bool {
        match field {
            Field::Tags => self.tags.is_some(),
            other => self.text(other).is_some(),
        }
    }

    /// Returns a field's text (tags: `None`).
    pub fn text(&self, field: Field) -> Option<&str> {
        match field {
            Field::Description => self.description.as_deref(),
            Field::IntendedUse => self.intended_use.as_deref(),
            Field::Limitations => self.limitations.as_deref(),
            Field::License => self.license.as_deref(),
            Field::Owner => self.owner.as_deref(),
            Field::Tags => None,
        }
    }

    /// Returns whether `field` holds the same value here and in `other`.
    pub fn same(&self, other: &Fields, field: Field) -> bool {
        match field {
            Field::Tags => self.tags == other.tags,
            f => self.text(f) == other.text(f),
        }
    }

    /// Copies `field`'s value from `other` (clearing it when `other` has none).
    pub fn take(&mut self, other: &Fields, field: Field) {
        match field {
            Field::Description => self.description.clone_from(&other.description),
            Field::IntendedUse => self.intended_use.clone_from(&other.intended_use),
            Field::Limitations => self.limitations.clone_from(&other.limitations),
            Field::License => self.license.clone_from(&other.license),
            Field::Owner => self.owner.clone_from(&other.owner),
            Field::Tags => self.tags.clone_from(&other.tags),
        }
    }

    /// Clears a field.
    pub fn clear(&mut self, field: Field) {
        self.take(&Fields::default(), field);
    }

    /// Refuses a value no field may hold, naming the field and saying what it may hold.
    pub fn check(&self) -> Result<()> {
        for field in [Field::Description, Field::IntendedUse, Field::Limitations] {
            if let Some(text) = self.text(field) {
                let name = field.as_str();
                if text.trim().is_empty() {
                    bail!("{name} is empty; `mreg model unset` clears a field");
                }
                if text.len() > TEXT_LIMIT {
                    bail!(
                        "{name} is {} bytes long, longer than the {TEXT_LIMIT} a field may hold",
                        text.len()
                    );
                }
                if let Some(c) = text
                    .chars()
                    .find(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || hidden(*c))
                {
                    bail!(
                        "{name} holds the character {c:?}, which a reader could not see; a text holds printable characters, line breaks and tabs"
                    );
                }
            }
        }
        if let Some(license) = &self.license {
            license_id(license)?;
        }
        if let Some(owner) = &self.owner {
            short("owner", owner)?;
        }
        if let Some(tags) = &self.tags {
            if tags.is_empty() {
                bail!("tags is empty; `mreg model unset NAME tags` clears the tags");
            }
            if tags.len() > TAGS_LIMIT {
                bail!(
                    "tags holds {} tags, more than the {TAGS_LIMIT} a model keeps",
                    tags.len()
                );
            }
            for (i, tag) in tags.iter().enumerate() {
                short("a tag", tag)?;
                if tags[..i].contains(tag) {
                    bail!("tags holds {tag:?} twice");
                }
            }
        }
        Ok(())
    }
}

/// Refuses a license that is not a Hugging Face license id: lowercase letters, digits,
/// `.`, `-` and `+`, the first a letter or digit, as in `apache-2.0`, `cc-by-4.0`, `mit`
/// or `other`. YAML reads some such words as other things than text (`true`, `null`),
/// so the card quotes the id.
pub fn license_id(license: &str) -> Result<()> {
    let ok = license
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && license.len() <= 64
        && license
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.+".contains(&b));
    if !ok {
        bail!(
            "license {license:?} is not a license id: write one as Hugging Face lists them, in lowercase, such as apache-2.0, mit, cc-by-4.0 or other"
        );
    }
    Ok(())
}

/// Refuses a one-line value that is empty, longer than 200 characters, or holds a
/// control character.
fn short(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        bail!("{what} is empty");
    }
    if value.chars().count() > SHORT_LIMIT {
        bail!("{what} is longer than {SHORT_LIMIT} characters: {value:.40}…");
    }
    if value.chars().any(|c| c.is_control() || hidden(c)) {
        bail!(
            "{what} holds a control character or one a reader could not see; it is one line of printable text: {value:?}"
        );
    }
    Ok(())
}

/// Returns whether `c` is a character a reader of the value would not see, or that
/// changes how the text around it reads: the bidirectional controls (a text could show
/// other words than it holds), zero-width and other format characters, the line and
/// paragraph separators (YAML readers break lines at them), and the noncharacters.
fn hidden(c: char) -> bool {
    let code = u32::from(c);
    matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{fdd0}'..='\u{fdef}')
        || code & 0xfffe == 0xfffe
}

/// One change of a model's fields, as stored in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoChange {
    /// Change format version.
    pub format: u32,
    /// The model.
    pub model: String,
    /// When it was written (RFC 3339, UTC).
    pub time: String,
    /// Who wrote it.
    pub actor: String,
    /// Why, when a reason was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The fields it clears.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<Field>,
    /// The values it sets.
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub set: Fields,
}

impl InfoChange {
    /// Returns the change as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a change, refusing one from a newer format, one that changes nothing,
    /// sets and clears one field, or holds a value no field may hold.
    pub fn parse(text: &str) -> Result<InfoChange> {
        if text.len() as u64 > CHANGE_LIMIT {
            bail!(
                "it is {} bytes long, longer than the {CHANGE_LIMIT} a change of a model's fields may be",
                text.len()
            );
        }
        check_format(text, FORMAT)?;
        let change: InfoChange = toml::from_str(text)?;
        change.check()?;
        Ok(change)
    }

    /// Refuses a change no mreg writes.
    pub fn check(&self) -> Result<()> {
        if ModelName::parse(&self.model).is_err() {
            bail!("model {:?} is no model name", self.model);
        }
        super::fields::time("time", &self.time)?;
        short("actor", &self.actor)?;
        if let Some(message) = &self.message {
            short("message", message)?;
        }
        let set = self.set.present();
        if set.is_empty() && self.unset.is_empty() {
            bail!("it neither sets nor clears a field");
        }
        for (i, field) in self.unset.iter().enumerate() {
            if set.contains(field) {
                bail!("it both sets and clears {}", field.as_str());
            }
            if self.unset[..i].contains(field) {
                bail!("it clears {} twice", field.as_str());
            }
        }
        self.set.check()
    }
}

/// A model's fields: every change folded, with who changed them last, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// The values.
    #[serde(flatten)]
    pub fields: Fields,
    /// How many changes made them.
    pub changes: usize,
    /// When the newest change was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// Why changes were left out of the fold (damaged, hostile, dated in the future,
    /// past the most a model keeps), a sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

impl ModelInfo {
    /// Applies one change: its values replace the fields it sets, and the fields it
    /// clears are cleared.
    pub fn apply(&mut self, change: &InfoChange) {
        for field in change.set.present() {
            self.fields.take(&change.set, field);
        }
        for field in &change.unset {
            self.fields.clear(*field);
        }
        self.changes += 1;
        self.updated = Some(change.time.clone());
        self.updated_by = Some(change.actor.clone());
    }

    /// Returns whether no field holds a value.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::fuzz;

    fn change(text: &str) -> Result<InfoChange> {
        InfoChange::parse(&format!(
            "format = 1\nmodel = \"churn\"\ntime = \"2026-01-01T00:00:00Z\"\nactor = \"a@b\"\n{text}"
        ))
    }

    #[test]
    fn changes_fold_in_order_and_clear_what_they_unset() {
        let mut info = ModelInfo::default();
        info.apply(&change("[set]\nlicense = \"mit\"\nowner = \"team\"").unwrap());
        info.apply(
            &change("unset = [\"owner\"]\n[set]\nlicense = \"apache-2.0\"\ntags = [\"x\"]")
                .unwrap(),
        );
        assert_eq!(info.fields.license.as_deref(), Some("apache-2.0"));
        assert_eq!(info.fields.owner, None);
        assert_eq!(info.fields.tags, Some(vec!["x".to_owned()]));
        assert_eq!(info.changes, 2);
    }

    #[test]
    fn changes_no_mreg_writes_are_refused_with_the_field_named() {
        for (text, said) in [
            ("", "neither sets nor clears"),
            ("[set]\nlicense = \"MIT\"", "not a license id"),
            (
                "unset = [\"license\"]\n[set]\nlicense = \"mit\"",
                "both sets and clears license",
            ),
            ("[set]\nowner = \"a\\u001b[31m\"", "control character"),
            ("[set]\ndescription = \"  \"", "description is empty"),
            ("[set]\ntags = [\"a\", \"a\"]", "twice"),
            ("[set]\ntags = []", "tags is empty"),
            ("[set]\nlicense = \"-x\"", "not a license id"),
            ("[set]\nlicense = \".inf\"", "not a license id"),
            ("[set]\nowner = \"ann\\u202egpj\"", "could not see"),
            ("[set]\ntags = [\"a\\uffff\"]", "could not see"),
            ("[set]\ntags = [\"a\\u2028b\"]", "could not see"),
            ("[set]\ndescription = \"x\\u200by\"", "could not see"),
            ("[set]\nlimitations = \"x\\U0001FFFE\"", "could not see"),
            ("unset = [\"colour\"]", "unknown variant"),
            ("[set]\ncolour = \"red\"", "unknown field"),
            ("model2 = 1", "unknown field"),
        ] {
            let err = format!("{:#}", change(text).unwrap_err());
            assert!(err.contains(said), "{text}: {err}");
        }
        let long = format!("[set]\ndescription = \"{}\"", "x".repeat(TEXT_LIMIT + 1));
        assert!(format!("{:#}", change(&long).unwrap_err()).contains("longer than"));
        let tags: Vec<String> = (0..=TAGS_LIMIT).map(|i| format!("\"t{i}\"")).collect();
        let many = format!("[set]\ntags = [{}]", tags.join(","));
        assert!(format!("{:#}", change(&many).unwrap_err()).contains("more than"));
        let huge = format!("# {}\n", "x".repeat(CHANGE_LIMIT as usize));
        assert!(format!("{:#}", change(&huge).unwrap_err()).contains("bytes long"));
        assert!(change("[set]\ndescription = \"line one\\n\\tline two\"").is_ok());
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            fuzz::check_manifest(&text, InfoChange::parse, InfoChange::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_change_never_panics(text in fuzz::mutated_text(include_str!("../../fixtures/manifests/info.toml"))) {
            fuzz::check_manifest(&text, InfoChange::parse, InfoChange::to_toml)?;
        }
    }
}
