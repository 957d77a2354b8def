//! Search: what was typed, made into a text query over the owner's keyed words
//! (docs/adr/0004): full text, type-ahead prefixes, or fuzzy matches looked
//! up in the user's word list.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{ListQuery, Order};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// `websearch_to_tsquery`: quotes, `-exclude`, `or`; ranked.
    FullText,
    /// Type-ahead: every word is a prefix of a word in the task.
    Prefix,
    /// Trigram similarity to the title; forgives typos.
    Fuzzy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub query: String,
    pub mode: SearchMode,
}

/// The words of a search: lower-cased, anything but letters and digits dropped.
fn words_of(raw: &str) -> Vec<String> {
    raw.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// What a search selects, made ready for SQL.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Matching {
    /// No search.
    Everything,
    /// A search with no words in it, a fuzzy word like none of the user's,
    /// or a reader narrowed to no list of theirs.
    Nothing,
    /// `websearch_to_tsquery` of what was typed.
    WebSearch,
    /// A text query in tsquery syntax over normalised words: prefixes, or the
    /// user's words close to what was typed.
    Lexemes(String),
}

/// Whether a full-text query may have nothing to look up: only a `-` makes
/// `websearch_to_tsquery` negate, and a query without a negation has a word
/// to look up or is empty (stop words alone), which matches nothing. A
/// query with a `-` is looked up with a way around the word index
/// (`push_matches`), planned for its own parameters.
pub(super) fn may_look_nothing_up(search: &Search) -> bool {
    search.mode == SearchMode::FullText && search.query.contains('-')
}

/// Whether a search's statement has one plan for every reader: a search
/// for words in the word index (a type-ahead prefix, or full text with a
/// word to look up), whose query is built as the statement runs. A fuzzy
/// search looks up the reader's words first, planned for its own words.
pub(super) fn one_plan_for_every_search(search: &Search) -> bool {
    match search.mode {
        SearchMode::FullText => !may_look_nothing_up(search),
        SearchMode::Prefix => true,
        SearchMode::Fuzzy => false,
    }
}

/// The most words of the user's a fuzzy word stands for.
const FUZZY_WORDS: i64 = 16;

pub(super) async fn resolve(
    conn: &mut PgConnection,
    query: &ListQuery,
) -> Result<Matching, sqlx::Error> {
    // Narrowed to no list of theirs: nothing to read.
    if query.readers.keys().is_empty() {
        return Ok(Matching::Nothing);
    }
    let Some(search) = &query.search else {
        return Ok(Matching::Everything);
    };
    if search.mode == SearchMode::FullText {
        return Ok(Matching::WebSearch);
    }
    let typed = words_of(&search.query);
    if typed.is_empty() {
        return Ok(Matching::Nothing);
    }
    if search.mode == SearchMode::Prefix {
        // `buy mil` becomes `'buy':* & 'mil':*`
        let prefixes: Vec<String> = typed.iter().map(|w| format!("'{w}':*")).collect();
        return Ok(Matching::Lexemes(prefixes.join(" & ")));
    }
    // Each typed word stands for the user's title words at least 0.3 similar
    // to it (pg_trgm's `%`), and every typed word must be matched.
    let close: Vec<(i32, String)> = sqlx::query_as(
        "SELECT typed.n::int, close.word
           FROM unnest($2::text[]) WITH ORDINALITY AS typed (word, n),
                LATERAL (SELECT word FROM task_words
                          WHERE user_id = ANY($1) AND tasks > 0 AND word % typed.word
                          ORDER BY similarity(word, typed.word) DESC, word
                          LIMIT $3) AS close",
    )
    .bind(query.readers.keys())
    .bind(&typed)
    .bind(FUZZY_WORDS)
    // Planned for its own words and keys.
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups = Vec::with_capacity(typed.len());
    for n in 1..=typed.len() as i32 {
        let words: Vec<String> = close
            .iter()
            .filter(|(m, _)| *m == n)
            .map(|(_, word)| format!("'{}':A", word.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        if words.is_empty() {
            return Ok(Matching::Nothing);
        }
        groups.push(format!("({})", words.join(" | ")));
    }
    Ok(Matching::Lexemes(groups.join(" & ")))
}

/// The search as a text query over the words read under `key` (migration
/// 2004). Where a row's condition uses it, it goes in a subquery, built
/// once per execution: the call itself would run for every row a kept
/// (generic) plan reads.
pub(super) fn push_keyed_query<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    key: &'a str,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    sql.push("owner_tsquery(").push_bind(key).push(", ");
    push_typed_query(sql, query, matching);
    sql.push(")");
}

/// Whether a listing's matches are ranked by their words (by their key's
/// query, `reader.words`, see `push_matches`): in relevance order, but for a
/// fuzzy search, which ranks by the title's likeness to what was typed.
pub(super) fn ranked_by_words(query: &ListQuery) -> bool {
    query.order == Order::Relevance
        && query
            .search
            .as_ref()
            .is_some_and(|s| s.mode != SearchMode::Fuzzy)
}

/// The text query as typed (or as resolved to lexemes), not yet keyed.
fn push_typed_query<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    match matching {
        Matching::Lexemes(lexemes) => {
            sql.push_bind(lexemes).push("::tsquery");
        }
        _ => {
            let typed = query.search.as_ref().map_or("", |s| s.query.as_str());
            sql.push("websearch_to_tsquery('english', ")
                .push_bind(typed)
                .push(")");
        }
    }
}

/// A row's relevance: its rank by the words matched (by its own key's
/// query, which the matches join to it) or, for a fuzzy search, its title's likeness to
/// what was typed; `0` in any other order.
pub(super) fn push_relevance<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    match &query.search {
        Some(search) if query.order == Order::Relevance && search.mode == SearchMode::Fuzzy => {
            sql.push("word_similarity(")
                .push_bind(&search.query)
                .push(", title)::float8");
        }
        Some(_) if ranked_by_words(query) => {
            sql.push("ts_rank(search, reader.words)::float8");
        }
        _ => {
            sql.push("0::float8");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_text_query_with_a_minus_may_look_nothing_up() {
        let search = |query: &str, mode| Search {
            query: query.into(),
            mode,
        };
        let full_text = |query: &str| search(query, SearchMode::FullText);
        assert!(!may_look_nothing_up(&full_text("budget review")));
        assert!(!may_look_nothing_up(&full_text(
            "\"quarterly report\" or milk"
        )));
        assert!(may_look_nothing_up(&full_text("-draft")));
        assert!(may_look_nothing_up(&full_text("a or -b")));
        // Conservative: a hyphen in a word is planned the careful way too.
        assert!(may_look_nothing_up(&full_text("e-mail")));
        // Only full text negates; a prefix or fuzzy word never does.
        assert!(!may_look_nothing_up(&search("-mil", SearchMode::Prefix)));
        for (text, mode, one_plan) in [
            ("milk", SearchMode::FullText, true),
            ("-milk", SearchMode::FullText, false),
            ("mil", SearchMode::Prefix, true),
            ("mlik", SearchMode::Fuzzy, false),
        ] {
            assert_eq!(
                one_plan_for_every_search(&search(text, mode)),
                one_plan,
                "{text} ({mode:?})"
            );
        }
    }

    #[test]
    fn search_words_keep_letters_and_digits_only() {
        assert_eq!(words_of("  Buy MILK, 2x! ''"), vec!["buy", "milk", "2x"]);
        assert!(words_of("!!! ''' \\").is_empty());
    }
}
