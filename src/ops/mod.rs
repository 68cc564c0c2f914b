//! Use cases: one module for each thing a user does with a registry. Each takes a
//! plain request (the command line's words, already parsed) and returns a serializable
//! outcome, the one `--json` prints, with any warnings in it. Nothing here prints,
//! reads the terminal or names a flag's spelling beyond the messages users see; long
//! work reports through [`crate::store::Progress`].
//!
//! A use case that must say something before it is done (a warning about an input
//! file, while later inputs may still fail) takes a `warn` callback, as it takes a
//! progress reporter.

pub mod fsck;
pub mod gate;
pub mod init;
pub mod inputs;
pub mod log;
pub mod promote;
pub mod pull;
pub mod push;
pub mod record;
pub mod remote;
pub mod rollback;
pub mod run;
pub mod runs;
pub mod sync;
