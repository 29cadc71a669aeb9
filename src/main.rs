//! The `tahoe` binary: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tahoe::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match tahoe::cli::run(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tahoe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
