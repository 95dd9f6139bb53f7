//! The `smanager` binary: parses the command line, loads the configuration (exit 2 when it is invalid) and runs the
//! command.

use std::process::ExitCode;

use clap::Parser;

use smanager::cli::{Cli, Command, ConfigCommand};
use smanager::config::{self, Sources};
use smanager::{commands, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, warnings) = match config::load_with_warnings(&Sources::from_process(cli.config.clone())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // devnet and the benchmark keep their stdout for their own report; the benchmark logs only when asked to, on stderr.
    let quiet = match cli.command {
        Command::Devnet(_) | Command::DevnetChain(_) => true,
        Command::Bench(_) => std::env::var_os("RUST_LOG").is_none(),
        _ => false,
    };
    if !quiet {
        if matches!(cli.command, Command::Bench(_)) {
            logging::init_on_stderr(settings.log.format);
        } else {
            logging::init(settings.log.format);
        }
    }
    // Warnings go to stderr (stdout may be a report such as `config show`), and into the log of a running node.
    for w in &warnings {
        eprintln!("warning: {w}");
        if matches!(cli.command, Command::Run) {
            log::warn!(target: "smanager::config", "{w}");
        }
    }
    let result = match cli.command {
        Command::Config(ConfigCommand::Check) => match settings.require_account() {
            Ok(()) => {
                println!("configuration is valid");
                Ok(())
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config::redacted_toml(&settings));
            Ok(())
        }
        Command::Run => match settings.require_account() {
            Ok(()) => commands::run(settings),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Devnet(args) => smanager::devnet::run::run(args, settings.log.format),
        Command::Bench(args) => smanager::bench::run(args),
        Command::DevnetChain(args) => smanager::bench::devnet_chain(args),
        Command::Migrate { revert_all } => commands::migrate(&settings, revert_all),
        Command::Status { json } => commands::status(&settings, json),
        Command::Files(f) => commands::files(&settings, f),
        Command::Retry(r) => commands::retry(&settings, r),
        Command::Explain { cid, json } => commands::explain(&settings, &cid, json),
        Command::Plan(args) => match config::with_overrides(&settings, &args.set) {
            Ok(_) => commands::plan(&settings, args),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Healthcheck { ready } => commands::healthcheck(&settings, ready),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
