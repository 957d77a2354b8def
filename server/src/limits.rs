//! What one GraphQL document may cost, checked before the engine validates or
//! runs it: its size in bytes, its fragments and spreads, the number of fields
//! once every fragment is expanded, and how many of those fields read or write
//! the database. Each is counted in one pass over the parsed document with
//! fragment sizes memoised, so a document built to expand exponentially (a
//! chain of fragments each spreading the next twice) costs what its text
//! costs to read, and is refused in microseconds.

use std::collections::HashMap;

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, FragmentDefinition, OperationType,
    Selection, SelectionSet,
};
use async_graphql::parser::Positioned;
use async_graphql::Name;
use async_graphql::Value;
use domain::ValidationError;

/// The bounds on one document; each refusal names the one exceeded.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    pub max_bytes: usize,
    pub max_fragments: usize,
    pub max_spreads: usize,
    /// Fields after every fragment spread is replaced by the fragment.
    pub max_fields: u64,
    /// Fields that query the read model (`task`, `tasks`, `tags`, `taskStats`,
    /// `totalCount`), aliases counted one by one.
    pub max_reads: u64,
    /// Mutation fields: each runs a command.
    pub max_writes: u64,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024,
            max_fragments: 50,
            max_spreads: 100,
            max_fields: 2_000,
            max_reads: 10,
            max_writes: 10,
        }
    }
}

/// Root query fields and connection fields that each run SQL.
const READING_FIELDS: &[&str] = &["task", "tasks", "tags", "taskStats", "totalCount"];

/// What a document asks for, as far as its cost goes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DocumentCost {
    pub fields: u64,
    pub reads: u64,
    pub writes: u64,
    /// Whether every root field of the operation is introspection
    /// (`__schema`, `__type`, `__typename`): what anonymous callers may ask.
    pub introspection_only: bool,
    /// Whether the operation to run is a query (not a mutation or a
    /// subscription): what waits for the caller's own writes.
    pub is_query: bool,
}

impl DocumentLimits {
    /// Parses `query` and checks it against every bound; the operation to run
    /// is `operation_name` (or the only one). Syntax errors are left to the
    /// engine, which reports them with positions.
    pub fn check(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Option<DocumentCost>, ValidationError> {
        self.check_parsed(query, operation_name)
            .map(|(cost, _)| cost)
    }

    /// [`Self::check`], answering the parsed document too (none when it does
    /// not parse).
    pub fn check_parsed(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<(Option<DocumentCost>, Option<ExecutableDocument>), ValidationError> {
        if query.len() > self.max_bytes {
            return Err(refuse(format!(
                "the document is {} bytes; at most {} are accepted",
                query.len(),
                self.max_bytes
            )));
        }
        let Ok(document) = async_graphql::parser::parse_query(query) else {
            return Ok((None, None));
        };
        if document.fragments.len() > self.max_fragments {
            return Err(refuse(format!(
                "at most {} fragments per document",
                self.max_fragments
            )));
        }
        let mut counter = Counter {
            fragments: &document.fragments,
            sizes: HashMap::new(),
            spreads: 0,
            limits: self,
        };
        let mut total = Cost::default();
        for definition in document.fragments.values() {
            known_directives(&definition.node.directives)?;
        }
        for (_, operation) in operations(&document) {
            known_directives(&operation.node.directives)?;
            let is_mutation = operation.node.ty == OperationType::Mutation;
            let cost = counter.selection_set(&operation.node.selection_set.node, 0)?;
            total = total.add(Cost {
                writes: if is_mutation {
                    root_fields(&operation.node.selection_set.node, &document)
                } else {
                    0
                },
                ..cost
            });
            counter.ensure(total)?;
        }
        let chosen = operations(&document).find(|(name, _)| match operation_name {
            Some(wanted) => name.map(Name::as_str) == Some(wanted),
            None => true,
        });
        let introspection_only = chosen.is_some_and(|(_, operation)| {
            operation.node.ty == OperationType::Query
                && only_introspection(&operation.node.selection_set.node, &document)
        });
        let is_query =
            chosen.is_some_and(|(_, operation)| operation.node.ty == OperationType::Query);
        let cost = DocumentCost {
            fields: total.fields,
            reads: total.reads,
            writes: total.writes,
            introspection_only,
            is_query,
        };
        Ok((Some(cost), Some(document)))
    }
}

/// Only the directives this API executes: `@include` and `@skip`, each with
/// one `if` that is a boolean or a variable (the engine checks a variable's
/// type). Anything else would be ignored silently, which a client must hear.
fn known_directives(directives: &[Positioned<Directive>]) -> Result<(), ValidationError> {
    for directive in directives {
        let directive = &directive.node;
        let name = directive.name.node.as_str();
        if !matches!(name, "include" | "skip") {
            return Err(ValidationError::new(
                "query",
                format!("unknown directive @{name}; only @include and @skip are supported"),
            ));
        }
        let valid = match directive.arguments.as_slice() {
            [(argument, value)] => {
                // A constant must be a Boolean; a variable's type is the
                // engine's to check.
                argument.node.as_str() == "if"
                    && value
                        .node
                        .clone()
                        .into_const()
                        .is_none_or(|constant| matches!(constant, Value::Boolean(_)))
            }
            _ => false,
        };
        if !valid {
            return Err(ValidationError::new(
                "query",
                format!("@{name} takes one argument, `if`, a Boolean"),
            ));
        }
    }
    Ok(())
}

fn refuse(reason: String) -> ValidationError {
    ValidationError::new("query", reason)
}

fn operations(
    document: &ExecutableDocument,
) -> Box<
    dyn Iterator<
            Item = (
                Option<&Name>,
                &Positioned<async_graphql::parser::types::OperationDefinition>,
            ),
        > + '_,
> {
    match &document.operations {
        DocumentOperations::Single(operation) => Box::new(std::iter::once((None, operation))),
        DocumentOperations::Multiple(operations) => {
            Box::new(operations.iter().map(|(name, op)| (Some(name), op)))
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    fields: u64,
    reads: u64,
    writes: u64,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            reads: self.reads.saturating_add(other.reads),
            writes: self.writes.saturating_add(other.writes),
        }
    }
}

struct Counter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// Each fragment's expanded cost, once known; `None` while it is being
    /// counted (a spread of it then is a cycle).
    sizes: HashMap<&'a str, Option<Cost>>,
    spreads: usize,
    limits: &'a DocumentLimits,
}

impl<'a> Counter<'a> {
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
    ) -> Result<Cost, ValidationError> {
        // The parser bounds nesting already; this guards the recursion here.
        if depth > 64 {
            return Err(refuse("the document nests too deep".into()));
        }
        let mut cost = Cost::default();
        for item in &set.items {
            let directives = match &item.node {
                Selection::Field(field) => &field.node.directives,
                Selection::InlineFragment(inline) => &inline.node.directives,
                Selection::FragmentSpread(spread) => &spread.node.directives,
            };
            known_directives(directives)?;
            let part = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let own = Cost {
                        fields: 1,
                        reads: u64::from(READING_FIELDS.contains(&name)),
                        writes: 0,
                    };
                    own.add(self.selection_set(&field.node.selection_set.node, depth + 1)?)
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.spreads += 1;
                    if self.spreads > self.limits.max_spreads {
                        return Err(refuse(format!(
                            "at most {} fragment spreads per document",
                            self.limits.max_spreads
                        )));
                    }
                    self.fragment(spread.node.fragment_name.node.as_str(), depth)?
                }
            };
            cost = cost.add(part);
            self.ensure(cost)?;
        }
        Ok(cost)
    }

    fn fragment(&mut self, name: &str, depth: usize) -> Result<Cost, ValidationError> {
        let Some((key, definition)) = self.fragments.get_key_value(name) else {
            // An unknown fragment: the engine's validation names it.
            return Ok(Cost::default());
        };
        match self.sizes.get(key.as_str()) {
            Some(Some(cost)) => return Ok(*cost),
            Some(None) => return Err(refuse(format!("fragment {name} spreads itself"))),
            None => {}
        }
        self.sizes.insert(key.as_str(), None);
        let cost = self.selection_set(&definition.node.selection_set.node, depth + 1)?;
        self.sizes.insert(key.as_str(), Some(cost));
        Ok(cost)
    }

    fn ensure(&self, cost: Cost) -> Result<(), ValidationError> {
        let limits = self.limits;
        if cost.fields > limits.max_fields {
            return Err(refuse(format!(
                "the document expands to more than {} fields",
                limits.max_fields
            )));
        }
        if cost.reads > limits.max_reads {
            return Err(refuse(format!(
                "the document reads the task list more than {} times (count aliases too)",
                limits.max_reads
            )));
        }
        if cost.writes > limits.max_writes {
            return Err(refuse(format!(
                "at most {} mutations per request",
                limits.max_writes
            )));
        }
        Ok(())
    }
}

/// The root fields of a selection set, through fragments (bounded: the
/// expansion was counted first).
fn root_fields(set: &SelectionSet, document: &ExecutableDocument) -> u64 {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(inline) => {
                root_fields(&inline.node.selection_set.node, document)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| root_fields(&f.node.selection_set.node, document)),
        })
        .fold(0, u64::saturating_add)
}

fn only_introspection(set: &SelectionSet, document: &ExecutableDocument) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => field.node.name.node.starts_with("__"),
        Selection::InlineFragment(inline) => {
            only_introspection(&inline.node.selection_set.node, document)
        }
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_some_and(|f| only_introspection(&f.node.selection_set.node, document)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> Result<Option<DocumentCost>, ValidationError> {
        DocumentLimits::default().check(query, None)
    }

    /// `fragment F0 on Query { ...F1 ...F1 }` … `fragment Fn on Query { taskStats { open } }`.
    fn doubling_chain(links: usize) -> String {
        let mut query = String::from("query { ...F0 }\n");
        for n in 0..links {
            query.push_str(&format!(
                "fragment F{n} on Query {{ ...F{next} ...F{next} }}\n",
                next = n + 1
            ));
        }
        query.push_str(&format!("fragment F{links} on Query {{ __typename }}\n"));
        query
    }

    #[test]
    fn a_doubling_fragment_chain_is_refused_without_expanding_it() {
        let started = std::time::Instant::now();
        let refusal = check(&doubling_chain(40)).unwrap_err();
        assert_eq!(refusal.field, "query");
        assert!(refusal.reason.contains("fields"), "{refusal}");
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        // A short chain is fine.
        assert_eq!(check(&doubling_chain(3)).unwrap().unwrap().fields, 8);
    }

    #[test]
    fn aliases_of_a_reading_field_count_one_by_one() {
        let many: String = (0..11)
            .map(|n| format!("s{n}: taskStats {{ open }} "))
            .collect();
        let refusal = check(&format!("{{ {many} }}")).unwrap_err();
        assert!(refusal.reason.contains("reads"), "{refusal}");
        let few: String = (0..10)
            .map(|n| format!("s{n}: taskStats {{ open }} "))
            .collect();
        assert_eq!(check(&format!("{{ {few} }}")).unwrap().unwrap().reads, 10);
    }

    #[test]
    fn mutations_per_request_are_bounded() {
        let many: String = (0..11)
            .map(|n| format!("m{n}: createTask(input: {{title: \"x\"}}) {{ version }} "))
            .collect();
        assert!(check(&format!("mutation {{ {many} }}")).is_err());
    }

    #[test]
    fn cycles_size_and_spreads_are_refused() {
        assert!(
            check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").is_err()
        );
        assert!(check(&"x".repeat(20_000)).is_err());
        let spreads: String = (0..101).map(|_| "...A ").collect();
        assert!(check(&format!(
            "{{ {spreads} }} fragment A on Query {{ __typename }}"
        ))
        .is_err());
    }

    #[test]
    fn unknown_directives_and_non_boolean_conditions_are_refused() {
        assert!(check("{ tasks @cached { totalCount } }").is_err());
        assert!(check("{ tasks @include(if: \"yes\") { totalCount } }").is_err());
        assert!(check("query($x: Boolean!) { tasks @skip(if: $x) { totalCount } }").is_ok());
        assert!(check("{ tasks @include(if: true) { totalCount } }").is_ok());
    }

    #[test]
    fn the_operation_that_runs_says_whether_it_reads() {
        let is_query = |query: &str, name: Option<&str>| {
            DocumentLimits::default()
                .check(query, name)
                .unwrap()
                .unwrap()
                .is_query
        };
        assert!(is_query("{ tasks { totalCount } }", None));
        assert!(!is_query(
            "mutation { completeTask(id: \"x\") { version } }",
            None
        ));
        assert!(!is_query("subscription { taskChanges { cursor } }", None));
        let both = "query Read { tasks { totalCount } } mutation Write { completeTask(id: \"x\") { version } }";
        assert!(is_query(both, Some("Read")));
        assert!(!is_query(both, Some("Write")));
    }

    #[test]
    fn only_introspection_is_recognised() {
        let standard = "query IntrospectionQuery { __schema { queryType { name } types { ...FullType } } } fragment FullType on __Type { kind name fields(includeDeprecated: true) { name } }";
        assert!(check(standard).unwrap().unwrap().introspection_only);
        assert!(
            !check("{ __typename tasks { totalCount } }")
                .unwrap()
                .unwrap()
                .introspection_only
        );
        assert!(
            !check("mutation { __typename }")
                .unwrap()
                .unwrap()
                .introspection_only
        );
    }
}
