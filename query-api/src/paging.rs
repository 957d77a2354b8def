//! How many items one page of a connection holds: the caller's `first`,
//! within bounds every paged field shares.

use api_core::{ApiError, ApiResult};

/// Items in a page when the caller does not say.
pub(crate) const DEFAULT_PAGE: i64 = 20;
/// The most items one page may ask for.
pub(crate) const MAX_PAGE: i64 = 100;

/// `first` as a page size, or a refusal of it naming the bounds.
pub(crate) fn page_size(first: Option<i32>) -> ApiResult<i64> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE as i32).contains(&n) => Ok(i64::from(n)),
        Some(_) => Err(ApiError::invalid(
            "first",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_between_one_and_the_most_and_twenty_when_unsaid() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert_eq!(page_size(Some(100)).unwrap(), 100);
        for refused in [0, -1, 101, i32::MAX] {
            assert!(page_size(Some(refused)).is_err(), "{refused}");
        }
    }
}
