//! Storage work (file locks, fsync, directory listings) run from async session code.

/// Runs storage work without stalling the other sessions on this runtime thread: on a
/// multi-threaded runtime the thread hands its other tasks away meanwhile; sessions normally
/// run on a single-threaded one (a worker process's, or a session thread of the one-process
/// server: the other threads use the other cores), which just calls it.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
