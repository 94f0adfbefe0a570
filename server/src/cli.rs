//! The `slipway` command line (clap).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeArgs};

#[derive(Debug, Parser)]
#[command(name = "slipway", version = crate::VERSION, about = "Self-hosted CI/CD and deployments")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve the dashboard.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(ServeArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::Serve(args) | Command::Migrate(args)) = &cli.command;
    let config = match Config::from_args(args.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("slipway: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slipway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(_) => crate::web::serve(config).await,
            Command::Migrate(_) => crate::db::open(&config.data_dir).await.map(|_| ()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("slipway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
