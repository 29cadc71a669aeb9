//! The `tahoe` binary: parse the command line and run it.

fn main() -> std::process::ExitCode {
    tune_malloc();
    tahoe::cli::main()
}

/// glibc's allocator, set for a process whose hot path allocates and frees
/// buffers of a few hundred KiB to a few MiB many times a second (segments,
/// blocks, frames). By default glibc serves each allocation over 128 KiB
/// with a fresh `mmap` until its adaptive threshold catches up, and gives
/// memory back to the kernel whenever 128 KiB lie free at the top of a heap,
/// so the same pages are faulted in and zeroed again for every segment: a
/// 128 MiB `PUT /uri` spent about 7% of the grid's CPU in page faults and
/// the memsets behind them. Here allocations up to 4 MiB come from the heap,
/// up to 16 MiB of free memory stays in it, and two arenas (one per core of
/// the machines we aim at) bound what all threads together keep: on the
/// bench grid a 128 MiB `PUT /uri` went from about 0.62 s to 0.56 s with the
/// gateway's resident memory unchanged (67 and 70 MiB).
#[allow(unsafe_code)]
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called first thing in
    // main, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
