//! `mreg demo`: the main job end to end on the bundled fixtures, in a throwaway registry.

mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Ctx;
use super::output::{self, Printer};
use crate::error::Failure;
use crate::store::snapshot::{self, Sink};
use crate::store::{NoProgress, Registry, models};

/// Run mreg end to end on the bundled fixtures, in a throwaway registry
///
/// Creates a registry in a temp folder, records a training run that logs a loss curve
/// and pushes a tiny model, pushes a fine-tune of it, diffs the two down to their
/// tensors, compares the runs, promotes through gates (one refused), rolls production
/// back, lists and shows the versions, writes the model's license, owner and intended
/// use, pulls production back and verifies it byte for byte, signs it and verifies the
/// signature (of the version, and of a folder pulled with it), then checks the registry, and writes a report of the runs (curves and params,
/// HTML) as mreg-demo-report.html in the current folder. Each step prints the command
/// it runs.
///
/// The fixtures (two versions of a tiny safetensors model, params, metrics) are built
/// into mreg and written to the temp folder, so the demo runs wherever mreg is installed.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg demo\n  mreg demo --keep                # keep the registry to look around\n  cargo run --release -- demo --fixtures ./fixtures"
)]
pub struct DemoArgs {
    /// Folder of fixtures to use instead of the built-in ones (holding params.yaml,
    /// eval.json, metrics.jsonl, models/tiny-v1 and models/tiny-v2…)
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Keep the throwaway registry and print where it is
    #[arg(long)]
    keep: bool,
}

/// The demo's steps: a title (empty to continue the previous one), the arguments, and
/// whether the step must succeed. `{fixtures}` stands for the fixtures folder.
const STEPS: &[(&str, &[&str], bool)] = &[
    ("Create a registry", &["init", "registry"], true),
    (
        "Record a training run: its params, a loss curve it logs, the model it pushes",
        &[
            "run",
            "--experiment",
            "demo",
            "--params-file",
            "{fixtures}/params.yaml",
            "--",
            "sh",
            "-c",
            "mreg log --metrics-file {fixtures}/metrics.jsonl && \
             mreg push {fixtures}/models/tiny-v1 --model demo --metrics-file {fixtures}/eval.json \
             --message 'first training run'",
        ],
        true,
    ),
    (
        "Push a fine-tune of it: only what changed is stored, and push records the run",
        &[
            "push",
            "{fixtures}/models/tiny-v2",
            "--model",
            "demo",
            "--parent",
            "demo@1",
            "--params-file",
            "{fixtures}/params.yaml",
            "--param",
            "optimizer.lr=0.0005",
            "--metrics-file",
            "{fixtures}/metrics-v2.jsonl",
            "--metrics-file",
            "{fixtures}/eval-v2.json",
            "--message",
            "fine-tuned head",
        ],
        true,
    ),
    (
        "See what the fine-tune changed: params, metrics, files, and which tensors",
        &["diff", "demo@1", "demo@2"],
        true,
    ),
    (
        "Compare the runs: best accuracy first",
        &[
            "runs",
            "--sort",
            "-acc",
            "--columns",
            "params.optimizer.lr,acc,loss,status",
        ],
        true,
    ),
    (
        "",
        &[
            "runs",
            "--where",
            "metrics.acc > 0.9 and params.optimizer.lr < 0.001",
        ],
        true,
    ),
    (
        "Promote the first version to production, on the evidence of a gate",
        &["promote", "demo@1", "production", "--gate", "acc>0.85"],
        true,
    ),
    (
        "A gate that does not hold refuses the promotion (exit 3); the refusal is recorded",
        &[
            "promote",
            "demo@2",
            "production",
            "--gate",
            "acc>=@production+0.05",
        ],
        false,
    ),
    (
        "Within a tolerance of production, the fine-tune goes in; demo@1 moves to archived",
        &[
            "promote",
            "demo@2",
            "production",
            "--gate",
            "acc>=@production-0.005",
            "--gate",
            "latency_ms<=@production*1.1",
        ],
        true,
    ),
    (
        "Roll production back, with a reason; every move is in the history",
        &[
            "rollback",
            "demo",
            "production",
            "--reason",
            "p99 latency regression",
        ],
        true,
    ),
    ("", &["history", "demo"], true),
    (
        "Push the same folder again: nothing to do",
        &["push", "{fixtures}/models/tiny-v2", "--model", "demo"],
        true,
    ),
    ("List models, then the versions of one", &["ls"], true),
    ("", &["ls", "demo"], true),
    (
        "Show a version's record and files",
        &["show", "demo@1", "--files"],
        true,
    ),
    (
        "Write what a person knows of the model; `mreg card` puts it in the model card",
        &[
            "model",
            "set",
            "demo",
            "--license",
            "apache-2.0",
            "--owner",
            "demo-team",
            "--intended-use",
            "Showing what mreg records; not for serving.",
        ],
        true,
    ),
    ("", &["model", "show", "demo"], true),
    (
        "Pull what production holds, for serving",
        &["pull", "demo@production", "--to", "serve"],
        true,
    ),
    (
        "Sign it (an OpenSSF Model Signing signature, from its tree), then verify it",
        &["sign", "demo@production", "--key", "keys/demo.pem"],
        true,
    ),
    (
        "",
        &["verify", "demo@production", "--key", "keys/demo.pub"],
        true,
    ),
    (
        "Pull it with its signature, which the stock `model_signing verify key` also checks",
        &["pull", "demo@production", "--to", "signed", "--signature"],
        true,
    ),
    (
        "",
        &["verify", "--dir", "signed", "--key", "keys/demo.pub"],
        true,
    ),
    (
        "An unknown version is an error that says what exists",
        &["pull", "demo@7", "--to", "other"],
        false,
    ),
    (
        "Remove a version: refused while a stage holds it, unless forced with a reason",
        &["rm", "demo@2"],
        false,
    ),
    (
        "",
        &[
            "rm",
            "demo@2",
            "--force",
            "--reason",
            "superseded by demo@1",
        ],
        true,
    ),
    (
        "See where the bytes are and what gc frees, then collect",
        &["du"],
        true,
    ),
    ("", &["gc"], true),
    ("Verify every object and manifest", &["fsck"], true),
    (
        "Draw the runs: their loss curves and params in one HTML file",
        &["report", "--experiment", "demo", "--out", "{report}"],
        true,
    ),
];

/// The demo's signing key pair (P-256), made for the demo and written beside its
/// registry; it protects nothing, and is never to be used elsewhere.
const DEMO_PRIVATE_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGQxuhdlUBaMXshKn/ED+OxhGdsp5TNBKmnvuqiu/I7NoAoGCCqGSM49
AwEHoUQDQgAEgEo1tielyhZJLdZLpF5CQ/1VfP7EaJCmgEH0hRUPVWnRPgLjeUo+
zk775M2BP7a3cEeIEeyQwI6G9FULmwSADw==
-----END EC PRIVATE KEY-----
";
const DEMO_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgEo1tielyhZJLdZLpF5CQ/1VfP7E
aJCmgEH0hRUPVWnRPgLjeUo+zk775M2BP7a3cEeIEeyQwI6G9FULmwSADw==
-----END PUBLIC KEY-----
";

/// Runs `mreg demo`.
pub fn run(ctx: &Ctx, args: &DemoArgs) -> Result<()> {
    if ctx.out.is_json() {
        return Err(
            Failure::usage("demo prints a walkthrough for people and has no JSON form")
                .hint("run it without --json")
                .into(),
        );
    }
    // The report outlives the throwaway registry: it goes where the demo was started.
    let report = ctx.cwd().join("mreg-demo-report.html");
    let work = tempfile::Builder::new()
        .prefix("mreg-demo-")
        .tempdir()
        .context("creating a temp folder")?;
    let root = work.path().to_path_buf();
    // The built-in fixtures are written beside the registry and named relative to it,
    // where every step runs.
    let (fixtures, fixtures_arg) = if let Some(dir) = &args.fixtures {
        let dir = check_fixtures(dir)?;
        let arg = dir.display().to_string();
        (dir, arg)
    } else {
        fixtures::write_to(&root.join("fixtures"))?;
        (root.join("fixtures"), "fixtures".to_owned())
    };
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).context("creating the demo's keys folder")?;
    std::fs::write(keys.join("demo.pem"), DEMO_PRIVATE_KEY).context("writing the demo key")?;
    std::fs::write(keys.join("demo.pub"), DEMO_PUBLIC_KEY).context("writing the demo key")?;
    let exe = std::env::current_exe().context("finding the mreg binary")?;
    // Commands started by `mreg run` call this same mreg.
    let mut dirs = vec![exe.parent().unwrap_or(Path::new("/")).to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).context("building PATH for the demo")?;
    let fixtures_short = shorten(&fixtures, &fixtures_arg);
    let step = |title: &str, argv: &[&str], expect_ok: bool| -> Result<()> {
        if !title.is_empty() {
            ctx.out.line(&format!("\n# {title}"))?;
        }
        let shown: Vec<String> = argv
            .iter()
            .map(|a| output::shell_word(&a.replace(&fixtures_arg, &fixtures_short)))
            .collect();
        ctx.out.line(&format!("$ mreg {}", shown.join(" ")))?;
        let status = Command::new(&exe)
            .args(argv)
            .env("MREG_REGISTRY", root.join("registry"))
            .env("PATH", &path)
            // The demo's runs are its own: neither a run this shell is in nor the CI's
            // later steps may see them, or mix with them.
            .env_remove("MREG_RUN_ID")
            .env_remove("MREG_EXPERIMENT")
            .env_remove("GITHUB_ENV")
            .env_remove("GITHUB_ACTIONS")
            .current_dir(&root)
            .status()
            .with_context(|| format!("running mreg {}", argv[0]))?;
        if status.success() != expect_ok {
            bail!(
                "the demo step `mreg {}` exited with {status}",
                argv.join(" ")
            );
        }
        Ok(())
    };
    for (title, words, expect_ok) in STEPS {
        let owned: Vec<String> = words
            .iter()
            .map(|a| {
                a.replace("{fixtures}", &fixtures_arg)
                    .replace("{report}", &report.display().to_string())
            })
            .collect();
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        step(title, &args, *expect_ok)?;
    }
    verify_pull(&ctx.out, &root, &fixtures, &fixtures_short)?;
    ctx.out.status(&format!(
        "The runs' report is in {}; open it in a browser.",
        report.display()
    ));
    if args.keep {
        let kept = work.keep();
        ctx.out.status(&format!(
            "Demo done; the registry is kept in {}.",
            kept.display()
        ));
    } else {
        ctx.out.status(
            "Demo done: recorded, pushed, diffed, compared, promoted, rolled back, pulled, signed, removed, collected and verified.",
        );
    }
    Ok(())
}

/// Checks that `serve/` under `root` (production, rolled back to demo@1) hashes to demo@1,
/// and so to the fixture `models/tiny-v1` of `fixtures` (shown as `shown`).
fn verify_pull(out: &Printer, root: &Path, fixtures: &Path, shown: &str) -> Result<()> {
    let v1 = &fixtures.join("models/tiny-v1");
    out.line("\n# Check that the pulled folder is the pushed one")?;
    let reg = Registry::open(&root.join("registry").display().to_string())?;
    let record = models::load_version(&reg, "demo", 1)?;
    let serve = root.join("serve");
    let (pulled, _) = snapshot::snapshot(
        &reg,
        &serve,
        &Sink::HashOnly,
        None,
        &crate::store::snapshot::Reading::default(),
        &NoProgress,
    )?;
    let v1_dir = snapshot::check_folder(v1)?;
    let (pushed, _) = snapshot::snapshot(
        &reg,
        &v1_dir,
        &Sink::HashOnly,
        None,
        &crate::store::snapshot::Reading::default(),
        &NoProgress,
    )?;
    if pulled.tree != record.tree || pushed.tree != record.tree {
        bail!(
            "the pulled folder hashes to {}, but demo@1 is {}",
            pulled.tree,
            record.tree
        );
    }
    out.line(&format!(
        "tree {} = demo@1 = {shown}/models/tiny-v1",
        pulled.tree.0.short(16),
    ))
}

/// Returns how the demo shows the fixtures folder `dir`, given to its steps as `arg`: a
/// relative `arg` as it is (the built-in fixtures, beside the registry), else the path
/// relative to the current folder when it is below it.
fn shorten(dir: &Path, arg: &str) -> String {
    if Path::new(arg).is_relative() {
        return arg.to_owned();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    dir.strip_prefix(&cwd).unwrap_or(dir).display().to_string()
}

/// Returns the absolute path of a fixtures folder given with `--fixtures`, once it is
/// seen to hold the two models.
fn check_fixtures(dir: &Path) -> Result<PathBuf> {
    if dir.join("models/tiny-v1").is_dir() && dir.join("models/tiny-v2").is_dir() {
        return Ok(std::path::absolute(dir)?);
    }
    Err(Failure::usage(format!(
        "--fixtures {}: no models/tiny-v1 and models/tiny-v2 there",
        dir.display()
    ))
    .hint("leave out --fixtures to use the fixtures built into mreg")
    .into())
}
