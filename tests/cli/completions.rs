//! `mreg completions` and `mreg man`: generated from the clap definitions, and read by
//! the real shell and the real `man`.

use std::process::Command;

use crate::common::TestEnv;

/// Returns whether a program is on PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Returns what bash's completion function offers for the words of a command line,
/// the last of which is being completed.
fn bash_completes(env: &TestEnv, words: &[&str]) -> Vec<String> {
    let script = env.path("mreg.bash");
    std::fs::write(&script, env.ok(&["completions", "bash"])).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let n = words.len();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _mreg mreg '{}' '{}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        n - 1,
        words[n - 1],
        words[n - 2],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_values() {
    let env = TestEnv::new();
    assert_eq!(bash_completes(&env, &["mreg", "prom"]), ["promote"]);
    let flags = bash_completes(&env, &["mreg", "promote", "--"]);
    for flag in ["--gate", "--force", "--reason", "--expect", "--json"] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not in {flags:?}");
    }
    assert_eq!(
        bash_completes(&env, &["mreg", "--color", ""]),
        ["auto", "always", "never"]
    );
    assert!(bash_completes(&env, &["mreg", "completions", ""]).contains(&"fish".to_owned()));
}

#[test]
fn zsh_and_fish_read_their_scripts() {
    let env = TestEnv::new();
    for (shell, check) in [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])] {
        let script = env.ok(&["completions", shell]);
        assert!(script.contains("promote"), "{shell}: {script}");
        if !installed(shell) {
            // `.ci/run` installs both; elsewhere only the script's content is checked.
            eprintln!("{shell} is not installed: its script was not parsed");
            continue;
        }
        let path = env.path(&format!("mreg.{shell}"));
        std::fs::write(&path, script).unwrap();
        let out = Command::new(check[0])
            .arg(check[1])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if shell == "fish" {
            // fish completes a command line on request: the script at work.
            let program = format!(
                "source '{}'; complete -C 'mreg prom'; complete -C 'mreg promote --fo'",
                path.display()
            );
            let out = Command::new("fish")
                .args(["-c", &program])
                .output()
                .unwrap();
            let offered = String::from_utf8_lossy(&out.stdout);
            assert!(offered.starts_with("promote\t"), "{offered}");
            assert!(offered.contains("\n--force\t"), "{offered}");
        }
    }
}

#[test]
fn man_renders_the_pages_of_every_command() {
    let env = TestEnv::new();
    let page = env.ok(&["man"]);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    let err = env.ok_err(&["man", "--out", "man/man1"]);
    assert!(err.contains("Wrote"), "{err}");
    for name in [
        "mreg.1",
        "mreg-push.1",
        "mreg-promote.1",
        "mreg-remote-add.1",
    ] {
        assert!(env.path("man/man1").join(name).is_file(), "{name}");
    }
    if !installed("man") {
        eprintln!("man is not installed: the pages were not rendered");
        return;
    }
    let out = Command::new("man")
        .args(["-M", &env.path("man").display().to_string(), "mreg-promote"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "60")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same words as `mreg promote --help`, flags and examples included.
    for words in [
        "Move a stage to a model version",
        "--gate",
        "--force",
        "Examples:",
    ] {
        assert!(text.contains(words), "{words:?} not in:\n{text}");
    }
    // Narrow, yet no word is hyphenated across lines: examples copy as written.
    for line in text.lines() {
        let end = line.trim_end();
        let broken = end.ends_with('\u{2010}')
            || (end.ends_with('-') && end.chars().rev().nth(1).is_some_and(char::is_alphabetic));
        assert!(!broken, "hyphenated: {line:?}\n{text}");
    }
}

#[test]
fn completions_and_man_have_no_json_form() {
    let env = TestEnv::new();
    for args in [&["completions", "bash", "--json"][..], &["man", "--json"]] {
        assert_eq!(env.run(args).status.code(), Some(2), "{args:?}");
    }
}
