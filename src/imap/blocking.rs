//! Storage work (file locks, fsync, directory listings) run from async session code.

/// Runs storage work without stalling the other sessions on this runtime thread: on the
/// multi-threaded runtime of single-process mode the thread hands its other tasks away
/// meanwhile; a worker's runtime has one thread (its owner's other workers use the other
/// cores), so it just calls it.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
