//! `train-embed`: learn a face-embedding network from an image folder. See `--help`.

use clap::Parser;
use faceprint::train::{TrainArgs, train_embed};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = TrainArgs::parse();
    match train_embed(&args, false) {
        Ok(outcome) => {
            let s = &outcome.summary;
            let t = &outcome.thresholds;
            println!(
                "wrote {} (best epoch {}); thresholds at FAR 0.1% / 1% / 10%: {:.4} / {:.4} / {:.4}",
                outcome.output.display(),
                s.best_epoch.map_or("-".into(), |e| e.to_string()),
                t.far_0_1pct,
                t.far_1pct,
                t.far_10pct
            );
            if let Some(v) = &s.best_val {
                println!(
                    "validation ({} identities): rank-1 {:.4}, DIR@FAR 1% {:.4}, TAR@FAR 1% {:.4}, EER {:.4}",
                    s.val_identities, v.rank1, v.dir_far_1pct, v.tar_far_1pct, v.eer
                );
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("train-embed: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
