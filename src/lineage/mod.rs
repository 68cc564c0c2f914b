//! Temporary stand-in while the lineage module is written.
#![allow(missing_docs)]
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Source {
    pub commit: String,
    pub root: String,
}
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    pub hostname: Option<String>,
}
pub fn source(_: &std::path::Path) -> Option<Source> {
    None
}
pub fn environment(_: &std::path::Path) -> Environment {
    Environment::default()
}
pub fn strip_credentials(url: &str) -> String {
    url.to_owned()
}
