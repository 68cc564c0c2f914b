//! `mreg sign` and `mreg verify`: OpenSSF Model Signing signatures of versions.

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, output};
use crate::error::Failure;
use crate::ops::sign::{self, Verified};

/// Sign a version with an OpenSSF Model Signing (OMS v1.0) signature
///
/// The signature lists every file of the version with its SHA-256 digest, in a
/// Sigstore bundle that the stock `model_signing verify key` accepts (pull the version
/// with `--signature`). It is made from the version's tree: the first signature of a
/// version reads each file once to learn its SHA-256 (objects are named by BLAKE3),
/// later ones read nothing. The signature is a record of the version: it travels with
/// `mreg sync`, and a version may have several signers.
///
/// Keys are ECDSA on P-256 or P-384, in PEM (unencrypted; see docs/signing.md on
/// keeping them). A link to a file is listed with its target's content, as the stock
/// signer lists links with --allow_symlinks (the stock verifier then needs that flag). A signature made elsewhere (`model_signing sign key` on the folder
/// that was pushed) is stored with --bundle once it is checked to list exactly the
/// version's files.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  openssl ecparam -name prime256v1 -genkey -noout -out alice.pem
  openssl ec -in alice.pem -pubout -out alice.pub
  mreg sign churn@4 --key alice.pem
  mreg verify churn@4 --key alice.pub
  mreg sign churn@4 --bundle ./model.sig      # made by `model_signing sign key`

Exit codes: 0 signed, 1 error (a bundle that does not list exactly the version's files), 2 usage
error (a key that is not an ECDSA P-256/P-384 private key).")]
pub struct SignArgs {
    /// The version to sign
    #[arg(value_name = "REF")]
    reference: String,
    /// The private key to sign with (PEM)
    #[arg(
        long,
        value_name = "KEY.pem",
        required_unless_present = "bundle",
        conflicts_with = "bundle"
    )]
    key: Option<PathBuf>,
    /// Store this OMS signature (a bundle) of the version instead of making one
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
}

/// Runs `mreg sign`.
pub fn run_sign(ctx: &Ctx, args: &SignArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let signed = sign::sign(
        &reg,
        &args.reference,
        args.key.as_deref(),
        args.bundle.as_deref(),
        &ctx.out.progress(),
    )?;
    let key = signed.key.as_deref().map_or_else(
        || "a key it does not name".to_owned(),
        |k| format!("key {}", &k[..k.len().min(16)]),
    );
    let line = if signed.new && signed.imported {
        format!(
            "Stored a signature of {}@{} made elsewhere, naming {key}: {} listed; signature {}. Its signer is checked by `mreg verify`.",
            signed.model,
            signed.version,
            output::count(signed.files as u64, "file"),
            &signed.signature[..16]
        )
    } else if signed.new {
        format!(
            "Signed {}@{} with {key}: {} listed; signature {}.",
            signed.model,
            signed.version,
            output::count(signed.files as u64, "file"),
            &signed.signature[..16]
        )
    } else {
        format!(
            "{}@{} already holds this signature by {key} ({}); nothing new was written.",
            signed.model,
            signed.version,
            &signed.signature[..16]
        )
    };
    ctx.out.emit(&signed, String::new)?;
    ctx.out.status(&line);
    if !signed.uncovered.is_empty() {
        ctx.out.warn(&format!(
            "the signature leaves out {} of the version by its ignore_paths, so it does not vouch for them: {}",
            output::count(signed.uncovered.len() as u64, "file"),
            signed.uncovered.join(", ")
        ));
    }
    Ok(())
}

/// Check the signatures of a version, or of a pulled folder
///
/// A version is verified when one of its signatures was made by a trusted key and
/// lists exactly its files, each with the digest of its content. Trusted keys are
/// given with --key (public keys in PEM) or --signers (a TOML file: a [signers] table
/// of NAME = "PEM"); without either, a version is checked against the [signers] of the
/// registry's config.toml. Every signature of the version is listed, with why it does
/// or does not hold.
///
/// With --dir, the folder is hashed whole and checked against its signature file
/// (model.sig in it, as `pull --signature` writes, or --signature FILE), as the stock
/// `model_signing verify key` checks it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg verify churn@4 --key alice.pub
  mreg verify churn@production --signers team-signers.toml --json
  mreg pull churn@4 --to ./model --signature && mreg verify --dir ./model --key alice.pub

A signers file:
  [signers]
  alice = \"\"\"
  -----BEGIN PUBLIC KEY-----
  ...
  -----END PUBLIC KEY-----
  \"\"\"

Exit codes: 0 verified, 1 not verified (no signature, none by a trusted key, or files
that differ from what was signed), 2 usage error.")]
pub struct VerifyArgs {
    /// The version to check
    #[arg(
        value_name = "REF",
        required_unless_present = "dir",
        conflicts_with = "dir"
    )]
    reference: Option<String>,
    /// Check a folder (a pulled version) instead of a version in the registry
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The signature file of --dir (default: DIR/model.sig)
    #[arg(long, value_name = "FILE", requires = "dir")]
    signature: Option<PathBuf>,
    /// A trusted public key (PEM); repeat for several
    #[arg(long, value_name = "PUB.pem")]
    key: Vec<PathBuf>,
    /// A file of trusted signers: a [signers] table of NAME = "PEM public key"
    #[arg(long, value_name = "FILE")]
    signers: Option<PathBuf>,
}

/// Runs `mreg verify`.
pub fn run_verify(ctx: &Ctx, args: &VerifyArgs) -> Result<()> {
    if args.signature.is_some() && args.dir.is_none() {
        return Err(Failure::usage(
            "--signature names the signature file of a folder, and goes with --dir",
        )
        .hint("a version's signatures are in the registry: `mreg verify REF --key PUB.pem` checks them all")
        .into());
    }
    let mut signers = sign::read_signers(&args.key, args.signers.as_deref())?;
    if signers.is_empty() && args.dir.is_none() {
        // The keys the registry's own stage rules trust, when none is named.
        signers = crate::ops::approve::config_signers(&ctx.registry()?.config()?)?;
    }
    if signers.is_empty() {
        return Err(Failure::usage(
            "verify needs the keys to trust: --key PUB.pem or --signers FILE (or [signers] in the registry's config.toml)",
        )
        .hint("a signature proves who made it only against a key you already trust")
        .into());
    }
    let verified = match (&args.reference, &args.dir) {
        (Some(reference), None) => {
            let reg = ctx.registry()?;
            sign::verify_version(&reg, reference, &signers, &ctx.out.progress())?
        }
        (None, Some(dir)) => sign::verify_dir(
            dir,
            args.signature.as_deref(),
            &signers,
            &ctx.out.progress(),
        )?,
        _ => unreachable!("clap asks for exactly one of REF and --dir"),
    };
    ctx.out.emit(&verified, || render(&verified))?;
    if verified.verified {
        Ok(())
    } else {
        Err(Failure::error(format!(
            "{} is not verified: no signature by a trusted key lists exactly its files",
            verified.subject
        ))
        .into())
    }
}

fn render(verified: &Verified) -> String {
    let mut out = String::new();
    for checked in &verified.signatures {
        let key = checked.key.as_deref().map_or_else(
            || "unnamed key".to_owned(),
            |k| format!("key {}", &k[..k.len().min(16)]),
        );
        let by = checked
            .signer
            .as_deref()
            .map_or(String::new(), |s| format!(" ({s})"));
        let id = std::path::Path::new(&checked.signature)
            .file_stem()
            .map(|s| s.to_string_lossy().chars().take(16).collect::<String>())
            .unwrap_or_default();
        let line = if checked.valid {
            let ignored = if checked.ignored.is_empty() {
                String::new()
            } else {
                format!("; NOT covered by it: {}", checked.ignored.join(", "))
            };
            format!(
                "ok    {} [{id}]: signed by {key}{by}, {} match{ignored}",
                verified.subject,
                output::count(checked.files as u64, "file")
            )
        } else {
            format!(
                "FAIL  {} [{id}]: {key}{by}: {}",
                verified.subject,
                checked.problem.as_deref().unwrap_or("not valid")
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Approve a version for a stage, signed with your key
///
/// Records a signed approval of the version for the stage: a DSSE bundle naming the
/// model, the version's tree, the stage, the time and your comment, signed with your
/// ECDSA key. A stage whose policy says `approvals = N` takes a promotion only once N
/// distinct approvers listed under `[signers]` in config.toml have approved the
/// version for that stage; an approval for another version or stage, or by a key not
/// (or no longer) among the approvers, does not count, and `mreg promote` says why.
/// Approvals travel with `mreg sync`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg approve churn@4 production --key alice.pem --comment 'eval reviewed, PR #88'
  mreg promote churn@4 production      # exit 3 until the stage's approvals are there

In config.toml:
  [signers]
  alice = \"\"\"-----BEGIN PUBLIC KEY-----
  ...\"\"\"
  [stages.production]
  approvals = 2
  approvers = [\"alice\", \"bob\", \"carol\"]
  require_signature = [\"release-bot\"]

Exit codes: 0 recorded, 1 error, 2 usage error (an unknown stage, a key that is not
an ECDSA private key).")]
pub struct ApproveArgs {
    /// The version to approve
    #[arg(value_name = "REF")]
    reference: String,
    /// The stage it may be promoted to
    #[arg(value_name = "STAGE")]
    stage: String,
    /// Your private key (PEM)
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Why; recorded in the approval, credentials in it masked
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
}

/// Runs `mreg approve`.
pub fn run_approve(ctx: &Ctx, args: &ApproveArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let done = crate::ops::approve::approve(
        &reg,
        &args.reference,
        &args.stage,
        &args.key,
        args.comment.as_deref(),
    )?;
    let who = done.signer.as_deref().map_or_else(
        || format!("key {}", &done.key[..16]),
        |s| format!("{s} (key {})", &done.key[..16]),
    );
    let line = if done.new {
        format!(
            "Recorded {who}'s approval of {}@{} for {}.",
            done.model, done.version, done.stage
        )
    } else {
        format!(
            "{who} had already approved {}@{} for {}; nothing new was written.",
            done.model, done.version, done.stage
        )
    };
    ctx.out.emit(&done, String::new)?;
    ctx.out.status(&line);
    if let Some(why) = &done.not_counted {
        ctx.out.warn(why);
    }
    Ok(())
}
