//! Progress for long work: an indicatif bar on a terminal, plain lines otherwise.
//!
//! Scripts and CI logs get one line every few seconds instead of a redrawn bar, so output stays
//! readable when stderr is a file or a pipe.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-based progress display.
pub struct Progress {
    inner: Inner,
}

enum Inner {
    Bar(ProgressBar),
    Lines {
        label: String,
        total: u64,
        items: bool,
        state: Mutex<LineState>,
    },
    Hidden,
}

struct LineState {
    done: u64,
    files: u64,
    last: Instant,
}

impl Progress {
    /// Starts a display for `total` bytes labelled `label`; `quiet` hides it entirely.
    pub fn bytes(label: &str, total: u64, quiet: bool) -> Progress {
        Self::new(label, total, quiet, false)
    }

    /// Starts a display for `total` records (messages, contacts …) labelled `label`.
    pub fn items(label: &str, total: u64, quiet: bool) -> Progress {
        Self::new(label, total, quiet, true)
    }

    fn new(label: &str, total: u64, quiet: bool, items: bool) -> Progress {
        if quiet {
            return Progress {
                inner: Inner::Hidden,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = if items {
                "{msg} [{bar:30}] {pos}/{len} eta {eta}"
            } else {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            };
            let style = ProgressStyle::with_template(template)
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress {
                inner: Inner::Bar(bar),
            }
        } else {
            let amount = |n: u64| if items { n.to_string() } else { human_bytes(n) };
            eprintln!("{label}: 0 of {} …", amount(total));
            Progress {
                inner: Inner::Lines {
                    label: label.to_owned(),
                    total,
                    items,
                    state: Mutex::new(LineState {
                        done: 0,
                        files: 0,
                        last: Instant::now(),
                    }),
                },
            }
        }
    }

    /// Records `bytes` more bytes and `files` more files done.
    pub fn advance(&self, bytes: u64, files: u64) {
        match &self.inner {
            Inner::Bar(bar) => bar.inc(bytes),
            Inner::Lines {
                label,
                total,
                items,
                state,
            } => {
                let Ok(mut s) = state.lock() else { return };
                s.done += bytes;
                s.files += files;
                if s.last.elapsed() >= Duration::from_secs(2) {
                    s.last = Instant::now();
                    if *items {
                        eprintln!("{label}: {} of {}", s.done, total);
                    } else {
                        eprintln!(
                            "{label}: {} of {} ({} files)",
                            human_bytes(s.done),
                            human_bytes(*total),
                            s.files
                        );
                    }
                }
            }
            Inner::Hidden => {}
        }
    }

    /// Sets the absolute amount done (for callers that report totals, not increments).
    pub fn set(&self, bytes_done: u64, files_done: u64) {
        match &self.inner {
            Inner::Bar(bar) => bar.set_position(bytes_done),
            Inner::Lines { state, .. } => {
                let (db, df) = match state.lock() {
                    Ok(s) => (
                        bytes_done.saturating_sub(s.done),
                        files_done.saturating_sub(s.files),
                    ),
                    Err(_) => return,
                };
                self.advance(db, df);
            }
            Inner::Hidden => {}
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        match &self.inner {
            Inner::Bar(bar) => bar.finish_and_clear(),
            Inner::Lines {
                label,
                state,
                items,
                ..
            } => {
                if let Ok(s) = state.lock() {
                    if *items {
                        eprintln!("{label}: done, {}", s.done);
                    } else {
                        eprintln!(
                            "{label}: done, {} in {} files",
                            human_bytes(s.done),
                            s.files
                        );
                    }
                }
            }
            Inner::Hidden => {}
        }
    }
}

/// Progress of device work, where the device reports a percentage and the host counts bytes
/// and files.
pub struct PercentProgress {
    inner: PercentInner,
}

enum PercentInner {
    Bar(ProgressBar),
    Lines {
        label: String,
        last: Mutex<(Instant, u64)>,
    },
    Hidden,
}

impl PercentProgress {
    /// Starts a display labelled `label`; `quiet` hides it.
    pub fn new(label: &str, quiet: bool) -> PercentProgress {
        if quiet {
            return PercentProgress {
                inner: PercentInner::Hidden,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{prefix} [{bar:30}] {percent}% {msg} eta {eta}")
                    .map(|s| s.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            PercentProgress {
                inner: PercentInner::Bar(bar),
            }
        } else {
            eprintln!("{label} …");
            PercentProgress {
                inner: PercentInner::Lines {
                    label: label.to_owned(),
                    last: Mutex::new((Instant::now(), 0)),
                },
            }
        }
    }

    /// Records the device's percentage (if it said one) and the host's byte and file counts.
    pub fn set(&self, percent: Option<f64>, bytes: u64, files: u64) {
        let permille = percent.map(|p| (p.clamp(0.0, 100.0) * 10.0) as u64);
        match &self.inner {
            PercentInner::Bar(bar) => {
                if let Some(p) = permille {
                    bar.set_position(p);
                }
                bar.set_message(format!("{} in {files} files", human_bytes(bytes)));
            }
            PercentInner::Lines { label, last } => {
                let Ok(mut l) = last.lock() else { return };
                if l.0.elapsed() >= Duration::from_secs(2) {
                    l.0 = Instant::now();
                    l.1 = bytes;
                    let pct = permille
                        .map(|p| format!("{:.1}%, ", p as f64 / 10.0))
                        .unwrap_or_default();
                    eprintln!("{label}: {pct}{} in {files} files", human_bytes(bytes));
                }
            }
            PercentInner::Hidden => {}
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        if let PercentInner::Bar(bar) = &self.inner {
            bar.finish_and_clear();
        }
    }
}

/// `1536` → `"1.5 KiB"`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
