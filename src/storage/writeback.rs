//! Written pages handed back as a file grows: writeback is started every [`WRITEBACK_BYTES`]
//! (`sync_file_range`), and the pages already on disk are dropped from the page cache
//! (`posix_fadvise(POSIX_FADV_DONTNEED)`), the rest after the final fsync.
//!
//! Why: the fsync before publishing then has little left to do (it took 0.7 s for a 2.6 GB export
//! without this); an export of any size leaves the page cache of the machine it runs on, often
//! the database's own, as it found it, instead of evicting the database's pages for a file nobody
//! reads back soon; and the writer keeps reusing the same few dozen MiB of memory. On virtual
//! machines that hand freed memory back to the host (free page reporting), every fresh page
//! costs a fault on the host: there this halves the kernel's share of an export.
//!
//! All of it is advisory: a failed call changes nothing but the cache, and the fsync alone
//! guarantees durability. Where the calls do not exist (not Linux), nothing is done.

use super::*;

/// Writeback of a file being written is started every this many bytes, and the pages of the
/// previous stretch are dropped.
pub(super) const WRITEBACK_BYTES: u64 = 32 << 20;

/// The writeback state of one file being written.
pub(super) struct Writeback {
    /// A second descriptor of the file, for the blocking calls (the writer owns the first).
    file: Arc<std::fs::File>,
    /// File bytes written when writeback was last started.
    started: u64,
    /// The pages below this offset are dropped, or being dropped by `dropping`.
    dropped: u64,
    /// The latest start-and-drop call, at most one at a time.
    dropping: Option<tokio::task::JoinHandle<()>>,
}

impl Writeback {
    /// Starts tracking `file`, which is empty.
    pub(super) fn new(file: Arc<std::fs::File>) -> Writeback {
        Writeback {
            file,
            started: 0,
            dropped: 0,
            dropping: None,
        }
    }

    /// Called after each write with the file's size so far: every [`WRITEBACK_BYTES`], starts
    /// writeback of everything written, and drops the pages of the stretch whose writeback was
    /// started the time before (waiting, on a blocking thread, for them to reach the disk).
    pub(super) async fn wrote(&mut self, size: u64) {
        if size < self.started + WRITEBACK_BYTES {
            return;
        }
        if let Some(previous) = self.dropping.take() {
            let _ = previous.await;
        }
        let (from, to) = (self.dropped, self.started);
        self.dropped = to;
        self.started = size;
        let file = Arc::clone(&self.file);
        self.dropping = Some(tokio::task::spawn_blocking(move || {
            start_writeback(&file);
            drop_written(&file, from, to);
        }));
    }

    /// Called after the fsync: drops the pages of the whole file, all of them now on disk.
    pub(super) async fn finish(mut self) {
        if let Some(previous) = self.dropping.take() {
            let _ = previous.await;
        }
        let file = self.file;
        let _ = tokio::task::spawn_blocking(move || drop_written(&file, 0, u64::MAX)).await;
    }
}

/// Asks the kernel to start writing the file's dirty pages to disk now, without waiting.
fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a descriptor that `file` keeps open.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Waits until the bytes `from..to` of the file are on disk, then drops their pages from the page
/// cache; `to == u64::MAX` means to the end of the file.
fn drop_written(file: &std::fs::File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if to <= from {
            return;
        }
        let offset = libc::off_t::try_from(from).unwrap_or(libc::off_t::MAX);
        // 0 means "to the end of the file" for both calls.
        let length = libc::off_t::try_from(to - from).unwrap_or(0);
        let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: plain system calls on a descriptor that `file` keeps open.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, length, wait);
            libc::posix_fadvise(file.as_raw_fd(), offset, length, libc::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    fn c_path(path: &Path) -> CString {
        CString::new(path.as_os_str().as_bytes()).unwrap()
    }

    /// Whether `path` is on a tmpfs, whose pages are the files themselves and are never dropped.
    fn on_tmpfs(path: &Path) -> bool {
        // SAFETY: `statfs` fills the zeroed struct for a NUL-terminated path.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        let found = unsafe { libc::statfs(c_path(path).as_ptr(), &mut stat) } == 0;
        found && stat.f_type == libc::TMPFS_MAGIC
    }

    /// Bytes of the file at `path` that are in the page cache (`mincore` over a mapping of it).
    fn cached_bytes(path: &Path) -> u64 {
        let file = std::fs::File::open(path).unwrap();
        let length = usize::try_from(file.metadata().unwrap().len()).unwrap();
        if length == 0 {
            return 0;
        }
        // SAFETY: a read-only shared mapping of an open file, only passed to `mincore` (never
        // read, so no page is brought in) and unmapped before returning.
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap();
            let map = libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let mut resident = vec![0u8; length.div_ceil(page)];
            assert_eq!(libc::mincore(map, length, resident.as_mut_ptr()), 0);
            libc::munmap(map, length);
            resident.iter().filter(|&&r| r & 1 == 1).count() as u64 * page as u64
        }
    }

    /// The file being written in `folder`: the only one there, under its temporary name.
    fn only_file(folder: &Path) -> PathBuf {
        let mut names: Vec<PathBuf> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        names.pop().unwrap()
    }

    #[tokio::test]
    async fn an_export_leaves_its_pages_out_of_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        if on_tmpfs(dir.path()) {
            eprintln!("skipped: {} is a tmpfs", dir.path().display());
            return;
        }
        let path = dir.path().join("big.json");
        let location = Location::Path(path.clone());
        let mut output = Output::create(&location, Compression::None).await.unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let total = 4 * WRITEBACK_BYTES + (3 << 20);
        for _ in 0..total >> 20 {
            output.write_all(&chunk).await.unwrap();
        }
        // Writeback was started at 32, 64, 96 and 128 MiB; by the last start the stretches
        // below 64 MiB were dropped (the one up to 96 MiB may still be dropping).
        let cached = cached_bytes(&only_file(dir.path()));
        let bound = total - 2 * WRITEBACK_BYTES + (1 << 20);
        assert!(
            cached <= bound,
            "{cached} of {total} bytes in the page cache while writing (at most {bound})"
        );
        output.publish().await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), total);
        let cached = cached_bytes(&path);
        assert!(
            cached <= 1 << 20,
            "{cached} bytes of the published {total} in the page cache"
        );
    }
}
