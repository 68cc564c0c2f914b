//! The `mreg` binary: parse the command line, run it, and pick the exit code.

use std::process::ExitCode;

use clap::Parser;
use mreg::cli::{self, Cli};
use mreg::error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if error::is_broken_pipe(&err) => ExitCode::from(error::EXIT_OK),
        Err(err) => {
            cli::report_error(&err);
            ExitCode::from(error::exit_code_of(&err))
        }
    }
}
