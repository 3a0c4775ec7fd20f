//! Progress on stderr, never stdout (stdout carries `--output json`). On a terminal: a spinner
//! line naming every step under way; otherwise plain lines, one when a wait starts, one every
//! 30 seconds while it lasts, and one when each step ends.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const STILL_WAITING_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    tty: bool,
    quiet: bool,
    /// Steps under way: id, label, since.
    active: Mutex<Vec<(u64, String, Instant)>>,
    next_id: Mutex<u64>,
    stop: AtomicBool,
    /// The spinner line is on screen.
    drawn: AtomicBool,
}

/// A step under way; ends (and leaves the spinner) when finished or dropped.
pub struct Step {
    progress: Progress,
    id: u64,
    label: String,
    since: Instant,
    last_report: Instant,
}

impl Progress {
    /// `quiet`: nothing at all (tests of the library).
    pub fn new(quiet: bool) -> Self {
        let tty = !quiet && std::io::stderr().is_terminal();
        let progress = Self {
            shared: Arc::new(Shared {
                start: Instant::now(),
                tty,
                quiet,
                active: Mutex::new(Vec::new()),
                next_id: Mutex::new(0),
                stop: AtomicBool::new(false),
                drawn: AtomicBool::new(false),
            }),
        };
        if tty {
            let shared = Arc::clone(&progress.shared);
            std::thread::spawn(move || {
                let mut frame = 0usize;
                while !shared.stop.load(Ordering::Relaxed) {
                    shared.draw(SPINNER[frame % SPINNER.len()]);
                    frame += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        progress
    }

    pub fn elapsed(&self) -> Duration {
        self.shared.start.elapsed()
    }

    /// A line of its own (above the spinner on a terminal).
    pub fn line(&self, text: &str) {
        if self.shared.quiet {
            return;
        }
        let active = self.shared.lock();
        let mut err = std::io::stderr().lock();
        if self.shared.tty && self.shared.drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
        drop(active);
    }

    /// Starts a step. `announce`: print a line now when not on a terminal (long waits).
    pub fn begin(&self, label: impl Into<String>, announce: bool) -> Step {
        let label = label.into();
        let id = {
            let mut next = self
                .shared
                .next_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let now = Instant::now();
        self.shared.lock().push((id, label.clone(), now));
        if announce && !self.shared.tty {
            self.line(&format!("  … {label}"));
        }
        Step {
            progress: self.clone(),
            id,
            label,
            since: now,
            last_report: now,
        }
    }

    pub fn finish(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if self.shared.tty && self.shared.drawn.swap(false, Ordering::Relaxed) {
            let _guard = self.shared.lock();
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, String, Instant)>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn draw(&self, frame: char) {
        let active = self.lock();
        let mut err = std::io::stderr().lock();
        if active.is_empty() {
            // Clear once; a prompt written meanwhile must stay.
            if self.drawn.swap(false, Ordering::Relaxed) {
                let _ = write!(err, "\r\x1b[2K");
            }
        } else {
            self.drawn.store(true, Ordering::Relaxed);
            let labels: Vec<String> = active
                .iter()
                .map(|(_, label, since)| format!("{label} ({})", seconds(since.elapsed())))
                .collect();
            let mut text = format!("{frame} {}", labels.join(" · "));
            if text.chars().count() > 118 {
                text = text.chars().take(117).collect::<String>() + "…";
            }
            let _ = write!(err, "\r\x1b[2K{text}");
        }
        let _ = err.flush();
    }
}

impl Step {
    /// Called from inside a wait loop: a "still waiting" line every 30 s off a terminal.
    pub fn tick(&mut self) {
        if !self.progress.shared.tty && self.last_report.elapsed() >= STILL_WAITING_EVERY {
            self.last_report = Instant::now();
            self.progress.line(&format!(
                "  … still {} ({})",
                self.label,
                seconds(self.since.elapsed())
            ));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.since.elapsed()
    }

    /// Ends the step with a line: `✓ created role x (0.4s)`.
    pub fn done(self, text: &str) {
        let took = seconds(self.since.elapsed());
        self.progress.line(&format!("  ✓ {text} ({took})"));
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.progress
            .shared
            .lock()
            .retain(|(id, ..)| *id != self.id);
    }
}

/// `0.4s`, `12s`, `3m05s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_millis(400)), "0.4s");
        assert_eq!(seconds(Duration::from_secs(12)), "12s");
        assert_eq!(seconds(Duration::from_secs(185)), "3m05s");
    }
}
