//! A progress bar on standard error, shown only when standard output is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `phase [#####     ] 42%` (or `phase image N [...]`, for a call writing several
/// images one after the other) at most ten times a second.
pub struct Bar {
    phase: &'static str,
    /// The image the counts are of (0: none named).
    image: u32,
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar that draws only if stdout is a terminal and `quiet` is off.
    pub fn new(phase: &'static str, quiet: bool) -> Self {
        Self {
            phase,
            image: 0,
            enabled: !quiet && std::io::stdout().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    /// Shows `done` of `total` of image `image`: the counts start again for each image, so
    /// the line names it, and a new image is drawn at once.
    pub fn update_image(&mut self, image: u32, done: u64, total: u64) {
        if image != self.image {
            self.image = image;
            self.last = None;
        }
        self.update(done, total);
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
        eprint!("\r{}", self.line(done, total));
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }
}

impl Bar {
    /// The line drawn for `done` of `total` (`total` > 0).
    fn line(&self, done: u64, total: u64) -> String {
        let width = 30u64;
        let filled = (done.min(total) * width / total) as usize;
        let image = match self.image {
            0 => String::new(),
            n => format!(" image {n}"),
        };
        format!(
            "{:>7}{image} [{}{}] {:3}%",
            self.phase,
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            done.min(total) * 100 / total
        )
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.drawn {
            eprint!("\r{:70}\r", "");
            let _ = std::io::stderr().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bar;

    /// Several images written one after the other each count from 0: the line names the
    /// image, so a bar going back to 0% reads as the next image, not as a regression.
    #[test]
    fn the_line_names_the_image() {
        let mut bar = Bar::new("export", true);
        assert_eq!(
            bar.line(1, 2),
            format!(" export [{:30}]  50%", "#".repeat(15))
        );
        bar.update_image(2, 3, 4);
        assert_eq!(bar.image, 2);
        assert_eq!(
            bar.line(3, 4),
            format!(" export image 2 [{:30}]  75%", "#".repeat(22))
        );
        assert!(
            bar.line(4, 4).len() <= 70,
            "the clearing width covers the line"
        );
    }
}
