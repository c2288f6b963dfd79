//! A software prefetch: the one `unsafe` of the crate.

/// Asks the CPU to start loading the cache line at `p` into the caches and
/// returns at once, so a later access finds it there instead of stalling.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address,
    // and changes nothing the program can observe but timing.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
