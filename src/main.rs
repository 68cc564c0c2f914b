//! The `mreg` binary: parse the command line, run it, and pick the exit code.

use std::process::ExitCode;

use clap::Parser;
use mreg::cli::{self, Cli};
use mreg::error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => match error::ending(&err) {
            error::Ending::StdoutClosed => ExitCode::from(error::EXIT_OK),
            error::Ending::Failed(code) => {
                cli::report_error(&err);
                ExitCode::from(code)
            }
        },
    }
}
