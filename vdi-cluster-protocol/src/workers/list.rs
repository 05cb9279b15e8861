//! [`WorkerList`]: `GET /api/vdi/workers` and `/api/vdi/workers/healthy`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{Page, Timestamp, WorkerView};

use super::WorkerJson;
use crate::page::PageJson;

/// A list of workers (as Aetherium's and SkyPanelV2's: `{"workers":
/// [...], "total": n}`), a page of it with `limit` and `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    /// The page's workers, by code.
    pub workers: Vec<WorkerJson>,
    /// `total` (every worker passing the filters), `limit`, `offset`.
    #[serde(flatten)]
    pub page: PageJson,
}

impl WorkerList {
    /// `page` of the list of `views` (by code) at `now`.
    pub fn new<'a>(
        views: impl IntoIterator<Item = &'a WorkerView>,
        page: Page,
        now: Timestamp,
    ) -> Self {
        let paged = page.take(views);
        Self {
            workers: paged
                .items
                .into_iter()
                .map(|v| WorkerJson::new(v, now))
                .collect(),
            page: PageJson::new(page, paged.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, view};
    use super::*;

    #[test]
    fn list_field_names() {
        let list = serde_json::to_value(WorkerList::new([&view()], Page::ALL, Timestamp(2000)));
        let list = list.unwrap();
        assert_eq!(keys(&list), ["offset", "total", "workers"]);
        assert_eq!(list["total"], 1);
        let second = Page::new(Some(1), Some(1), None).unwrap();
        let list = WorkerList::new([&view(), &view()], second, Timestamp(2000));
        assert_eq!((list.workers.len(), list.page.total), (1, 2));
        let list = serde_json::to_value(list).unwrap();
        assert_eq!(keys(&list), ["limit", "offset", "total", "workers"]);
    }
}
