//! `mreg init` and finding the registry.

use crate::common::TestEnv;
use insta::assert_snapshot;

#[test]
fn init_creates_a_registry_once() {
    let env = TestEnv::new();
    assert_snapshot!(env.snap(&["init"]), @"
    exit: 0
    --- stdout
    --- stderr
    Created an empty mreg registry in [TMP]/work/.mreg.
    ");
    assert!(env.registry().join("config.toml").is_file());
    assert_snapshot!(env.snap(&["init"]), @"
    exit: 0
    --- stdout
    --- stderr
    A registry already exists in [TMP]/work/.mreg; left as it is.
    ");
    let config = std::fs::read_to_string(env.registry().join("config.toml")).unwrap();
    assert_snapshot!(config, @r#"
    # mreg registry configuration
    format = 3

    # Stages are named pointers to one version of each model. staging, production and
    # archived always exist; a [stages.NAME] table declares another one. Keys:
    #   gates = ["acc>0.85", "acc>=@production-0.005"]  every promotion here must pass these
    #   from = "staging"          only the version that stage holds may be promoted here
    #   replaced_to = "archived"  where the version this stage held goes when replaced
    #   allow_downgrade = true    allow promoting a version older than the holder
    #   require_signature = ["alice"]  a signature (`mreg sign`) by one of these [signers]
    #   approvals = 2             approvals (`mreg approve`) by that many distinct approvers
    #   approvers = ["alice", "bob"]  who may approve (default: every one of [signers])
    # Skipping a gate or `from` takes `mreg promote --force --reason TEXT`, which is recorded;
    # the signing rules cannot be skipped.
    # [signers] names the public keys those rules trust (docs/signing.md):
    # [signers]
    # alice = """
    # -----BEGIN PUBLIC KEY-----
    # ...
    # -----END PUBLIC KEY-----
    # """

    [stages.staging]

    [stages.production]
    replaced_to = "archived"

    [stages.archived]
    allow_downgrade = true

    # Which versions `mreg rm --policy` (and `mreg gc --policy`) keeps; a version is kept
    # when any rule keeps it, and always while a stage holds it (docs/lifecycle.md).
    # [retention]
    # keep_last = 10          # the 10 newest versions of each model
    # keep_within = "30d"     # versions pushed in the last 30 days
    # keep_stage_moves = 20   # versions a stage held in the model's last 20 history entries
    # remove_runs = true      # the runs of removed versions go too
    # [retention.models.fraud]
    # keep_all = true         # a model's own table replaces [retention] for it

    # Which way metrics improve, for diff and compare, where a name does not say: names
    # with a word like loss, error, latency or ms are minimized, all others maximized.
    # [metrics]
    # minimize = ["mean_rank", "*_s"]
    # maximize = ["reward_*"]
    "#);
}

#[test]
fn commands_find_the_registry_from_a_subfolder() {
    let env = TestEnv::with_registry();
    std::fs::create_dir_all(env.path("a/b")).unwrap();
    let out = env
        .cmd(&["ls"])
        .current_dir(env.path("a/b"))
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn no_registry_is_an_error_that_says_how_to_make_one() {
    let env = TestEnv::new();
    assert_snapshot!(env.snap(&["ls"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: no mreg registry in [TMP]/work or any folder above it
    hint: create one with `mreg init`, or name one with --registry PATH or MREG_REGISTRY
    ");
}

#[test]
#[cfg_attr(
    not(feature = "s3"),
    ignore = "it names a bucket, which needs the s3 feature"
)]
fn registry_flag_and_variable_name_a_registry_elsewhere() {
    let env = TestEnv::new();
    env.ok(&["init", "shared"]);
    let model = env.fixture("tiny-v1", "model");
    env.ok(&[
        "--registry",
        "shared",
        "push",
        model.to_str().unwrap(),
        "--model",
        "m",
    ]);
    let out = env
        .cmd(&["ls"])
        .env("MREG_REGISTRY", env.path("shared/.mreg"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("m@1"));
    assert_snapshot!(env.snap(&["--registry", "nowhere", "ls"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: no mreg registry at nowhere
    hint: create one with `mreg init nowhere`
    ");
    assert_snapshot!(env.snap(&["--registry", "gs://bucket/prefix", "ls"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: registry "gs://bucket/prefix" uses the gs:// scheme, which this mreg cannot open
    hint: name a local folder (--registry /srv/registry) or a bucket (--registry s3://BUCKET/PREFIX; GCS, R2 and MinIO through their S3 endpoints)
    "#);
    let no_credentials = env.run_with(
        &["--registry", "s3://bucket/prefix", "ls"],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_snapshot!(crate::common::render(&no_credentials, env.root()), @"
    exit: 1
    --- stdout
    --- stderr
    error: no AWS credentials were found for s3://bucket/prefix
    hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials (docs/remotes.md)
    ");
}

#[test]
fn a_registry_of_a_newer_format_is_refused() {
    let env = TestEnv::with_registry();
    std::fs::write(env.registry().join("config.toml"), "format = 9\n").unwrap();
    assert_snapshot!(env.snap(&["ls"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: the registry at [TMP]/work/.mreg has layout format 9, newer than this mreg reads (3)
    hint: upgrade mreg
    "#);
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::with_registry();
    let out = env.run(&["push"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn broken_pipe_on_stdout_exits_quietly() {
    let env = TestEnv::with_registry();
    let model = env.fixture("tiny-v1", "model");
    env.ok(&["push", model.to_str().unwrap(), "--model", "m"]);
    let mut child = env
        .cmd(&["show", "m", "--files"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    // Whether mreg wrote before or after the reader left, it ends quietly and well.
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn init_without_a_folder_uses_the_registry_variable() {
    let env = TestEnv::new();
    let out = env
        .cmd(&["init"])
        .env("MREG_REGISTRY", env.path("team"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(env.path("team/.mreg/config.toml").is_file());
    assert!(!env.path(".mreg").exists());
}
