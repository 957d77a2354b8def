//! Documents seen before: clients send the same few documents again and
//! again with different variables, so each accepted document is parsed and
//! costed once ([`DocumentLimits::check`]) and kept, and the engine is handed
//! the parsed document instead of parsing the text a second time. Only the
//! document's text (and the operation named) decide what is kept, nothing of
//! the caller: a document is the same for everyone. Bounded by entries and
//! by the size of each one kept; a refused document is never kept.

use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use domain::ValidationError;
use hashlink::LruCache;

use crate::limits::{DocumentCost, DocumentLimits};

/// Documents kept at most, by default (`TASKLEDGER_KEPT_DOCUMENTS`).
pub const KEPT_DOCUMENTS: usize = 512;
/// The longest document kept (its parsed form is about ten times larger):
/// at most about 20 MB for all of them.
pub const KEPT_DOCUMENT_BYTES: usize = 4 * 1024;

/// A document that passed the limits: what it costs, and its parsed form
/// when it parses (a syntax error is the engine's to report, with positions).
#[derive(Debug)]
pub struct Checked {
    pub cost: Option<DocumentCost>,
    pub document: Option<ExecutableDocument>,
}

/// A document's text and the operation named.
type Key = (Box<str>, Option<Box<str>>);

/// [`DocumentLimits`] with the documents it accepted kept.
pub struct Documents {
    limits: DocumentLimits,
    kept: Mutex<LruCache<Key, Arc<Checked>>>,
    capacity: usize,
}

impl Documents {
    /// Keeps at most `capacity` documents (none when 0).
    pub fn new(limits: DocumentLimits, capacity: usize) -> Self {
        Self {
            limits,
            kept: Mutex::new(LruCache::new(capacity.max(1))),
            capacity,
        }
    }

    /// The document checked against the limits: from those kept, or parsed
    /// and costed now (and kept, when small enough).
    pub fn check(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Checked>, ValidationError> {
        let key = (Box::from(query), operation_name.map(Box::from));
        if let Some(kept) = self.lock().get(&key) {
            metrics::counter!(infra::metric::GRAPHQL_DOCUMENTS, "outcome" => "kept").increment(1);
            return Ok(Arc::clone(kept));
        }
        let (cost, document) = self.limits.check_parsed(query, operation_name)?;
        let checked = Arc::new(Checked { cost, document });
        metrics::counter!(infra::metric::GRAPHQL_DOCUMENTS, "outcome" => "parsed").increment(1);
        if self.capacity > 0 && query.len() <= KEPT_DOCUMENT_BYTES {
            self.lock().insert(key, Arc::clone(&checked));
        }
        Ok(checked)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Arc<Checked>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_the_same_answer_comes_back() {
        let documents = Documents::new(DocumentLimits::default(), KEPT_DOCUMENTS);
        let query = "query($n: Int) { tasks(first: $n) { totalCount } }";
        let first = documents.check(query, None).unwrap();
        let again = documents.check(query, None).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.document.is_some());
        assert!(first
            .cost
            .is_some_and(|cost| cost.is_query && cost.reads == 2));
        // Another operation of the same text is another entry.
        let named = documents.check(query, Some("other")).unwrap();
        assert!(!Arc::ptr_eq(&first, &named));
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn refusals_and_large_documents_are_not_kept() {
        let documents = Documents::new(DocumentLimits::default(), KEPT_DOCUMENTS);
        let refused = "{ tasks { totalCount @deprecated } }";
        assert!(documents.check(refused, None).is_err());
        assert!(documents.check(refused, None).is_err());
        let large = format!(
            "{{ taskStats {{ open }} }}{}",
            " ".repeat(KEPT_DOCUMENT_BYTES)
        );
        assert!(documents.check(&large, None).unwrap().document.is_some());
        assert_eq!(documents.len(), 0);
        // A syntax error passes to the engine, parsed by nobody.
        let broken = documents.check("{ tasks {", None).unwrap();
        assert!(broken.document.is_none() && broken.cost.is_none());
    }

    #[test]
    fn the_least_recently_used_document_goes_first() {
        let documents = Documents::new(DocumentLimits::default(), KEPT_DOCUMENTS);
        for n in 0..KEPT_DOCUMENTS + 10 {
            documents
                .check(&format!("{{ a{n}: taskStats {{ open }} }}"), None)
                .unwrap();
        }
        assert_eq!(documents.len(), KEPT_DOCUMENTS);
        let none = Documents::new(DocumentLimits::default(), 0);
        assert!(none
            .check("{ taskStats { open } }", None)
            .unwrap()
            .document
            .is_some());
        assert_eq!(none.len(), 0);
    }
}
