//! The classical baselines (raw pixels, Eigenfaces, Fisherfaces) on held-out identities.
//!
//! Each folder's identities are split (seeded; `--heldout` of them held out, a third by
//! default, as `scripts/train-lfw-cnn.sh` splits them); the
//! training parts are merged to fit the preprocessing and the baselines, the held-out
//! parts to run the open-set protocol. Writes `baselines.json` and `roc.png` to `--out`.
//!
//! cargo run --example eval-baselines -- --norm tan-triggs ../shared/data/orl ../shared/data/yaleb

use std::path::PathBuf;

use clap::Parser;
use faceprint::data::{ImageFolder, NormalisationKind, PreprocessingSpec, SplitSize};
use faceprint::eval::report::{write_json, write_roc_png};
use faceprint::eval::{ProtocolConfig, baseline_reports};

#[derive(Parser)]
struct Args {
    /// Image folders (one sub-folder per identity).
    #[arg(required = true)]
    folders: Vec<PathBuf>,
    /// Photometric normalisation.
    #[arg(long, value_enum, default_value = "tan-triggs")]
    norm: NormalisationKind,
    /// Images enrolled per known identity.
    #[arg(long, default_value_t = 5)]
    enroll: usize,
    /// Protocol rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Fraction of each folder's identities held out (the same split as
    /// `split-identities --heldout` with the same seed).
    #[arg(long, default_value_t = 0.34)]
    heldout: f64,
    /// Seed of the identity split and of the protocol.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long, default_value = "runs/baselines")]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for root in &args.folders {
        let folder = ImageFolder::scan(root)?;
        let (a, b) = folder.split(SplitSize::Fraction(args.heldout), args.seed)?;
        eprintln!(
            "{}: {} identities → {} train ({} images), {} held out ({} images)",
            root.display(),
            folder.identities().len(),
            a.identities().len(),
            a.len(),
            b.identities().len(),
            b.len()
        );
        train.push(a);
        test.push(b);
    }
    let (train, test) = (ImageFolder::merge(&train)?, ImageFolder::merge(&test)?);
    let preprocessing = PreprocessingSpec::new(56, 48, args.norm).fit(train.images())?;
    let config = ProtocolConfig {
        rounds: args.rounds,
        enroll: args.enroll,
        seed: args.seed,
        ..ProtocolConfig::default()
    };
    let reports = baseline_reports(&train, &test, &preprocessing, &config)?;
    for (name, report) in &reports {
        println!("{name:<18} {report}");
    }
    std::fs::create_dir_all(&args.out)?;
    write_json(&args.out.join("baselines.json"), &reports)?;
    let curves: Vec<(&str, &[_])> = reports
        .iter()
        .map(|(n, r)| (n.as_str(), r.roc.as_slice()))
        .collect();
    write_roc_png(&args.out.join("roc.png"), &curves)?;
    Ok(())
}
