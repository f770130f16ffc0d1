//! A progress bar on standard error, shown only when standard output is a terminal.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use vhd_format::ops::{Progress, ProgressEvent};

/// Draws `phase [#####     ] 42%` at most ten times a second.
pub struct Bar {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar that draws only if stdout is a terminal and `quiet` is off.
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stdout().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    /// Clears the bar's line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r{:60}\r", "");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }
}

impl Progress for Bar {
    /// Draws the bar; never cancels.
    fn report(&mut self, e: ProgressEvent) -> ControlFlow<()> {
        if !self.enabled || e.total == 0 {
            return ControlFlow::Continue(());
        }
        let now = Instant::now();
        if e.done < e.total
            && self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return ControlFlow::Continue(());
        }
        self.last = Some(now);
        let width = 30;
        let filled = (e.done * width / e.total) as usize;
        eprint!(
            "\r{:>6} [{}{}] {:3}%",
            e.phase,
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            e.done * 100 / e.total
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
        ControlFlow::Continue(())
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
