//! `eval-embed`: judge a model on identities it never saw. See `--help`.

use clap::Parser;
use faceprint::eval::command::{EvalArgs, eval_embed, table};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = EvalArgs::parse();
    match eval_embed(&args) {
        Ok(report) => {
            print!("{}", table(&report));
            println!(
                "wrote {} and {}",
                args.out.join("report.json").display(),
                args.out.join("roc.png").display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eval-embed: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
