//! The `slipway` command line (clap).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ServeArgs};

#[derive(Debug, Parser)]
#[command(name = "slipway", version = crate::VERSION, about = "Self-hosted CI/CD and deployments")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub remote: crate::client::Remote,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve the dashboard.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(ServeArgs),
    /// Manage users from the command line.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Client commands against a running server's REST API
    /// (SLIPWAY_URL, SLIPWAY_TOKEN).
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user. The password is read from stdin (piped: its first
    /// line; on a terminal: typed twice, not echoed), never from arguments.
    Create(AdminCreateArgs),
}

#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// The user's name: lower-case letters, digits and '-', 1 to 40 characters.
    #[arg(long)]
    pub name: String,
    /// admin, deployer or viewer.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// Read the password from stdin. Always the case; accepted so scripts
    /// can say so explicitly.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Command {
    fn serve_args(&self) -> Option<&ServeArgs> {
        match self {
            Command::Serve(args) | Command::Migrate(args) => Some(args),
            Command::Admin(AdminCommand::Create(create)) => Some(&create.serve),
            Command::Client(_) => None,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(serve_args) = cli.command.serve_args() else {
        return client_main(cli);
    };
    let config = match Config::from_args(serve_args.clone()) {
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
    runtime.block_on(run(cli.command, config))
}

/// The client commands: no data dir, no server configuration, no log
/// subscriber (their output is for humans and scripts).
fn client_main(cli: Cli) -> ExitCode {
    let Command::Client(command) = cli.command else {
        return ExitCode::from(2);
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(crate::client::run(&cli.remote, command)),
        Err(e) => {
            eprintln!("slipway: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> ExitCode {
    let result = match command {
        Command::Serve(_) => crate::startup::serve(config).await,
        Command::Migrate(_) => crate::db::open(&config.data_dir).await.map(|_| ()),
        Command::Admin(AdminCommand::Create(args)) => {
            return crate::auth::admin_cmd::create(&config, &args.name, &args.role).await;
        }
        Command::Client(_) => return ExitCode::from(2),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("slipway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
