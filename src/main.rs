//! The `tahoe` binary: parse the command line and run it.

fn main() -> std::process::ExitCode {
    tahoe::cli::main()
}
