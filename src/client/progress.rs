//! Progress on the terminal for the commands that take a while: bytes,
//! rate and time left of a transfer, objects and rate of a walk over a
//! tree (indicatif). Drawn to standard error only when it is a terminal
//! and `--quiet` was not given; never mixed into standard output.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Transfers smaller than this get no bar: over before it would show.
const MIN_BYTES: u64 = 4 << 20;

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no progress for the rest of this process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn target() -> ProgressDrawTarget {
    if QUIET.load(Ordering::Relaxed) {
        ProgressDrawTarget::hidden()
    } else {
        // Hidden by indicatif itself when standard error is no terminal.
        ProgressDrawTarget::stderr()
    }
}

/// A transfer's bar, following a byte counter until dropped (then
/// cleared).
pub struct Transfer {
    bar: ProgressBar,
    follow: Option<tokio::task::JoinHandle<()>>,
}

impl Transfer {
    /// `label` (`uploading`, `downloading`) of `total` bytes, `done`
    /// counting those moved so far. From within a runtime.
    pub fn start(label: &'static str, done: Arc<AtomicU64>, total: u64) -> Self {
        let bar = if total < MIN_BYTES {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(total), target())
        };
        if bar.is_hidden() {
            return Transfer { bar, follow: None };
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>11} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(label);
        let shown = bar.clone();
        let follow = tokio::spawn(async move {
            loop {
                shown.set_position(done.load(Ordering::Relaxed).min(total));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Transfer {
            bar,
            follow: Some(follow),
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(t) = self.follow.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

/// A walk's spinner: objects seen, their rate, and a count of bad ones.
pub struct Walk {
    bar: ProgressBar,
}

impl Walk {
    /// A spinner for a walk over a tree.
    pub fn start() -> Self {
        let bar = ProgressBar::with_draw_target(None, target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} objects, {per_sec}, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Walk { bar }
    }

    /// One more object; `unhealthy` of them so far.
    pub fn object(&self, unhealthy: u64) {
        self.bar.inc(1);
        self.bar.set_message(format!("{unhealthy} unhealthy"));
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
