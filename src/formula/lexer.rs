//! Tokens of the formula language, with character positions.

use super::error::{FormulaError, FormulaErrorKind};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Number(f64),
    Str(String),
    /// `{Field Name}`, unescaped.
    Field(String),
    Ident(String),
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Amp,
    Plus,
    Minus,
    Star,
    Slash,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Number(n) => format!("the number {n}"),
            Tok::Str(_) => "a text literal".to_string(),
            Tok::Field(n) => format!("the field reference {{{n}}}"),
            Tok::Ident(n) => format!("the name `{n}`"),
            Tok::LParen => "`(`".to_string(),
            Tok::RParen => "`)`".to_string(),
            Tok::Comma => "`,`".to_string(),
            Tok::Eq => "`=`".to_string(),
            Tok::Ne => "`!=`".to_string(),
            Tok::Lt => "`<`".to_string(),
            Tok::Gt => "`>`".to_string(),
            Tok::Le => "`<=`".to_string(),
            Tok::Ge => "`>=`".to_string(),
            Tok::Amp => "`&`".to_string(),
            Tok::Plus => "`+`".to_string(),
            Tok::Minus => "`-`".to_string(),
            Tok::Star => "`*`".to_string(),
            Tok::Slash => "`/`".to_string(),
            Tok::Eof => "the end of the formula".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Character offset of the first character.
    pub start: usize,
    /// Character offset just past the last character.
    pub end: usize,
}

const SMART_QUOTES: &[char] = &[
    '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}', '\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}',
    '\u{2039}', '\u{203A}', '\u{00AB}', '\u{00BB}', '\u{2032}', '\u{2033}', '\u{FF02}', '\u{FF07}',
];

/// `'Jane's'`: the text `'Jane'` was closed by the apostrophe, `s` read as a name, and the last
/// quote opens a literal that never ends. Point at the apostrophe instead.
fn early_close(src: &str, out: &[Token], _start: usize, quote: char) -> Option<FormulaError> {
    // the first text literal with a word glued right after it
    let text = out.windows(2).find_map(|w| match w {
        [text, word]
            if matches!(text.tok, Tok::Str(_))
                && matches!(word.tok, Tok::Ident(_))
                && text.end == word.start =>
        {
            Some(text)
        }
        _ => None,
    })?;
    let at = text.end.saturating_sub(1);
    let quote = src.chars().nth(at).unwrap_or(quote);
    let other = if quote == '\'' { '"' } else { '\'' };
    Some(FormulaError::new(
        FormulaErrorKind::Syntax,
        src,
        Some(at),
        format!(
            "Syntax error at position {at}: this {quote} ends the text early (it looks like a \
             {quote} inside the text). Fix: escape it as \\{quote}, or quote the whole text with \
             {other} instead."
        ),
    ))
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, FormulaError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: String| {
        Err(FormulaError::new(
            FormulaErrorKind::Syntax,
            src,
            Some(pos),
            msg,
        ))
    };
    while let Some(&c) = chars.get(i) {
        let start = i;
        let next = chars.get(i + 1).copied();
        let simple = |tok: Tok, len: usize| Token {
            tok,
            start,
            end: start + len,
        };
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => out.push(simple(Tok::LParen, 1)),
            ')' => out.push(simple(Tok::RParen, 1)),
            ',' => out.push(simple(Tok::Comma, 1)),
            '+' => out.push(simple(Tok::Plus, 1)),
            '-' => out.push(simple(Tok::Minus, 1)),
            '*' => out.push(simple(Tok::Star, 1)),
            '/' => out.push(simple(Tok::Slash, 1)),
            '=' if next == Some('=') => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `==` is not an operator. \
                         Fix: compare with a single `=`, e.g. {{Status}} = 'Done'."
                    ),
                );
            }
            '=' => out.push(simple(Tok::Eq, 1)),
            '!' if next == Some('=') => out.push(simple(Tok::Ne, 2)),
            '!' => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `!` is not an operator. \
                         Fix: negate with NOT(condition), or compare with `!=`."
                    ),
                );
            }
            '<' if next == Some('=') => out.push(simple(Tok::Le, 2)),
            '<' if next == Some('>') => out.push(simple(Tok::Ne, 2)),
            '<' => out.push(simple(Tok::Lt, 1)),
            '>' if next == Some('=') => out.push(simple(Tok::Ge, 2)),
            '>' => out.push(simple(Tok::Gt, 1)),
            '&' if next == Some('&') => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `&&` is not an operator (in Airtable `&` \
                         joins text). Fix: write logic with functions, e.g. AND(cond1, cond2)."
                    ),
                );
            }
            '&' => out.push(simple(Tok::Amp, 1)),
            '|' => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `|` and `||` are not operators. \
                         Fix: write logic with functions, e.g. OR(cond1, cond2)."
                    ),
                );
            }
            ';' => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `;` is not allowed. \
                         Fix: separate function arguments with commas, e.g. IF(cond, a, b)."
                    ),
                );
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            if let Some(e) = early_close(src, &out, start, quote) {
                                return Err(e);
                            }
                            return err(
                                start,
                                format!(
                                    "Syntax error at position {start}: the text literal opened \
                                     with {quote} here is never closed. Fix: end it with a \
                                     matching {quote}, and write a {quote} inside it as \\{quote}."
                                ),
                            );
                        }
                        Some('\\') => {
                            let Some(&e) = chars.get(i + 1) else {
                                return err(
                                    i,
                                    format!(
                                        "Syntax error at position {i}: the text literal opened at \
                                         position {start} ends with a lone backslash and is never \
                                         closed. Fix: write a backslash as \\\\ and close the text \
                                         with {quote}."
                                    ),
                                );
                            };
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    start,
                    end: i,
                });
                continue;
            }
            '{' => {
                let mut name = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return err(
                                start,
                                format!(
                                    "Syntax error at position {start}: the field reference opened \
                                     with `{{` here is never closed. Fix: close it with `}}`, e.g. \
                                     {{Due Date}}; write a `}}` inside a name as \\}}."
                                ),
                            );
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('}') | Some('\\')) => {
                            if let Some(&e) = chars.get(i + 1) {
                                name.push(e);
                            }
                            i += 2;
                        }
                        Some('}') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            name.push(ch);
                            i += 1;
                        }
                    }
                }
                if name.trim().is_empty() {
                    return err(
                        start,
                        format!(
                            "Syntax error at position {start}: empty field reference `{{}}`. \
                             Fix: put the exact field name between the braces, e.g. {{Name}}."
                        ),
                    );
                }
                out.push(Token {
                    tok: Tok::Field(name),
                    start,
                    end: i,
                });
                continue;
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i;
                while chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
                    j += 1;
                }
                if chars.get(j) == Some(&'.') {
                    j += 1;
                    while chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
                        j += 1;
                    }
                }
                if matches!(chars.get(j), Some('e') | Some('E')) {
                    let mut k = j + 1;
                    if matches!(chars.get(k), Some('+') | Some('-')) {
                        k += 1;
                    }
                    if chars.get(k).is_some_and(|c| c.is_ascii_digit()) {
                        while chars.get(k).is_some_and(|c| c.is_ascii_digit()) {
                            k += 1;
                        }
                        j = k;
                    }
                }
                let text: String = chars.get(i..j).unwrap_or_default().iter().collect();
                if chars.get(j).is_some_and(|c| c.is_alphabetic() || *c == '_') {
                    return err(
                        start,
                        format!(
                            "Syntax error at position {start}: `{text}` runs into letters. \
                             Fix: a field name that starts with a digit must be written in braces, \
                             e.g. {{{text}...}}."
                        ),
                    );
                }
                let Ok(n) = text.parse::<f64>() else {
                    return err(
                        start,
                        format!("Syntax error at position {start}: `{text}` is not a number."),
                    );
                };
                out.push(Token {
                    tok: Tok::Number(n),
                    start,
                    end: j,
                });
                i = j;
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    j += 1;
                }
                let name: String = chars.get(i..j).unwrap_or_default().iter().collect();
                out.push(Token {
                    tok: Tok::Ident(name),
                    start,
                    end: j,
                });
                i = j;
                continue;
            }
            c if SMART_QUOTES.contains(&c) => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `{c}` is a typographic (\"smart\") quote, \
                         which Airtable does not accept. Fix: use straight quotes ' or \" around \
                         text, e.g. {{Status}} = 'Done'."
                    ),
                );
            }
            '`' => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: backticks are not quotes in Airtable \
                         formulas. Fix: use ' or \" around text, and {{braces}} around field names."
                    ),
                );
            }
            '[' | ']' => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: `{c}` is not allowed. Fix: refer to \
                         fields with braces, e.g. {{Field Name}}; there are no array literals."
                    ),
                );
            }
            other => {
                return err(
                    start,
                    format!(
                        "Syntax error at position {start}: unexpected character `{other}`. \
                         Airtable formulas use {{Field}} references, 'text' or \"text\", numbers, \
                         FUNCTION(args) and the operators = != < > <= >= & + - * /."
                    ),
                );
            }
        }
        i = out.last().map_or(i + 1, |t| t.end);
    }
    out.push(Token {
        tok: Tok::Eof,
        start: chars.len(),
        end: chars.len(),
    });
    Ok(out)
}
