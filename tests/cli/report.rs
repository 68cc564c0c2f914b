//! `mreg report`: a self-contained HTML file of runs, opened in a real browser
//! (headless Chromium, when installed: `.ci/run` installs Debian's), and held to its size
//! with 20 runs of 10,000 steps.

use std::fmt::Write as _;
use std::process::Command;

use crate::common::TestEnv;
use serde_json::Value;

/// Records `n` runs, each logging `steps` points of loss and acc from one metrics file.
fn runs(env: &TestEnv, n: usize, steps: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for r in 1..=n {
        let mut lines = String::new();
        for s in 1..=steps {
            let loss = 2.0 / (s as f64 * r as f64);
            let acc = 0.5 + 0.4 * s as f64 / steps as f64;
            let _ = writeln!(lines, "{{\"step\": {s}, \"loss\": {loss}, \"acc\": {acc}}}");
        }
        env.write("metrics.jsonl", lines);
        let name = format!("run {r} <b>");
        let out = env.run(&[
            "run",
            "--json",
            "--name",
            &name,
            "--param",
            &format!("lr=0.0{r}"),
            "--",
            "mreg",
            "log",
            "-q",
            "--metrics-file",
            "metrics.jsonl",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(ended["run"].as_str().unwrap().to_owned());
    }
    ids
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_report_of_runs_is_one_self_contained_page_a_browser_draws() {
    let env = TestEnv::with_registry();
    let ids = runs(&env, 3, 50);
    let out = env.ok(&[
        "report",
        &ids[0][..8],
        &ids[1][..8],
        &ids[2][..8],
        "--out",
        "r.html",
    ]);
    assert_eq!(out.trim(), "r.html");
    let page = std::fs::read_to_string(env.path("r.html")).unwrap();
    // Self-contained: no script, nothing fetched (SVG's namespace is a name, not a fetch).
    let fetchable = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for banned in ["<script", "http://", "https://", "src=", "<link", "url("] {
        assert!(!fetchable.contains(banned), "{banned} in the page");
    }
    assert_eq!(page.matches("<svg").count(), 2, "a chart per series");
    assert!(
        page.contains("loss (log scale)"),
        "a loss over a decade is on a log scale"
    );
    // A name from a record is text, never markup.
    assert!(page.contains("run 1 &lt;b&gt;") && !page.contains("<b>"));
    assert!(
        page.contains("class=\"differs\""),
        "params that differ are marked"
    );
    if !installed("chromium") {
        eprintln!("chromium is not installed: the page was not opened in a browser");
        return;
    }
    let shot = env.path("shot.png");
    let url = format!("file://{}", env.path("r.html").display());
    let browser = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .args(args)
            .arg(&url)
            .env("HOME", env.root())
            .output()
            .unwrap()
    };
    let dom = browser(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    // The charts as the browser parsed them: two SVGs, their axes and legends.
    assert_eq!(dom_text.matches("<svg").count(), 2, "{dom_text}");
    for text in [
        "step",
        "acc",
        "loss (log scale)",
        &ids[0][..8],
        &ids[2][..8],
    ] {
        assert!(dom_text.contains(text), "{text:?} not drawn");
    }
    let console = String::from_utf8_lossy(&dom.stderr);
    assert!(!console.contains("CONSOLE"), "console messages: {console}");
    let shot_arg = format!("--screenshot={}", shot.display());
    let taken = browser(&[&shot_arg, "--window-size=1000,1400"]);
    assert!(
        taken.status.success() && shot.is_file(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    // Kept where a person can look at it after the run.
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-runs.png");
    std::fs::copy(&shot, &kept).unwrap();
}

#[test]
fn twenty_runs_of_ten_thousand_steps_stay_under_a_megabyte() {
    let env = TestEnv::with_registry();
    runs(&env, 20, 10_000);
    let out = env.ok(&[
        "--json",
        "report",
        "--where",
        "metrics.loss > 0",
        "--out",
        "big.html",
    ]);
    let written: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["runs"], 20);
    let bytes = std::fs::metadata(env.path("big.html")).unwrap().len();
    assert!(bytes < 1 << 20, "{bytes} bytes");
    // More than 20 runs is refused, not drawn illegibly.
    let out = env.run(&[
        "report",
        "--where",
        "metrics.loss > 0",
        "--limit",
        "21",
        "--out",
        "x.html",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Installs `vl-convert-python` (Vega-Lite's own renderer, offline) when it is missing.
fn vl_convert() {
    let has = || {
        Command::new("python3")
            .args(["-c", "import vl_convert"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has() {
        let installed = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "vl-convert-python==1.9.0.post1",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && has(),
            "the Vega-Lite test needs vl-convert: pip install 'vl-convert-python==1.9.0.post1'"
        );
    }
}

#[test]
fn the_vega_lite_spec_is_drawn_by_vega_lite_itself() {
    vl_convert();
    let env = TestEnv::with_registry();
    let ids = runs(&env, 2, 30);
    let out = env.ok(&["report", &ids[0][..8], &ids[1][..8], "--vega"]);
    assert_eq!(out.trim(), "mreg-report.vl.json");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("mreg-report.vl.json")).unwrap())
            .unwrap();
    assert_eq!(spec["vconcat"].as_array().unwrap().len(), 2);
    assert_eq!(spec["vconcat"][1]["encoding"]["y"]["scale"]["type"], "log");
    let script = "import sys, vl_convert\n\
                  print(vl_convert.vegalite_to_svg(open(sys.argv[1]).read()))\n";
    let drawn = Command::new("python3")
        .args([
            "-c",
            script,
            &env.path("mreg-report.vl.json").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let svg = String::from_utf8_lossy(&drawn.stdout);
    assert!(svg.starts_with("<svg"), "{svg}");
    for text in ["loss", "acc", "step", &ids[0][..8], &ids[1][..8]] {
        assert!(svg.contains(text), "{text:?} not drawn");
    }
}

#[test]
fn a_model_report_shows_versions_stage_history_and_refusals() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    for (n, acc) in [(1, "0.9"), (2, "0.8"), (3, "0.95")] {
        env.write("out/build.txt", format!("{n}"));
        env.ok(&[
            "push",
            "out",
            "--model",
            "churn",
            "--metric",
            &format!("acc={acc}"),
            "--message",
            "<i>x</i>",
        ]);
    }
    env.ok(&["promote", "churn@1", "production"]);
    env.ok(&[
        "model",
        "set",
        "churn",
        "--description",
        "Predicts <churn>.\nMonthly.",
        "--owner",
        "ml-team",
    ]);
    let refused = env.run(&["promote", "churn@2", "production", "--gate", "acc>0.85"]);
    assert_eq!(refused.status.code(), Some(3));
    let out = env.ok(&["--json", "report", "churn", "--out", "churn.html"]);
    let written: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["versions"], 3);
    let page = std::fs::read_to_string(env.path("churn.html")).unwrap();
    assert!(page.contains("mreg report: model churn"));
    // What a person wrote of the model heads the page, as text.
    assert!(
        page.contains("<p class=\"text\">Predicts &lt;churn&gt;.\nMonthly.</p>"),
        "{page}"
    );
    assert!(page.contains("<tr><th>owner</th><td class=\"text\">ml-team</td></tr>"));
    assert_eq!(page.matches("<svg").count(), 1, "a chart per metric");
    assert_eq!(
        page.matches("<tr class=\"refused\">").count(),
        1,
        "the refusal is marked"
    );
    for version in ["churn@1", "churn@2", "churn@3"] {
        assert!(page.contains(version), "{version}");
    }
    assert!(
        page.contains("&lt;i&gt;x&lt;/i&gt;") && !page.contains("<i>"),
        "messages are text"
    );
    // A model's report is HTML only.
    let out = env.run(&["report", "churn", "--vega"]);
    assert_eq!(out.status.code(), Some(2));
    if installed("chromium") {
        let url = format!("file://{}", env.path("churn.html").display());
        let dom = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
                &url,
            ])
            .env("HOME", env.root())
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert_eq!(dom.matches("<svg").count(), 1, "{dom}");
        assert!(
            dom.contains("version") && dom.contains("Stage history"),
            "{dom}"
        );
    }
}

#[test]
fn a_diff_report_holds_the_tensor_table() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v1", "--model", "churn", "--metric", "acc=0.9"]);
    env.ok(&["push", "v2", "--model", "churn", "--metric", "acc=0.8"]);
    env.ok(&["report", "churn@1", "churn@2", "--out", "diff.html"]);
    let page = std::fs::read_to_string(env.path("diff.html")).unwrap();
    assert!(
        page.contains("mreg report: diff churn@1 → churn@2"),
        "{page}"
    );
    assert!(
        page.contains("tensors of model.safetensors: 1 modified"),
        "{page}"
    );
    assert!(page.contains("<td>head.weight</td>"), "{page}");
    assert!(!page.contains("<script"));
    assert_eq!(
        env.run(&["report", "churn@1", "churn@2", "--vega"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_run_with_hundreds_of_series_draws_a_hundred_charts_and_says_so() {
    let env = TestEnv::with_registry();
    let mut line = String::from("{\"step\": 1");
    for i in 0..150 {
        let _ = write!(line, ", \"k{i:03}<x>\": 0.5");
    }
    line.push_str("}\n");
    env.write("m.jsonl", line);
    let out = env.run(&[
        "run",
        "--json",
        "--",
        "mreg",
        "log",
        "-q",
        "--metrics-file",
        "m.jsonl",
    ]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    env.ok(&["report", ended["run"].as_str().unwrap(), "--out", "r.html"]);
    let page = std::fs::read_to_string(env.path("r.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 100);
    assert!(page.contains("150 series; the first 100 by name are drawn."));
    assert!(!page.contains("<x>"), "a key is text, never markup");
}

#[test]
fn values_at_the_ends_of_the_doubles_neither_hang_nor_break_a_report() {
    let env = TestEnv::with_registry();
    let script = "mreg log -q --metric x=-1.7e308 --step 1 && mreg log -q --metric x=0 --step 2 \
                  && mreg log -q --metric y=1e308 --step 1 && mreg log -q --metric y=-1e308 --step 2";
    let out = env.run(&["run", "--json", "--", "sh", "-c", script]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = ended["run"].as_str().unwrap();
    let out = env.run_within(&["report", id, "--out", "r.html"], 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("r.html"))
            .unwrap()
            .matches("<svg")
            .count(),
        2
    );
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "m", "--metric", "loss=-1.7e308"]);
    env.write("out/build.txt", "2");
    env.ok(&["push", "out", "--model", "m", "--metric", "loss=1"]);
    let out = env.run_within(&["report", "m", "--out", "m.html"], 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--out` names where the page goes, as a shell redirection would: a pipe or a device
/// (`/dev/stdout`, `/dev/null`) is written through and stays what it was, a symbolic link
/// keeps pointing at the file it names, and a folder is refused.
#[test]
fn the_page_goes_through_a_pipe_or_a_link_and_never_replaces_it() {
    use std::os::unix::fs::FileTypeExt as _;
    let env = TestEnv::with_registry();
    let ids = runs(&env, 1, 5);
    let fifo = env.path("page.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    // The test holds a writing end of the pipe while mreg runs, and closing it ends the
    // read whatever mreg did.
    let held = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let out = env.run(&["report", &ids[0], "--out", "page.fifo"]);
    drop(held);
    let read = reader.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(read.starts_with("<!doctype html>"), "{read:.80}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    std::fs::create_dir(env.path("pages")).unwrap();
    env.write("pages/latest.html", "old");
    std::os::unix::fs::symlink("pages/latest.html", env.path("latest.html")).unwrap();
    env.ok(&["report", &ids[0], "--out", "latest.html"]);
    assert!(
        std::fs::symlink_metadata(env.path("latest.html"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let page = std::fs::read_to_string(env.path("pages/latest.html")).unwrap();
    assert!(page.starts_with("<!doctype html>"));

    let pages = ["report", &ids[0], "--out", "pages"];
    assert_eq!(env.run(&pages).status.code(), Some(1));
    insta::assert_snapshot!(env.snap(&pages), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: pages is a folder; --out names the file to write.
    hint: --out pages/mreg-report.html
    "#);
    assert!(env.path("pages/latest.html").exists());
}
