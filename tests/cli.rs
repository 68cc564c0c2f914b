//! Integration tests: the real `mreg` binary in hermetic temp folders.

#[path = "common/mod.rs"]
mod common;

mod cli {
    #[cfg(feature = "s3")]
    mod bucket_gc;
    mod card;
    mod ci_recipes;
    mod completions;
    mod crash;
    mod demo;
    mod diff;
    mod environment;
    mod first_day;
    mod folder_remote;
    mod fsck;
    mod golden;
    mod golden_registry;
    mod import_hf;
    mod import_mlflow;
    mod init;
    mod layouts;
    mod lifecycle;
    mod lineage;
    mod log;
    mod ls_show;
    mod model;
    #[cfg(not(feature = "s3"))]
    mod no_s3;
    mod oci;
    mod packs;
    mod parts;
    mod pictures;
    mod pipes;
    mod planted;
    mod promote;
    mod promote_race;
    pub mod pull;
    mod push;
    #[cfg(feature = "s3")]
    mod remote;
    mod removal_races;
    mod report;
    mod roundtrip;
    pub mod run;
    mod runs;
    mod secrets;
    mod signing;
    mod untrusted;
}
