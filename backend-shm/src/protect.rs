//! Read-only views of part of a shared mapping (`mprotect`).
//!
//! A consumer of a ring never writes the slots; mapping them read-only turns a consumer bug that
//! writes one into a `SIGSEGV` in that consumer instead of corruption every other reader sees.
//! Protection is per mapping (per process): the producer's mapping of the same object stays
//! writable.

use std::io;
use std::ptr::NonNull;

use crate::ownership::page_size;

/// Makes `offset..offset + len` of the mapping at `base` (of `map_len` bytes) read-only.
/// `offset` must be a multiple of the page size and the range must lie inside the mapping; a
/// `len` that does not end on a page is rounded up when the mapping ends there anyway.
pub(crate) fn read_only(
    base: NonNull<u8>,
    map_len: usize,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    let page = page_size();
    let invalid = |why| io::Error::new(io::ErrorKind::InvalidInput, why);
    if offset % page != 0 {
        return Err(invalid("offset is not page aligned"));
    }
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= map_len)
        .ok_or_else(|| invalid("range outside the mapping"))?;
    if len == 0 {
        return Ok(());
    }
    // The kernel protects whole pages; the last page of the range is also the mapping's last
    // (or the range ends on a page), so nothing outside the range changes.
    let rounded = end.div_ceil(page) * page - offset;
    if end % page != 0 && end != map_len {
        return Err(invalid(
            "range ends inside a page the mapping continues past",
        ));
    }
    // The caller promises that this process only reads these bytes from now on.
    // SAFETY: `base + offset .. + rounded` lies inside this process's mapping (`end <= map_len`;
    // a mapping covers whole pages); mprotect only changes permissions, invalidating no reference.
    let rc = unsafe { libc::mprotect(base.as_ptr().add(offset).cast(), rounded, libc::PROT_READ) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Faults in the page-table entries of the whole mapping at `base` (`map_len` bytes) now, so
/// that the first accesses to each page later cost no minor fault: `MADV_POPULATE_READ` (or
/// `_WRITE`, Linux ≥ 5.14), else one read of a byte per page. The bytes are not changed.
pub(crate) fn populate(base: NonNull<u8>, map_len: usize, write: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let advice = if write {
            libc::MADV_POPULATE_WRITE
        } else {
            libc::MADV_POPULATE_READ
        };
        // SAFETY: `base..base + map_len` is this process's mapping; the advice only populates
        // page tables (it neither changes bytes nor unmaps anything).
        if unsafe { libc::madvise(base.as_ptr().cast(), map_len, advice) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    // An older kernel: touch one byte of every page (a read faults the page in for reading; a
    // write mapping then still takes one cheap write-protect fault per page).
    let page = page_size();
    for off in (0..map_len).step_by(page) {
        // SAFETY: `off < map_len`, inside the mapping; a volatile read of one byte of shared
        // memory that other processes may be writing is a plain load of a `u8` (any value is
        // valid) and its result is discarded.
        unsafe { std::ptr::read_volatile(base.as_ptr().add(off)) };
    }
    Ok(())
}
