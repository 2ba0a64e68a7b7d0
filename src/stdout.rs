//! Printing to standard output without panicking: a closed pipe (`… | head`, `… | true`) becomes
//! an error the command returns, which ends the process quietly with exit code 141, as a tool
//! that SIGPIPE stops.

use std::fmt;
use std::io::{self, Write};

use crate::error::{Error, Result};

/// Writes `args` and a newline to standard output.
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}

/// `println!` that returns [`Error::Stdout`] instead of panicking when standard output is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}
