//! A search as the backend runs it, and the relevance rules it follows.
//!
//! A query is split into words the way documents are (folded: lower case, accents removed;
//! split on everything but letters and digits). Every word must match, in one of three ways:
//!
//! - **a word** of the document's name, or of its other text (the city): exactly, as a prefix
//!   (the last word of the query only: search as you type), or with typos — none for a word
//!   shorter than 4 characters, one from 4, two from 8 (an insertion, a deletion, a
//!   substitution or a swap of two neighbours each count as one);
//! - **an identifier** (e-mail address, phone number, domain, external id, codes): the word's
//!   whole whitespace-separated token, exactly or, for the query's last token, as a prefix;
//!   never with typos. `hello@cr` finds `hello@creme.example`; `+1555` a phone number.
//!
//! Ranking: fewer typos first (an exact word beats a prefix, a prefix beats one typo, one typo
//! beats two), then more words matched in the name rather than elsewhere, then the most recently
//! updated.

use shared_model::ids::GroupId;

use super::filter::Expr;
use super::{Document, Kind};

/// At most this many tokens of a query count (the rest are ignored).
pub const MAX_TOKENS: usize = 10;

/// The order of the hits. Ties under any order go by kind and id, so pages never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// The ranking above (without a text: the most recently updated first).
    Relevance,
    Name {
        descending: bool,
    },
    CreatedAt {
        descending: bool,
    },
    UpdatedAt {
        descending: bool,
    },
}

/// A field whose values a search counts over all its hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Facet {
    Kind,
    Type,
    Status,
    Enabled,
    Country,
    City,
    IndustrySector,
    IndustryGroup,
    SizeRange,
    Assignee,
    Tags,
}

impl Facet {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Facet::Kind => "kind",
            Facet::Type => "type",
            Facet::Status => "status",
            Facet::Enabled => "enabled",
            Facet::Country => "country",
            Facet::City => "city",
            Facet::IndustrySector => "industrySector",
            Facet::IndustryGroup => "industryGroup",
            Facet::SizeRange => "sizeRange",
            Facet::Assignee => "assignee",
            Facet::Tags => "tags",
        }
    }
}

/// At most this many values of a facet are counted (the most frequent).
pub const FACET_VALUES: usize = 20;

/// Where the previous page ended: the last hit's sort key.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    /// Typos, words outside the name, and the update time in microseconds, negated.
    Relevance(i64, i64, i64),
    /// The folded name.
    Name(String),
    /// The sorted time, in microseconds since the epoch.
    Time(i64),
}

/// The position after which a page starts.
#[derive(Clone, Debug, PartialEq)]
pub struct After {
    pub key: SortKey,
    pub kind: Kind,
    pub id: uuid::Uuid,
}

/// A search for the backend.
#[derive(Clone, Debug)]
pub struct Query {
    /// The text searched: its whitespace-separated tokens (at most [`MAX_TOKENS`]); none
    /// matches every document the filter lets through.
    pub text: String,
    pub kinds: Vec<Kind>,
    /// The caller's scope, a key's filter and the request's, combined.
    pub filter: Expr,
    pub sort: Sort,
    pub facets: Vec<Facet>,
    pub limit: i64,
    pub after: Option<After>,
}

impl Query {
    /// A search for `text` in documents of `kinds` that `filter` lets through, ranked, at most
    /// `limit`, no facets.
    pub fn new(text: impl Into<String>, kinds: Vec<Kind>, filter: Expr, limit: i64) -> Query {
        Query {
            text: text.into(),
            kinds,
            filter,
            sort: Sort::Relevance,
            facets: Vec::new(),
            limit,
            after: None,
        }
    }

    /// The whitespace-separated tokens that count.
    pub fn tokens(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .take(MAX_TOKENS)
            .map(str::to_string)
            .collect()
    }
}

/// How many typos a word of the query may have: none below 4 characters, one from 4, two
/// from 8.
pub fn typo_budget(word: &str) -> usize {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// How well a term of the vocabulary matches a query word (lower is better), or `None`:
/// 0 exact, 1 prefix (when the word may be one), 2 one typo, 3 two typos.
pub fn word_tier(word: &str, term: &str, prefix: bool) -> Option<i32> {
    if term == word {
        return Some(0);
    }
    if prefix && term.starts_with(word) {
        return Some(1);
    }
    let budget = typo_budget(word);
    if budget == 0 {
        return None;
    }
    let typos = strsim::osa_distance(word, term);
    (typos <= budget).then_some(1 + typos as i32)
}

/// How well an identifier matches a query token: 0 exact, 1 prefix (the last token), else
/// `None`.
pub fn identifier_tier(token: &str, term: &str, prefix: bool) -> Option<i32> {
    if term == token {
        Some(0)
    } else if prefix && term.starts_with(token) {
        Some(1)
    } else {
        None
    }
}

/// A span of a field's text that matched, in UTF-16 code units (as JavaScript counts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    pub length: usize,
}

/// A field of a hit that matched a query word, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// `name`, `city`, `email`, `phone`, `domain`, `externalId` or `codes`.
    pub field: &'static str,
    pub ranges: Vec<Range>,
}

/// One search result: the document as indexed, and how it matched.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub doc: Document,
    pub groups: Vec<GroupId>,
    /// Typos over all words (a prefix counts half, as tier 1 against 2 for a typo).
    pub tiers: i64,
    /// Words matched outside the name.
    pub outside_name: i64,
    pub matches: Vec<Match>,
    /// Where a page that ends with this hit ends.
    pub position: After,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    /// At most `limit + 1` hits: one more than asked tells that another page follows.
    pub hits: Vec<Hit>,
    /// How many documents match in all.
    pub total: i64,
    /// The asked facets' most frequent values with their counts, in the order asked.
    pub facets: Vec<(Facet, Vec<(String, i64)>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_allowed_from_4_and_8_characters() {
        assert_eq!(word_tier("abc", "abd", false), None, "no typo under 4");
        assert_eq!(word_tier("abc", "abc", false), Some(0));
        assert_eq!(word_tier("abc", "abcd", true), Some(1), "a prefix");
        assert_eq!(word_tier("abc", "abcd", false), None, "not the last word");
        assert_eq!(
            word_tier("jahn", "john", false),
            Some(2),
            "one substitution"
        );
        assert_eq!(
            word_tier("jonhson", "johnson", false),
            Some(2),
            "a swap is one typo"
        );
        assert_eq!(word_tier("jhnson", "johnson", false), Some(2), "a deletion");
        assert_eq!(
            word_tier("jonsonn", "johnson", false),
            None,
            "two typos under 8"
        );
        assert_eq!(
            word_tier("mcdonnals", "mcdonalds", false),
            Some(3),
            "two from 8"
        );
        assert_eq!(word_tier("mcdxxxlds", "mcdonalds", false), None, "three");
    }

    #[test]
    fn identifiers_match_exactly_or_as_a_prefix_of_the_last_token() {
        assert_eq!(identifier_tier("a@b.c", "a@b.c", false), Some(0));
        assert_eq!(
            identifier_tier("hello@cr", "hello@creme.example", true),
            Some(1)
        );
        assert_eq!(
            identifier_tier("hello@cr", "hello@creme.example", false),
            None
        );
        assert_eq!(
            identifier_tier("helo@creme.example", "hello@creme.example", true),
            None
        );
    }
}
