//! Splits face folders into identity-disjoint train and held-out folders of symbolic
//! links, with the same seeded split as `eval-baselines`, so that models and baselines
//! are judged on the same people never seen in training.
//!
//! ```sh
//! cargo run --release --example split-identities -- --out data/split ../shared/data/orl ../shared/data/yaleb
//! ```
//! writes `data/split/train/<db>-<identity>` and `data/split/heldout/<db>-<identity>`.

use std::path::{Path, PathBuf};

use clap::Parser;
use faceprint::data::{ImageFolder, SplitSize};

#[derive(Parser)]
struct Args {
    /// Where to write `train/` and `heldout/`; replaced if it exists.
    #[arg(long)]
    out: PathBuf,
    /// Fraction of each folder's identities held out (scripts/train-lfw-cnn.sh: 0.34).
    #[arg(long, default_value_t = 0.34)]
    heldout: f64,
    /// Seed of the identity split (eval-baselines uses 0).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folders of identity sub-folders.
    folders: Vec<PathBuf>,
}

fn link_identities(folder: &ImageFolder, db: &str, dest: &Path) -> std::io::Result<()> {
    for identity in folder.identities() {
        let src = std::fs::canonicalize(folder.root().join(identity))?;
        std::os::unix::fs::symlink(src, dest.join(format!("{db}-{identity}")))?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)?;
    }
    let (train_dir, heldout_dir) = (args.out.join("train"), args.out.join("heldout"));
    std::fs::create_dir_all(&train_dir)?;
    std::fs::create_dir_all(&heldout_dir)?;
    for root in &args.folders {
        let folder = ImageFolder::scan(root)?;
        // Same call as eval-baselines: (training identities, held-out identities).
        let (train, heldout) = folder.split(SplitSize::Fraction(args.heldout), args.seed)?;
        let db = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into());
        link_identities(&train, &db, &train_dir)?;
        link_identities(&heldout, &db, &heldout_dir)?;
        println!(
            "{}: {} identities for training, {} held out",
            root.display(),
            train.identities().len(),
            heldout.identities().len()
        );
    }
    Ok(())
}
