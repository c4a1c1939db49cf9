//! The content store conformance suite on `LocalContentStore` (through `Store`, which owns it).

use std::path::Path;

use skiff_store::testsuite::{run_all, Subject};
use skiff_store::{Store, StoreOptions};

#[test]
fn local_content_store_conforms() {
    let open = |root: &Path| -> skiff_store::Result<Box<dyn Subject>> { Ok(Box::new(Store::open(root, &StoreOptions::default())?.0)) };
    run_all("local", &open);
}
