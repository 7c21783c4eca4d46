//! The formula layer's error type.

use std::fmt::Write as _;

/// Prefix of every `INVALID_FILTER_BY_FORMULA` message Airtable sends.
pub const AIRTABLE_PREFIX: &str = "The formula for filtering records is invalid: ";
/// Airtable's text for any formula it cannot parse.
pub const AIRTABLE_INVALID: &str = "Invalid formula. Please check your formula text.";

/// What went wrong with a formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormulaErrorKind {
    /// The text is not a formula (bad token, unbalanced parenthesis, smart quote, ...).
    Syntax,
    /// Field names that are not in the table, as written in the formula, first-seen order.
    UnknownFields(Vec<String>),
    /// A function Airtable does not have, as written.
    UnknownFunction(String),
    /// A known function called with the wrong number of arguments (upper-cased name).
    WrongArity(String),
    /// The formula nests deeper than [`super::MAX_DEPTH`].
    TooDeep,
    /// The formula is longer than [`super::MAX_FORMULA_LEN`] bytes (refused before parsing).
    TooLong,
}

/// An error in a formula, with a message written for a human or an LLM: what is wrong, where
/// (the character offset, also in `position`), and the fix. [`FormulaError::render`] adds the
/// formula with a caret under the spot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FormulaError {
    pub kind: FormulaErrorKind,
    /// The detailed, actionable message, one paragraph (mentions the position).
    pub message: String,
    /// Character (not byte) offset into the formula where the problem is, when known.
    pub position: Option<usize>,
}

impl FormulaError {
    /// The exact message text Airtable puts in its 422 `INVALID_FILTER_BY_FORMULA` body.
    pub fn airtable_message(&self) -> String {
        match &self.kind {
            FormulaErrorKind::UnknownFields(names) => {
                let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
                format!("{AIRTABLE_PREFIX}Unknown field names: {}", lower.join(", "))
            }
            _ => format!("{AIRTABLE_PREFIX}{AIRTABLE_INVALID}"),
        }
    }

    /// The Airtable error type of the 422 body.
    pub fn airtable_type(&self) -> &'static str {
        "INVALID_FILTER_BY_FORMULA"
    }

    /// The message followed by the formula (or a window of it) with a caret under the position:
    /// what to show a person or a model when the formula text is at hand.
    pub fn render(&self, src: &str) -> String {
        match self.position {
            Some(pos) => format!("{}\n{}", self.message, snippet(src, pos)),
            None => self.message.clone(),
        }
    }

    pub(crate) fn new(
        kind: FormulaErrorKind,
        _src: &str,
        position: Option<usize>,
        what: impl Into<String>,
    ) -> Self {
        FormulaError {
            kind,
            message: what.into(),
            position,
        }
    }
}

/// Two lines: the formula (or a window of it around `pos`) and a caret under `pos`.
pub(crate) fn snippet(src: &str, pos: usize) -> String {
    const WINDOW: usize = 40;
    let chars: Vec<char> = src.chars().collect();
    let pos = pos.min(chars.len());
    let start = pos.saturating_sub(WINDOW);
    let end = (pos + WINDOW).min(chars.len());
    let mut line = String::new();
    let mut caret_col = 0;
    if start > 0 {
        line.push('…');
        caret_col += 1;
    }
    for (i, c) in chars.iter().enumerate().take(end).skip(start) {
        // keep the snippet on one line
        let c = if c.is_whitespace() { ' ' } else { *c };
        if i < pos {
            caret_col += 1;
        }
        line.push(c);
    }
    if end < chars.len() {
        line.push('…');
    }
    let mut out = String::new();
    let _ = write!(out, "  {line}\n  {}^", " ".repeat(caret_col));
    out
}

/// The closest candidate to `name` (case-insensitive match first, then by similarity).
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<&'a str> {
    // similarity is O(n*m): don't spend it on absurd names
    if name.chars().count() > 200 {
        return None;
    }
    let lower = name.to_lowercase();
    if let Some(c) = candidates
        .clone()
        .into_iter()
        .find(|c| c.to_lowercase() == lower)
    {
        return Some(c);
    }
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        if c.chars().count() > 200 {
            continue;
        }
        let cl = c.to_lowercase();
        let score =
            strsim::jaro_winkler(&lower, &cl).max(strsim::normalized_levenshtein(&lower, &cl));
        let contains = !lower.is_empty() && (cl.contains(&lower) || lower.contains(&cl));
        let score = if contains { score.max(0.85) } else { score };
        if score >= 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}
