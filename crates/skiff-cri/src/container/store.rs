//! What the CRI keeps of its containers, as `container/<id>`, indexed by sandbox. A record is
//! written durably once its engine container exists, so a crash cannot orphan the container.

use super::CriContainer;
use crate::kept::{Kept, Keyed};

pub type CriContainers = Kept<CriContainer>;

impl Keyed for CriContainer {
    const PREFIX: &'static str = "container/";
    const WHAT: &'static str = "container";
    const FIELD: &'static str = "container_id";
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> i64 {
        self.created_at
    }
}

impl Kept<CriContainer> {
    pub fn of_sandbox(&self, sandbox_id: &str) -> Vec<CriContainer> {
        self.list().into_iter().filter(|c| c.sandbox_id == sandbox_id).collect()
    }
}
