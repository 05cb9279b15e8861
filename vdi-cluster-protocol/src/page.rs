//! Pagination on the wire: the `limit` and `offset` query parameters of
//! every paginated list ([`PageQuery`]) and the `total`, `limit` and
//! `offset` its answer carries beside the items ([`PageJson`], flattened
//! into the list's body).
//!
//! | list | order | `limit` when absent |
//! |---|---|---|
//! | `GET /api/vdi/workers` | by code | the whole list |
//! | `GET /api/vdi/exams` (the calendar) | by start, then id | the whole list |
//! | `GET /api/vdi/exams/{examId}/queue` | by position | the whole list |
//! | `GET /api/vdi/audit` | newest first (by sequence) | 100 |
//! | `GET /api/vdi/webhooks/{id}/deliveries` | newest first (by sequence) | 50 |
//!
//! `limit` is 1 to [`MAX_LIMIT`](vdi_cluster_core::page::MAX_LIMIT),
//! `offset` 0 to [`MAX_OFFSET`](vdi_cluster_core::page::MAX_OFFSET); an offset
//! past the end answers an empty page with the total. The lists keep
//! their bodies (SkyPanelV2's `{"workers": [...], "total": n}` for the
//! workers): the page's fields are added beside the items, and `total`
//! counts the whole list, not the page.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdi_cluster_core::{Page, ValidationError};

use crate::decode::parse_query;

/// The query parameters of a page. Read out of the query string beside a
/// list's own filters by [`split_page_query`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1 to 1000); when absent, the list's
    /// default (the whole list for workers, exams and queues; 100 audit
    /// entries; 50 deliveries).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Items skipped before the page, in the list's order (0 to 1000000;
    /// default 0).
    #[param(minimum = 0, maximum = 1_000_000)]
    pub offset: Option<usize>,
}

impl PageQuery {
    /// The page asked for; `default` is the list's `limit` when absent
    /// (`None`: the whole list). Out of bounds names the parameter.
    pub fn page(&self, default: Option<usize>) -> Result<Page, ValidationError> {
        Page::new(self.limit, self.offset, default)
    }
}

/// The parameters of [`PageQuery`] taken out of `query` (a query string
/// without `?`), and the rest parsed as `T`: a list's filters keep their
/// own type, which still refuses unknown parameters. Errors name the
/// parameter (a `limit` that is not a number is ``limit``'s).
pub fn split_page_query<T: serde::de::DeserializeOwned>(
    query: &str,
) -> Result<(T, PageQuery), ValidationError> {
    let (page, rest): (Vec<_>, Vec<_>) = form_urlencoded::parse(query.as_bytes())
        .partition(|(name, _)| name == "limit" || name == "offset");
    let encode = |pairs: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    Ok((parse_query(&encode(rest))?, parse_query(&encode(page))?))
}

/// What a page of a list answers beside its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageJson {
    /// How many items the whole list holds (every page, with the filters).
    pub total: usize,
    /// The page's `limit` (absent: to the end of the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
    /// Items skipped before the page.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub offset: usize,
}

impl PageJson {
    /// The fields of `page` of a list of `total` items.
    pub fn new(page: Page, total: usize) -> Self {
        Self {
            total,
            limit: page.limit(),
            offset: page.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Filters {
        zone: Option<String>,
    }

    #[test]
    fn page_parameters_are_split_from_the_filters() {
        let (f, p) = split_page_query::<Filters>("zone=a%20b&limit=5&offset=10").unwrap();
        assert_eq!(f.zone.as_deref(), Some("a b"));
        assert_eq!((p.limit, p.offset), (Some(5), Some(10)));
        let (f, p) = split_page_query::<Filters>("").unwrap();
        assert_eq!((f, p), (Filters { zone: None }, PageQuery::default()));
    }

    #[test]
    fn errors_name_the_parameter() {
        for (query, field) in [
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("limit=1.5", "limit"),
            ("zone=a&colour=red", "colour"),
        ] {
            let e = split_page_query::<Filters>(query).unwrap_err();
            assert_eq!(e.field, field, "{query}");
        }
        let q = PageQuery {
            limit: Some(0),
            offset: None,
        };
        assert_eq!(q.page(None).unwrap_err().field, "limit");
        let q = PageQuery {
            limit: None,
            offset: Some(vdi_cluster_core::page::MAX_OFFSET + 1),
        };
        assert_eq!(q.page(None).unwrap_err().field, "offset");
    }

    #[test]
    fn page_field_names() {
        let page = Page::new(Some(20), Some(40), None).unwrap();
        assert_eq!(
            serde_json::to_value(PageJson::new(page, 95)).unwrap(),
            json!({"total": 95, "limit": 20, "offset": 40})
        );
        assert_eq!(
            serde_json::to_value(PageJson::new(Page::ALL, 3)).unwrap(),
            json!({"total": 3, "offset": 0})
        );
    }
}
