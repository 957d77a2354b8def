//! How much memory the process keeps after a burst. glibc's malloc gives each
//! thread that allocates an arena of its own (up to eight per core) and keeps
//! freed memory for reuse rather than returning it. A database or broker
//! restart under load makes many threads allocate at once (requests waiting
//! for connections, Kafka clients rebuilt with threads of their own), and the
//! process kept that high-water mark for good: `./dev bench memory` measured
//! 76 MB after a Postgres and a broker restart against 20 MB at start. Two
//! arenas, and handing freed memory back every minute, keep it near where it
//! started (README, Performance). mimalloc was tried instead and kept more.
//!
//! The only `unsafe` in the project: two calls into glibc that change how it
//! keeps memory and touch nothing of ours.
#![allow(unsafe_code)]

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Caps malloc's arenas at two, unless `MALLOC_ARENA_MAX` says otherwise.
/// Call first thing in `main`, before any other thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets one of glibc's allocator parameters; it reads
        // and writes no memory of ours, and no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Every minute until `shutdown`, hands freed memory back to the system.
pub async fn give_back_freed_memory(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: malloc_trim releases free memory only and is thread-safe.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}
