//! A build without the `s3` feature: bucket URLs are refused with a sentence that says
//! so, and nothing else changes.

use crate::common::TestEnv;

#[test]
fn a_bucket_url_says_this_build_has_no_s3_support() {
    let env = TestEnv::new();
    insta::assert_snapshot!(env.snap(&["init", "s3://ml-models/registry"]), @r"
    exit: 2
    --- stdout
    --- stderr
    error: s3://ml-models/registry is a bucket, and this mreg was built without S3 support
    hint: use a build with the default features (`cargo install --path .`), or a folder
    ");
    let env = TestEnv::with_registry();
    let out = env.run(&["remote", "add", "team", "s3://ml-models/registry"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.registry().join("remotes.toml").exists());
}
