//! Pages of a list: [`Page`] (skip `offset` items, then at most `limit`)
//! and [`Paged`] (the items of one page and the list's `total`).
//!
//! Every list the operators read (workers, the audit trail, a webhook's
//! deliveries, an exam's queue, the calendar) is answered a page at a
//! time, in an order that does not change between two requests, so that
//! pages follow on from one another. A store that can page natively (a
//! list range, `LIMIT … OFFSET`) answers one page and the total in one
//! read; otherwise the page is cut from the whole list with
//! [`Page::take`]. A leaf beside [`validation`](crate::ValidationError):
//! it imports nothing else of the crate.

use crate::validation::ValidationError;

/// Most items one page may hold (`limit`).
pub const MAX_LIMIT: usize = 1000;
/// Most items a page may skip (`offset`).
pub const MAX_OFFSET: usize = 1_000_000;

/// Which items of a list to answer: skip `offset`, then at most `limit`
/// (`None`: to the end of the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    offset: usize,
    limit: Option<usize>,
}

impl Page {
    /// The whole list.
    pub const ALL: Page = Page {
        offset: 0,
        limit: None,
    };

    /// The first `limit` items (none when `limit` is 0).
    pub fn first(limit: usize) -> Self {
        Self {
            offset: 0,
            limit: Some(limit),
        }
    }

    /// A page asked for by a client: `limit` from 1 to [`MAX_LIMIT`]
    /// (`default` when absent; `None` for the rest of the list) and
    /// `offset` from 0 to [`MAX_OFFSET`] (0 when absent). An offset past
    /// the end is an empty page, not an error.
    pub fn new(
        limit: Option<usize>,
        offset: Option<usize>,
        default: Option<usize>,
    ) -> Result<Self, ValidationError> {
        let limit = match limit {
            Some(n) if !(1..=MAX_LIMIT).contains(&n) => {
                return Err(ValidationError::new(
                    "limit",
                    format!("must be from 1 to {MAX_LIMIT}"),
                ));
            }
            given => given.or(default),
        };
        let offset = offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(ValidationError::new(
                "offset",
                format!("must be from 0 to {MAX_OFFSET}"),
            ));
        }
        Ok(Self { offset, limit })
    }

    /// Items skipped.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Most items answered (`None`: to the end).
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The index one past the page's last item (saturating).
    pub fn end(&self) -> usize {
        self.limit
            .map_or(usize::MAX, |l| self.offset.saturating_add(l))
    }

    /// Whether the item at `index` of the list is on this page.
    pub fn holds(&self, index: usize) -> bool {
        (self.offset..self.end()).contains(&index)
    }

    /// This page of `items` (the whole list, in its order), and how many
    /// `items` there are.
    pub fn take<T>(&self, items: impl IntoIterator<Item = T>) -> Paged<T> {
        let mut total = 0;
        let mut page = Vec::new();
        for item in items {
            if self.holds(total) {
                page.push(item);
            }
            total += 1;
        }
        Paged { items: page, total }
    }
}

/// One page of a list and the length of the whole list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The page's items, in the list's order.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: usize,
}

impl<T> Paged<T> {
    /// The same page with each item converted by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_parameter() {
        assert_eq!(Page::new(Some(0), None, None).unwrap_err().field, "limit");
        assert_eq!(
            Page::new(Some(MAX_LIMIT + 1), None, None)
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            Page::new(None, Some(MAX_OFFSET + 1), None)
                .unwrap_err()
                .field,
            "offset"
        );
        let p = Page::new(Some(MAX_LIMIT), Some(MAX_OFFSET), None).unwrap();
        assert_eq!((p.offset(), p.limit()), (MAX_OFFSET, Some(MAX_LIMIT)));
    }

    #[test]
    fn defaults() {
        assert_eq!(Page::new(None, None, Some(50)).unwrap(), Page::first(50));
        assert_eq!(Page::new(None, None, None).unwrap(), Page::ALL);
        assert_eq!(Page::new(Some(7), None, Some(50)).unwrap(), Page::first(7));
    }

    #[test]
    fn take_cuts_the_page_and_counts_the_whole() {
        let page = Page::new(Some(3), Some(4), None).unwrap();
        assert_eq!(
            page.take(0..10),
            Paged {
                items: vec![4, 5, 6],
                total: 10
            }
        );
        let past = Page::new(Some(3), Some(40), None).unwrap();
        assert_eq!(past.take(0..10).items, Vec::<i32>::new());
        assert_eq!(Page::ALL.take(0..3).items, vec![0, 1, 2]);
        assert!(Page::first(0).take(0..3).items.is_empty());
        let huge = Page::new(Some(MAX_LIMIT), Some(MAX_OFFSET), None).unwrap();
        assert_eq!(huge.end(), MAX_OFFSET + MAX_LIMIT);
    }
}
