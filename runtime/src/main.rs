//! The `rwasm` binary: a container's init when re-executed as `rwasm init`, else the CLI.

mod cli;

/// One line from an anyhow error and its causes.
fn error_line(e: &anyhow::Error) -> String {
    rwasm::error_chain(e.as_ref())
}

fn main() {
    // Checked before anything else runs: init must stay a minimal, single-threaded process.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == rwasm::linux::launch::INIT_ARG)
        && std::env::var_os(rwasm::linux::launch::ENV_SYNC_FD).is_some()
    {
        rwasm::linux::init::main();
    }
    std::process::exit(cli::main());
}
