//! Pictures in the terminal: series drawn as sparklines, in Unicode blocks where the
//! locale is UTF-8 and in ASCII otherwise or with `--color never`.

use std::fmt::Write as _;

use crate::common::TestEnv;
use insta::assert_snapshot;
use serde_json::Value;

/// Records a run logging a falling loss and a rising accuracy over 40 steps.
fn run_with_curves(env: &TestEnv) -> String {
    let mut script = String::new();
    for step in 1..=40 {
        let loss = 2.0 / f64::from(step);
        let acc = 0.5 + 0.01 * f64::from(step);
        let _ = writeln!(
            script,
            "mreg log -q --step {step} --metric loss={loss} --metric acc={acc}"
        );
    }
    let out = env.run(&["run", "--json", "--", "sh", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    ended["run"].as_str().unwrap().to_owned()
}

/// Returns the `# Series:` block of `mreg show RUN`.
fn series_block(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with("# Series:"))
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn show_draws_each_series_in_blocks_or_in_ascii() {
    let env = TestEnv::with_registry();
    let run = run_with_curves(&env);
    let utf8 = env.run_with(&["show", &run], &[("LANG", "C.UTF-8")]);
    assert_snapshot!(series_block(&String::from_utf8(utf8.stdout).unwrap()), @r#"
    # Series:
    #   acc   ▁▁▂▂▂▃▃▃▃▄▄▄▅▅▅▆▆▆▆▇▇▇██  0.51 → 0.9, 40 points
    #   loss  █▆▅▅▄▄▃▃▃▃▃▂▂▂▂▂▂▂▁▁▁▁▁▁  2 → 0.05, 40 points, log scale
    "#);
    let plain = env.run_with(&["show", &run, "--color", "never"], &[("LANG", "C.UTF-8")]);
    assert_snapshot!(series_block(&String::from_utf8(plain.stdout).unwrap()), @r#"
    # Series:
    #   acc   __...----~~~===++++***##  0.51 -> 0.9, 40 points
    #   loss  #+==~~-----.......______  2 -> 0.05, 40 points, log scale
    "#);
    // The C locale (no LANG) has no blocks either; JSON never has the drawing.
    assert!(env.ok(&["show", &run]).contains("#   loss  #"));
    assert!(!env.ok(&["show", &run, "--json"]).contains("Series"));
}

#[test]
fn compare_draws_each_series_of_each_side() {
    let env = TestEnv::with_registry();
    let a = run_with_curves(&env);
    let b = run_with_curves(&env);
    let out = env.run_with(&["compare", &a[..8], &b[..8]], &[("LANG", "C.UTF-8")]);
    let text = String::from_utf8(out.stdout).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("series:"))
        .collect();
    assert_eq!(block[0], "series: 2", "{text}");
    assert!(
        block[2].contains("acc     ▁▁▂▂▃▃▄▄▅▅▆▆▇▇██  ▁▁▂▂▃▃▄▄▅▅▆▆▇▇██"),
        "{text}"
    );
    // Markdown and JSON have no drawing.
    assert!(
        !env.ok(&["compare", &a[..8], &b[..8], "--md"])
            .contains("series:")
    );
    assert!(
        !env.ok(&["compare", &a[..8], &b[..8], "--json"])
            .contains("SERIES")
    );
}

#[test]
fn runs_draws_a_series_column() {
    let env = TestEnv::with_registry();
    run_with_curves(&env);
    let out = env.run(&["runs", "--columns", "experiment,series.loss,series.nope"]);
    assert_snapshot!(crate::common::render(&out, env.root()), @r#"
    exit: 0
    --- stdout
    ID        EXPERIMENT  series.loss       series.nope
    ef454d5b  default     #+=~~---....____
    --- stderr
    warning: no run listed has a series "nope", so --columns cannot draw it
    "#);
}
