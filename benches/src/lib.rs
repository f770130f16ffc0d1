//! Shared harness for viridian's benchmarks.
//!
//! Every benchmark in this package measures one of our crates *and its peer in the same run*
//! (qemu-img for VHD, wimlib for WIM, iced-x86 for the decoder, the Linux bridge for the
//! switch) and prints the ratio, because absolute figures on shared 2-core machines move by 2×
//! with neighbour load while same-run ratios do not. Criterion does the sampling of in-process
//! work; [`Comparison`] does the interleaved A/B timing of whole commands.

use std::process::Command;
use std::time::{Duration, Instant};

/// One side of an A/B comparison: a label and a closure that runs the work once.
pub struct Contender<'a> {
    /// Printed name, e.g. `vhdtool convert` or `qemu-img convert`.
    pub label: &'a str,
    /// Runs the work once; returns an error message if the run failed.
    pub run: Box<dyn FnMut() -> Result<(), String> + 'a>,
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("label", &self.label)
            .finish()
    }
}

/// Median wall times of contenders run interleaved (A, B, C, A, B, C, …).
#[derive(Debug, Clone)]
pub struct Comparison {
    /// `(label, median wall time)` in contender order.
    pub medians: Vec<(String, Duration)>,
    /// Rounds run.
    pub rounds: usize,
}

impl Comparison {
    /// Runs every contender `rounds` times, interleaved so that load changes hit all alike.
    ///
    /// # Errors
    /// The first failing run's message, prefixed with its label.
    pub fn run(contenders: &mut [Contender<'_>], rounds: usize) -> Result<Self, String> {
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); contenders.len()];
        for _ in 0..rounds {
            for (i, c) in contenders.iter_mut().enumerate() {
                let t0 = Instant::now();
                (c.run)().map_err(|e| format!("{}: {e}", c.label))?;
                times[i].push(t0.elapsed());
            }
        }
        let medians = contenders
            .iter()
            .zip(times)
            .map(|(c, mut t)| {
                t.sort();
                (c.label.to_string(), t[t.len() / 2])
            })
            .collect();
        Ok(Self { medians, rounds })
    }

    /// Prints a table of medians with each contender's ratio to the first one
    /// (`ratio < 1` means faster than the first contender).
    pub fn print(&self, title: &str) {
        println!("\n{title} (median of {} interleaved rounds)", self.rounds);
        let base = self.medians[0].1.as_secs_f64();
        for (label, d) in &self.medians {
            println!(
                "  {label:<44} {:>9.1} ms   ratio to {}: {:.3}",
                d.as_secs_f64() * 1e3,
                self.medians[0].0,
                d.as_secs_f64() / base
            );
        }
    }
}

/// A contender that runs a shell command line (through `sh -c`), failing on a non-zero status.
pub fn command<'a>(label: &'a str, cmdline: &'a str) -> Contender<'a> {
    Contender {
        label,
        run: Box::new(move || {
            let status = Command::new("sh")
                .arg("-c")
                .arg(cmdline)
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("`{cmdline}` exited with {status}"))
            }
        }),
    }
}

/// Whether `tool` is on `PATH`; prints why a peer comparison is skipped when it is not.
pub fn have_peer(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        println!("skipped: {tool} not installed");
    }
    found
}
