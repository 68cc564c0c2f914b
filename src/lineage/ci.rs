//! CI job detection: which provider ran this, with its job link and identifiers.
//!
//! Only the named variables of each provider are read, through an injectable lookup so
//! tests never touch the process environment. Every URL passes through
//! [`strip_credentials`].

use crate::lineage::url::strip_credentials;
use crate::lineage::{Getenv, var};
use crate::manifest::lineage::Ci;

/// Returns the CI job that `getenv` describes, or `None` when no known provider is set.
pub(crate) fn detect(getenv: Getenv<'_>) -> Option<Ci> {
    let get = |name: &str| var(getenv, name);
    let url = |name: &str| get(name).map(|u| strip_credentials(&u));
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        return Some(github(getenv));
    }
    if get("GITLAB_CI").is_some() {
        return Some(Ci {
            provider: "gitlab-ci".into(),
            job_url: url("CI_JOB_URL"),
            run_id: get("CI_PIPELINE_ID"),
            job_id: get("CI_JOB_ID"),
            job: get("CI_JOB_NAME"),
            workflow: get("CI_PIPELINE_NAME"),
            commit: get("CI_COMMIT_SHA"),
            ref_name: get("CI_COMMIT_REF_NAME"),
        });
    }
    if get("BUILDKITE").as_deref() == Some("true") {
        return Some(Ci {
            provider: "buildkite".into(),
            job_url: url("BUILDKITE_BUILD_URL"),
            run_id: get("BUILDKITE_BUILD_ID"),
            job_id: get("BUILDKITE_JOB_ID"),
            job: get("BUILDKITE_LABEL"),
            workflow: get("BUILDKITE_PIPELINE_SLUG"),
            commit: get("BUILDKITE_COMMIT"),
            ref_name: get("BUILDKITE_TAG").or_else(|| get("BUILDKITE_BRANCH")),
        });
    }
    if get("CIRCLECI").as_deref() == Some("true") {
        return Some(Ci {
            provider: "circleci".into(),
            job_url: url("CIRCLE_BUILD_URL"),
            run_id: get("CIRCLE_WORKFLOW_ID"),
            job_id: get("CIRCLE_BUILD_NUM"),
            job: get("CIRCLE_JOB"),
            workflow: None,
            commit: get("CIRCLE_SHA1"),
            ref_name: get("CIRCLE_TAG").or_else(|| get("CIRCLE_BRANCH")),
        });
    }
    if get("JENKINS_URL").is_some() {
        return Some(Ci {
            provider: "jenkins".into(),
            job_url: url("BUILD_URL"),
            run_id: get("BUILD_ID"),
            job_id: None,
            job: get("JOB_NAME"),
            workflow: None,
            commit: get("GIT_COMMIT"),
            ref_name: get("BRANCH_NAME").or_else(|| get("GIT_BRANCH")),
        });
    }
    None
}

/// Returns the GitHub Actions job: its run link (with the attempt when retried).
fn github(getenv: Getenv<'_>) -> Ci {
    let get = |name: &str| var(getenv, name);
    let run_id = get("GITHUB_RUN_ID");
    let job_url = match (&run_id, get("GITHUB_REPOSITORY")) {
        (Some(run), Some(repo)) => {
            let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let attempt = match get("GITHUB_RUN_ATTEMPT").and_then(|a| a.parse::<u32>().ok()) {
                Some(attempt) if attempt > 1 => format!("/attempts/{attempt}"),
                _ => String::new(),
            };
            let server = server.trim_end_matches('/');
            let url = format!("{server}/{repo}/actions/runs/{run}{attempt}");
            Some(strip_credentials(&url))
        }
        _ => None,
    };
    Ci {
        provider: "github-actions".into(),
        job_url,
        run_id,
        job_id: None,
        job: get("GITHUB_JOB"),
        workflow: get("GITHUB_WORKFLOW"),
        commit: get("GITHUB_SHA"),
        ref_name: get("GITHUB_REF_NAME"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Ci, detect};

    fn ci(vars: &[(&str, &str)]) -> Option<Ci> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        detect(&move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn none_outside_ci() {
        assert_eq!(
            ci(&[("HOME", "/home/x"), ("GITHUB_ACTIONS", "false")]),
            None
        );
        assert_eq!(ci(&[("JENKINS_URL", "")]), None);
    }

    #[test]
    fn github_actions() {
        let vars = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/churn"),
            ("GITHUB_RUN_ID", "123"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_SHA", "abc123"),
            ("GITHUB_JOB", "train"),
            ("GITHUB_WORKFLOW", "nightly"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_TOKEN", "ghs_secret"),
        ];
        let got = ci(&vars).expect("detected");
        assert_eq!(
            got,
            Ci {
                provider: "github-actions".into(),
                job_url: Some("https://github.com/acme/churn/actions/runs/123".into()),
                run_id: Some("123".into()),
                job_id: None,
                job: Some("train".into()),
                workflow: Some("nightly".into()),
                commit: Some("abc123".into()),
                ref_name: Some("main".into()),
            }
        );
        let retried: Vec<(&str, &str)> = vars
            .iter()
            .map(|&(k, v)| match k {
                "GITHUB_RUN_ATTEMPT" => (k, "3"),
                "GITHUB_SERVER_URL" => (k, "https://bot:tok@ghe.example.com/"),
                _ => (k, v),
            })
            .collect();
        assert_eq!(
            ci(&retried).and_then(|c| c.job_url).as_deref(),
            Some("https://ghe.example.com/acme/churn/actions/runs/123/attempts/3")
        );
    }

    #[test]
    fn gitlab_ci_strips_token_url() {
        let got = ci(&[
            ("GITLAB_CI", "true"),
            (
                "CI_JOB_URL",
                "https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/g/p/-/jobs/9",
            ),
            ("CI_JOB_ID", "9"),
            ("CI_PIPELINE_ID", "77"),
            ("CI_COMMIT_SHA", "def456"),
            ("CI_JOB_NAME", "train:gpu"),
            ("CI_COMMIT_REF_NAME", "feature/x"),
            ("CI_JOB_TOKEN", "glcbt-SECRET"),
        ])
        .expect("detected");
        assert_eq!(got.provider, "gitlab-ci");
        assert_eq!(
            got.job_url.as_deref(),
            Some("https://gitlab.example.com/g/p/-/jobs/9")
        );
        assert_eq!(got.run_id.as_deref(), Some("77"));
        assert_eq!(got.job_id.as_deref(), Some("9"));
        assert_eq!(got.job.as_deref(), Some("train:gpu"));
        assert_eq!(got.commit.as_deref(), Some("def456"));
        assert_eq!(got.ref_name.as_deref(), Some("feature/x"));
        assert!(!format!("{got:?}").contains("SECRET"));
    }

    #[test]
    fn jenkins() {
        let got = ci(&[
            ("JENKINS_URL", "https://admin:pw@jenkins.example.com/"),
            (
                "BUILD_URL",
                "https://jenkins.example.com/job/train/42/?token=SECRET",
            ),
            ("BUILD_ID", "42"),
            ("GIT_COMMIT", "fedcba"),
            ("JOB_NAME", "train"),
            ("GIT_BRANCH", "origin/main"),
        ])
        .expect("detected");
        assert_eq!(
            got,
            Ci {
                provider: "jenkins".into(),
                job_url: Some("https://jenkins.example.com/job/train/42/".into()),
                run_id: Some("42".into()),
                job: Some("train".into()),
                commit: Some("fedcba".into()),
                ref_name: Some("origin/main".into()),
                ..Ci::default()
            }
        );
    }

    #[test]
    fn buildkite() {
        let got = ci(&[
            ("BUILDKITE", "true"),
            (
                "BUILDKITE_BUILD_URL",
                "https://buildkite.com/acme/ml/builds/5",
            ),
            ("BUILDKITE_JOB_ID", "job-uuid"),
            ("BUILDKITE_BUILD_ID", "build-uuid"),
            ("BUILDKITE_COMMIT", "0123"),
            ("BUILDKITE_LABEL", ":python: train"),
            ("BUILDKITE_PIPELINE_SLUG", "ml"),
            ("BUILDKITE_BRANCH", "main"),
        ])
        .expect("detected");
        assert_eq!(
            got,
            Ci {
                provider: "buildkite".into(),
                job_url: Some("https://buildkite.com/acme/ml/builds/5".into()),
                run_id: Some("build-uuid".into()),
                job_id: Some("job-uuid".into()),
                job: Some(":python: train".into()),
                workflow: Some("ml".into()),
                commit: Some("0123".into()),
                ref_name: Some("main".into()),
            }
        );
    }

    #[test]
    fn circleci() {
        let got = ci(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/ml/88"),
            ("CIRCLE_WORKFLOW_ID", "wf-uuid"),
            ("CIRCLE_BUILD_NUM", "88"),
            ("CIRCLE_SHA1", "4567"),
            ("CIRCLE_JOB", "train"),
            ("CIRCLE_TAG", "v1.2"),
            ("CIRCLE_BRANCH", "main"),
        ])
        .expect("detected");
        assert_eq!(
            got,
            Ci {
                provider: "circleci".into(),
                job_url: Some("https://circleci.com/gh/acme/ml/88".into()),
                run_id: Some("wf-uuid".into()),
                job_id: Some("88".into()),
                job: Some("train".into()),
                workflow: None,
                commit: Some("4567".into()),
                ref_name: Some("v1.2".into()),
            }
        );
    }
}
