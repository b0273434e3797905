//! The training loop: P×K batches, augmentation, forward, loss, backward, optimiser and
//! schedule; validation, best-model selection, checkpoints, log and plot every epoch.
//!
//! Determinism: every random draw derives from `(seed, purpose, epoch)` (see
//! `train::seed`) and the engine's reductions have a fixed order for a given thread
//! count, so the same seed and thread count give bit-identical weights, and a run resumed
//! from a checkpoint continues exactly as if it had not stopped. Dropout layers keep their
//! own generator; at the start of every epoch they are reseeded in place with the seeds a
//! network built from a seed derived from the epoch would have (`ArchSpec::dropout_seeds`),
//! so epoch `e` draws the same masks whether the run was resumed or not.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::checkpoint::{Checkpoint, restore};
use super::config::{Selection, TrainConfig};
use super::dataset::RunData;
use super::error::{Result, TrainError};
use super::objective::Objective;
use super::progress::Progress;
use super::record::{EpochRecord, RunState, write_log, write_plot};
use super::seed::{Stream, derive};
use super::validate::{ValSet, evaluate};
use crate::data::PkSampler;
use crate::model::arch::ArchSpec;
use crate::nn::optim::{Optimizer, clip_grad_norm};
use crate::nn::schedule::Schedule;
use crate::nn::sequential::Sequential;
use crate::nn::{Mode, Param};

/// The checkpoint's file name inside the run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// A training run between epochs.
pub struct Run {
    pub cfg: TrainConfig,
    pub data: RunData,
    /// The architecture with its input set to the preprocessing's output shape.
    pub arch: ArchSpec,
    pub net: Sequential,
    pub objective: Objective,
    optimizer: Box<dyn Optimizer>,
    schedule: Schedule,
    sampler: PkSampler,
    pub state: RunState,
    /// The best network's tensors so far (empty before the first validation).
    pub best: BTreeMap<String, crate::nn::Tensor>,
}

impl Run {
    /// Starts a new run: loads the data, builds the network, head and optimiser.
    pub fn start(cfg: TrainConfig) -> Result<Run> {
        cfg.validate()?;
        let data = RunData::load(&cfg)?;
        let arch = cfg.arch.with_input(data.input_shape());
        arch.validate()
            .map_err(|e| TrainError::Config(format!("architecture: {e}")))?;
        let net = arch.build(derive(cfg.seed, Stream::Init, 0))?;
        let dim = arch.embedding_dim();
        let classes = data.train_identities.len();
        let objective = Objective::new(&cfg.loss, dim, classes, derive(cfg.seed, Stream::Head, 0))?;
        let optimizer = cfg.optimizer.build()?;
        let schedule = Schedule::new(cfg.schedule.clone())?;
        let sampler = PkSampler::new(
            &data.train_labels,
            cfg.batch.p,
            cfg.batch.k,
            derive(cfg.seed, Stream::Sampler, 0),
        )?;
        let state = RunState {
            config: cfg.clone(),
            epochs_done: 0,
            steps: 0,
            history: Vec::new(),
            best_epoch: None,
            preprocessing: data.preprocessing.clone(),
            train_identities: data.train_identities.clone(),
            val_identities: data.val_identities.clone(),
        };
        Ok(Run {
            cfg,
            data,
            arch,
            net,
            objective,
            optimizer,
            schedule,
            sampler,
            state,
            best: BTreeMap::new(),
        })
    }

    /// Continues the run whose checkpoint is in `cfg.run_dir`. Only `epochs` (and
    /// `threads`, which changes the rounding) may differ from the checkpointed
    /// configuration.
    pub fn resume(cfg: TrainConfig) -> Result<Run> {
        let path = cfg.run_dir.join(CHECKPOINT_FILE);
        let ckpt: Checkpoint<RunState> = Checkpoint::load(&path)?;
        let mut saved = ckpt.state.config.clone();
        saved.epochs = cfg.epochs;
        saved.threads = cfg.threads;
        if saved != cfg {
            return Err(TrainError::Config(format!(
                "{}: a resumed run keeps its configuration (only --epochs and --threads may \
                 change); differences: {}",
                path.display(),
                config_differences(&ckpt.state.config, &cfg)
            )));
        }
        let mut run = Run::start(cfg)?;
        if run.data.train_identities != ckpt.state.train_identities
            || run.data.val_identities != ckpt.state.val_identities
        {
            return Err(TrainError::Config(format!(
                "{}: the identities in {} changed since the checkpoint was written",
                path.display(),
                run.cfg.data.display()
            )));
        }
        let group = |name: &str| ckpt.groups.get(name).cloned().unwrap_or_default();
        restore(&mut run.net, &group("net"), "checkpoint network")?;
        if let Some(head) = run.objective.head_mut() {
            restore(head, &group("head"), "checkpoint classifier head")?;
        }
        run.optimizer.load_state(&group("opt"))?;
        run.best = group("best");
        // The plateau schedule's state is a function of the metrics it saw: replay them.
        for record in &ckpt.state.history {
            run.schedule.observe(record.val.dir_far_1pct);
        }
        run.state = RunState {
            config: run.cfg.clone(),
            ..ckpt.state
        };
        Ok(run)
    }

    /// Runs the remaining epochs, writing a checkpoint, the log and the plot after each.
    pub fn train(&mut self, progress: &Progress) -> Result<()> {
        std::fs::create_dir_all(&self.cfg.run_dir)
            .map_err(|e| TrainError::io(&self.cfg.run_dir, e))?;
        let first = self.state.epochs_done;
        progress.start(first, self.cfg.epochs);
        for epoch in first..self.cfg.epochs {
            let started = Instant::now();
            let (loss, active, grad_norm, batches, lr) = self.train_epoch(epoch, progress)?;
            let val = evaluate(&self.net, &self.val_set())?;
            self.schedule.observe(val.dir_far_1pct);
            let improved = self.cfg.selection == Selection::Last
                || self
                    .state
                    .best_epoch
                    .and_then(|e| self.state.history.get(e - 1))
                    .is_none_or(|best| val.at_least_as_good_as(&best.val));
            if improved {
                self.best = self.net.snapshot();
                self.state.best_epoch = Some(epoch + 1);
            }
            let record = EpochRecord {
                epoch: epoch + 1,
                lr,
                loss,
                active,
                grad_norm,
                batches,
                val,
                best: improved,
                seconds: started.elapsed().as_secs_f64(),
            };
            progress.epoch_done(&record);
            self.state.history.push(record);
            self.state.epochs_done = epoch + 1;
            self.save_checkpoint()?;
            write_log(&self.cfg.run_dir, &self.state.history)?;
            write_plot(&self.cfg.run_dir, &self.state.history)?;
        }
        progress.finish();
        Ok(())
    }

    /// One epoch; returns (mean loss, mean active fraction, mean gradient norm, batches, lr).
    fn train_epoch(
        &mut self,
        epoch: usize,
        progress: &Progress,
    ) -> Result<(f32, f32, f32, usize, f32)> {
        // New dropout generators for this epoch, same weights (see the module docs).
        if !self.net.seeds().is_empty() {
            let seeds =
                self.arch
                    .dropout_seeds(derive(self.cfg.seed, Stream::Dropout, epoch as u64))?;
            self.net.reseed_each(&seeds)?;
        }
        let lr = self.schedule.lr(epoch);
        let batches = self.sampler.epoch(epoch as u64);
        let augmentation = self.cfg.augmentation.augmentation();
        progress.epoch_start(epoch, batches.len());
        let (mut loss_sum, mut active_sum, mut norm_sum) = (0.0f64, 0.0f64, 0.0f64);
        for (b, indices) in batches.iter().enumerate() {
            let images: Vec<_> = indices
                .iter()
                .map(|&i| &self.data.train_images[i])
                .collect();
            let labels: Vec<usize> = indices.iter().map(|&i| self.data.train_labels[i]).collect();
            let images = match &augmentation {
                Some(aug) => {
                    let index = (epoch as u64) << 32 | b as u64;
                    aug.apply_batch(&images, derive(self.cfg.seed, Stream::Augment, index))
                }
                None => images.into_iter().cloned().collect(),
            };
            let x = self.data.preprocessing.normalise_batch(images)?.into_dyn(); // (N, 1, H, W)
            self.net.zero_grad();
            if let Some(head) = self.objective.head_mut() {
                head.zero_grad();
            }
            let embeddings = self.net.forward(&x, Mode::Train)?; // (N, K)
            let (loss, d_embeddings) = self.objective.forward_backward(&embeddings, &labels)?;
            if !loss.value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step: self.state.steps,
                    message: format!("the loss is {}", loss.value),
                });
            }
            self.net.backward(&d_embeddings)?;
            let mut params: Vec<&mut Param> = self.net.params_mut();
            params.extend(self.objective.params_mut());
            let norm = match self.cfg.clip_grad_norm {
                Some(max) => clip_grad_norm(&mut params, max),
                None => global_norm(&params),
            }
            .map_err(|e| TrainError::Diverged {
                epoch: epoch + 1,
                step: self.state.steps,
                message: e.to_string(),
            })?;
            self.optimizer.step(&mut params, lr)?;
            self.state.steps += 1;
            loss_sum += f64::from(loss.value);
            active_sum += f64::from(loss.active);
            norm_sum += f64::from(norm);
            progress.batch_done(loss.value);
        }
        let n = batches.len().max(1) as f64;
        Ok((
            (loss_sum / n) as f32,
            (active_sum / n) as f32,
            (norm_sum / n) as f32,
            batches.len(),
            lr,
        ))
    }

    /// The validation images and labels.
    pub fn val_set(&self) -> ValSet<'_> {
        ValSet {
            inputs: &self.data.val_inputs,
            labels: &self.data.val_labels,
            seed: derive(self.cfg.seed, Stream::Split, 1),
            flip_average: self.cfg.flip_average,
        }
    }

    /// Writes the checkpoint (network, head, best network, optimiser state, run state).
    pub fn save_checkpoint(&self) -> Result<()> {
        let mut groups = BTreeMap::new();
        groups.insert("net".to_string(), self.net.snapshot());
        groups.insert("best".to_string(), self.best.clone());
        if let Some(head) = self.objective.head() {
            groups.insert("head".to_string(), head.snapshot());
        }
        groups.insert("opt".to_string(), self.optimizer.state());
        let ckpt = Checkpoint {
            state: self.state.clone(),
            groups,
        };
        ckpt.save(&self.cfg.run_dir.join(CHECKPOINT_FILE))
    }
}

/// The gradients' global norm ‖(g₁, …, g_n)‖₂ (for the log when not clipping).
fn global_norm(params: &[&mut Param]) -> crate::nn::Result<f32> {
    let sum: f64 = params
        .iter()
        .flat_map(|p| p.grad.iter())
        .map(|&g| f64::from(g) * f64::from(g))
        .sum();
    let norm = sum.sqrt() as f32;
    if norm.is_finite() {
        Ok(norm)
    } else {
        Err(crate::nn::NnError::Invalid(format!(
            "the gradients' global norm is {norm}"
        )))
    }
}

/// The top-level fields in which two configurations differ, for error messages.
fn config_differences(a: &TrainConfig, b: &TrainConfig) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return "(unprintable)".into();
    };
    let diffs: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {v} → {}",
                b.get(k).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect();
    diffs.join("; ")
}

/// Whether `dir` already holds a checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).is_file()
}
