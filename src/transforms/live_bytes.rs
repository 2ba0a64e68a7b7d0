//! The unit tests' global allocator, which counts the heap bytes each thread holds, so that a
//! test can show that a transform keeps no state growing with the rows it rewrites.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (a block freed by another thread than
    /// the one that allocated it skews both; the tests measure on one thread).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting.
struct Counting;

fn add(bytes: isize) {
    // During thread teardown the counter may be gone: nothing to count then.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting touches only a
// const-initialized thread-local `Cell`, which neither allocates nor registers a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The heap bytes the current thread holds now (allocated minus freed since it started).
pub fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}
