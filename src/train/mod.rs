//! The training loop: batches, checkpoints, logs and plots (`train-embed`), and the
//! evaluation tool's driver (`eval-embed`).
//!
//! A run: [`TrainConfig`] (TOML, then the flags of [`cli::TrainArgs`] applied by
//! [`overrides`]) → [`run::Run::start`] or [`run::Run::resume`] → [`run::Run::train`]
//! (one checkpoint, log line and plot per epoch) → [`finish::write_model`] (best
//! network, calibrated thresholds, model file).

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod error;
pub mod finish;
pub mod head;
pub mod margin;
pub mod objective;
pub mod overrides;
pub mod progress;
pub mod record;
pub mod run;
pub mod seed;
pub mod validate;

pub use cli::TrainArgs;
pub use config::TrainConfig;
pub use error::{Result, TrainError};
pub use finish::TrainSummary;

use crate::model::Thresholds;

/// What a finished `train-embed` run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The model file written.
    pub output: std::path::PathBuf,
    pub summary: TrainSummary,
    pub thresholds: Thresholds,
}

/// `train-embed` without the process around it: resolves the configuration, runs (or
/// resumes) training in a rayon pool of `threads` threads, writes the model file.
pub fn train_embed(args: &TrainArgs, quiet: bool) -> Result<TrainOutcome> {
    let cfg = args.to_config()?;
    cfg.validate()?;
    if !args.resume && run::has_checkpoint(&cfg.run_dir) {
        return Err(TrainError::Config(format!(
            "{} already holds a checkpoint: pass --resume to continue that run, or choose \
             another --run-dir",
            cfg.run_dir.display()
        )));
    }
    if args.resume && !run::has_checkpoint(&cfg.run_dir) {
        return Err(TrainError::Config(format!(
            "--resume: no {} in {}",
            run::CHECKPOINT_FILE,
            cfg.run_dir.display()
        )));
    }
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = cfg.threads {
        pool = pool.num_threads(n);
    }
    let pool = pool
        .build()
        .map_err(|e| TrainError::Config(format!("thread pool: {e}")))?;
    pool.install(|| {
        let progress = progress::Progress::new(quiet);
        let mut run = if args.resume {
            run::Run::resume(cfg)?
        } else {
            run::Run::start(cfg)?
        };
        progress.println(&format!(
            "training on {} identities ({} images), validating on {} identities ({} images); \
             {} parameters",
            run.data.train_identities.len(),
            run.data.train_images.len(),
            run.data.val_identities.len(),
            run.data.val_labels.len(),
            run.net.num_parameters()
        ));
        run.train(&progress)?;
        let (summary, thresholds) = finish::write_model(&mut run)?;
        Ok(TrainOutcome {
            output: run.cfg.output.clone(),
            summary,
            thresholds,
        })
    })
}
