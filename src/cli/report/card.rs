//! A version's model card as Markdown with Hugging Face's YAML front matter, for
//! `mreg card` and `mreg pull --card`.

use std::fmt::Write as _;

use super::md_cell;
use crate::cli::output;
use crate::manifest::value::format_float;
use crate::ops::card::Card;

/// Returns the card as Markdown: front matter, then the body.
pub fn markdown(card: &Card, task: &str) -> String {
    format!("{}\n{}", front_matter(card, task), body(card))
}

/// Returns the task for model-index: `given`, else the run's tag `task`, else `other`.
pub fn task(card: &Card, given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| card.run.as_ref().and_then(|r| r.tags.get("task").cloned()))
        .unwrap_or_else(|| "other".to_owned())
}

/// Returns a YAML scalar: a JSON string, which YAML reads as a double-quoted string.
fn yaml(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Returns the YAML front matter Hugging Face reads.
fn front_matter(card: &Card, task: &str) -> String {
    let v = &card.version;
    let mut out = String::from("---\n");
    if let Some(license) = &card.info.fields.license {
        let _ = writeln!(out, "license: {}", yaml(license));
    }
    let mut tags = vec!["mreg".to_owned()];
    if let Some(run) = &card.run {
        tags.push(run.experiment.clone());
    }
    tags.extend(card.info.fields.tags.iter().flatten().cloned());
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    out.push_str("tags:\n");
    for tag in &tags {
        let _ = writeln!(out, "- {}", yaml(tag));
    }
    if let Some(run) = &card.run {
        if let [parent] = run.parents.as_slice() {
            let _ = writeln!(out, "base_model: {}", yaml(&parent.reference()));
        } else if !run.parents.is_empty() {
            out.push_str("base_model:\n");
            for p in &run.parents {
                let _ = writeln!(out, "- {}", yaml(&p.reference()));
            }
        }
        if !run.data.is_empty() {
            out.push_str("datasets:\n");
            for d in &run.data {
                let _ = writeln!(out, "- {}", yaml(&d.path));
            }
        }
    }
    // Only finite values: model-index holds numbers, and YAML's .nan is no metric.
    let metrics: Vec<(&String, &f64)> = v.metrics.iter().filter(|(_, m)| m.is_finite()).collect();
    if !metrics.is_empty() {
        out.push_str("model-index:\n");
        let _ = writeln!(out, "- name: {}", yaml(&v.reference()));
        out.push_str("  results:\n");
        let _ = writeln!(out, "  - task:\n      type: {}", yaml(task));
        out.push_str("    dataset:\n      name: \"hold-out\"\n      type: \"hold-out\"\n");
        out.push_str("    metrics:\n");
        for (name, value) in metrics {
            let _ = writeln!(
                out,
                "    - type: {}\n      name: {}\n      value: {}",
                yaml(name),
                yaml(name),
                format_float(*value)
            );
        }
    }
    out.push_str("---\n");
    out
}

/// Returns a two-column Markdown table, or nothing for no rows.
fn table(out: &mut String, header: [&str; 2], rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "| {} | {} |\n|---|---|", header[0], header[1]);
    for (a, b) in rows {
        let _ = writeln!(out, "| {} | {} |", md_cell(a), md_cell(b));
    }
    out.push('\n');
}

/// Returns the card's Markdown body.
fn body(card: &Card) -> String {
    let v = &card.version;
    let mut out = String::new();
    heading(&mut out, card);
    person_written(&mut out, card);
    if let Some(run) = &card.run {
        out.push_str("## Training\n\n");
        let mut rows = vec![
            ("Run".to_owned(), run.id.to_string()),
            ("Experiment".to_owned(), run.experiment.clone()),
            (
                "Started".to_owned(),
                format!("{} by {}", run.start, run.actor),
            ),
        ];
        if let Some(command) = &run.command {
            rows.push(("Command".to_owned(), command.argv.join(" ")));
        }
        if let Some(s) = &run.source {
            let commit = s.commit.as_deref().unwrap_or("(no commit)");
            let dirty = if s.dirty {
                ", with uncommitted changes"
            } else {
                ""
            };
            rows.push(("Source".to_owned(), format!("{commit}{dirty}")));
            if let Some(remote) = &s.remote {
                rows.push(("Repository".to_owned(), remote.clone()));
            }
        }
        table(&mut out, ["", ""], &rows);

        if !run.data.is_empty() {
            out.push_str("## Training data\n\n");
            let rows: Vec<(String, String)> = run
                .data
                .iter()
                .map(|d| {
                    let what = [
                        d.hash.as_ref().map(|h| format!("blake3 {h}")),
                        d.version.clone(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                    (d.path.clone(), format!("{} {what}", d.kind))
                })
                .collect();
            table(&mut out, ["Input", "Identity"], &rows);
        }
        if !run.params.is_empty() {
            out.push_str("## Hyperparameters\n\n");
            let rows: Vec<(String, String)> = run
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            table(&mut out, ["Param", "Value"], &rows);
        }
    }
    if !v.metrics.is_empty() {
        out.push_str("## Evaluation\n\n");
        let rows: Vec<(String, String)> = v
            .metrics
            .iter()
            .map(|(k, m)| (k.clone(), format_float(*m)))
            .collect();
        table(&mut out, ["Metric", "Value"], &rows);
    }
    environment(&mut out, card);
    if let Some(run) = card.run.as_ref().filter(|r| !r.parents.is_empty()) {
        out.push_str("## Lineage\n\n");
        let rows: Vec<(String, String)> = run
            .parents
            .iter()
            .map(|p| (p.reference(), format!("tree {}", p.tree)))
            .collect();
        table(&mut out, ["Parent", "Identity"], &rows);
    }
    trust(&mut out, card);
    history(&mut out, card);
    out
}

/// Writes who signed the version and who approved it for which stage.
fn trust(out: &mut String, card: &Card) {
    if card.signed.is_empty() {
        return;
    }
    out.push_str(
        "## Signatures and approvals\n\n| Record | By | When | Comment |\n|---|---|---|---|\n",
    );
    for line in &card.signed {
        let what = line.what.as_ref().map_or_else(
            || "OMS signature of the files".to_owned(),
            |stage| format!("approval for {}", md_cell(stage)),
        );
        let by = match &line.by {
            Ok(name) => md_cell(name),
            Err(hint) => format!(
                "a key this registry does not name ({})",
                md_cell(hint.get(..16).unwrap_or(hint))
            ),
        };
        let _ = writeln!(
            out,
            "| {what} | {by} | {} | {} |",
            md_cell(line.time.as_deref().unwrap_or("")),
            md_cell(line.comment.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        out,
        "\n`mreg verify {}` checks the signatures against the files.\n",
        card.version.reference()
    );
}

/// Writes the card's title, the model's description, and the version's facts.
fn heading(out: &mut String, card: &Card) {
    let v = &card.version;
    let _ = writeln!(out, "# {}\n", md_cell(&v.reference()));
    let fields = &card.info.fields;
    if let Some(description) = &fields.description {
        let _ = writeln!(out, "{description}\n");
    }
    let mut facts = vec![
        ("Tree".to_owned(), v.tree.to_string()),
        (
            "Files".to_owned(),
            format!("{} ({})", v.files, output::bytes(v.bytes)),
        ),
        ("Pushed".to_owned(), format!("{} by {}", v.created, v.actor)),
    ];
    if let Some(message) = &v.message {
        facts.push(("Message".to_owned(), message.clone()));
    }
    if !card.held.is_empty() {
        facts.push(("Stages".to_owned(), card.held.join(", ")));
    }
    if let Some(owner) = &fields.owner {
        facts.push(("Owner".to_owned(), owner.clone()));
    }
    if let Some(license) = &fields.license {
        facts.push(("License".to_owned(), license.clone()));
    }
    table(out, ["Version", ""], &facts);
}

/// Writes the model's intended use and limitations, as a person wrote them with `mreg
/// model set`, or how to write them.
fn person_written(out: &mut String, card: &Card) {
    let fields = &card.info.fields;
    for (title, text, flag) in [
        ("Intended use", &fields.intended_use, "--intended-use"),
        ("Limitations", &fields.limitations, "--limitations"),
    ] {
        let _ = writeln!(out, "## {title}\n");
        match text {
            Some(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            None => {
                let _ = writeln!(
                    out,
                    "_Not written yet: `mreg model set {} {flag} TEXT` records it._\n",
                    card.version.model
                );
            }
        }
    }
}

/// Writes where the run ran: OS, GPUs, container, Python and its packages, lock files.
fn environment(out: &mut String, card: &Card) {
    if let Some(env) = card.run.as_ref().and_then(|r| r.environment.as_ref()) {
        out.push_str("## Environment\n\n");
        let mut rows = vec![("OS".to_owned(), format!("{} ({})", env.os, env.arch))];
        if !env.gpus.is_empty() {
            let names: Vec<&str> = env.gpus.iter().map(|g| g.name.as_str()).collect();
            rows.push(("GPUs".to_owned(), names.join(", ")));
        }
        if let Some(c) = &env.container {
            rows.push((
                "Container".to_owned(),
                format!(
                    "{}{}",
                    c.runtime,
                    c.image
                        .as_ref()
                        .map(|i| format!(" {i}"))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(p) = &env.python {
            rows.push((
                "Python".to_owned(),
                format!(
                    "{} ({}), {} packages",
                    p.version.as_deref().unwrap_or("?"),
                    p.kind,
                    p.packages
                ),
            ));
        }
        for lock in &env.lockfiles {
            rows.push((
                format!("Lock file {}", lock.path),
                format!("blake3 {}", lock.blake3),
            ));
        }
        table(out, ["", ""], &rows);
        if let Some(packages) = &card.packages {
            out.push_str("<details><summary>Python packages</summary>\n\n");
            let rows: Vec<(String, String)> = packages
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            table(out, ["Package", "Version"], &rows);
            out.push_str("</details>\n\n");
        }
    }
}

/// Writes the stage moves that moved or judged the version.
fn history(out: &mut String, card: &Card) {
    if !card.moves.is_empty() {
        out.push_str("## Stage history\n\n| # | Time | Action | Stage | By | Checks |\n|---|---|---|---|---|---|\n");
        for s in &card.moves {
            let checks = super::checks_passed(&s.checks);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                s.number,
                md_cell(&s.time),
                s.action.as_str(),
                md_cell(&s.stage),
                md_cell(&s.actor),
                checks
            );
        }
    }
}
