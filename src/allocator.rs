//! How the process's allocator (glibc's malloc) keeps memory: set once at start.

/// Call first thing in `main`, before any other thread exists.
///
/// Request bodies, batches and conversion buffers are megabytes each. Left to itself, glibc
/// raises its mmap threshold after such a buffer is freed and then keeps them in per-thread
/// arenas: RSS follows the largest burst ever seen. The other extreme, a low fixed threshold
/// (256 KiB until issue 38), makes every buffer above it a fresh mmap: its pages are faulted in
/// on first touch, and with several threads at work each munmap is a TLB shootdown across the
/// cores (a tenth of the conversion threads' time in a profile). So buffers up to 4 MiB (a
/// request body, a page, a compressed block) come from the arenas, where freed memory is
/// reused without faults, larger ones (a batch of rows, a row group) are still mmaps, and once a
/// second the free pages of every arena go back to the system (`malloc_trim`), so RSS follows
/// the data in flight, a second behind. Measured (BENCHMARKS.md, issue 38): a Parquet backlog
/// drains 1.55-1.76x faster on two cores than on one (about 1.5x with 256 KiB), Direct PUT
/// acknowledges 12-16% more, peak RSS with a 128 MiB buffer grows by up to 1.4x.
pub fn limit_heap_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        }
        // The process's own thread for its lifetime: it holds nothing and ends with it.
        let trimmer = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    // SAFETY: malloc_trim only returns free memory; any thread may call it.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if trimmer.is_err() {
            eprintln!("warning: cannot start the malloc-trim thread; RSS may stay at its peak");
        }
    }
}
