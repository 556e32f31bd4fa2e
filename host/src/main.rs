//! The `signet` binary.
fn main() -> std::process::ExitCode {
    signet::cli::main()
}
