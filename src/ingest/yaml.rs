//! A guard for YAML read from files: aliases (`*name`) are refused before a document is
//! loaded, since the loader expands each one in full, and a few nested aliases in a
//! kilobyte of text expand to gigabytes ("billion laughs"). No file mreg reads (params
//! files, MLflow's `meta.yaml`) needs them.

use yaml_rust2::parser::{Event, EventReceiver, Parser};

/// Counts the aliases of a document.
struct Aliases(usize);

impl EventReceiver for Aliases {
    fn on_event(&mut self, event: Event) {
        if matches!(event, Event::Alias(_)) {
            self.0 += 1;
        }
    }
}

/// Returns whether `text` uses a YAML alias; text that does not parse is left for the
/// loader to name.
pub fn has_aliases(text: &str) -> bool {
    let mut aliases = Aliases(0);
    let _ = Parser::new_from_str(text).load(&mut aliases, true);
    aliases.0 > 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn aliases_are_found_and_plain_documents_pass() {
        let laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
        assert!(super::has_aliases(laughs));
        assert!(!super::has_aliases("name: churn\nlr: 0.1\nstar: '*a'\n"));
    }
}
