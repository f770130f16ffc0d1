//! A progress bar on standard error, shown only when standard output is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `phase [#####     ] 42%` at most ten times a second.
pub struct Bar {
    phase: &'static str,
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar that draws only if stdout is a terminal and `quiet` is off.
    pub fn new(phase: &'static str, quiet: bool) -> Self {
        Self {
            phase,
            enabled: !quiet && std::io::stdout().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    /// Shows `done` of `total`.
    pub fn update(&mut self, done: u64, total: u64) {
        if !self.enabled || total == 0 {
            return;
        }
        let now = Instant::now();
        if done < total
            && self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let width = 30u64;
        let filled = (done.min(total) * width / total) as usize;
        eprint!(
            "\r{:>7} [{}{}] {:3}%",
            self.phase,
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            done.min(total) * 100 / total
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.drawn {
            eprint!("\r{:60}\r", "");
            let _ = std::io::stderr().flush();
        }
    }
}
