//! The `tahoe` binary: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tahoe::cli::Cli::parse();
    // Not locked for the whole command: `tahoe get` streams to standard
    // output from another thread, which would wait on that lock forever.
    let mut stdout = std::io::stdout();
    match tahoe::cli::run(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tahoe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
