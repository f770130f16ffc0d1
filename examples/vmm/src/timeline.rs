//! The demo's timeline: every line the VMM prints carries the time since the VM was created.

use std::fmt::Arguments;
use std::io::Write as _;
use std::time::Instant;

/// Prints timestamped lines to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    start: Instant,
    /// The VM's name when several run (its lines read `host[a]:` and `[a] viridian guest:`).
    name: Option<&'static str>,
}

impl Timeline {
    /// A timeline starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            name: None,
        }
    }

    /// When the timeline started (the VM's creation).
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The same clock for the VM called `name`.
    pub fn named(self, name: &'static str) -> Self {
        Self {
            name: Some(name),
            ..self
        }
    }

    /// Prints one host line.
    pub fn host(&self, args: Arguments<'_>) {
        let ms = self.start.elapsed().as_secs_f64() * 1e3;
        let mut out = std::io::stdout().lock();
        let _ = match self.name {
            Some(name) => writeln!(out, "[{ms:>9.3} ms] host[{name}]: {args}"),
            None => writeln!(out, "[{ms:>9.3} ms] host: {args}"),
        };
        let _ = out.flush();
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

/// The guest's console on the timeline: each line the serial device hands over (it writes
/// whole lines) gets the timestamp prefix.
#[derive(Debug, Clone, Copy)]
pub struct GuestConsole {
    timeline: Timeline,
}

impl GuestConsole {
    /// The console of `timeline`.
    pub fn new(timeline: Timeline) -> Self {
        Self { timeline }
    }
}

impl std::io::Write for GuestConsole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let ms = self.timeline.start.elapsed().as_secs_f64() * 1e3;
        let mut out = std::io::stdout().lock();
        match self.timeline.name {
            Some(name) => write!(out, "[{ms:>9.3} ms] [{name}] ")?,
            None => write!(out, "[{ms:>9.3} ms] ")?,
        }
        out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}
