//! Approvals, and signed stage moves. An approval is a signed statement that a key's
//! holder approves a model's tree for a stage. It is a DSSE bundle like a model signature ([`super::oms`]), around an in-toto
//! statement whose subject is the version's tree (by its BLAKE3) and whose predicate
//! (`https://mreg.dev/approval/v1`) names the model, the version, the stage, when, and
//! an optional comment. Everything an approval holds for is inside what is signed, so
//! it cannot be replayed onto another model, tree or stage.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::oms::STATEMENT_TYPE;
use crate::id::TreeId;

/// The predicate type of an approval.
pub const PREDICATE_TYPE: &str = "https://mreg.dev/approval/v1";

/// The longest comment an approval carries.
pub const COMMENT_LIMIT: usize = 4096;

/// What an approval says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The model.
    pub model: String,
    /// The version number it was given for (informational: the tree is what counts).
    pub version: u64,
    /// The tree approved.
    pub tree: TreeId,
    /// The stage it may go to.
    pub stage: String,
    /// When, RFC 3339.
    pub time: String,
    /// Why, in the approver's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Approval {
    /// Returns the statement to sign.
    pub fn statement(&self) -> Vec<u8> {
        statement(&self.model, &self.tree.0.to_hex(), PREDICATE_TYPE, self)
    }

    /// Parses a signed statement as an approval, refusing any other statement and one
    /// whose subject is not the tree its predicate names.
    pub fn parse(payload: &[u8]) -> Result<Approval> {
        let (approval, subject): (Approval, _) =
            parse_statement(payload, PREDICATE_TYPE, "an approval")?;
        if subject != approval.tree.0.to_hex().as_str() {
            bail!("its subject is not the tree it approves");
        }
        if approval
            .comment
            .as_ref()
            .is_some_and(|c| c.len() > COMMENT_LIMIT)
        {
            bail!("its comment is longer than {COMMENT_LIMIT} bytes");
        }
        Ok(approval)
    }
}

/// The predicate type of a signed stage move.
pub const MOVE_PREDICATE_TYPE: &str = "https://mreg.dev/stage-move/v1";

/// A signed stage move (`mreg promote --key`): who vouches for the move that wrote a
/// stage state. Its subject is the state (by its BLAKE3 id), which names everything the
/// move did; the predicate repeats what people read of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    /// The model.
    pub model: String,
    /// The stage moved.
    pub stage: String,
    /// The version it now holds.
    pub version: u64,
    /// That version's tree.
    pub tree: TreeId,
    /// The state the move wrote.
    pub state: String,
    /// When it was signed, RFC 3339.
    pub time: String,
}

impl StageMove {
    /// Returns the statement to sign.
    pub fn statement(&self) -> Vec<u8> {
        statement(&self.model, &self.state, MOVE_PREDICATE_TYPE, self)
    }

    /// Parses a signed statement as a stage move, refusing any other statement and one
    /// whose subject is not the state its predicate names.
    pub fn parse(payload: &[u8]) -> Result<StageMove> {
        let (moved, subject): (StageMove, _) =
            parse_statement(payload, MOVE_PREDICATE_TYPE, "a signed stage move")?;
        if subject != moved.state {
            bail!("its subject is not the state it signs");
        }
        Ok(moved)
    }
}

/// Returns an in-toto statement about `model`, whose subject has the BLAKE3 `subject`,
/// with `predicate` of `predicate_type`.
fn statement<T: Serialize>(
    model: &str,
    subject: &str,
    predicate_type: &str,
    predicate: &T,
) -> Vec<u8> {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model, "digest": {"blake3": subject}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec_pretty(&statement).expect("a statement serializes")
}

/// An in-toto statement as mreg writes them, read strictly: a field mreg does not write,
/// or one given twice, is refused rather than guessed at.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement<T> {
    #[serde(rename = "_type")]
    _kind: String,
    subject: [Subject; 1],
    #[serde(rename = "predicateType")]
    _predicate_type: String,
    predicate: T,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    #[serde(rename = "name")]
    _name: String,
    digest: SubjectDigest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectDigest {
    blake3: String,
}

/// Parses an in-toto statement whose predicate is `what` (of `predicate_type`); returns
/// the predicate and the BLAKE3 its one subject names, for the caller to match.
fn parse_statement<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    predicate_type: &str,
    what: &str,
) -> Result<(T, String)> {
    // First what it is, in words; then every field, strictly.
    let value: Value = serde_json::from_slice(payload).context("it is not JSON")?;
    if value.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE) {
        bail!("it is not an in-toto statement v1");
    }
    if value.get("predicateType").and_then(Value::as_str) != Some(predicate_type) {
        bail!("it is not {what} ({predicate_type})");
    }
    let statement: Statement<T> = serde_json::from_slice(payload)
        .with_context(|| format!("it is not {what} as mreg writes one"))?;
    let [subject] = statement.subject;
    Ok((statement.predicate, subject.digest.blake3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Approval {
        Approval {
            model: "churn".to_owned(),
            version: 4,
            tree: "a".repeat(64).parse().unwrap(),
            stage: "production".to_owned(),
            time: "2026-12-07T10:00:00Z".to_owned(),
            comment: Some("reviewed the eval".to_owned()),
        }
    }

    #[test]
    fn a_stage_move_reads_back_and_is_no_approval() {
        let moved = StageMove {
            model: "churn".to_owned(),
            stage: "production".to_owned(),
            version: 4,
            tree: "a".repeat(64).parse().unwrap(),
            state: "c".repeat(64),
            time: "2026-12-07T10:00:00Z".to_owned(),
        };
        assert_eq!(StageMove::parse(&moved.statement()).unwrap(), moved);
        assert!(Approval::parse(&moved.statement()).is_err());
        assert!(StageMove::parse(&sample().statement()).is_err());
    }

    #[test]
    fn an_approval_reads_back_as_written() {
        let approval = sample();
        assert_eq!(Approval::parse(&approval.statement()).unwrap(), approval);
    }

    #[test]
    fn a_statement_about_another_tree_or_of_another_kind_is_refused() {
        let text = String::from_utf8(sample().statement()).unwrap();
        let other_subject = text.replacen(&"a".repeat(64), &"b".repeat(64), 1);
        assert!(Approval::parse(other_subject.as_bytes()).is_err());
        let other_kind = text.replace(PREDICATE_TYPE, super::super::oms::PREDICATE_TYPE);
        assert!(Approval::parse(other_kind.as_bytes()).is_err());
    }

    #[test]
    fn a_field_mreg_does_not_write_or_one_given_twice_is_refused() {
        let text = String::from_utf8(sample().statement()).unwrap();
        let unknown = text.replacen("\"stage\":", "\"also\": 1,\n    \"stage\":", 1);
        let err = Approval::parse(unknown.as_bytes()).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `also`"),
            "{err:#}"
        );
        // A second stage, which a reader taking the last one would believe.
        let twice = text.replacen(
            "\"stage\": \"production\",",
            "\"stage\": \"production\",\n    \"stage\": \"staging\",",
            1,
        );
        assert_ne!(twice, text);
        let err = Approval::parse(twice.as_bytes()).unwrap_err();
        assert!(
            format!("{err:#}").contains("duplicate field `stage`"),
            "{err:#}"
        );
        let two_subjects = text.replacen(
            "\"subject\": [",
            "\"subject\": [{\"name\": \"x\", \"digest\": {\"blake3\": \"00\"}},",
            1,
        );
        assert!(Approval::parse(two_subjects.as_bytes()).is_err());
    }
}
