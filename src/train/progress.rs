//! Progress bars (indicatif): one over epochs, one over the current epoch's batches with
//! its ETA and the running mean loss; plus one summary line per finished epoch.
//! Hidden when stderr is not a terminal (indicatif's default) or when asked to be quiet;
//! the summary lines are printed to stderr unless quiet.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::Cell;

use super::record::EpochRecord;

/// The bars of one run.
pub struct Progress {
    multi: MultiProgress,
    epochs: ProgressBar,
    batches: ProgressBar,
    quiet: bool,
    /// Running sum and count of the epoch's batch losses.
    running: Cell<(f64, usize)>,
}

impl Progress {
    /// `quiet`: no bars and no summary lines (tests, scripts).
    pub fn new(quiet: bool) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = |template: &str| {
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let epochs = multi.add(ProgressBar::new(0).with_style(style(
            "epoch {pos}/{len} [{bar:30}] {elapsed_precise} (ETA {eta_precise}) {msg}",
        )));
        let batches = multi.add(
            ProgressBar::new(0).with_style(style("  batch {pos}/{len} [{bar:30}] ETA {eta} {msg}")),
        );
        Progress {
            multi,
            epochs,
            batches,
            quiet,
            running: Cell::new((0.0, 0)),
        }
    }

    pub fn start(&self, done: usize, total: usize) {
        self.epochs.set_length(total as u64);
        self.epochs.set_position(done as u64);
        self.epochs.reset_eta();
    }

    pub fn epoch_start(&self, epoch: usize, batches: usize) {
        self.running.set((0.0, 0));
        self.batches.reset();
        self.batches.set_length(batches as u64);
        self.batches.set_message(format!("epoch {}", epoch + 1));
    }

    pub fn batch_done(&self, loss: f32) {
        let (sum, n) = self.running.get();
        let running = (sum + f64::from(loss), n + 1);
        self.running.set(running);
        self.batches.inc(1);
        self.batches
            .set_message(format!("loss {:.4}", running.0 / running.1 as f64));
    }

    pub fn epoch_done(&self, r: &EpochRecord) {
        self.epochs.inc(1);
        let line = format!(
            "epoch {:>3}: loss {:.4} (active {:.2}) lr {:.2e} | val rank-1 {:.3} DIR@FAR1% {:.3} \
             TAR@FAR1% {:.3} EER {:.3}{}",
            r.epoch,
            r.loss,
            r.active,
            r.lr,
            r.val.rank1,
            r.val.dir_far_1pct,
            r.val.tar_far_1pct,
            r.val.eer,
            if r.best { " *best*" } else { "" }
        );
        if r.best {
            self.epochs.set_message(format!(
                "best: epoch {} DIR@FAR1% {:.3}",
                r.epoch, r.val.dir_far_1pct
            ));
        }
        self.println(&line);
    }

    /// A line above the bars (stderr), unless quiet.
    pub fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    pub fn finish(&self) {
        self.batches.finish_and_clear();
        self.epochs.finish();
    }
}
