//! Printing for the CLI. Listing commands are piped into `head`, `less` or `grep -q`, which close
//! the pipe early; `println!` panics then ("failed printing to stdout: Broken pipe"). Every
//! command prints through [`outln!`] instead, which returns the write error, and `main` turns a
//! closed pipe into a quiet exit 0 ([`is_closed_pipe`]).

use std::io::Write;

/// Like `println!`, but returns `std::io::Result<()>` so a closed pipe propagates with `?`.
#[macro_export]
#[doc(hidden)]
macro_rules! outln {
    () => { $crate::cli::output::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::output::line(format_args!($($arg)*)) };
}

/// Writes one line to stdout.
pub fn line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// `"s"` unless `n` is one: `format!("{n} job{}", plural(n))`.
pub fn plural<N: PartialEq + From<u8>>(n: N) -> &'static str {
    if n == N::from(1) {
        ""
    } else {
        "s"
    }
}

/// The exit code of a command that changes things: 1 when nothing was changed, so a script
/// notices.
pub fn changed_exit(changed: usize) -> std::process::ExitCode {
    if changed == 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// True when `e` (anywhere in its chain) is stdout's reader having gone away: not a failure of
/// the command, just nobody left to read the rest.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_pipe_is_recognised_through_context() {
        let e = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("printing an event");
        assert!(is_closed_pipe(&e));
        let other = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!is_closed_pipe(&other));
    }
}
