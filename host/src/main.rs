//! The `signet` binary.

/// mimalloc instead of glibc's malloc: the gate allocates and frees many small
/// buffers per request (headers, JSON values, audit rows), and glibc's
/// malloc/free/consolidate were ~17 % of the gate's busy CPU under
/// `signet bench --scenarios unary-c32`. Plugins keep their own allocator
/// (abi_stable values free through the vtable of the side that made them).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    signet::cli::main()
}
