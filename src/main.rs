//! `faceprint-server`: read configuration, then serve (default) or run an admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faceprint::server::{
    Application, ImportOptions, ImportReport, Settings, backup, healthcheck, import, reembed,
    restore,
};
use tracing_subscriber::EnvFilter;

/// Configuration file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG_FILE: &str = "faceprint.toml";

#[derive(Parser)]
#[command(version, about = "Enroll faces and identify them over HTTP")]
struct Cli {
    /// TOML configuration file (default: ./faceprint.toml if present). Settings from
    /// FACEPRINT_<SECTION>__<KEY> environment variables override it.
    #[arg(long, env = "FACEPRINT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Re-embed every stored face with a new model (from its stored image), then exit;
    /// afterwards start the server with that model.
    Reembed {
        /// The new model file.
        #[arg(long)]
        model: PathBuf,
    },
    /// Write a consistent snapshot of the SQLite database to a new file (safe while
    /// servers run). For PostgreSQL use pg_dump.
    Backup {
        /// The snapshot file to create; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the SQLite database's contents with a backup (stop the servers first).
    /// Refuses a database that holds data unless --force. For PostgreSQL use pg_restore.
    Restore {
        /// A file written by `backup`.
        #[arg(long)]
        from: PathBuf,
        /// Replace a database that already holds galleries or faces.
        #[arg(long)]
        force: bool,
    },
    /// Enroll every image of DIR/<identity>/ into a gallery, one identity per folder (the
    /// trainer's layout), with a progress bar. Safe to interrupt and run again: each
    /// identity's faces commit together, and files already stored are skipped. A running
    /// SQLite server sees the new faces after a restart.
    Import {
        /// The folder tree: one sub-folder per identity, named by its external id.
        dir: PathBuf,
        /// The gallery to enroll into (created if new).
        #[arg(long, default_value = faceprint::server::DEFAULT_GALLERY)]
        gallery: String,
        /// Find the largest face in each image (photographs); without it every image
        /// must be a face crop, as with `detect=false` in the API.
        #[arg(long)]
        detect: bool,
    },
    /// GET /healthz of the configured server; exit 0 when it answers 200 (for container
    /// health checks).
    Healthcheck,
}

fn main() -> ExitCode {
    // Before the runtime starts its threads: each thread would otherwise get an arena.
    faceprint::server::memory::limit_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => fail(&e),
    }
}

async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = cli.config.or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_FILE);
        default.exists().then_some(default)
    });
    let settings = match Settings::load(config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = match Application::build(settings).await {
                Ok(app) => app,
                Err(e) => return fail(&e),
            };
            match app.run_until_stopped().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Reembed { model } => match reembed(&settings, &model).await {
            Ok(report) => {
                println!(
                    "re-embedded {} face(s) with model {}; now start the server with --config \
                     setting model.path = {:?}",
                    report.faces,
                    report.model_version,
                    model.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Backup { out } => match backup(&settings, &out).await {
            Ok(report) => {
                println!("wrote {} ({} bytes)", report.path.display(), report.bytes);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Restore { from, force } => match restore(&settings, &from, force).await {
            Ok(report) => {
                println!(
                    "restored {} gallery(ies) and {} face(s) from {}",
                    report.galleries,
                    report.faces,
                    from.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Import {
            dir,
            gallery,
            detect,
        } => {
            let options = ImportOptions {
                gallery,
                detect,
                progress: true,
            };
            match import(&settings, &dir, &options).await {
                Ok(report) => {
                    print_import(&report, &options.gallery);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Healthcheck => match healthcheck(&settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}

/// Skipped files listed by `import` before "and N more".
const SHOWN_SKIPS: usize = 20;

fn print_import(report: &ImportReport, gallery: &str) {
    for (path, reason) in report.skipped.iter().take(SHOWN_SKIPS) {
        eprintln!("skipped {}: {reason}", path.display());
    }
    if report.skipped.len() > SHOWN_SKIPS {
        eprintln!(
            "... and {} more skipped",
            report.skipped.len() - SHOWN_SKIPS
        );
    }
    if report.stray_files > 0 {
        eprintln!(
            "ignored {} file(s) directly under the folder (images go in DIR/<identity>/)",
            report.stray_files
        );
    }
    println!(
        "imported {} face(s) of {} identity folder(s) into gallery {gallery:?} in {:.1} s \
         ({:.0} faces/s); {} already stored, {} skipped",
        report.faces_added,
        report.identities,
        report.seconds,
        report.faces_per_second(),
        report.already_stored,
        report.skipped.len()
    );
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{error}");
    eprintln!("faceprint-server: {error}");
    ExitCode::FAILURE
}
