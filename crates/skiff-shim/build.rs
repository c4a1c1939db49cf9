//! skiff-shim is linked as a position-dependent executable. A PIE's relocated read-only data
//! (`.data.rel.ro`: vtables, string tables, about 25 000 relocations here) is copied into every
//! process that runs it, about 0.5 MB per shim, and the loader spends its start-up applying the
//! relocations. Linked at a fixed address, those pages stay the shared, clean pages of the one
//! sealed copy every shim runs from, and the loader has nothing to do for them.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
