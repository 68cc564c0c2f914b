//! Typed failures that pick mreg's exit code, and the hint a user sees after an error.

use std::fmt;

/// Exit code of a command that did what it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code of an error: bad data, a missing file, a corrupt object.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error: a bad flag, argument or reference syntax.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a gate that did not hold: nothing moved.
pub const EXIT_GATE: u8 = 3;
/// Exit code of a conflict: something moved under the command.
pub const EXIT_CONFLICT: u8 = 4;

/// Returns the kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exit 1: anything that is not one of the others.
    Error,
    /// Exit 2: the command line itself is wrong.
    Usage,
    /// Exit 3: a gate did not hold.
    GateRefused,
    /// Exit 4: a conflict with another writer or with existing data.
    Conflict,
}

impl Kind {
    /// Returns the process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Error => EXIT_ERROR,
            Kind::Usage => EXIT_USAGE,
            Kind::GateRefused => EXIT_GATE,
            Kind::Conflict => EXIT_CONFLICT,
        }
    }
}

/// A failure a user can act on: a sentence, its kind, and an optional next step.
///
/// Library code returns it inside `anyhow::Error`; `main` finds it by downcasting
/// (through any context added on the way) to pick the exit code and print the hint.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, as a sentence without a final period.
    pub message: String,
    /// Which exit code this failure maps to.
    pub kind: Kind,
    /// What to do next, printed as `hint: …`.
    pub hint: Option<String>,
}

impl Failure {
    /// Returns an exit-1 failure with the given message.
    pub fn error(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: Kind::Error,
            hint: None,
        }
    }

    /// Returns an exit-2 failure with the given message.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: Kind::Usage,
            hint: None,
        }
    }

    /// Returns an exit-3 failure: a gate did not hold, and nothing moved.
    pub fn gate(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: Kind::GateRefused,
            hint: None,
        }
    }

    /// Returns an exit-4 failure with the given message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: Kind::Conflict,
            hint: None,
        }
    }

    /// Returns the failure with a hint attached.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Returns the typed failure inside an error chain, if there is one.
pub fn failure_of(err: &anyhow::Error) -> Option<&Failure> {
    err.downcast_ref::<Failure>()
}

/// Returns the exit code for an error chain: the typed failure's, else 1.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    failure_of(err).map_or(EXIT_ERROR, |f| f.kind.exit_code())
}

/// The reader of stdout closed it before everything was written (`mreg ls | head -1`).
///
/// The printer returns it for a broken pipe on stdout, and only there: a broken pipe
/// anywhere else (a socket, a child's stdin) stays the I/O error it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed before everything was written to it")
    }
}

impl std::error::Error for StdoutClosed {}

/// Returns how a command that failed ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Quietly, with exit 0: only its stdout was closed, by a reader that had read
    /// enough.
    StdoutClosed,
    /// With the error printed and this exit code.
    Failed(u8),
}

/// Returns how `main` ends a command that returned `err`: quietly with 0 when the error
/// is [`StdoutClosed`], else reported with the exit code of [`exit_code_of`]. A broken
/// pipe that is not stdout's is an error (exit 1) like any other.
pub fn ending(err: &anyhow::Error) -> Ending {
    if err
        .chain()
        .any(|cause| cause.downcast_ref::<StdoutClosed>().is_some())
    {
        Ending::StdoutClosed
    } else {
        Ending::Failed(exit_code_of(err))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{EXIT_ERROR, EXIT_GATE, Ending, Failure, StdoutClosed, ending};

    #[test]
    fn only_a_closed_stdout_ends_quietly() {
        let closed = anyhow::Error::new(StdoutClosed).context("printing the listing");
        assert_eq!(ending(&closed), Ending::StdoutClosed);
        let gate = anyhow::Error::new(Failure::gate("acc of churn@3 is 0.8"));
        assert_eq!(ending(&gate), Ending::Failed(EXIT_GATE));
    }

    #[test]
    fn a_broken_pipe_that_is_not_stdout_is_an_error() {
        for what in [
            "sending part 3 to s3://bucket",
            "writing to the command's stdin",
        ] {
            let err = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context(what);
            assert_eq!(ending(&err), Ending::Failed(EXIT_ERROR), "{what}");
        }
    }
}
